"""SqliteStore: the embedded default, one file under ``data/``.

Durability and concurrency choices (the manual's "Durability" section explains them):

* WAL journal: readers never block the writer nor each other.
* ``synchronous=FULL``: a transaction reported committed survives a power loss. NORMAL
  would only risk the last transactions on power loss, but an acknowledged write must
  never be lost, and writes are rare next to reads.
* One writer connection on a thread of its own that runs plain synchronous functions
  ``fn(conn)``, each a whole transaction (feedsvc.store.sqlite.writes), each waiting for
  its turn (``WriteTurn``); transactions open with ``BEGIN IMMEDIATE`` so ``busy_timeout``
  applies to the write lock itself instead of failing at commit. Several reader connections
  (aiosqlite) serve queries concurrently.
* Bounded waits (issue 7): a write waits at most ``busy_timeout_ms`` for its turn on the
  writer and at most as long again for SQLite's lock, then fails with StorageBusyError (a
  503 with Retry-After), as does a full disk; nothing of it is kept, reads go on, and the
  next write after the cause is gone succeeds.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import aiosqlite
import msgspec

from feedsvc.errors import FeedsvcError, StorageBusyError, StorageError
from feedsvc.files import create_private, readable_by_others
from feedsvc.model import Commentary
from feedsvc.query import Query
from feedsvc.store import related
from feedsvc.store.bulk_rows import Imported, ImportRow, import_rows
from feedsvc.store.migrations import sqlite as schema
from feedsvc.store.migrations.steps import pending, statements
from feedsvc.store.sql import rules
from feedsvc.store.sql.base import Rows
from feedsvc.store.sql.changes import ChangeReads
from feedsvc.store.sql.commentaries import CommentaryReads
from feedsvc.store.sql.copy import CopyReads
from feedsvc.store.sql.dialect import SQLITE, Dialect
from feedsvc.store.sql.digests import DigestReads
from feedsvc.store.sql.query import PAGE_ORDER
from feedsvc.store.sql.query import build_where as shared_where
from feedsvc.store.sql.sends import SendStore
from feedsvc.store.sql.subscribers import SubscriberStore
from feedsvc.store.sql.tokens import TokenStore
from feedsvc.store.sql.webhooks import WebhookStore
from feedsvc.store.sql.writes import CommentaryWrites, WriteFunctions
from feedsvc.store.sqlite import backup as sqlite_backup
from feedsvc.store.sqlite import bulk, search, writes
from feedsvc.store.sqlite import related as related_sql
from feedsvc.store.sqlite.watch import SqliteWatch

READERS = 3
_log = logging.getLogger("feedsvc.store.sqlite")
BUSY_TIMEOUT_MS = 5000
_T = TypeVar("_T")


def source_of(query: Query) -> str:
    """The FROM clause for a Query, with the index to walk when the planner would pick badly.

    A membership filter (full text, tag, author) makes SQLite collect every match and sort
    them: 244 ms for a common word at 100k commentaries. Walking the newest-first index and
    probing the matches stops after one page instead (25 ms; a rare word 3.2 -> 1.0 ms, a
    common tag 110 -> 10 ms). Category and language filters have better indexes of their own.
    """
    if (query.q or query.tag or query.author) and not (query.categories or query.lang):
        return "commentaries c INDEXED BY commentaries_public"
    return "commentaries c"


def build_where(query: Query, *, members: Sequence[tuple[str, Any]] | None = None) -> tuple[str, list[Any]]:
    """The WHERE clause (public commentaries only) and its parameters for a Query. Its tag,
    author and full text as ``members`` says (condition, parameter: see
    feedsvc.store.sqlite.search), by default each as a rowid set, the text as ``fts_query``."""
    if members is None:
        members = []
        if query.tag:
            members.append((search.Member("tag", None).clause("list"), query.tag.casefold()))
        if query.author:
            members.append((search.Member("author", None).clause("list"), query.author.casefold()))
        if query.q:
            members.append((search.Member("text", None).clause("list"), search.fts_query(query.q)))
    return shared_where(query, SQLITE, members=[(clause, [param]) for clause, param in members])


class WriteTurn:
    """The turn to write: first come, first served within an event loop, and exclusive
    across loops too (tests call a store from their loop while the app's background tasks,
    such as the webhook sender, run in the test client's). An asyncio.Lock alone belongs to
    the first loop that waits on it."""

    POLL_S = 0.0005
    """How often a writer whose loop's turn has come looks whether another loop's write
    has finished (only ever while two loops write at once)."""

    def __init__(self) -> None:
        self._queues: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._held = threading.Lock()

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            for gone in [other for other in self._queues if other.is_closed()]:
                del self._queues[gone]
            queue = self._queues[loop] = asyncio.Lock()
        await queue.acquire()
        try:
            while not self._held.acquire(blocking=False):
                await asyncio.sleep(self.POLL_S)
        except BaseException:
            queue.release()
            raise

    def release(self) -> None:
        self._held.release()
        self._queues[asyncio.get_running_loop()].release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class Writer:
    """The one writer connection and the thread every write runs on."""

    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self.conn = bulk.connect(path, busy_timeout_ms)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="feedsvc-sqlite-writer")

    async def run(self, fn: Callable[[], _T]) -> _T:
        """``fn()`` on the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    async def execute(self, sql: str) -> None:
        """One statement on the writer connection, outside any transaction (a PRAGMA)."""
        await self.run(lambda: self.conn.execute(sql).close())

    async def close(self) -> None:
        await self.run(self.conn.close)
        self._thread.shutdown()


def _in_transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], _T]) -> _T:
    """``writes.transaction``, with driver errors mapped onto the feedsvc error tree here,
    on the writer thread."""
    try:
        return writes.transaction(conn, fn)
    except sqlite3.Error as e:
        raise writes.wrap(e) from e


class SqliteStore(
    CommentaryReads, CommentaryWrites, ChangeReads, TokenStore, WebhookStore, SubscriberStore, SendStore,
    DigestReads,
    CopyReads,
):
    """The Store protocol on one SQLite file (see the module docstring for the choices),
    with the ``RowImport`` and ``Backup`` capabilities."""

    row_vector = None  # RowImport: FTS5 splits the words itself

    dialect: ClassVar[Dialect] = SQLITE
    writes: ClassVar[WriteFunctions] = writes
    _watch: SqliteWatch
    IMPORT_CACHE_KIB = 131072
    """Page cache of the import connection (128 MiB, the default is 2): a batch updates
    index pages all over the file (ids, slugs, times and related keys arrive in no order),
    and a bigger cache kept across batches reads them far less often. Memory only; how
    writes reach the disk (WAL, synchronous=FULL, one commit a batch) is unchanged."""
    IMPORT_WAL_PAGES = 65536
    """Pages (256 MiB) the WAL may hold before an import batch waits for the checkpoint
    behind it (bulk.Connection): about three batches, so the WAL peaks near half a
    gigabyte during an import."""

    def __init__(self, path: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._writer: Writer | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._reader_list: list[aiosqlite.Connection] = []
        self._write_lock = WriteTurn()
        self._secret: bytes | None = None
        self._watch = SqliteWatch(path, busy_timeout_ms=busy_timeout_ms)
        self._import_conn: bulk.Connection | None = None
        self._expansions = search.Expansions()

    # --- connections ----------------------------------------------------------------------

    async def _connect_reader(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute(search.CREATE_TERMS_TABLE)  # a temp table, so before query_only
            await conn.execute("PRAGMA query_only = ON")
        except BaseException:
            # Its thread is not a daemon: left open, it would keep a failing process alive.
            await conn.close()
            raise
        return conn

    async def open(self) -> None:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self._create_private()
            self._writer = Writer(self.path, self.busy_timeout_ms)
            await self.migrate()
            for _ in range(READERS):
                conn = await self._connect_reader()
                self._reader_list.append(conn)
                self._readers.put_nowait(conn)
            self._watch.open()
        except (sqlite3.Error, OSError, StorageBusyError) as e:
            await self.close()
            reason = e.message if isinstance(e, StorageError) else str(e)
            raise StorageError(
                f"cannot open SQLite database {self.path}: {reason} (is it a feedsvc database, on a disk"
                " with space, in a folder feedsvc may write to?)"
            ) from e

    def _create_private(self) -> None:
        """Create the database file 0600 before SQLite does (it would make it 0644 under
        the usual umask); SQLite gives the -wal and -shm files it creates the database
        file's mode. An existing file keeps its mode (feedsvc.files.create_private says
        why); one that others may read is logged, once per open, with the fix."""
        if self.path in ("", ":memory:") or self.path.startswith("file:"):
            return
        if not create_private(self.path) and readable_by_others(self.path):
            _log.warning(
                "%s is readable by other users and holds the cursor key, webhook secrets and"
                " token hashes: chmod 600 it (and its -wal and -shm files)",
                self.path,
            )

    async def close(self) -> None:
        async with self._write_lock:
            for conn in self._reader_list:
                await conn.close()
            self._reader_list.clear()
            self._readers = asyncio.Queue()
            if self._writer is not None:
                await self._writer.close()
                self._writer = None
            if self._import_conn is not None:
                self._import_conn.close()
                self._import_conn = None
        # Last: closing the watch's handle on the -shm file drops this process's locks on it
        # (feedsvc.store.sqlite.watch, "POSIX locks"), which no connection may hold by then.
        self._watch.close()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        if not self._reader_list:
            raise StorageError("the store is not open")
        conn = await self._readers.get()
        try:
            yield conn
        except sqlite3.Error as e:
            raise writes.wrap(e) from e
        finally:
            self._readers.put_nowait(conn)

    # One trip to the connection's thread (execute_fetchall) instead of three (execute,
    # fetch, close): each trip is a queue hand-off and a GIL switch, about a fifth of the
    # CPU of a cached list-API request.
    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._read() as conn:
            return list(await conn.execute_fetchall(sql, tuple(params)))

    @asynccontextmanager
    async def _snapshot(self, *, strict: bool = True) -> AsyncIterator[Rows]:
        async with self._read() as conn:
            if strict:
                await conn.execute("BEGIN")
            try:
                yield _Reads(conn)
            finally:
                if strict:
                    await conn.execute("COMMIT")

    async def _write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """``fn(conn)`` as one write transaction on the writer thread, after the writes
        queued before it; StorageBusyError when its turn does not come in time."""
        try:
            async with asyncio.timeout(self.busy_timeout_ms / 1000):
                await self._write_lock.acquire()
        except TimeoutError:
            raise StorageBusyError("database unavailable: writes are queued behind a slow one") from None
        try:
            writer = self._writer
            if writer is None:
                raise StorageError("the store is not open")
            return await writer.run(functools.partial(_in_transaction, writer.conn, fn))
        finally:
            self._write_lock.release()

    async def _write_rows(self, sql: str, params: Sequence[Any] = (), *, serial: bool = True) -> list[Any]:
        # Every SQLite write is serial: one writer connection.
        return await self._write(lambda conn: conn.execute(sql, tuple(params)).fetchall())

    # --- schema ---------------------------------------------------------------------------

    async def migrate(self) -> int:
        def step(conn: sqlite3.Connection) -> None:
            for n in pending(int(conn.execute("PRAGMA user_version").fetchone()[0]), schema.VERSION):
                for statement in statements(schema.STEPS[n]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {n}")

        await self._write(step)
        return schema.VERSION

    async def schema_status(self) -> tuple[int, int]:
        row = await self._row("PRAGMA user_version")
        return int(row[0]), schema.VERSION

    # --- writes (sql.rules and feedsvc.store.sqlite.writes, run by sql.writes.CommentaryWrites)

    async def _apply(self, rule: rules.Rule[_T]) -> _T:
        return await self._write(functools.partial(writes.apply, rule=rule))

    async def _transact(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        return await self._write(functools.partial(fn, **kwargs))

    # --- reads of its own: pages with full text, related windows --------------------------

    async def _page(self, query: Query, columns: str, rows: Rows | None = None) -> list[Any]:
        if rows is not None:
            assert isinstance(rows, _Reads)
            return await self._page_rows(rows.conn, query, columns)
        async with self._read() as conn:
            return await self._page_rows(conn, query, columns)

    async def _page_rows(
        self, conn: aiosqlite.Connection, query: Query, columns: str, *, plan: search.Plan | None = None
    ) -> list[Any]:
        """``columns`` (of commentaries ``c``) of a page of ``query``, newest first. With a
        tag, an author or full text, in the plan feedsvc.store.sqlite.search chooses (or
        ``plan``, forced)."""
        if not (query.q or query.tag or query.author):
            where, params = build_where(query)
            return list(await conn.execute_fetchall(
                f"SELECT {columns} FROM {source_of(query)} WHERE {where} {PAGE_ORDER}", [*params, query.limit]
            ))
        before = self._watch.token()
        own = not conn.in_transaction
        if own:
            await conn.execute("BEGIN")  # the prefix's terms, the samples and the page: one snapshot
        try:
            newest = int(next(iter(await conn.execute_fetchall(search.NEWEST)))[0])  # the snapshot begins
            # Tags and authors first: where both are probed, the cheap probe runs first.
            members = [search.Member("tag", query.tag.casefold())] if query.tag else []
            if query.author:
                members.append(search.Member("author", query.author.casefold()))
            if query.q:
                expansion = self._expansions.get(self._watch.token(), query.q)
                if expansion is None:
                    expansion = await search.expanded_query(conn, query.q)
                    self._expansions.put(before, query.q, expansion)
                members.append(search.Member("text", expansion[0], probe_ok=expansion[1]))
            page = search.forced(members, plan) if plan else await search.plan_page(conn, members, query.limit, newest)
            where, params = build_where(query, members=[(m.clause(mode), m.param) for m, mode in page.modes])
            if page.driver is not None:
                sql, params = search.driven_sql(columns, page.driver, where, params, query.limit)
            else:
                sql = f"SELECT {columns} FROM {source_of(query)} WHERE {where} {PAGE_ORDER}"
                params.append(query.limit)
            return list(await conn.execute_fetchall(sql, params))
        finally:
            if own:
                await conn.execute("COMMIT")

    async def _related_windows(self, probes: Sequence[related.Probe]) -> list[list[tuple[str, int, int]]]:
        found: list[list[tuple[str, int, int]]] = [[] for _ in probes]
        for start, sql, params in related_sql.related_sql(probes):
            for slot, id, pub_us, n in await self._rows(sql, params):
                found[start + slot].append((id, pub_us, n))
        return found

    # --- capabilities of its own: backup, bulk import -------------------------------------

    async def backup(self, target: Path) -> list[str]:
        """A checked copy of the live database (feedsvc.store.sqlite.backup)."""
        checked = await sqlite_backup.backup(self._copy_to, Path(self.path), target)
        return checked.left_out

    async def _copy_to(self, target: str) -> None:
        """Write a consistent copy of the live database to ``target`` (SQLite backup API)."""
        async with self._read() as conn:
            dest = await aiosqlite.connect(target)
            try:
                await conn.backup(dest)
            finally:
                await dest.close()

    # A batch runs on the writer thread, on a connection of its own (bulk.Connection), so
    # it costs one thread hop; it is written as rows built beforehand, one statement a
    # table; when the database refuses one of them, record by record through rules.add.

    async def import_commentaries(
        self, items: Sequence[tuple[Commentary, bool]], *, now: datetime
    ) -> list[Commentary | FeedsvcError]:
        if not items:
            return []
        pairs = list(items)
        outcomes = await self.import_rows(import_rows(pairs), now=now)
        return [
            outcome if isinstance(outcome, FeedsvcError)
            else msgspec.structs.replace(item, slug=outcome.slug, version=outcome.seq)
            for (item, _), outcome in zip(pairs, outcomes, strict=True)
        ]

    async def import_rows(self, rows: Sequence[ImportRow], *, now: datetime) -> list[Imported | FeedsvcError]:
        if not rows:
            return []
        async with self._write_lock:
            if self._writer is None:
                raise StorageError("the store is not open")
            if self._import_conn is None:
                self._import_conn = bulk.Connection(
                    self.path, busy_timeout_ms=self.busy_timeout_ms, cache_kib=self.IMPORT_CACHE_KIB,
                    max_wal_pages=self.IMPORT_WAL_PAGES,
                )
            try:
                return await self._writer.run(functools.partial(self._import_conn.write_batch, list(rows), now))
            except sqlite3.Error as e:
                raise writes.wrap(e) from e


class _Reads:
    """Statements on one reader connection (a snapshot's)."""

    __slots__ = ("conn",)

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def __call__(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self.conn.execute_fetchall(sql, tuple(params)))
