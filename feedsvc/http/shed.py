"""Shedding, not collapse: bounded work in flight per process, and none for clients gone.

A server that starts every request it reads collapses under more than it can serve: each
request waits behind all the others, the answers come after the clients gave up, and the
work nobody waits for any more goes on after they left. ``Shed`` bounds it instead:

* at most ``max_in_flight`` requests run in the app at once; up to ``max_queued`` more wait
  for a place, in order of arrival. Past that, a request is answered ``503`` with
  ``Retry-After`` at once, without doing its work: in the protocol of `feedsvc serve`,
  before a task is made for it (``full``, asked by feedsvc.http.uvicorn_front), and here,
  in ASGI, for any other server;
* a request whose client has gone while it waited for a place is dropped, never started;
  a read (``GET``, ``HEAD``, ``OPTIONS``) whose client goes while it runs is cancelled. A
  write is never cancelled once started: it runs whole (its ``COMMIT`` included) or, still
  waiting, not at all. A client is gone when its connection closes: the protocol of
  `feedsvc serve` says so through the scope (``GONE``); other servers do not, and there
  nothing is dropped;
* probes (``/healthz`` and ``/readyz``) are never held or refused here, nor rate-limited
  (feedsvc.http.cost's ``PROBE``): an orchestrator must see a loaded process as alive, not
  restart it for being busy;
* what is cheap never gets here: polls of cached feeds are answered before it (the front,
  the fast path), as are requests refused by the gate, the host check or a rate limit.

A dropped request is logged and counted with status ``499`` (nginx's "client closed
request"); it is never sent.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from typing import TYPE_CHECKING, Any, cast

import msgspec
from litestar.enums import ScopeType

from feedsvc.config import Settings
from feedsvc.http.cost import PROBE, SAFE_METHODS, cost_of
from feedsvc.http.errors import ErrorBody

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar.types import ASGIApp, Receive, Scope, Send

GONE = "feedsvc.gone"
"""Scope key of a callable that returns a future done when the request's client is gone."""
STATUS = "feedsvc.status"
"""Scope key of the status to log for a request that was never answered (``CLOSED``)."""
CLOSED = 499
MAX_RETRY_AFTER = 60
"""The longest ``Retry-After`` a shed request is given, in seconds."""
RATE_WINDOW = 1.0
"""Seconds over which the rate of finished requests is measured for ``Retry-After``."""


def answer_503(retry_after: int) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body of a 503 of the shedder telling the client to retry in
    ``retry_after`` seconds."""
    found = _ANSWERS.get(retry_after)
    if found is None:
        body = msgspec.json.encode(
            ErrorBody(
                status_code=503, detail=f"the server is busy; retry in {retry_after} s",
                extra={"retry_after": retry_after},
            )
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"retry-after", str(retry_after).encode()),
        ]
        found = _ANSWERS[retry_after] = (headers, body)
    return found


_ANSWERS: dict[int, tuple[list[tuple[bytes, bytes]], bytes]] = {}


class Shed:
    """The in-flight bound of one server process; ``wrap`` puts it around an ASGI app."""

    def __init__(self, max_in_flight: int, max_queued: int, *, max_retry_after: int = MAX_RETRY_AFTER) -> None:
        self.max_in_flight = max_in_flight
        self.max_queued = max_queued
        self.max_retry_after = max_retry_after
        self.in_flight = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self.shed = 0
        """Requests answered 503 here or by the protocol."""
        self.dropped = 0
        """Requests dropped or cancelled because their client had gone."""
        self.finished = 0
        """Requests that had a place and gave it up."""
        self._rate = 0.0  # finished requests per second, over the last RATE_WINDOW or so
        self._window = (0.0, 0)  # (when, finished) at the start of the window

    @classmethod
    def from_settings(cls, settings: Settings) -> Shed:
        return cls(settings.max_in_flight, settings.max_queued)

    @property
    def queued(self) -> int:
        return len(self._waiting)

    def full(self, started: int = 0) -> bool:
        """Whether a request arriving now would be shed: every place taken and the line
        full, or ``started`` (the server's count of requests handed to the app and not yet
        finished; a burst read in one go is handed on before any of it reaches the line)
        as many as the places and the line together."""
        return started >= self.max_in_flight + self.max_queued or (
            self.in_flight >= self.max_in_flight and len(self._waiting) >= self.max_queued
        )

    def retry_after(self, connections: int = 0) -> int:
        """Seconds a request shed now is told to wait: as long as it takes to serve one
        request per connection at the rate requests finish (every client polite, each
        gets its turn, and the excess stops arriving), spread so that a crowd shed at once
        comes back spread out; from 1 to ``max_retry_after``."""
        self._measure(time.monotonic())
        if self._rate < 1:  # nothing measured yet, or nothing finishes: no basis for more
            return 1
        waiting = max(connections, self.in_flight + len(self._waiting))
        turn = math.ceil(waiting / self._rate)
        # Spread around it (half to one and a half times): clients shed together should not
        # come back together, and on average they come back as fast as they can be served.
        return max(1, min(self.max_retry_after, random.randint((turn + 1) // 2, turn + turn // 2)))

    def _measure(self, now: float) -> None:
        since, count = self._window
        if now - since >= RATE_WINDOW:
            rate = (self.finished - count) / (now - since)
            # Smoothed over two windows; after a quiet spell, the last window alone.
            self._rate = rate if now - since > 2 * RATE_WINDOW else (self._rate + rate) / 2
            self._window = (now, self.finished)

    async def _enter(self, gone: asyncio.Future[None] | None) -> bool | None:
        """Take a place, waiting in line for one. True: taken; False: the queue is full (shed
        it); None: the client went while it waited (drop it)."""
        if self.in_flight < self.max_in_flight and not self._waiting:
            self.in_flight += 1
            return True
        if len(self._waiting) >= self.max_queued:
            return False
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            if gone is None:
                await turn
            else:
                await asyncio.wait((turn, gone), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            self._abandon(turn)
            raise
        if not turn.done():  # the client went first
            self._abandon(turn)
            return None
        return True  # ``_leave`` handed its place over: in_flight already counts this one

    def _abandon(self, turn: asyncio.Future[None]) -> None:
        if turn.done() and not turn.cancelled():
            self._leave()  # a place was handed over just as the wait ended: pass it on
        else:
            turn.cancel()
            try:
                self._waiting.remove(turn)
            except ValueError:
                pass

    def _leave(self) -> None:
        """Give the place up: to the first request still waiting, else free it."""
        self.finished += 1
        self._measure(time.monotonic())
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.in_flight -= 1

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or cost_of(scope) == PROBE:
                await app(scope, receive, send)
                return
            found = cast(dict[str, Any], scope).get(GONE)
            gone: asyncio.Future[None] | None = cast("Callable[[], asyncio.Future[None]]", found)() if found else None
            if gone is not None and gone.done():
                self._drop(scope)
                return
            entered = await self._enter(gone)
            if entered is None:
                self._drop(scope)
                return
            if not entered:
                self.shed += 1
                headers, body = answer_503(self.retry_after())
                await send({"type": "http.response.start", "status": 503, "headers": headers})
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            try:
                if gone is None or scope["method"] not in SAFE_METHODS:
                    await app(scope, receive, send)
                else:
                    await self._cancel_if_gone(app, scope, receive, send, gone)
            finally:
                self._leave()

        return middleware

    async def _cancel_if_gone(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, gone: asyncio.Future[None]
    ) -> None:
        """Run a read, cancelled if its client goes meanwhile: nothing it does is kept."""
        task = asyncio.current_task()
        assert task is not None

        def cancel(_: object) -> None:
            task.cancel(GONE)

        gone.add_done_callback(cancel)
        try:
            await app(scope, receive, send)
        except asyncio.CancelledError:
            if not gone.done() or task.uncancel() > 0:
                raise  # not (only) ours: the server is stopping
            self._drop(scope)
        finally:
            gone.remove_done_callback(cancel)

    def _drop(self, scope: Scope) -> None:
        self.dropped += 1
        cast(dict[str, Any], scope)[STATUS] = CLOSED
