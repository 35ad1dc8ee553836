"""Knowing that nothing changed without asking the database (issue 6).

Every feed request and every 304 starts with "did the change sequence move?". Asking the
store is a query through a connection pool (a thread hop for aiosqlite, a round trip for
asyncpg): most of the cost of answering a poll that finds nothing new. The watchers here
remember the ``StoreState`` the store last read together with a *token* of a change
counter that moves on every commit, by this process or any other:

* SQLite: ``PRAGMA data_version`` on a connection of its own. SQLite increments it when
  another connection (of this process or another one) has committed to the file since this
  connection last looked. Reading it opens and closes a read transaction (about 13 µs: file
  locks), so the first look goes to the WAL index instead: the 48-byte header at the start
  of the ``-shm`` file, which every commit rewrites (its ``iChange`` counter, frame count
  and checksums; https://www.sqlite.org/walformat.html) before the commit returns. The
  header read when the state was read, unchanged: nothing was committed since (0.2 µs). A
  changed header (a commit, or only a checkpoint) falls back to ``data_version``.
* PostgreSQL: ``LISTEN`` on a connection of its own, and every write transaction sends a
  ``NOTIFY`` that is delivered when it commits (feedsvc.store.postgres). The token is the
  number of notifications received; while the listener is not connected there is no
  token, and the state is read every time, as before.

``known()`` returns the remembered state only while the token is the one read *before*
the state was queried: any commit after that moves the counter, so a remembered state is
never older than the last commit the counter reports. A state read concurrently with an
older token can only be discarded early, never kept late.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from feedsvc.store import StoreState

log = logging.getLogger("feedsvc.store")


class _Known:
    """A state and the token it was read under."""

    __slots__ = ("state", "token")

    def __init__(self, token: int, state: StoreState) -> None:
        self.token = token
        self.state = state


WAL_INDEX_HEADER = 48
"""Bytes of the first copy of the WAL-index header, the one a commit writes last."""
WAL_INDEX_VERSION = 3007000
"""``iVersion`` of the WAL-index format this reading of it knows."""
SqliteToken = tuple[int, bytes | None]
"""``data_version`` and the WAL-index header read just before it."""


class _SqliteKnown:
    __slots__ = ("header", "state", "version")

    def __init__(self, version: int, header: bytes | None, state: StoreState) -> None:
        self.version = version
        self.header = header
        self.state = state


class SqliteWatch:
    """``PRAGMA data_version`` of one SQLite file, on a synchronous connection of its own."""

    def __init__(self, path: str, *, busy_timeout_ms: int) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        # The store is used from more than one thread (the test client runs the app in a
        # thread of its own); one statement at a time on this connection.
        self._lock = threading.Lock()
        self._known: _SqliteKnown | None = None
        self._wal_index: _WalIndexMap | None = None
        self._shm: mmap.mmap | None = None

    def open(self) -> None:
        """Start watching; a file SQLite cannot share between connections is never watched."""
        if self.path in ("", ":memory:") or self.path.startswith("file::memory:"):
            return  # every connection has its own in-memory database: nothing to watch
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA query_only = ON")
        wal_index = _WalIndexMap.acquire(self.path)
        with self._lock:
            self._conn = conn
            self._wal_index = wal_index
            self._shm = wal_index.shm if wal_index is not None else None
            self._known = None

    def close(self) -> None:
        with self._lock:
            conn, self._conn, self._known = self._conn, None, None
            wal_index, self._wal_index, self._shm = self._wal_index, None, None
        if conn is not None:
            conn.close()
        if wal_index is not None:
            wal_index.release()

    def _header(self) -> bytes | None:
        shm = self._shm
        if shm is None:
            return None
        try:
            return shm[:WAL_INDEX_HEADER]
        except ValueError:  # closed meanwhile
            return None

    def token(self) -> SqliteToken | None:
        """The file's data version now (and the WAL-index header just before), or None."""
        with self._lock:
            conn = self._conn
            if conn is None:
                return None
            header = self._header()
            try:
                # fetchall: step to the end, so no read transaction stays open between calls
                # (an open one would pin a snapshot, and the version with it).
                return int(conn.execute("PRAGMA data_version").fetchall()[0][0]), header
            except sqlite3.Error:
                return None

    def remember(self, token: SqliteToken | None, state: StoreState) -> None:
        if token is not None:
            self._known = _SqliteKnown(token[0], token[1], state)

    def known(self) -> StoreState | None:
        known = self._known
        if known is None:
            return None
        if known.header is not None and self._header() == known.header:
            return known.state  # the WAL index is as it was before the state was read
        now = self.token()
        if now is None or now[0] != known.version:
            return None
        # No commit since (a checkpoint moved the header): compare with this header from now
        # on. It was read before this data_version, which a commit in between would move.
        self._known = _SqliteKnown(known.version, now[1], known.state)
        return known.state


class _WalIndexMap:
    """One read-only mapping of a ``-shm`` file per process, shared by every watch of it.

    **POSIX locks.** SQLite locks the ``-shm`` file with fcntl() locks, which belong to the
    process and the file: closing *any* descriptor of that file drops every lock the
    process holds on it, SQLite's included (SQLite shares its own descriptors per file to
    avoid exactly this). To the next process that opens the database, a process that lost
    its lock looks as if it had not the WAL index open: that process rebuilds the index
    under the first one's feet (SIGBUS, or a corrupt database). So the descriptors here (ours
    and the duplicate ``mmap`` keeps) are opened once per file and closed only when the last
    watch of the file in this process closes, after its store closed every connection
    (SqliteStore.close closes its watch last) — even when the mapping turns out unusable.
    """

    _open: ClassVar[dict[str, _WalIndexMap]] = {}
    _lock = threading.Lock()

    def __init__(self, key: str, fd: int, mapping: mmap.mmap | None, usable: bool) -> None:
        self.key = key
        self.fd = fd
        self.mapping = mapping
        self.shm = mapping if usable else None
        """None when the WAL index is not in the format this module knows."""
        self.users = 0

    @classmethod
    def acquire(cls, path: str) -> _WalIndexMap | None:
        """The mapping of the WAL index of the database at ``path`` (None without a file)."""
        key = os.path.realpath(f"{path}-shm")
        with cls._lock:
            found = cls._open.get(key)
            if found is None:
                try:
                    fd = os.open(key, os.O_RDONLY)
                except OSError:
                    return None
                mapping: mmap.mmap | None
                try:
                    mapping = mmap.mmap(fd, WAL_INDEX_HEADER, access=mmap.ACCESS_READ)
                except (OSError, ValueError):
                    mapping = None  # too short: not initialised yet
                usable = False
                if mapping is not None:
                    version, _, _, initialized = struct.unpack_from("=IIIB", mapping, 0)
                    usable = version == WAL_INDEX_VERSION and initialized == 1
                found = cls._open[key] = _WalIndexMap(key, fd, mapping, usable)
            found.users += 1
            return found

    def release(self) -> None:
        with self._lock:
            self.users -= 1
            if self.users == 0:
                del self._open[self.key]
                if self.mapping is not None:
                    self.mapping.close()
                os.close(self.fd)


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
        """This process committed a write: forget every remembered state at once, without
        waiting for the notification to come back."""
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

    def _notified(self, *args: Any) -> None:
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
