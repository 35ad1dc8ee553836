"""Feed polls answered before routing (issue 6).

Most requests a feed server sees are readers polling the same few URLs: ``/feed.rss``, a
category's or a language's feed, with ``If-None-Match`` from the last poll. When the
document for such a path is cached and the store knows without a query that nothing was
committed since it was made (``FeedPublisher.cached``, feedsvc.store.watch), this layer
answers at once: no routing, no dependency injection, no Response object. What it sends
is what the handlers in feedsvc.http.feeds send (the same ``validators`` and ``is_fresh``;
tests/test_fastpath.py compares them header by header).

It sits inside the rate limiter, ``harden`` and ``observe`` (feedsvc.http.app), so request
ids, access logs, metrics, host checks, ``nosniff``, rate limits and HEAD work as for any
other request; it sets ``path_template`` as routing would, for the metrics.

Anything else goes on to the app: other paths, query strings, methods other than GET
(HEAD arrives here as GET), a document not yet served or no longer current, and requests
whose answer would differ from the plain one: cross-origin requests (``Origin``: CORS
headers) and browsers (``Sec-Fetch-Dest``: the HTML page), or a header sent twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.enums import ScopeType

from feedsvc.feeds import MAX_ADDRESSES, MEDIA_TYPES, Encoding, FeedFormat, FeedPublisher, Rendered, pick_encoding
from feedsvc.http.feeds import is_fresh, validators

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from feedsvc.config import Settings

Headers = list[tuple[bytes, bytes]]

# Request headers that decide the answer, and those that send the request the long way.
_ACCEPT_ENCODING = b"accept-encoding"
_IF_NONE_MATCH = b"if-none-match"
_IF_MODIFIED_SINCE = b"if-modified-since"
_DECLINE = frozenset({b"origin", b"sec-fetch-dest"})
_WATCHED = frozenset({_ACCEPT_ENCODING, _IF_NONE_MATCH, _IF_MODIFIED_SINCE}) | _DECLINE


class _Prepared:
    """One document's answers in one coding, built once: its 200 and 304 header lists."""

    __slots__ = ("body", "doc", "etag", "not_modified", "ok")

    def __init__(self, doc: Rendered, fmt: FeedFormat, encoding: Encoding, settings: Settings) -> None:
        body, etag = doc.variant(encoding)
        common = [(k.lower().encode(), v.encode("latin-1")) for k, v in validators(doc, etag, settings).items()]
        ok = list(common)
        if encoding != "identity":
            ok.append((b"content-encoding", encoding.encode()))
        ok += [(b"content-type", MEDIA_TYPES[fmt].encode()), (b"content-length", str(len(body)).encode())]
        self.doc = doc
        self.etag = etag
        self.body = body
        self.ok = ok
        self.not_modified = common


def serve_cached_feeds(app: ASGIApp, publisher: FeedPublisher, settings: Settings) -> ASGIApp:
    """Wrap ``app``: answer polls of current cached feeds (see the module docstring)."""
    prepared: dict[tuple[str, Encoding], _Prepared] = {}

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "GET" or scope["query_string"]:
            await app(scope, receive, send)
            return
        path = scope["path"]
        found = publisher.cached(path)
        if found is None:
            await app(scope, receive, send)
            return
        accept_encoding = if_none_match = if_modified_since = None
        seen: set[bytes] = set()
        for name, value in scope["headers"]:
            if name in _WATCHED:
                if name in _DECLINE or name in seen:
                    await app(scope, receive, send)
                    return
                seen.add(name)
                text = value.decode("latin-1")
                if name == _ACCEPT_ENCODING:
                    accept_encoding = text
                elif name == _IF_NONE_MATCH:
                    if_none_match = text
                else:
                    if_modified_since = text
        doc, fmt, template = found
        encoding = pick_encoding(accept_encoding)
        answer = prepared.get((path, encoding))
        if answer is None or answer.doc is not doc:
            if len(prepared) >= 3 * MAX_ADDRESSES:
                prepared.clear()  # bounded like the addresses it is keyed by
            answer = prepared[(path, encoding)] = _Prepared(doc, fmt, encoding, settings)
        scope["path_template"] = template  # what routing would write, for the metrics
        publisher.stats.hits += 1
        publisher.stats.early += 1
        # Pollers send back the ETag they were given: that match needs no parsing.
        if if_none_match == answer.etag or is_fresh(doc, if_none_match, if_modified_since, page=False):
            await send({"type": "http.response.start", "status": 304, "headers": answer.not_modified})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await send({"type": "http.response.start", "status": 200, "headers": answer.ok})
        await send({"type": "http.response.body", "body": answer.body, "more_body": False})

    return middleware
