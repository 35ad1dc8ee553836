"""Feed polls answered as their bytes arrive, below ASGI (issue 6).

feedsvc.http.fastpath answers a poll of a current cached feed before routing, but every
request still pays for the ASGI machinery around it: uvicorn's request task, scope and
message dicts, and the four middleware layers (request id, host check, rate limit, HEAD)
each awaiting the next. For a 304 that machinery is most of the cost: about 60 µs of the
server's CPU against nginx's 20-30 µs, which held 304 throughput at a quarter of nginx's.

``FrontProtocol`` is uvicorn's httptools protocol with one step added: when a request's
headers are parsed and nothing else is in flight on the connection, it asks ``Front``
whether this is such a poll, and if so writes the whole answer at once, in the same
callback, with no task. ``Front`` does synchronously what the middleware stack does for
these requests, through the same functions: ``CachedFeeds.answer`` (the fast path's own
decision), ``host_allowed``, ``feedsvc.http.cost.classify`` and ``RateLimiter.charge_poll_now``, ``request_id_from``,
``Metrics.record`` and ``log_access``; its headers come in the order the layers add them.
tests/test_front.py compares both ways byte for byte over real connections.

Anything it cannot answer exactly as the app would goes the usual way, untouched: other
methods and paths, HTTP/1.0, requests with a body, an ``Expect`` or credentials, a pipelined
request behind one still being answered (answers keep their order), a connection whose
writes are paused (a client not reading), headers a proxy rewrites the client from
(``X-Forwarded-*``, when uvicorn trusts them), rate limits kept in Redis or exhausted, a
host not allowed, and everything ``CachedFeeds`` declines.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from feedsvc.http.cost import classify
from feedsvc.http.fastpath import header_lines
from feedsvc.http.observe import Metrics, log_access, request_id_from

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from feedsvc.http.fastpath import CachedFeeds
    from feedsvc.http.ratelimit import RateLimiter

_HOST = b"host"
_NOSNIFF = b"x-content-type-options: nosniff\r\nx-request-id: "
# Request headers that send a request the long way: a body, credentials (their own rate
# bucket, token learning), 100-continue.
_DECLINE = frozenset({b"content-length", b"transfer-encoding", b"authorization", b"expect"})
_PROXY = frozenset({b"x-forwarded-for", b"x-forwarded-proto"})
_METHODS = {b"GET": "GET", b"HEAD": "HEAD"}
# A path with nothing to decode or split: no query string (even empty), no %-escape, no
# fragment, printable ASCII only. Anything else is the app's.
_PLAIN_PATH = re.compile(rb"/[^?%#\x00-\x20\x7f-\xff]*")
_BIG = 16 * 1024
"""Bodies from this size are written apart from the head rather than copied into it."""


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
    ) -> None:
        self.feeds = feeds
        self.host_allowed = host_allowed  # feedsvc.http.app's, which imports this module
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
        lines = b"%s%s%s%s\r\n" % (found.lines, header_lines(limits) if limits else b"", self._hardened, request_id.encode("ascii"))
        body = b"" if method == "HEAD" else found.body
        elapsed = perf_counter() - started
        self.metrics.record(found.route, method, found.status, elapsed)
        if self.log_requests:
            log_access(method, path, b"", found.route, found.status, len(body), elapsed, request_id, client)
        return found.status, lines, body

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


class FrontProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools) that lets ``Front`` answer first.

    `feedsvc serve` runs uvicorn with it. It relies on uvicorn's per-connection state
    (``cycle``, ``pipeline``, ``flow``, ``url``, ``headers``, the keep-alive timer), which
    pyproject pins to a tested range of uvicorn versions."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._front = find_front(self.app)
        self._proxied = bool(config.proxy_headers)
        self._answered = False

    def on_message_begin(self) -> None:
        # uvicorn builds the request's ASGI scope here; one the front answers never needs it,
        # so it is built when the request goes to the app (``_to_app``).
        self.url = b""
        self.headers = []
        self.expect_100_continue = False

    def on_headers_complete(self) -> None:
        cycle = self.cycle
        if (
            self._front is not None
            and (cycle is None or cycle.response_complete)
            and not self.pipeline
            and not self.flow.write_paused
            and self._answer(self._front)
        ):
            self._answered = True
            return
        self._to_app()
        super().on_headers_complete()

    def _to_app(self) -> None:
        """uvicorn's own start of a request, keeping what the parser has read since."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers

    def _answer(self, front: Front) -> bool:
        """Write the front's answer to the request just parsed; False if it has none."""
        parser = self.parser
        method = parser.get_method()
        if (
            method not in _METHODS
            or not _PLAIN_PATH.fullmatch(self.url)
            or parser.get_http_version() != "1.1"
            or parser.should_upgrade()
        ):
            return False
        headers = self.headers
        for name, _ in headers:
            if name in _DECLINE or (self._proxied and name in _PROXY):
                return False
        answer = front.respond(_METHODS[method], self.root_path + self.url.decode("ascii"), headers, self.client)
        if answer is None:
            return False
        status, lines, body = answer
        keep_alive = parser.should_keep_alive()
        head = b"%s%s%s%s" % (
            STATUS_LINE[status], front.server_lines(self.server_state.default_headers), lines,
            b"\r\n" if keep_alive else b"connection: close\r\n\r\n",
        )
        transport = self.transport
        if len(body) >= _BIG:
            transport.writelines((head, body))  # one writev under uvloop, the body not copied
        else:
            transport.write(head + body)
        self.server_state.total_requests += 1
        if not keep_alive:
            transport.close()
        else:
            # What uvicorn does after each answer: the connection may idle this long.
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)
        return True

    def on_body(self, body: bytes) -> None:
        if not self._answered:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._answered:
            self._answered = False
            return
        super().on_message_complete()
