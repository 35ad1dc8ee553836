"""PostgresStore: the Store protocol on PostgreSQL through asyncpg, for several nodes.

Any number of feedsvc nodes may share one database; each keeps nothing but a connection
pool, so a write acknowledged by one node is what every node reads next. The choices:

* **Writes are serialised.** Every write transaction starts by taking a transaction-level
  advisory lock (``pg_advisory_xact_lock``) shared by every node on the same schema, and
  numbers its changes ``max(seq) + 1``. The lock is released only once the commit is
  visible, so change numbers are handed out in commit order: a mirror that has read
  everything up to ``seq`` will never see a lower number appear later (with a sequence,
  a transaction that drew 41 could commit after one that drew 42, and a reader of
  ``seq > 41`` would skip it for good). Numbers also have no gaps, as in SQLite, so both
  stores give a commentary the same version for the same history. Writes are rare next to
  reads; one at a time is plenty, and reads never wait for the lock.
* **Reads are single statements** (or a read-only snapshot), so each sees one consistent
  state.
* **Full-text search matches what SQLite matches** (feedsvc.store.postgres.text).
* **A schema of its own** when asked (``schema=`` or ``?schema=NAME`` in the URL): it is
  created if missing and made the connection's ``search_path`` as a startup setting, which
  survives the pool's ``RESET ALL`` between uses (a ``SET`` in ``init`` would not).

Driver errors stop here (``wrap``): a unique violation is a ConflictError, a foreign key
violation an unknown category, connection trouble, timeouts, full disks and lock waits a
StorageBusyError, and anything else a StorageError.

**Every call is bounded** when the store is given a ``timeout`` (``feedsvc serve`` gives it
``FEEDSVC_DATABASE_TIMEOUT``): waiting for a connection, connecting and every statement of
the call together, past which it is a StorageBusyError. A connection that failed that way
(or was cut, or whose backend was killed) is closed, never handed back to the pool: its
state is unknown, and reusing it is what gave ``cannot switch to state 12`` and ``connection
is closed`` later. A server that cannot be reached at all makes calls fail at once for a
while (feedsvc.store.postgres.reach). A read whose connection was lost is tried once more on
a new one. A write that failed before its ``COMMIT`` was sent stored nothing (the server
rolls back a transaction whose client went away); one lost while committing is a
WriteOutcomeUnknownError, which the client resolves by repeating it (docs/operating.md).
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from feedsvc.errors import (
    ConflictError,
    FeedsvcError,
    InvalidInputError,
    StorageBusyError,
    StorageError,
    WriteOutcomeUnknownError,
)
from feedsvc.model import Commentary
from feedsvc.query import Query
from feedsvc.store import related
from feedsvc.store.bulk_rows import Imported, ImportRow
from feedsvc.store.migrations import postgres as schema
from feedsvc.store.migrations.steps import pending
from feedsvc.store.postgres import bulk, writes
from feedsvc.store.postgres.reach import Reach
from feedsvc.store.postgres.text import search_member, vector_literal
from feedsvc.store.postgres.watch import PostgresWatch
from feedsvc.store.postgres.writes import Tx
from feedsvc.store.sql import rules
from feedsvc.store.sql.base import Rows
from feedsvc.store.sql.changes import ChangeReads
from feedsvc.store.sql.commentaries import CommentaryReads
from feedsvc.store.sql.copy import CopyReads
from feedsvc.store.sql.dialect import POSTGRES, Dialect
from feedsvc.store.sql.digests import DigestReads
from feedsvc.store.sql.query import PAGE_ORDER, build_where
from feedsvc.store.sql.sends import SendStore
from feedsvc.store.sql.subscribers import SubscriberStore
from feedsvc.store.sql.tokens import TokenStore
from feedsvc.store.sql.webhooks import WebhookStore
from feedsvc.store.sql.writes import CommentaryWrites, WriteFunctions
from feedsvc.store.words import Words

POOL_MIN, POOL_MAX = 1, 10
_T = TypeVar("_T")
LOCK_TIMEOUT_MS = 10_000
"""How long a write waits for the write lock (or any row lock) before StorageBusyError."""
COMMAND_TIMEOUT_S = 60.0
"""A statement's longest run outside a bounded call (and connecting, without ``timeout``)."""
ORPHAN_TIMEOUT_MS = 60_000
"""``idle_in_transaction_session_timeout``: a transaction whose client vanished without a
word (a partition) is rolled back by the server after this, releasing the write lock;
feedsvc never leaves one idle that long."""
# Advisory lock keys. The write lock is named after the change log it guards (the oid of
# this schema's `changes` table), so every node writing to that log takes the same lock,
# however its search_path was spelled, and stores on other schemas (test runs) never wait.
WRITE_LOCK_SQL = "SELECT pg_advisory_xact_lock((x'66656564'::bigint << 32) | 'changes'::regclass::oid::bigint)"
# Every write transaction also notifies the listeners of the same change log (its channel
# is named after the log, like the lock); PostgreSQL delivers it only if the transaction
# commits. Nodes then know nothing moved without asking (feedsvc.store.postgres.watch).
# The payload names the store that wrote ($1, its watch's origin), so the writer can tell
# the echo of a commit it already counted from another node's commit.
CHANNEL_SQL = "SELECT 'feedsvc_changes_' || 'changes'::regclass::oid::text"
WRITE_SQL = WRITE_LOCK_SQL + ", pg_notify('feedsvc_changes_' || 'changes'::regclass::oid::text, $1::text)"
# The migration lock is named after the schema, which may not exist yet.
MIGRATE_LOCK_SQL = "SELECT pg_advisory_xact_lock(x'6d696772'::int, hashtext(coalesce($1::text, current_schema(), '')))"


# Driver errors that mean "the database is unavailable right now; retrying may work".
_BUSY = (
    asyncpg.exceptions.InsufficientResourcesError,  # disk full, out of memory, too many connections
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # statement timeout, shutdown, starting up
    asyncpg.exceptions.LockNotAvailableError,  # lock_timeout
    asyncpg.exceptions.TransactionRollbackError,  # deadlock, serialization failure
    asyncpg.exceptions.PostgresSystemError,  # I/O errors
    OSError,  # refused, reset, and TimeoutError (pool acquire, connect)
)
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError, OSError)
# Failures after which a connection's state is unknown: it is closed, not reused.
_CONNECTION_TROUBLE = (
    asyncpg.InterfaceError,  # "connection is closed", "another operation is in progress"
    asyncpg.exceptions.InternalClientError,  # "cannot switch to state 12": a protocol out of step
    asyncpg.exceptions.PostgresConnectionError,  # the connection is gone
    asyncpg.exceptions.OperatorInterventionError,  # backend terminated, server shutting down
    OSError,  # reset, refused, timed out
    asyncio.CancelledError,  # the deadline, or the caller gave up, mid-statement
)
# ... and those that say the server itself cannot be reached (feedsvc.store.postgres.reach).
_UNREACHABLE = (
    ConnectionRefusedError,
    TimeoutError,
    socket.gaierror,
    asyncpg.exceptions.CannotConnectNowError,  # starting up, shutting down
)
# A read that failed on one of these is tried once more, on another connection.
_LOST = (
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,  # pg_terminate_backend
    ConnectionResetError,
    BrokenPipeError,
)


class PostgresStore(
    CommentaryReads, CommentaryWrites, ChangeReads, TokenStore, WebhookStore, SubscriberStore, SendStore,
    DigestReads,
    CopyReads,
):
    """The Store protocol on PostgreSQL (see the module docstring for the choices)."""

    row_vector = staticmethod(vector_literal)  # RowImport: each row's tsvector, built in the workers

    dialect: ClassVar[Dialect] = POSTGRES
    writes: ClassVar[WriteFunctions] = writes
    skip_locked = " FOR UPDATE SKIP LOCKED"
    _watch: PostgresWatch

    def __init__(
        self, dsn: str, *, schema: str | None = None, lock_timeout_ms: int = LOCK_TIMEOUT_MS,
        timeout: float | None = None,
    ) -> None:
        """``timeout``: the longest a call may take, in seconds (None: unbounded, but for
        ``COMMAND_TIMEOUT_S`` per statement)."""
        self.dsn, url_schema = _split_schema(dsn)
        self.schema = schema or url_schema
        self.timeout = timeout
        # A lock wait must end (busy, the server answering) before the call's deadline does
        # (which would count as the server not answering: feedsvc.store.postgres.reach).
        self.lock_timeout_ms = lock_timeout_ms if timeout is None else min(lock_timeout_ms, int(timeout * 800))
        self.reach = Reach()
        # asyncpg connections belong to the event loop that made them. A store used from
        # another loop too (aiosqlite allows it; the test client runs the app in a thread of
        # its own while tests call the service directly) gets a pool for that loop.
        self._pools: dict[asyncio.AbstractEventLoop, asyncpg.Pool] = {}
        self._is_open = False
        self._words: Words | None = None
        self._secret: bytes | None = None
        self._watch = PostgresWatch(self._connect_listener, CHANNEL_SQL)

    # --- connections ----------------------------------------------------------------------

    async def open(self) -> None:
        try:
            self._words = Words()
        except sqlite3.Error as e:  # pragma: no cover - depends on how Python was built
            raise StorageError(f"full-text search needs SQLite with FTS5 in this Python: {e}") from e
        self._is_open = True
        self._watch = PostgresWatch(self._connect_listener, CHANNEL_SQL)
        try:
            await self.migrate()
        except FeedsvcError:
            await self.close()
            raise

    async def close(self) -> None:
        self._is_open = False
        await self._watch.close()
        pools, self._pools = self._pools, {}
        current = asyncio.get_running_loop()
        for loop, pool in pools.items():
            if loop is current:
                try:
                    await pool.close()
                except _DRIVER_ERRORS:
                    pool.terminate()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(pool.terminate)
        if self._words is not None:
            self._words.close()
            self._words = None

    async def _pool(self) -> asyncpg.Pool:
        """The connection pool of the running event loop, made on first use."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None:
            return pool
        if not self._is_open:
            raise StorageError("the store is not open")
        for gone in [other for other in self._pools if other.is_closed()]:
            del self._pools[gone]  # its connections died with it
        settings = {
            "lock_timeout": str(self.lock_timeout_ms),
            "idle_in_transaction_session_timeout": str(ORPHAN_TIMEOUT_MS),
        }
        if self.schema:
            settings["search_path"] = _quote_ident(self.schema)
        pool = await asyncpg.create_pool(
            # Calls are bounded by ``timeout`` as a whole (``_connection``); statements outside
            # them (migrations, which wait for another node's) keep the long bound.
            self.dsn, min_size=POOL_MIN, max_size=POOL_MAX, server_settings=settings,
            command_timeout=COMMAND_TIMEOUT_S, timeout=self.timeout or COMMAND_TIMEOUT_S,
        )
        if loop in self._pools or not self._is_open:  # made meanwhile, or closed meanwhile
            await pool.close()
            return await self._pool()
        self._pools[loop] = pool
        return pool

    @asynccontextmanager
    async def _connection(self, *, bounded: bool = True) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the pool for one call: within the store's deadline (``bounded``),
        refused at once while the server is unreachable, closed instead of reused after
        any failure that leaves its state unknown. Driver errors pass through unwrapped."""
        reach = self.reach
        if not reach.admit():
            raise StorageBusyError("database unreachable: waiting before trying again")
        try:
            async with asyncio.timeout(self.timeout if bounded else None):
                pool = await self._pool()
                conn = await pool.acquire()
                try:
                    yield conn
                except BaseException as e:
                    if isinstance(e, _CONNECTION_TROUBLE):
                        conn.terminate()
                    raise
                finally:
                    try:
                        await pool.release(conn)
                    except Exception:  # noqa: BLE001 - its reset failed: the pool drops it, the call's outcome stands
                        conn.terminate()
        except _UNREACHABLE:
            reach.lost()
            raise
        except (asyncio.CancelledError, *_CONNECTION_TROUBLE):
            reach.released()
            raise
        except BaseException:  # the server answered: a constraint, a rule, a lock wait
            reach.reached()
            raise
        reach.reached()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self._connection() as conn:
                yield conn
        except _DRIVER_ERRORS as e:
            raise wrap(e) from e
        except TimeoutError as e:
            raise wrap(e) from e

    async def _connect_listener(self) -> asyncpg.Connection:
        settings = {"search_path": _quote_ident(self.schema)} if self.schema else {}
        return await asyncpg.connect(self.dsn, server_settings=settings, timeout=self.timeout or 10)

    @asynccontextmanager
    async def _write(self, *, bounded: bool = True) -> AsyncIterator[Tx]:
        """One write transaction holding the write lock; rolled back on any error. A
        failure before ``COMMIT`` was sent stored nothing; one while committing, with the
        connection lost, is a WriteOutcomeUnknownError."""
        committing = False
        try:
            async with self._connection(bounded=bounded) as conn:
                transaction = conn.transaction()
                await transaction.start()
                try:
                    await conn.execute(WRITE_SQL, self._watch.origin)
                    yield Tx(conn, self._tokenizer())
                except (FeedsvcError, asyncpg.PostgresError) as e:
                    # The server answered: roll back on the connection, which stays usable.
                    if not isinstance(e, _CONNECTION_TROUBLE):
                        await transaction.rollback()
                    raise
                committing = True
                await transaction.commit()
        except (*_DRIVER_ERRORS, TimeoutError) as e:
            if committing and isinstance(e, (*_CONNECTION_TROUBLE, TimeoutError)):
                raise WriteOutcomeUnknownError(f"lost while committing: {type(e).__name__}: {e}") from e
            raise wrap(e) from e
        finally:
            # This store's own writes are known at once, before the write is acknowledged,
            # not when the notification is back; the watch then ignores that notification.
            self._watch.changed()

    async def _write_rows(self, sql: str, params: Sequence[Any] = (), *, serial: bool = True) -> list[Any]:
        if serial:
            async with self._write() as tx:
                rows: list[Any] = await tx.conn.fetch(self.dialect.sql(sql), *params)
                return rows
        # Bookkeeping on rows of its own: a statement of its own, without the write lock.
        async with self._read() as conn:
            return list(await conn.fetch(self.dialect.sql(sql), *params))

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            async with self._read() as conn:
                return list(await conn.fetch(self.dialect.sql(sql), *params))
        except StorageBusyError as e:
            if not isinstance(e.__cause__, _LOST):
                raise
        # A backend killed or a connection cut while idle in the pool: once more, on a new one.
        async with self._read() as conn:
            return list(await conn.fetch(self.dialect.sql(sql), *params))

    @asynccontextmanager
    async def _snapshot(self, *, strict: bool = True) -> AsyncIterator[Rows]:
        async with self._read() as conn, conn.transaction(isolation="repeatable_read", readonly=True):

            async def rows(sql: str, params: Sequence[Any] = ()) -> list[Any]:
                return list(await conn.fetch(self.dialect.sql(sql), *params))

            yield rows

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """One row of a statement in PostgreSQL's own spelling (``$n``), outside the shared
        core (tests use it to find and end a node's listener)."""
        async with self._read() as conn:
            return await conn.fetchrow(sql, *args)

    def _tokenizer(self) -> Words:
        if self._words is None:
            raise StorageError("the store is not open")
        return self._words

    # --- schema ---------------------------------------------------------------------------

    async def migrate(self) -> int:
        try:
            async with (await self._pool()).acquire() as conn, conn.transaction():
                # Wait as long as another node's migration takes.
                await conn.execute("SET LOCAL lock_timeout = 0")
                await conn.execute(MIGRATE_LOCK_SQL, self.schema)
                if self.schema:
                    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(self.schema)}")
                await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
                current = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))
                for n in pending(current, schema.VERSION):
                    await conn.execute(schema.STEPS[n])
                if current < schema.VERSION:
                    await conn.execute("DELETE FROM schema_version")
                    await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", schema.VERSION)
        except _DRIVER_ERRORS as e:
            raise wrap(e) from e
        return schema.VERSION

    async def schema_status(self) -> tuple[int, int]:
        row = await self._row(
            "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN 0"
            " ELSE (SELECT coalesce(max(version), 0) FROM schema_version) END"
        )
        assert row is not None
        return int(row[0]), schema.VERSION


    # --- writes (sql.rules and feedsvc.store.postgres.writes, run by sql.writes.CommentaryWrites)

    async def _apply(self, rule: rules.Rule[_T]) -> _T:
        async with self._write() as tx:
            return await rules.drive_async(rule, tx.do)

    async def _transact(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        async with self._write() as tx:
            return await fn(tx, **kwargs)

    # --- reads of its own: pages with full text, related windows --------------------------

    async def _page(self, query: Query, columns: str, rows: Rows | None = None) -> list[Any]:
        text = search_member(query.q, self._tokenizer()) if query.q else None
        where, params = build_where(query, self.dialect, text=text)
        return await (rows or self._rows)(
            f"SELECT {columns} FROM commentaries c WHERE {where} {PAGE_ORDER}", [*params, query.limit]
        )

    async def _related_windows(self, probes: Sequence[related.Probe]) -> list[list[tuple[str, int, int]]]:
        keys = [(i, key, n) for i, p in enumerate(probes) for n, key in enumerate(p.keys)]
        async with self._read() as conn:
            rows = await conn.fetch(
                _RELATED,
                [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
                [p.lang for p in probes], [p.pub_us for p in probes], [p.id for p in probes],
                [p.translation_key for p in probes], related.WINDOW,
            )
        found: list[list[tuple[str, int, int]]] = [[] for _ in probes]
        for i, id, pub_us, n in rows:
            found[i].append((id, pub_us, n))
        return found

    # --- bulk import ----------------------------------------------------------------------

    async def import_commentaries(
        self, items: Sequence[tuple[Commentary, bool]], *, now: datetime
    ) -> list[Commentary | FeedsvcError]:
        if not items:
            return []
        try:
            return await self._import_batch(items, now, isolate=False)
        except _Isolate:
            # A record failed inside the database, after writing part of itself; run the
            # batch again with a savepoint per record, so that it fails alone.
            return await self._import_batch(items, now, isolate=True)

    async def import_rows(self, rows: Sequence[ImportRow], *, now: datetime) -> list[Imported | FeedsvcError]:
        """The ``RowImport`` capability: a batch of rows built beforehand, written with a
        COPY a table (feedsvc.store.postgres.bulk)."""
        if not rows:
            return []
        try:
            async with self._write(bounded=False) as tx:  # a batch, as _import_batch's
                try:
                    return await bulk.write_rows(tx, rows, now)
                except _BUSY:
                    raise
                except asyncpg.PostgresError as e:
                    raise _Isolate() from e  # rolls the batch back
        except _Isolate:
            # A rule only the database knows: record by record, each alone.
            items = [(row.commentary(), row.unique_slug) for row in rows]
            return bulk.imported(await self._import_batch(items, now, isolate=True))

    async def _import_batch(
        self, items: Sequence[tuple[Commentary, bool]], now: datetime, *, isolate: bool
    ) -> list[Commentary | FeedsvcError]:
        """One write transaction for the batch, each record stored as ``add_commentary``
        stores it. Without ``isolate`` (the fast path) a record that breaks a rule fails
        before writing anything: id, slug and category are checked first. With it, each
        record runs in a savepoint, and a database error is that record's alone."""
        results: list[Commentary | FeedsvcError] = []
        async with self._write(bounded=False) as tx:
            categories = {r[0] for r in await tx.conn.fetch("SELECT slug FROM categories")}
            for item, unique_slug in items:
                if item.category not in categories:
                    results.append(rules.unknown_category(item.category))
                    continue
                seq = tx.seq
                add = rules.add(item, unique_slug=unique_slug, now=now)
                try:
                    if isolate:
                        async with tx.conn.transaction():
                            results.append(await rules.drive_async(add, tx.do))
                    else:
                        results.append(await rules.drive_async(add, tx.do))
                except FeedsvcError as e:
                    results.append(e)
                except _BUSY:
                    raise
                except _DRIVER_ERRORS as e:
                    if not isolate:
                        raise _Isolate() from e
                    tx.seq = seq
                    results.append(wrap(e))
        return results


class _Isolate(Exception):
    """A record of an import batch failed in the database; retry the batch with savepoints."""


def wrap(e: BaseException) -> FeedsvcError:
    """Driver errors stop here: map them onto the feedsvc error tree."""
    if isinstance(e, asyncpg.UniqueViolationError):
        fields = {"commentaries_id_key": "id", "commentaries_lang_slug": "slug"}
        field = fields.get(e.constraint_name or "")
        return ConflictError(f"conflict: {e}", field=field) if field else ConflictError(f"conflict: {e}")
    if isinstance(e, asyncpg.ForeignKeyViolationError):
        return InvalidInputError("unknown category", field="category")
    if isinstance(e, TimeoutError):
        return StorageBusyError("database unavailable: no answer in time")
    if isinstance(e, _BUSY) or isinstance(e, _CONNECTION_TROUBLE):
        return StorageBusyError(f"database unavailable: {type(e).__name__}: {e}")
    return StorageError(f"database error: {type(e).__name__}: {e}")



def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _split_schema(dsn: str) -> tuple[str, str | None]:
    """Take ``schema=NAME`` out of the URL's query (asyncpg would send it to the server as
    a setting, which PostgreSQL refuses); return the URL without it and the name."""
    parts = urlsplit(dsn)
    if not parts.query:
        return dsn, None
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    found = [v for k, v in pairs if k == "schema"]
    if not found:
        return dsn, None
    rest = urlencode([(k, v) for k, v in pairs if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), found[-1] or None


# get_related (feedsvc.store.related), for several probes at once: for every probe key (the
# probe's position, the key, the key's position: $1-$3) of every probe (language, time, id,
# translation key: $4-$7), its two windows, each the eligible commentaries nearest in time
# on one side, a range scan of related_keys' primary key (public commentaries only).
_RELATED = """
SELECT q.i, w.id, w.pub_us, q.n
FROM unnest($1::int[], $2::text[], $3::int[]) AS q (i, key, n)
JOIN unnest($4::text[], $5::bigint[], $6::text[], $7::text[]) WITH ORDINALITY AS a (lang, pub_us, id, tk, pos)
    ON a.pos = q.i + 1,
LATERAL (
    (SELECT k.id, k.pub_us FROM related_keys k
     WHERE k.lang = a.lang AND k.key = q.key AND (k.pub_us, k.id) < (a.pub_us, a.id COLLATE "C")
       AND (a.tk IS NULL OR k.translation_key IS DISTINCT FROM a.tk)
     ORDER BY k.pub_us DESC, k.id DESC LIMIT $8)
    UNION ALL
    (SELECT k.id, k.pub_us FROM related_keys k
     WHERE k.lang = a.lang AND k.key = q.key AND (k.pub_us, k.id) > (a.pub_us, a.id COLLATE "C")
       AND (a.tk IS NULL OR k.translation_key IS DISTINCT FROM a.tk)
     ORDER BY k.pub_us, k.id LIMIT $8)
) AS w
"""
