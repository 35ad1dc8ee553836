"""Knowing that nothing changed on SQLite without asking it (issue 6; the contract is
feedsvc.store.sql.base.Watch).

``PRAGMA data_version`` on a connection of its own. SQLite increments it when
another connection (of this process or another one) has committed to the file since this
connection last looked. Reading it opens and closes a read transaction (about 13 µs: file
locks), so the first look goes to the WAL index instead: the 48-byte header at the start
of the ``-shm`` file, which every commit rewrites (its ``iChange`` counter, frame count
and checksums; https://www.sqlite.org/walformat.html) before the commit returns. The
header read when the state was read, unchanged: nothing was committed since (0.2 µs). A
changed header (a commit, or only a checkpoint) falls back to ``data_version``.
"""

from __future__ import annotations

import logging
import mmap
import os
import sqlite3
import struct
import threading
from typing import ClassVar

from feedsvc.store.records import StoreState

log = logging.getLogger("feedsvc.store")


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
