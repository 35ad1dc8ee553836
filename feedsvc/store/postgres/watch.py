"""Knowing that nothing changed on PostgreSQL without asking it (issue 6; the contract is
feedsvc.store.sql.base.Watch).

``LISTEN`` on a connection of its own, and every write transaction sends a
``NOTIFY`` that is delivered when it commits (feedsvc.store.postgres). The token is the
number of notifications received; while the listener is not connected there is no
token, and the state is read every time, as before.

The store's own writes move the token when they end, before they are acknowledged
(``changed``), and their notifications carry the watch's ``origin`` so that their echo
does not move it a second time. Counted twice, a commit's echo arriving after the state
was read again (a moment later, or much later on a loaded machine) made the node forget
a state that was current and read it once more: never wrong, but a poll answered the
slow way at random after every write of its own.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from feedsvc.store.records import StoreState

log = logging.getLogger("feedsvc.store")


class _Known:
    """A state and the token it was read under."""

    __slots__ = ("state", "token")

    def __init__(self, token: int, state: StoreState) -> None:
        self.token = token
        self.state = state


class PostgresWatch:
    """Notifications of commits on one change log, through a LISTEN connection per event
    loop (asyncpg connections belong to the loop that made them)."""

    RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
    PING_SECONDS = 2.0
    """How often the listener proves its connection alive. A connection that died without
    a word (a network partition) cannot deliver notifications: its token is trusted only
    for ``TRUST_SECONDS`` after the last answered ping."""
    TRUST_SECONDS = 5.0

    def __init__(self, connect: Callable[[], Awaitable[Any]], channel_sql: str) -> None:
        """``connect`` makes a new asyncpg connection with the store's settings;
        ``channel_sql`` selects the channel name (one per change log)."""
        self._connect = connect
        self._channel_sql = channel_sql
        self.origin = secrets.token_hex(8)
        """The payload of this store's own notifications (see the module docstring): one
        per watch, so that another store on the same database, in this process or any
        other, is never taken for this one."""
        self._loops: dict[asyncio.AbstractEventLoop, _Listener] = {}
        self._closed = False

    def _listener(self) -> _Listener | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        listener = self._loops.get(loop)
        if listener is None and not self._closed:
            for gone in [other for other in self._loops if other.is_closed()]:
                del self._loops[gone]
            listener = self._loops[loop] = _Listener(self)
        return listener

    def token(self) -> int | None:
        listener = self._listener()
        return listener.token() if listener is not None else None

    def remember(self, token: int | None, state: StoreState) -> None:
        listener = self._listener()
        if token is not None and listener is not None:
            listener.known = _Known(token, state)

    def known(self) -> StoreState | None:
        listener = self._listener()
        if listener is None:
            return None
        known = listener.known
        if known is None or listener.token() != known.token:
            return None
        return known.state

    def changed(self) -> None:
        """This store ended a write transaction (committed or not): forget every remembered
        state at once, without waiting for the notification to come back. Called for every
        transaction that sends ``origin``, after its commit and before it is acknowledged:
        that is what makes ignoring their notifications safe."""
        for listener in list(self._loops.values()):
            listener.bump()

    async def close(self) -> None:
        self._closed = True
        loops, self._loops = self._loops, {}
        current = asyncio.get_running_loop()
        for loop, listener in loops.items():
            if loop is current:
                await listener.close()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(listener.terminate)


class _Listener:
    """One LISTEN connection; connected in the background on first use, again after a loss."""

    def __init__(self, watch: PostgresWatch) -> None:
        self.watch = watch
        self.count = 0
        """Notifications received, plus one per (dis)connection: the token."""
        self.up = False
        self.known: _Known | None = None
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._alive_at = 0.0
        self._failures = 0
        self._next_try = 0.0

    def token(self) -> int | None:
        if self.up:
            # A ping overdue: distrust the connection until the pinger has decided.
            return self.count if time.monotonic() - self._alive_at < PostgresWatch.TRUST_SECONDS else None
        now = time.monotonic()
        if self._task is None and now >= self._next_try and not self.watch._closed:
            self._task = asyncio.get_running_loop().create_task(self._start())
        return None

    def bump(self) -> None:
        self.count += 1

    async def _start(self) -> None:
        conn: Any = None
        try:
            conn = await self.watch._connect()
            channel = await conn.fetchval(self.watch._channel_sql)
            await conn.add_listener(channel, self._notified)
            conn.add_termination_listener(self._lost)
        except Exception as e:  # noqa: BLE001 - any failure: read the state every time, retry later
            delay = PostgresWatch.RETRY_SECONDS[min(self._failures, len(PostgresWatch.RETRY_SECONDS) - 1)]
            self._failures += 1
            self._next_try = time.monotonic() + delay
            log.warning("change listener not connected (%s: %s); retrying in %.1f s", type(e).__name__, e, delay)
            if conn is not None:
                conn.terminate()
            return
        finally:
            self._task = None
        if self.watch._closed:
            conn.terminate()
            return
        self._failures = 0
        self._conn = conn
        self.count += 1
        self._alive_at = time.monotonic()
        self.up = True
        self._pinger = asyncio.get_running_loop().create_task(self._ping(conn))

    async def _ping(self, conn: Any) -> None:
        while self._conn is conn:
            await asyncio.sleep(PostgresWatch.PING_SECONDS)
            try:
                await conn.fetchval("SELECT 1", timeout=PostgresWatch.TRUST_SECONDS - PostgresWatch.PING_SECONDS)
            except Exception:  # noqa: BLE001 - whatever broke it, it is gone
                if self._conn is conn:
                    self._lost()
                    conn.terminate()
                return
            self._alive_at = time.monotonic()

    def _notified(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        if payload == self.watch.origin:
            return  # a commit of this store's own: changed() counted it already
        self.count += 1

    def _lost(self, *args: Any) -> None:
        self.up = False
        self.count += 1
        self._conn = None
        self._next_try = time.monotonic() + PostgresWatch.RETRY_SECONDS[0]

    async def close(self) -> None:
        self.up = False
        for task in (self._task, self._pinger):
            if task is not None:
                task.cancel()
        self._task = self._pinger = None
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                conn.terminate()

    def terminate(self) -> None:
        self.up = False
        for task in (self._task, self._pinger):
            if task is not None:
                task.cancel()
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None
