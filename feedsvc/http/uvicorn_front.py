"""Everything feedsvc relies on inside uvicorn, in one place: ``FrontProtocol``.

``FrontProtocol`` is uvicorn's HTTP/1.1 protocol (httptools) with two steps added. First,
the client limits and RFC 9112's refusals of feedsvc.http.wire: the bytes of a request head
are counted as they arrive, before httptools buffers them; timers bound the head, the body
and idle keep-alive; past the connection limit, requests are answered 503 here. Then, when a
request's headers are parsed and nothing else is in flight on the connection, it asks
``Front`` (feedsvc.http.front) whether this is a poll it answers, and if so writes the whole
answer at once, in the same callback, with no task. Anything else goes on to uvicorn's own
code as if the steps were not there.

That needs uvicorn's per-connection state, which is not its public API. This module is the
only one that touches it, and ``SUPPORTED_UVICORN``, ``METHODS`` and ``ATTRIBUTES`` below
name all of it; tests/test_uvicorn_front.py fails when the installed uvicorn is outside the
range or lacks any of it, and pyproject.toml pins uvicorn to the same range. To support a
new uvicorn: read its ``uvicorn/protocols/http/httptools_impl.py`` against the names below,
run tests/test_front.py and tests/test_uvicorn_front.py on it, then widen the range (here
and in pyproject.toml).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from feedsvc.http.cost import PROBES
from feedsvc.http.front import HEALTH, Front, find_front
from feedsvc.http.shed import GONE
from feedsvc.http.wire import ClientLimits, HeadScanner, Refusal, answer, refusal

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

SUPPORTED_UVICORN = ((0, 30), (0, 60))
"""uvicorn versions ``FrontProtocol`` is known to work with: from the first (inclusive) to
the second (exclusive), as in pyproject.toml's ``uvicorn[standard]>=0.30,<0.60``."""

METHODS: dict[str, tuple[str, ...]] = {
    # uvicorn's, overridden here: called by uvicorn and by httptools' parser.
    "__init__": ("self", "config", "server_state", "app_state", "_loop"),
    "connection_made": ("self", "transport"),
    "connection_lost": ("self", "exc"),
    "data_received": ("self", "data"),
    "on_message_begin": ("self",),
    "on_headers_complete": ("self",),
    "on_body": ("self", "body"),
    "on_message_complete": ("self",),
    # uvicorn's, called here after an answer, as uvicorn does after each of its own.
    "send_400_response": ("self", "msg"),
    "_unset_keepalive_if_required": ("self",),
    "timeout_keep_alive_handler": ("self",),
}
"""``HttpToolsProtocol`` methods ``FrontProtocol`` overrides or calls, with their parameters."""

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    # The protocol's own state, per connection and per request.
    "protocol": (
        "app", "loop", "parser", "root_path", "client", "transport", "flow", "pipeline", "cycle",
        "server_state", "timeout_keep_alive", "timeout_keep_alive_task", "url", "headers",
        "expect_100_continue", "scope", "connections", "tasks",
    ),
    "flow": ("write_paused",),  # FlowControl: the client is not reading
    # RequestResponseCycle: the request in flight is answered; or cut (a body timed out).
    "cycle": ("response_complete", "response_started", "disconnected", "message_event"),
    "server_state": ("default_headers", "total_requests"),  # ServerState: date/server headers, counter
    "config": ("proxy_headers",),  # Config: X-Forwarded-* trusted
    "parser": ("get_method", "get_http_version", "should_upgrade", "should_keep_alive"),  # httptools
}
"""Attributes ``FrontProtocol`` reads or writes, by the object they are on; plus the module
constant ``STATUS_LINE`` (status -> ``HTTP/1.1 200 OK\\r\\n``)."""

# Request headers that send a request the long way: a body, credentials (their own rate
# bucket, token learning), 100-continue.
_DECLINE = frozenset({b"content-length", b"transfer-encoding", b"authorization", b"expect"})
_PROXY = frozenset({b"x-forwarded-for", b"x-forwarded-proto"})
_METHODS = {b"GET": "GET", b"HEAD": "HEAD"}
_PROBES = frozenset(path.encode() for path in PROBES)
# A path with nothing to decode or split: no query string (even empty), no %-escape, no
# fragment, printable ASCII only. Anything else is the app's.
_PLAIN_PATH = re.compile(rb"/[^?%#\x00-\x20\x7f-\xff]*")
_BIG = 16 * 1024
"""Bodies from this size are written apart from the head rather than copied into it."""
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})
CROWD = 1000
"""A crowd of connections: each time this many more are open, what they hold is moved out
of the cyclic collector's sight (``gc.freeze``); once three quarters of the most held have
closed, it is collected and the memory given back to the system (``release_free_memory``)."""
LINGER = 2.0
"""Seconds a refused connection is kept to discard what the client still sends."""
# Where the connection is in the request it is reading.
_IDLE, _HEAD, _BODY = 0, 1, 2
_HEAD_TIMEOUT = Refusal(408, "the request's headers did not arrive in time", "request")
_BODY_TIMEOUT = Refusal(408, "the request's body did not arrive in time", "request")
_TOO_MANY = Refusal(503, "the server holds as many connections as it may; retry shortly", "connection")


def _idle(connection: object) -> bool:
    """Whether a connection of this server waits for a request with nothing of it read."""
    return (
        isinstance(connection, FrontProtocol)
        and connection._phase == _IDLE
        and not connection._refused
        and not connection._scanner.begun
        and (connection.cycle is None or connection.cycle.response_complete)
        and not connection.pipeline
    )


def release_free_memory() -> None:
    """Collect what a crowd of connections left, frozen or not, then return the C allocator's
    free pages to the system (glibc's ``malloc_trim``; nothing elsewhere)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()  # the app's own objects, as at start-up
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


class FrontProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools) that lets ``Front`` answer first.

    `feedsvc serve` runs uvicorn with it. What it relies on inside uvicorn is listed in
    ``METHODS`` and ``ATTRIBUTES``."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._front = find_front(self.app)
        self._limits = self._front.limits if self._front is not None else ClientLimits()
        self.timeout_keep_alive = self._limits.keep_alive_timeout  # type: ignore[assignment]  # call_later takes a float
        self._proxied = bool(config.proxy_headers)
        self._answered = False
        self._scanner = HeadScanner(self._limits)
        self._phase = _IDLE
        self._begun = 0  # requests begun on this connection
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._excess = False  # connected while the process held its limit of connections
        self._gone: asyncio.Future[None] | None = None  # made when a request waits on it (``gone``)
        self._refused = False  # answered here and closing: the parser's further callbacks are void

    # --- client limits (feedsvc.http.wire) ------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        front = self._front
        if front is not None and len(self.connections) > front.crowd:
            front.crowd = len(self.connections)
            if front.crowd >= front.frozen + CROWD:
                # Thousands of connections are thirty tracked objects each (parser, flow
                # control, timers, bound methods): a full collection over 10,000 of them
                # took 120 ms of CPU, every few seconds, stalling every answer. They live as
                # long as their clients: out of its sight until the crowd leaves.
                gc.freeze()
                front.frozen = front.crowd
        if len(self.connections) > self._limits.max_connections:
            # At the limit, as nginx does, an idle connection (silent since it connected, or
            # kept alive after an answer) makes room; without one, this one is the excess.
            idle = next((c for c in self.connections if c is not self and _idle(c)), None)
            if isinstance(idle, FrontProtocol):
                idle._make_room()
            else:
                self._excess = True
        self._head_timer = self.loop.call_later(self._limits.header_timeout, self._head_timed_out)

    def _make_room(self) -> None:
        self._refused = True
        self._stop_timers()
        self._unset_keepalive_if_required()
        self._count(503)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timers()
        super().connection_lost(exc)
        # uvicorn leaves the keep-alive timer running when the connection was reset; it would
        # hold the connection's memory until it fires (up to a Retry-After later).
        self._unset_keepalive_if_required()
        # And the references back to the protocol (the request cycle's callback, the scope's
        # ``gone``): without them a closed connection is freed as soon as its request ends,
        # frozen or not, with no collection.
        self.cycle = None  # type: ignore[assignment]
        self.scope = None  # type: ignore[assignment]
        front = self._front
        if front is not None and front.crowd >= CROWD and len(self.connections) <= front.crowd // 4:
            # A crowd has gone: what its connections held is free, but the C allocator keeps
            # the pages until asked (resident memory stayed at twice its level before
            # 10,000 connections).
            front.crowd = front.frozen = len(self.connections)
            self.loop.call_later(1.0, release_free_memory)
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)

    def gone(self) -> asyncio.Future[None]:
        """A future done once the client has gone (feedsvc.http.shed drops its work then)."""
        if self._gone is None:
            self._gone = self.loop.create_future()
            if self.transport.is_closing():
                self._gone.set_result(None)
        return self._gone

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._phase != _BODY and not self._scanner.done:
            found = self._scanner.feed(data)
            if found is not None:
                self._refuse(found)
                return
        begun, was = self._begun, self._phase
        super().data_received(data)
        # A head left incomplete by this read (or stray bytes before one) has a deadline
        # from now; a head that arrived whole, as most do, never needed a timer.
        if self._head_timer is None and not self._refused and (
            self._phase == _HEAD or (was == self._phase == _IDLE and self._begun == begun)
        ):
            self._head_timer = self.loop.call_later(self._limits.header_timeout, self._head_timed_out)

    def _stop_timers(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        cycle = self.cycle
        if self._refused or self.transport.is_closing():
            return
        if cycle is not None and not cycle.response_complete:
            # An answer is being written; a request pipelined behind it waits its turn.
            self._head_timer = self.loop.call_later(self._limits.header_timeout, self._head_timed_out)
            return
        if self._phase == _HEAD:
            self._refuse(_HEAD_TIMEOUT)
        else:  # nothing (or only blank lines) since connecting or since the last answer
            self._refused = True
            self._count(408)
            self.transport.close()

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self._phase != _BODY or self._refused or self.transport.is_closing():
            return
        cycle = self.cycle
        started = cycle is not None and cycle.response_started
        if cycle is not None:
            # As uvicorn does when a client goes: the app reads a disconnect, its writes go nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        self._refuse(_BODY_TIMEOUT, write=not started)

    def _refuse(self, found: Refusal, *, write: bool = True, retry_after: int | None = None) -> None:
        """Answer ``found`` (unless an answer is already under way) and close."""
        self._refused = True
        self._stop_timers()
        self._count(found.status)
        cycle = self.cycle
        transport = self.transport
        if not write or not (cycle is None or cycle.response_complete or cycle.disconnected):
            transport.close()
            return
        server = self._front.server_lines(self.server_state.default_headers) if self._front is not None else b""
        transport.write(answer(found, server, retry_after))
        # A lingering close, as nginx's: closing with the client's bytes still unread would
        # send a reset, and the client could lose the answer while it is still sending (a
        # 256 KiB header). So: no more writes, discard what still arrives (data_received),
        # and close when the client does, or after LINGER seconds.
        if transport.can_write_eof():
            transport.write_eof()
            self._head_timer = self.loop.call_later(LINGER, transport.close)
        else:
            transport.close()

    def send_400_response(self, msg: str) -> None:
        """httptools refused the bytes (uvicorn has logged it): the one error shape, and close."""
        self._refuse(Refusal(400, "the request is not valid HTTP/1.1", "request"))

    def _count(self, status: int) -> None:
        if self._front is not None:
            self._front.refused(status)

    # --- requests ---------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        # uvicorn builds the request's ASGI scope here; one the front answers never needs it,
        # so it is built when the request goes to the app (``_to_app``).
        self._phase = _HEAD
        self._begun += 1
        self.url = b""
        self.headers = []
        self.expect_100_continue = False

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._phase = _BODY
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        found = refusal(self.parser.get_http_version(), self.headers)
        # A probe is answered whatever the load: an orchestrator must not restart a busy process.
        probe = self.parser.get_method() in _METHODS and self.url.partition(b"?")[0] in _PROBES
        if found is None and self._excess and len(self.connections) > self._limits.max_connections and not probe:
            self._refuse(_TOO_MANY, retry_after=1)
            return
        if found is not None:
            self._refuse(found)
            return
        cycle = self.cycle
        body = any(name in _FRAMING for name, _ in self.headers)
        if (
            self._front is not None
            and (cycle is None or cycle.response_complete)
            and not self.pipeline
            and not self.flow.write_paused
            and (self._answer(self._front) or (not probe and not body and self._shed(self._front)))
        ):
            self._answered = True
            return
        if body:  # a body follows: it has a deadline
            self._body_timer = self.loop.call_later(self._limits.body_timeout, self._body_timed_out)
        self._to_app()
        super().on_headers_complete()

    def _to_app(self) -> None:
        """uvicorn's own start of a request, keeping what the parser has read since."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers
        self.scope[GONE] = self.gone  # type: ignore[literal-required]  # feedsvc.http.shed's own key

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
        path = self.root_path + self.url.decode("ascii")
        if path == HEALTH:  # the liveness probe, answered as its bytes arrive, ahead of any queue
            answer = front.health(_METHODS[method], headers, self.client)
        else:
            answer = front.respond(_METHODS[method], path, headers, self.client)
        if answer is None:
            return False
        self._write(front, *answer)
        return True

    def _shed(self, front: Front) -> bool:
        """Answer 503 at once, without a task, when the app holds as much work as it may
        (feedsvc.http.shed); False to hand the request on."""
        if front.shed is None or not front.shed.full(len(self.tasks)):
            return False
        path, _, query = self.url.partition(b"?")
        method = self.parser.get_method().decode("latin-1")
        path_text = self.root_path + unquote(path.decode("latin-1"))
        retry_after = front.shed.retry_after(len(self.connections))
        answer = front.shed_answer(method, path_text, query, self.headers, self.client, retry_after)
        # The connection is kept while its client waits as told, and the usual time after.
        self._write(front, *answer, idle=retry_after + self.timeout_keep_alive)
        return True

    def _write(self, front: Front, status: int, lines: bytes, body: bytes, *, idle: float | None = None) -> None:
        """Write a whole answer the front made, then keep the connection alive (``idle``
        seconds, by default the keep-alive timeout) or close it."""
        parser = self.parser
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
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive if idle is None else idle, self.timeout_keep_alive_handler
            )

    def on_body(self, body: bytes) -> None:
        if not self._answered and not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        self._scanner.restart()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if self._refused:
            return
        if self._answered:
            self._answered = False
            return
        super().on_message_complete()
