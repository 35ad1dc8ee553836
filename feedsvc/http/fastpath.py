"""The fast path: feed polls answered before routing, inside the ASGI stack (issue 6).

Most requests a feed server sees are readers polling the same few URLs: ``/feed.rss``, a
category's or a language's feed, with ``If-None-Match`` from the last poll. When the
document for such a path is cached and the store knows without a query that nothing was
committed since it was made (``FeedPublisher.cached``, ``Store.known_state``), this layer
answers at once: no routing, no dependency injection, no Response object. What it sends
is what the handlers in feedsvc.http.routes.feeds send (the same ``validators`` and
``is_fresh``, from feedsvc.http.conditional; tests/test_fastpath.py compares them header by
header).

It sits inside the rate limiter, ``harden`` (feedsvc.http.middleware) and ``observe``, so
request ids, access logs, metrics, host checks, ``nosniff``, rate limits and HEAD work as
for any other request; it sets ``path_template`` as routing would, for the metrics.

A request that names a change it must see (``Feedsvc-Min-Change``, the ``Feedsvc-Change`` of
a write acknowledged by this or another node) goes on to the app too, with that number
set for ``Service.state``: the node reads the state rather than trust what it knows, which
lags another node's commit until its notification arrives (``SEEN_CHANGE``).

Anything else goes on to the app: other paths, query strings, methods other than GET
(HEAD arrives here as GET), a document not yet served or no longer current, and requests
that need more: cross-origin requests (``Origin``, left to Litestar's CORS middleware;
their answer is the plain one, since ``harden`` puts the same CORS headers on every read)
and browsers (``Sec-Fetch-Dest``: the HTML page), or a header sent twice.

What it may touch: ``FeedPublisher.cached`` (a dict lookup and the store's in-memory
state, no query, nothing awaited) and the feed validators. ``CachedFeeds`` is the decision;
the front (feedsvc.http.front) asks it too, below ASGI, so the two cannot answer differently.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from litestar.enums import ScopeType

from feedsvc.feeds.documents import Encoding, Rendered, pick_encoding
from feedsvc.feeds.publisher import MAX_ADDRESSES, FeedPublisher
from feedsvc.feeds.views import MEDIA_TYPES, FeedFormat
from feedsvc.http.conditional import is_fresh, validators
from feedsvc.service import SEEN_CHANGE

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from feedsvc.config import Settings

Headers = list[tuple[bytes, bytes]]

# Request headers that decide the answer, and those that send the request the long way.
_ACCEPT_ENCODING = b"accept-encoding"
_IF_NONE_MATCH = b"if-none-match"
_IF_MODIFIED_SINCE = b"if-modified-since"
_MIN_CHANGE = b"feedsvc-min-change"
_DECLINE = frozenset({b"origin", b"sec-fetch-dest", _MIN_CHANGE})
_WATCHED = frozenset({_ACCEPT_ENCODING, _IF_NONE_MATCH, _IF_MODIFIED_SINCE}) | _DECLINE


def header_lines(headers: Headers) -> bytes:
    """``headers`` as they go on the wire: ``name: value\r\n`` each."""
    return b"".join(b"%s: %s\r\n" % pair for pair in headers)


class _Prepared:
    """One document's answers in one coding, built once: its 200 and 304 header lists, and
    the same as wire bytes (for feedsvc.http.front)."""

    __slots__ = ("body", "doc", "etag", "not_modified", "not_modified_lines", "ok", "ok_lines")

    def __init__(self, doc: Rendered, fmt: FeedFormat, encoding: Encoding, settings: Settings) -> None:
        body, etag = doc.variant(encoding)
        common = [(k.lower().encode(), v.encode("latin-1")) for k, v in validators(doc, etag, settings, fmt).items()]
        ok = list(common)
        if encoding != "identity":
            ok.append((b"content-encoding", encoding.encode()))
        ok += [(b"content-type", MEDIA_TYPES[fmt].encode()), (b"content-length", str(len(body)).encode())]
        self.doc = doc
        self.etag = etag
        self.body = body
        self.ok = ok
        self.not_modified = common
        self.ok_lines = header_lines(ok)
        self.not_modified_lines = header_lines(common)


class Answer(NamedTuple):
    """A poll's answer: status, headers (also as wire bytes), body (a GET's), and the route
    template for the metrics."""

    status: int
    headers: Headers
    lines: bytes
    body: bytes
    route: str


class CachedFeeds:
    """Decides, without awaiting anything, whether a request for ``path`` with ``headers``
    (lower-case names, as ASGI and uvicorn give them) is a poll of a current cached feed,
    and what its answer is. The ASGI layer below and the connection-level front
    (feedsvc.http.front) both ask it, so they cannot answer differently."""

    def __init__(self, publisher: FeedPublisher, settings: Settings) -> None:
        self.publisher = publisher
        self.settings = settings
        self._prepared: dict[tuple[str, Encoding], _Prepared] = {}

    def answer(self, path: str, headers: Iterable[tuple[bytes, bytes]]) -> Answer | None:
        """The answer to a GET of ``path`` without a query string, or None when the request
        must go the long way (see the module docstring). The caller counts an answer it
        sends with ``hit``."""
        publisher = self.publisher
        found = publisher.cached(path)
        if found is None:
            return None
        accept_encoding = if_none_match = if_modified_since = None
        for name, value in headers:
            if name in _WATCHED:
                text = value.decode("latin-1")
                if name == _ACCEPT_ENCODING and accept_encoding is None:
                    accept_encoding = text
                elif name == _IF_NONE_MATCH and if_none_match is None:
                    if_none_match = text
                elif name == _IF_MODIFIED_SINCE and if_modified_since is None:
                    if_modified_since = text
                else:  # a header that asks for more, or one sent twice
                    return None
        doc, fmt, template = found
        encoding = pick_encoding(accept_encoding)
        prepared = self._prepared
        answer = prepared.get((path, encoding))
        if answer is None or answer.doc is not doc:
            if len(prepared) >= 3 * MAX_ADDRESSES:
                prepared.clear()  # bounded like the addresses it is keyed by
            answer = prepared[(path, encoding)] = _Prepared(doc, fmt, encoding, self.settings)
        # Pollers send back the ETag they were given: that match needs no parsing.
        if if_none_match == answer.etag or is_fresh(doc, if_none_match, if_modified_since, page=False):
            return Answer(304, answer.not_modified, answer.not_modified_lines, b"", template)
        return Answer(200, answer.ok, answer.ok_lines, answer.body, template)

    def hit(self) -> None:
        """Count an answer sent from the cache before routing."""
        stats = self.publisher.stats
        stats.hits += 1
        stats.early += 1


def seen_change(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """The largest ``Feedsvc-Min-Change`` of a request (0 without one; a value that is not
    a change number is ignored: it can only ask for a read the node would do anyway)."""
    seen = 0
    for name, value in headers:
        if name == _MIN_CHANGE and value.isdigit() and len(value) <= 18:
            seen = max(seen, int(value))
    return seen


def serve_cached_feeds(app: ASGIApp, feeds: CachedFeeds) -> ASGIApp:
    """Wrap ``app``: answer polls of current cached feeds (see the module docstring)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        seen = seen_change(scope["headers"])
        if seen:
            token = SEEN_CHANGE.set(seen)
            try:
                await app(scope, receive, send)
            finally:
                SEEN_CHANGE.reset(token)
            return
        if scope["method"] != "GET" or scope["query_string"]:
            await app(scope, receive, send)
            return
        found = feeds.answer(scope["path"], scope["headers"])
        if found is None:
            await app(scope, receive, send)
            return
        feeds.hit()
        scope["path_template"] = found.route  # what routing would write, for the metrics
        await send({"type": "http.response.start", "status": found.status, "headers": found.headers})
        await send({"type": "http.response.body", "body": found.body, "more_body": False})

    return middleware
