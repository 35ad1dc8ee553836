"""What a request may cost: its URL bounded before any work, and its class decided once.

Every request passes ``gate`` before the rate limiter, routing and the handlers.
It reads the URL once, in linear time, and refuses it unless

* the path is at most ``MAX_PATH_BYTES`` and the query string at most ``MAX_QUERY_BYTES``
  (else 414, naming the part that is too long);
* the query string holds at most ``MAX_PARAMS`` parameters, each named parameter at most
  as often and each value at most as long as ``LIMITS`` says (else 400 naming every
  offending parameter, in the one error shape). Names no route reads get ``UNKNOWN``;
* no value holds a NUL character (400): nothing stored holds one, and PostgreSQL refused
  it in a filter with a 500. (Paths with one are the routes' 404s.)

Parameters are decoded exactly as Litestar decodes them for the handlers (``parse_qsl``
of the Latin-1 text, ``&`` only, blank values kept, UTF-8 escapes), so ``?%71=border``
is ``q=border`` here as there.

The same pass decides the request's ``Cost``: its class and the rate-limit bucket it is
charged to, with a weight in tokens (feedsvc.http.ratelimit; ``classify`` is the one
place that decides it, and the connection-level front asks it too):

    poll      GET/HEAD of a feed at its own address (no query string), static files,
              /healthz and the like, CORS preflights: 1 token of ``feeds``
    render    any other GET outside the API: a feed with filters or an archive cursor
              (keyed by what the client chose, so usually rendered afresh), the pages,
              the embed views, oEmbed: ``RENDER_WEIGHT`` tokens of ``feeds``
    read      GET of the JSON API: 1 token of ``read``
    search    any GET with a non-empty ``q``: 1 token of ``search`` (a smaller budget)
    write     every other method: 1 token of ``write``
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from urllib.parse import parse_qsl

import msgspec
from litestar.enums import ScopeType

from feedsvc.http.errors import ErrorBody
from feedsvc.model import MAX_CATEGORIES

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

MAX_PATH_BYTES = 2048
"""Longest path (percent-encoded, as sent) answered; longer is a 414."""
MAX_QUERY_BYTES = 16384
"""Longest query string answered (room for 50 category slugs of 120 characters, twice);
longer is a 414."""
MAX_PARAMS = 64
"""Parameters one query string may hold, every name counted; more is a 400."""
RENDER_WEIGHT = 4
"""Tokens of the ``feeds`` budget a ``render`` request takes (a cached poll takes 1)."""


class Limit(NamedTuple):
    """How long each value of a parameter may be (in characters, decoded) and how often
    the parameter may appear."""

    length: int
    times: int = 1


LIMITS: dict[str, Limit] = {
    # Repeatable and comma-separated; feedsvc.model.Query.from_params counts the slugs.
    "category": Limit(MAX_CATEGORIES * 121, MAX_CATEGORIES),
    "tag": Limit(64),
    "author": Limit(200),
    "lang": Limit(35),
    "trend": Limit(16),
    "from": Limit(40),
    "to": Limit(40),
    "updated_since": Limit(40),
    "q": Limit(200),
    "limit": Limit(8),
    "cursor": Limit(500),
    "since": Limit(500),
    "id": Limit(200),
    "theme": Limit(16),
    "url": Limit(2000),
    "format": Limit(20),
    "maxwidth": Limit(8),
    "maxheight": Limit(8),
}
"""Every query parameter a public route reads, with its bounds (the routes' own
``max_length`` where they declare one)."""
UNKNOWN = Limit(1000, 8)
"""Bounds of a parameter no route reads (tracking tags, cache busters): ignored, but bounded."""


class Cost(NamedTuple):
    """A request's class, the rate-limit bucket it is charged to and how many tokens."""

    name: str
    bucket: str
    weight: int


FEEDS, READ, SEARCH, WRITE = "feeds", "read", "search", "write"
POLL = Cost("poll", FEEDS, 1)
RENDER = Cost("render", FEEDS, RENDER_WEIGHT)
READ_COST = Cost("read", READ, 1)
SEARCH_COST = Cost("search", SEARCH, 1)
WRITE_COST = Cost("write", WRITE, 1)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Paths whose answer is the same for every query string (files, health, the schema): a poll
# even with one. Feeds at their own addresses are polls only without a query string.
_STATIC = re.compile(r"/(?:healthz|readyz|metrics|feed\.xsl|icon\.svg|embed\.js|media/.*|schema(?:/.*)?)")
_FEED = re.compile(r"/(?:[^/]+/)?(?:feed|digest)\.(?:rss|atom|json)|/categories/[^/]+/feed\.(?:rss|atom|json)")


class Problem(NamedTuple):
    key: str
    message: str


def params_of(query_string: bytes) -> list[tuple[str, str]]:
    """The decoded parameters, as Litestar decodes them for the handlers."""
    return parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, separator="&")


def check(path: str, raw_path: bytes | None, query_string: bytes) -> tuple[int, list[Problem], list[tuple[str, str]]]:
    """The status that refuses a URL (0 when it is acceptable), what is wrong with it, and
    its decoded parameters (empty when refused before decoding)."""
    # Some clients' ASGI layers (httpx's) put the query string in raw_path too.
    path_bytes = len(raw_path.partition(b"?")[0]) if raw_path else len(path.encode("utf-8", "surrogateescape"))
    if path_bytes > MAX_PATH_BYTES:
        return 414, [Problem("path", f"the path is limited to {MAX_PATH_BYTES} bytes")], []
    if len(query_string) > MAX_QUERY_BYTES:
        return 414, [Problem("query string", f"the query string is limited to {MAX_QUERY_BYTES} bytes")], []
    if not query_string:
        return 0, [], []
    # parse_qsl splits on every "&": count them first, so a flood of empty parameters is
    # refused before it is split.
    if query_string.count(b"&") >= MAX_PARAMS:
        return 400, [Problem("query string", f"a query string holds at most {MAX_PARAMS} parameters")], []
    params = params_of(query_string)
    seen: dict[str, int] = {}
    problems: dict[str, str] = {}
    for name, value in params:
        limit = LIMITS.get(name, UNKNOWN)
        count = seen[name] = seen.get(name, 0) + 1
        if name in problems:
            continue
        if count > limit.times:
            problems[name] = (
                f"`{name[:64]}` may be given once"
                if limit.times == 1
                else f"`{name[:64]}` may be given at most {limit.times} times"
            )
        elif len(value) > limit.length:
            problems[name] = f"`{name[:64]}` is limited to {limit.length} characters"
        elif "\x00" in value:  # no stored text holds one, and PostgreSQL refuses it in text
            problems[name] = f"`{name[:64]}` must not contain NUL characters"
    if problems:
        return 400, [Problem(k[:64], m) for k, m in problems.items()], params
    return 0, [], params


def classify(method: str, path: str, params: list[tuple[str, str]]) -> Cost:
    """The cost of a request with these decoded parameters (see the module docstring)."""
    if method not in SAFE_METHODS:
        return WRITE_COST
    if method == "OPTIONS":
        return POLL
    if any(name == "q" and value.strip() for name, value in params):
        return SEARCH_COST
    if path.startswith("/api/"):
        return READ_COST
    if _STATIC.fullmatch(path) or (not params and _FEED.fullmatch(path)):
        return POLL
    return RENDER


_COST_KEY = "feedsvc.cost"


def cost_of(scope: Scope) -> Cost:
    """The cost ``gate`` found for a request, or (outside the gate) the cost worked out now."""
    found = cast(dict[str, Any], scope).get(_COST_KEY)
    if isinstance(found, Cost):
        return found
    query_string = scope.get("query_string", b"")
    params = params_of(query_string) if len(query_string) <= MAX_QUERY_BYTES else []
    return classify(str(scope.get("method", "GET")), scope["path"], params)


_encode = msgspec.json.Encoder().encode


def refusal(status: int, problems: list[Problem]) -> bytes:
    """The error body for a refused URL: every offending part named in ``extra``."""
    names = ", ".join(p.key for p in problems)
    detail = f"URI too long: {names}" if status == 414 else f"query parameters out of bounds: {names}"
    extra = [{"message": p.message, "key": p.key, "source": "query"} for p in problems]
    return _encode(ErrorBody(status_code=status, detail=detail, extra=extra))


def gate(app: ASGIApp) -> ASGIApp:
    """Wrap ``app``: refuse URLs beyond the bounds before any work, and leave the request's
    ``Cost`` in its scope for the rate limiter (see the module docstring). A refusal gets
    its CORS headers from ``harden`` around it, as every read does."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        status, problems, params = check(scope["path"], scope.get("raw_path"), scope.get("query_string", b""))
        if status:
            body = refusal(status, problems)
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send(
                {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body, "more_body": False}
            )
            return
        cast(dict[str, Any], scope)[_COST_KEY] = classify(scope["method"], scope["path"], params)
        await app(scope, receive, send)

    return middleware
