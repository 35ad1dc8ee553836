"""The front: feed polls answered as their bytes arrive, below ASGI (issue 6).

What it answers: a ``GET`` or ``HEAD`` over HTTP/1.1 of a canonical feed's path (``/feed.rss``,
``/categories/{slug}/feed.atom``, ``/{lang}/feed.json``, ... exactly, no query string) whose
document is cached and current, alone on its connection, from a client the rate limiter
lets through at once. The answer is the app's own, byte for byte: a 200 with the document in
the best coding the client accepts, or a 304; the headers the middleware layers would add,
in their order (rate-limit headers, CORS headers, ``nosniff``, ``x-request-id``); counted in the metrics
and the access log as the app would count it. tests/test_front.py compares both ways over
real connections.

What it hands to the app, untouched: everything else. Other methods and paths, a query
string or %-escape, HTTP/1.0, an upgrade, a request with a body, ``Expect`` or
``Authorization``, ``X-Forwarded-*`` when uvicorn trusts proxies, a request pipelined behind
one still being answered, a connection whose writes are paused, a host not allowed, a rate
limit kept in Redis or exhausted, and what ``CachedFeeds`` declines (a document not yet
served or no longer current, ``Origin``, ``Sec-Fetch-Dest``, a header sent twice).

What it may touch: ``Front.respond`` is a pure decision over (method, path, headers,
client) made through the functions the middleware stack itself uses for these requests:
``CachedFeeds.answer`` (feedsvc.http.fastpath, the decision the ASGI fast path makes),
``host_allowed``, ``feedsvc.http.cost.classify``, ``RateLimiter.charge_poll_now``,
``request_id_from``, ``Metrics.record``
and ``log_access``. It awaits nothing, reads no store and knows nothing of uvicorn.

Why below ASGI: for a 304 the ASGI machinery (uvicorn's request task, scope and message
dicts, four middleware layers each awaiting the next) is most of the cost, about 60 µs of
the server's CPU against nginx's 20-30 µs. Answering in the protocol's callback, with no
task, closes that gap. The coupling to uvicorn's internals that this needs is all in
feedsvc.http.uvicorn_front (``FrontProtocol``, which `feedsvc serve` runs), checked by
tests/test_uvicorn_front.py against the installed uvicorn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

from feedsvc.http.cost import classify
from feedsvc.http.fastpath import header_lines
from feedsvc.http.observe import UNMATCHED, Metrics, log_access, request_id_from
from feedsvc.http.shed import Shed, answer_503
from feedsvc.http.wire import ClientLimits

if TYPE_CHECKING:
    from feedsvc.http.fastpath import CachedFeeds
    from feedsvc.http.ratelimit import RateLimiter

_HOST = b"host"
HEALTH = "/healthz"
_HEALTH_BODY = b'{"status":"ok"}'
_HEALTH_LINES = b"content-type: application/json\r\ncontent-length: %d\r\n" % len(_HEALTH_BODY)
_NOSNIFF = b"x-content-type-options: nosniff\r\nx-request-id: "


class Front:
    """The middleware stack's work for a poll of a current cached feed, done at once."""

    def __init__(
        self,
        feeds: CachedFeeds,
        limiter: RateLimiter,
        metrics: Metrics,
        *,
        allowed_hosts: tuple[str, ...],
        host_allowed: Callable[[str | None, tuple[str, ...]], bool],
        log_requests: bool,
        cors_headers: Sequence[tuple[bytes, bytes]] = (),
        limits: ClientLimits | None = None,
        shed: Shed | None = None,
    ) -> None:
        self.limits = limits if limits is not None else ClientLimits()
        """What the protocol holds each client to (feedsvc.http.wire)."""
        self.shed = shed
        """The app's in-flight bound, which the protocol asks before handing a request on."""
        self._shed_lines: dict[int, bytes] = {}  # a 503's own header lines, by Retry-After
        self.crowd = 0
        """The most connections the protocol has held since memory was last released."""
        self.frozen = 0
        """Connections held when their objects were last frozen (feedsvc.http.uvicorn_front)."""
        self.feeds = feeds
        self.host_allowed = host_allowed  # feedsvc.http.middleware's
        self.limiter = limiter
        self.metrics = metrics
        self.allowed_hosts = allowed_hosts
        self.log_requests = log_requests
        # harden's CORS headers and nosniff, after the answer's own and the rate limiter's.
        self._hardened = header_lines(list(cors_headers)) + _NOSNIFF
        self._server_headers: list[tuple[bytes, bytes]] | None = None
        self._server_lines = b""

    def respond(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], client: tuple[str, int] | None
    ) -> tuple[int, bytes, bytes] | None:
        """Status, header lines (wire bytes, after the server's own) and body (none for HEAD)
        of the answer to ``method`` (GET or HEAD) of ``path`` (no query string), or None to
        let the app answer."""
        started = perf_counter()
        if self.allowed_hosts:
            host = next((v.decode("latin-1") for k, v in headers if k == _HOST), None)
            if not self.host_allowed(host, self.allowed_hosts):
                return None
        found = self.feeds.answer(path, headers)
        if found is None:
            return None
        # The class every layer agrees on (feedsvc.http.cost): a poll, unless that changes.
        limits = self.limiter.charge_poll_now(classify(method, path, []), client)
        if limits is None:
            return None
        self.feeds.hit()
        request_id = request_id_from(headers)
        # In the order the middleware layers add them: the answer's, the rate limiter's,
        # harden's CORS and nosniff, observe's request id.
        lines = b"%s%s%s%s\r\n" % (
            found.lines,
            header_lines(limits) if limits else b"",
            self._hardened,
            request_id.encode("ascii"),
        )
        body = b"" if method == "HEAD" else found.body
        elapsed = perf_counter() - started
        self.metrics.record(found.route, method, found.status, elapsed)
        if self.log_requests:
            log_access(method, path, b"", found.route, found.status, len(body), elapsed, request_id, client)
        return found.status, lines, body

    def health(
        self, method: str, headers: list[tuple[bytes, bytes]], client: tuple[str, int] | None
    ) -> tuple[int, bytes, bytes] | None:
        """The app's answer to ``GET /healthz`` (feedsvc.http.routes.ops), with what the
        middleware adds, counted and logged as the app would; None for a host not allowed
        (the app refuses it). Never rate-limited or held in line (feedsvc.http.shed)."""
        started = perf_counter()
        if self.allowed_hosts:
            host = next((v.decode("latin-1") for k, v in headers if k == _HOST), None)
            if not self.host_allowed(host, self.allowed_hosts):
                return None
        request_id = request_id_from(headers)
        lines = b"%s%s%s\r\n" % (_HEALTH_LINES, self._hardened, request_id.encode("ascii"))
        body = b"" if method == "HEAD" else _HEALTH_BODY
        elapsed = perf_counter() - started
        self.metrics.record(HEALTH, method, 200, elapsed)
        if self.log_requests:
            log_access(method, HEALTH, b"", HEALTH, 200, len(body), elapsed, request_id, client)
        return 200, lines, body

    def shed_answer(
        self, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]],
        client: tuple[str, int] | None, retry_after: int,
    ) -> tuple[int, bytes, bytes]:
        """The 503 ``Shed`` answers when the app holds as much work as it may, with what the
        middleware layers add to it (CORS, ``nosniff``, the request id), counted and logged
        as they would (route ``unmatched``: the app never saw it)."""
        started = perf_counter()
        shed = self.shed
        assert shed is not None
        shed.shed += 1
        lines = self._shed_lines.get(retry_after)
        if lines is None:
            lines = self._shed_lines[retry_after] = header_lines(answer_503(retry_after)[0])
        request_id = request_id_from(headers)
        lines = b"%s%s%s\r\n" % (lines, self._hardened, request_id.encode("ascii"))
        body = b"" if method == "HEAD" else answer_503(retry_after)[1]
        elapsed = perf_counter() - started
        self.metrics.record(UNMATCHED, method, 503, elapsed)
        if self.log_requests:
            log_access(method, path, query, UNMATCHED, 503, len(body), elapsed, request_id, client)
        return 503, lines, body

    def refused(self, status: int) -> None:
        """Count a request the protocol refused (or a connection it cut) with ``status``."""
        self.metrics.refused.labels(str(status)).inc()

    def server_lines(self, default_headers: list[tuple[bytes, bytes]]) -> bytes:
        """uvicorn's own headers (``date``, ``server``) as wire bytes. uvicorn replaces the
        list when the second changes, so one join a second serves every connection."""
        if default_headers is not self._server_headers:
            self._server_lines = header_lines(default_headers)
            self._server_headers = default_headers
        return self._server_lines


def find_front(app: Any) -> Front | None:
    """The ``Front`` of the feedsvc app inside uvicorn's wrappers, if it has one."""
    for _ in range(8):  # uvicorn adds at most a few layers (proxy headers, message logger)
        state = getattr(app, "state", None)
        if state is not None and hasattr(state, "get"):
            front = state.get("front")
            return front if isinstance(front, Front) else None
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None
