"""What a request may cost: its URL bounded before any work, and its class decided once.

Every request passes ``gate`` before the rate limiter, routing and the handlers.
It reads the URL once, in linear time, and refuses it unless

* the path is at most ``MAX_PATH_BYTES`` and the query string at most ``MAX_QUERY_BYTES``
  (else 414, naming the part that is too long);
* the query string holds at most ``MAX_PARAMS`` parameters, each named parameter at most
  as often and each value at most as long as ``LIMITS`` says (else 400 naming every
  offending parameter, in the one error shape). Names no route reads get ``UNKNOWN``;
* no parameter, in the query string or the path, holds text a database cannot take or
  nothing stored can match (400 naming the parameter, ``source`` ``query`` or ``path``):
  escapes that do not decode as UTF-8 (invalid, overlong, or lone surrogates), NUL, and
  the other C0 control characters but tab, line feed and carriage return. PostgreSQL
  refuses NUL in text, neither engine can encode a lone surrogate, and SQLite's full-text
  syntax took a NUL for the end of the query: each was a 500. A path parameter is named
  by routing the path with the bad segment replaced (``PathNames``); a path no route
  takes is named ``path``.

Parameters are decoded exactly as Litestar decodes them for the handlers (``parse_qsl``
of the Latin-1 text, ``&`` only, blank values kept, UTF-8 escapes), so ``?%71=border``
is ``q=border`` here as there. Litestar turns escapes that are not UTF-8 into U+FFFD; the
gate decodes them with ``surrogateescape`` instead, so that it sees them and refuses them.

The same pass decides the request's ``Cost``: its class and the rate-limit bucket it is
charged to, with a weight in tokens (feedsvc.http.ratelimit; ``classify`` is the one
place that decides it, and the connection-level front asks it too):

    probe     GET/HEAD of /healthz or /readyz: no bucket; never rate-limited, never
              held in line (feedsvc.http.shed), so a busy process still looks alive
    poll      GET/HEAD of a feed at its own address (no query string), static files,
              /metrics and the schema, CORS preflights: 1 token of ``feeds``
    render    any other GET outside the API: a feed with filters or an archive cursor
              (keyed by what the client chose, so usually rendered afresh), the pages,
              the embed views, oEmbed: ``RENDER_WEIGHT`` tokens of ``feeds``
    read      GET of the JSON API: 1 token of ``read``
    search    any GET with a non-empty ``q``: 1 token of ``search`` (a smaller budget)
    subscribe a newsletter sign-up (``POST /api/v1/subscriptions``): 1 token of ``subscribe``
    write     every other method: 1 token of ``write``
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from urllib.parse import parse_qsl, unquote

import msgspec
from litestar.enums import ScopeType

from feedsvc.http.errors import ErrorBody, FieldProblem
from feedsvc.model import MAX_CATEGORIES

if TYPE_CHECKING:
    from litestar import Litestar
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
    # Repeatable and comma-separated; feedsvc.query.Query.from_params counts the slugs.
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
    "state": Limit(16),
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


FEEDS, READ, SEARCH, WRITE, SUBSCRIBE = "feeds", "read", "search", "write", "subscribe"
PROBE = Cost("probe", "", 0)
POLL = Cost("poll", FEEDS, 1)
RENDER = Cost("render", FEEDS, RENDER_WEIGHT)
READ_COST = Cost("read", READ, 1)
SEARCH_COST = Cost("search", SEARCH, 1)
WRITE_COST = Cost("write", WRITE, 1)
SUBSCRIBE_COST = Cost("subscribe", SUBSCRIBE, 1)
SUBSCRIBE_PATH = "/api/v1/subscriptions"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Paths whose answer is the same for every query string (files, health, the schema): a poll
# even with one. Feeds at their own addresses are polls only without a query string.
PROBES = frozenset({"/healthz", "/readyz"})
"""Paths an orchestrator probes: ``PROBE`` for GET and HEAD, whatever the query string."""
_STATIC = re.compile(r"/(?:metrics|feed\.xsl|icon\.svg|embed\.js|media/.*|schema(?:/.*)?)")
_FEED = re.compile(r"/(?:[^/]+/)?(?:feed|digest)\.(?:rss|atom|json)|/categories/[^/]+/feed\.(?:rss|atom|json)")


class Problem(NamedTuple):
    key: str
    message: str
    source: str = "query"


# Text no parameter may hold: C0 controls but tab, LF and CR (NUL among them), and
# surrogates, which after a ``surrogateescape`` decoding mark escapes that are not UTF-8.
_UNFIT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def unfit(text: str) -> bool:
    """Whether ``text`` holds a character no parameter may hold (see the module docstring)."""
    return _UNFIT.search(text) is not None


def printable(name: str) -> str:
    """A parameter name fit to quote in an error (at most 64 characters, unfit ones as U+FFFD)."""
    return _UNFIT.sub("\ufffd", name[:64])


def unfit_message(name: str) -> str:
    return f"`{printable(name)}` must be UTF-8 text without NUL or other control characters"


def params_of(query_string: bytes) -> list[tuple[str, str]]:
    """The decoded parameters, as Litestar decodes them for the handlers."""
    return parse_qsl(query_string.decode("latin-1"), keep_blank_values=True, separator="&")


def _strict_params_of(query_string: bytes) -> list[tuple[str, str]]:
    """The parameters as ``params_of`` decodes them, except that escapes that are not UTF-8
    become surrogates (``unfit``) instead of U+FFFD; the same where Litestar's are valid."""
    return parse_qsl(
        query_string.decode("latin-1"), keep_blank_values=True, separator="&", errors="surrogateescape"
    )


def decoded_path(path: str, raw_path: bytes | None) -> str:
    """The path as routing sees it, but with escapes that are not UTF-8 as surrogates."""
    if not raw_path:
        return path  # already decoded by the server, which leaves nothing to find but controls
    return unquote(raw_path.partition(b"?")[0].decode("latin-1"), errors="surrogateescape")


PathNames = Callable[[str, str], str]
"""Names the path parameter that holds a segment of a path, from the path with that
segment replaced by a marker (``MARKER``) and the method; ``path`` when no route takes it."""
MARKER = "feedsvc-unfit-segment"


def route_names(app: Litestar) -> PathNames:
    """``PathNames`` from ``app``'s own routing: the parameter whose value holds the marker."""
    router = app.asgi_router

    def name(marked: str, method: str) -> str:
        try:
            params = router.handle_routing(path=marked, method="GET" if method == "HEAD" else method)[3]
        except Exception:  # no route takes it (a 404 or 405 anyway): the path as a whole
            return "path"
        return next((key for key, value in params.items() if MARKER in str(value)), "path")

    return name


def path_problem(path: str, raw_path: bytes | None, method: str, names: PathNames | None) -> Problem | None:
    """The problem of a path that holds text no parameter may hold, else None."""
    decoded = decoded_path(path, raw_path)
    if not unfit(decoded):
        return None
    marked = "/".join(MARKER if unfit(part) else part for part in decoded.split("/"))
    name = names(marked, method) if names is not None else "path"
    return Problem(name, unfit_message(name), "path")


def check(
    path: str, raw_path: bytes | None, query_string: bytes, method: str = "GET", names: PathNames | None = None
) -> tuple[int, list[Problem], list[tuple[str, str]]]:
    """The status that refuses a URL (0 when it is acceptable), what is wrong with it, and
    its decoded parameters (empty when refused before decoding). ``names`` names the path
    parameter a bad path segment falls in."""
    # Some clients' ASGI layers (httpx's) put the query string in raw_path too.
    path_bytes = len(raw_path.partition(b"?")[0]) if raw_path else len(path.encode("utf-8", "surrogateescape"))
    if path_bytes > MAX_PATH_BYTES:
        return 414, [Problem("path", f"the path is limited to {MAX_PATH_BYTES} bytes")], []
    if len(query_string) > MAX_QUERY_BYTES:
        return 414, [Problem("query string", f"the query string is limited to {MAX_QUERY_BYTES} bytes")], []
    in_path = path_problem(path, raw_path, method, names)
    if not query_string:
        return (400, [in_path], []) if in_path else (0, [], [])
    # parse_qsl splits on every "&": count them first, so a flood of empty parameters is
    # refused before it is split.
    if query_string.count(b"&") >= MAX_PARAMS:
        return 400, [Problem("query string", f"a query string holds at most {MAX_PARAMS} parameters")], []
    params = _strict_params_of(query_string)
    seen: dict[str, int] = {}
    problems: dict[str, str] = {}
    for name, value in params:
        limit = LIMITS.get(name, UNKNOWN)
        count = seen[name] = seen.get(name, 0) + 1
        if name in problems:
            continue
        shown = printable(name)
        if count > limit.times:
            problems[name] = (
                f"`{shown}` may be given once"
                if limit.times == 1
                else f"`{shown}` may be given at most {limit.times} times"
            )
        elif len(value) > limit.length:
            problems[name] = f"`{shown}` is limited to {limit.length} characters"
        elif unfit(value) or unfit(name):
            problems[name] = unfit_message(name)
    found = [Problem(printable(k), m) for k, m in problems.items()]
    if in_path:
        found.insert(0, in_path)
    if found:
        return 400, found, params
    return 0, [], params


def classify(method: str, path: str, params: list[tuple[str, str]]) -> Cost:
    """The cost of a request with these decoded parameters (see the module docstring)."""
    if method not in SAFE_METHODS:
        return SUBSCRIBE_COST if path == SUBSCRIBE_PATH else WRITE_COST
    if method == "OPTIONS":
        return POLL
    if path in PROBES:
        return PROBE
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
    detail = f"URI too long: {names}" if status == 414 else f"parameters out of bounds: {names}"
    extra = [FieldProblem(message=p.message, key=p.key, source=p.source) for p in problems]
    return _encode(ErrorBody(status_code=status, detail=detail, extra=extra))


def gate(app: ASGIApp, names: PathNames | None = None) -> ASGIApp:
    """Wrap ``app``: refuse URLs beyond the bounds before any work, and leave the request's
    ``Cost`` in its scope for the rate limiter (see the module docstring). A refusal gets
    its CORS headers from ``harden`` around it, as every read does. ``names`` names path
    parameters in refusals (``path`` for all without it)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        status, problems, params = check(
            scope["path"], scope.get("raw_path"), scope.get("query_string", b""), scope["method"], names
        )
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
