"""SqliteStore: the embedded default, one file under ``data/``, through aiosqlite.

Durability and concurrency choices (the README's "Durability" section explains them):

* WAL journal: readers never block the writer nor each other.
* ``synchronous=FULL``: a transaction reported committed survives a power loss. NORMAL
  would only risk the last transactions on power loss, but an acknowledged write must
  never be lost, and writes are rare next to reads.
* One writer connection behind an asyncio lock, transactions opened with
  ``BEGIN IMMEDIATE`` so ``busy_timeout`` applies to the write lock itself instead of
  failing at commit; several reader connections serve queries concurrently.
* Bounded waits (issue 7): a write waits at most ``busy_timeout_ms`` for its turn on the
  writer connection and at most as long again for SQLite's lock, then fails with
  StorageBusyError (a 503 with Retry-After), as does a full disk; nothing of it is kept,
  reads go on, and the next write after the cause is gone succeeds.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import aiosqlite
import msgspec

from feedsvc.errors import (
    ConflictError,
    FeedsvcError,
    InvalidInputError,
    NotFoundError,
    PreconditionFailedError,
    StorageBusyError,
    StorageError,
)
from feedsvc.files import create_private, readable_by_others
from feedsvc.model import (
    Category,
    CategoryIn,
    Change,
    Commentary,
    Count,
    DeliveryError,
    Query,
    TokenInfo,
    Translation,
    Webhook,
    from_us,
    to_us,
)
from feedsvc.store import bulk_rows, related, words
from feedsvc.store.migrations import sqlite as schema
from feedsvc.store.records import (
    STORED_WEBHOOK,
    TOKEN,
    TOKEN_INFO,
    WEBHOOK,
    WEBHOOK_WITH_SECRET,
    CopyBatch,
    DigestMark,
    DigestRecord,
    IdempotencyKey,
    LogEntry,
    StoredCategory,
    StoredCommentary,
    StoredWebhook,
    StoreState,
    TokenRecord,
    ViewStamp,
    WebhookRecord,
    category,
    digest_records,
    log_entry,
    stored_category,
    stored_webhook,
    token_info,
    token_record,
    token_values,
    webhook_from_row,
    webhook_record,
    webhook_values,
)
from feedsvc.store.sql.copy import upsert_webhook_sql
from feedsvc.store.sqlite import bulk as sqlite_import
from feedsvc.store.sqlite import search
from feedsvc.store.sqlite.search import fts_query
from feedsvc.store.sqlite.watch import SqliteWatch
from feedsvc.text import html_to_text

READERS = 3
BUSY_TIMEOUT_MS = 5000

_encode = msgspec.json.Encoder().encode
_decode_commentary = msgspec.json.Decoder(Commentary).decode
_decode_str_dict = msgspec.json.Decoder(dict[str, str]).decode
_decode_str_list = msgspec.json.Decoder(list[str]).decode
_T = TypeVar("_T")


def _date_window(query: Query) -> tuple[list[str], list[Any]]:
    """SQL for the published-date bounds. Calendar dates compare with the date written in
    published_at; the ±24 h instant range beside it (RFC 3339 offsets reach ±23:59, real
    time zones ±14 h) lets the index narrow the scan before that exact comparison."""
    clauses: list[str] = []
    params: list[Any] = []
    margin = timedelta(hours=24)
    if query.from_date is not None:
        start = datetime.combine(query.from_date, datetime.min.time(), UTC) - margin
        clauses.append("c.pub_us >= ? AND c.pub_date >= ?")
        params += [to_us(start), query.from_date.isoformat()]
    if query.to_date is not None:
        end = datetime.combine(query.to_date, datetime.min.time(), UTC) + timedelta(days=1) + margin
        clauses.append("c.pub_us < ? AND c.pub_date <= ?")
        params += [to_us(end), query.to_date.isoformat()]
    if query.from_time is not None:
        clauses.append("c.pub_us >= ?")
        params.append(to_us(query.from_time))
    if query.to_time is not None:
        clauses.append("c.pub_us <= ?")
        params.append(to_us(query.to_time))
    return clauses, params


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
    clauses = ["c.public = 1"]
    params: list[Any] = []
    if query.categories:
        clauses.append(f"c.category IN ({','.join('?' * len(query.categories))})")
        params += query.categories
    if query.lang:
        clauses.append("c.lang = ?")
        params.append(query.lang)
    if query.trend:
        clauses.append("c.trend = ?")
        params.append(query.trend)
    if query.tag and members is None:
        clauses.append("c.rowid IN (SELECT cid FROM commentary_tags WHERE tag_key = ?)")
        params.append(query.tag.casefold())
    if query.author and members is None:
        clauses.append("c.rowid IN (SELECT cid FROM commentary_authors WHERE name_key = ?)")
        params.append(query.author.casefold())
    date_clauses, date_params = _date_window(query)
    clauses += date_clauses
    params += date_params
    if query.updated_since is not None:
        clauses.append("c.updated_us >= ?")
        params.append(to_us(query.updated_since))
    if query.q and members is None:
        clauses.append("c.rowid IN (SELECT rowid FROM commentaries_fts WHERE commentaries_fts MATCH ?)")
        params.append(fts_query(query.q))
    for clause, param in members or ():
        clauses.append(clause)
        params.append(param)
    if query.after is not None:
        # A row value: SQLite seeks the index to the cursor (0.04 ms for page 1,000); the
        # same condition spelled with OR made it walk the 20,000 newer entries (4.7 ms).
        clauses.append("(c.pub_us, c.id) < (?, ?)")
        params += [query.after[0], query.after[1]]
    return " AND ".join(clauses), params


RELATED_SLOTS = 8
"""Commentaries whose related ones one statement finds: 8 x 29 keys x 2 windows = 464
SELECTs (SQLite joins at most 500 in one compound statement)."""


@functools.cache
def _related_statement(slots: int) -> str:
    """The statement for ``get_related``, for ``slots`` commentaries: the two windows of each
    of their probe keys (the eligible commentaries nearest in time on each side, each a range
    scan of related_keys' primary key, which holds public commentaries only), as (slot, id,
    pub_us, position of the key) rows. Its text is always the same, so SQLite prepares it
    once per connection (made afresh for each batch, it cost more than running it); unused
    slots and keys are NULL and find nothing.

    Parameters: ?1 the window size, then per slot its language, pub_us, id, translation
    key and MAX_KEYS keys."""
    windows = []
    for slot in range(slots):
        base = 2 + slot * (4 + related.MAX_KEYS)
        lang, pub_us, id, tk = (f"?{base + k}" for k in range(4))
        for n in range(related.MAX_KEYS):
            for side, order in (("<", " DESC"), (">", "")):
                windows.append(
                    f"SELECT * FROM (SELECT {slot}, k.id, k.pub_us, {n} FROM related_keys k"
                    f" WHERE k.lang = {lang} AND k.key = ?{base + 4 + n} AND (k.pub_us, k.id) {side} ({pub_us}, {id})"
                    f" AND ({tk} IS NULL OR k.translation_key IS NULL OR k.translation_key != {tk})"
                    f" ORDER BY k.pub_us{order}, k.id{order} LIMIT ?1)"
                )
    return " UNION ALL ".join(windows)


def _related_sql(probes: Sequence[related.Probe]) -> Iterator[tuple[int, str, list[Any]]]:
    """``_related_statement`` and its parameters for every RELATED_SLOTS probes (one slot
    for a single one), each after the position of its first probe: rows name the probe by
    its slot in its statement."""
    slots = 1 if len(probes) == 1 else RELATED_SLOTS
    for start in range(0, len(probes), slots):
        params: list[Any] = [related.WINDOW]
        for p in probes[start : start + slots]:
            params += [p.lang, p.pub_us, p.id, p.translation_key, *p.keys]
            params += [None] * (related.MAX_KEYS - len(p.keys))
        params += [None] * ((4 + related.MAX_KEYS) * slots + 1 - len(params))
        yield start, _related_statement(slots), params


_log = logging.getLogger(__name__)


class SqliteStore:
    """The Store protocol on one SQLite file (see the module docstring for the choices)."""

    def __init__(self, path: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._reader_list: list[aiosqlite.Connection] = []
        self._write_lock = asyncio.Lock()
        self._secret: bytes | None = None
        self._watch = SqliteWatch(path, busy_timeout_ms=busy_timeout_ms)
        self._import_conn: sqlite_import.Connection | None = None
        self._expansions = search.Expansions()

    # --- connections ----------------------------------------------------------------------

    async def _connect(self, *, readonly: bool) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA synchronous = FULL")
        if readonly:
            await conn.execute(search.CREATE_TERMS_TABLE)  # a temp table, so before query_only
            await conn.execute("PRAGMA query_only = ON")
        return conn

    async def open(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, exist_ok=True)
            self._create_private()
            self._writer = await self._connect(readonly=False)
            await self._writer.execute("PRAGMA journal_mode = WAL")
            await self.migrate()
            for _ in range(READERS):
                conn = await self._connect(readonly=True)
                self._reader_list.append(conn)
                self._readers.put_nowait(conn)
            self._watch.open()
        except (sqlite3.Error, OSError) as e:
            await self.close()
            raise StorageError(f"cannot open SQLite database {self.path}: {e}") from e

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
            raise _wrap(e) from e
        finally:
            self._readers.put_nowait(conn)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction on the single writer connection; rolled back on any error."""
        try:
            async with asyncio.timeout(self.busy_timeout_ms / 1000):
                await self._write_lock.acquire()
        except TimeoutError:
            raise StorageBusyError("database unavailable: writes are queued behind a slow one") from None
        try:
            conn = self._writer
            if conn is None:
                raise StorageError("the store is not open")
            try:
                await conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise _wrap(e) from e
            try:
                yield conn
                await conn.execute("COMMIT")
            except BaseException as e:
                try:
                    await conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if isinstance(e, sqlite3.Error):
                    raise _wrap(e) from e
                raise
        finally:
            self._write_lock.release()

    # One trip to the connection's thread (execute_fetchall) instead of three (execute,
    # fetch, close): each trip is a queue hand-off and a GIL switch, about a fifth of the
    # CPU of a cached list-API request.
    async def _fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with self._read() as conn:
            return list(await conn.execute_fetchall(sql, tuple(params)))

    async def _fetchone(self, sql: str, params: Iterable[Any] = ()) -> Any:
        """The first row of a query that yields one row at most (every caller's)."""
        rows = await self._fetchall(sql, params)
        return rows[0] if rows else None

    # --- schema ---------------------------------------------------------------------------

    async def migrate(self) -> int:
        async with self._write() as conn:
            async with conn.execute("PRAGMA user_version") as cur:
                row = await cur.fetchone()
            current = int(row[0]) if row else 0
            if current > schema.VERSION:
                raise StorageError(
                    f"the database is at schema {current}, newer than this feedsvc ({schema.VERSION})"
                )
            for n in range(current + 1, schema.VERSION + 1):
                for statement in _split_sql(schema.STEPS[n]):
                    await conn.execute(statement)
                await conn.execute(f"PRAGMA user_version = {n}")
        return schema.VERSION

    async def schema_status(self) -> tuple[int, int]:
        row = await self._fetchone("PRAGMA user_version")
        return int(row[0]), schema.VERSION

    # --- commentaries: writes -------------------------------------------------------------

    async def add_commentary(self, item: Commentary, *, unique_slug: bool, now: datetime) -> Commentary:
        async with self._write() as conn:
            if await _scalar(conn, "SELECT 1 FROM commentaries WHERE id = ?", (item.id,)):
                raise ConflictError(f"a commentary with id {item.id} exists", field="id")
            item = await _settle_slug(conn, item, unique_slug=unique_slug)
            public = _is_public(item, now)
            seq = await _append_change(
                conn, "commentary", item.id, "created", "created" if public else None, now
            )
            item = msgspec.structs.replace(item, version=seq)
            await _insert_row(conn, item, public)
            if public:
                await _set_change_doc(conn, seq, item)
            return item

    async def add_commentary_once(
        self, item: Commentary, *, unique_slug: bool, now: datetime, key: IdempotencyKey, not_before: datetime
    ) -> tuple[Commentary, bool]:
        async with self._write() as conn:
            await conn.execute("DELETE FROM idempotency_keys WHERE created_us < ?", (to_us(not_before),))
            async with conn.execute(
                "SELECT fingerprint, doc FROM idempotency_keys WHERE owner = ? AND key = ?", (key.owner, key.key)
            ) as cur:
                row = await cur.fetchone()
            if row is not None:
                if row[0] != key.fingerprint:
                    raise ConflictError(
                        "this Idempotency-Key was used with a different request body", field="Idempotency-Key"
                    )
                return _decode_commentary(row[1]), False
            stored = await self._add_in_transaction(conn, item, unique_slug=unique_slug, now=now)
            await conn.execute(
                "INSERT INTO idempotency_keys (owner, key, fingerprint, commentary_id, doc, created_us)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key.owner, key.key, key.fingerprint, stored.id, _encode(stored), to_us(now)),
            )
            return stored, True

    async def update_commentary(
        self, item: Commentary, *, expected_version: int | None, unique_slug: bool, now: datetime
    ) -> Commentary:
        async with self._write() as conn:
            row = await _current(conn, item.id, expected_version)
            was_public = bool(row[2])
            item = await _settle_slug(conn, item, unique_slug=unique_slug)
            public = _is_public(item, now)
            public_op = _public_op(was_public, public)
            seq = await _append_change(conn, "commentary", item.id, "updated", public_op, now)
            item = msgspec.structs.replace(item, version=seq)
            await _mark_digest(conn, row[0], now)
            await _delete_row(conn, row[0])
            await _insert_row(conn, item, public, rowid=row[0])
            if public:
                await _set_change_doc(conn, seq, item)
            return item

    async def delete_commentary(self, id: str, *, expected_version: int | None, now: datetime) -> int:
        async with self._write() as conn:
            row = await _current(conn, id, expected_version)
            public_op = "deleted" if row[2] else None
            seq = await _append_change(conn, "commentary", id, "deleted", public_op, now)
            await _mark_digest(conn, row[0], now)
            await _delete_row(conn, row[0])
            return seq

    async def publish_due(self, now: datetime) -> int:
        async with self._write() as conn:
            async with conn.execute(
                "SELECT rowid, doc FROM commentaries WHERE public = 0 AND status = 'published'"
                " AND pub_us <= ? ORDER BY pub_us, id",
                (to_us(now),),
            ) as cur:
                rows = list(await cur.fetchall())
            for rowid, doc in rows:
                item = _decode_commentary(doc)
                seq = await _append_change(conn, "commentary", item.id, "updated", "created", now)
                item = msgspec.structs.replace(item, version=seq)
                await conn.execute(
                    "UPDATE commentaries SET public = 1, version = ?, doc = ? WHERE rowid = ?",
                    (seq, _encode(item), rowid),
                )
                await _mark_digest(conn, rowid, now)
                await _insert_related_keys(conn, item, rowid)
                await _set_change_doc(conn, seq, item)
            return len(rows)

    # --- commentaries: reads --------------------------------------------------------------

    async def get_commentary(self, id: str, *, public_only: bool) -> Commentary:
        sql = "SELECT doc FROM commentaries c WHERE id = ?" + (" AND public = 1" if public_only else "")
        row = await self._fetchone(sql, (id,))
        if row is None:
            raise NotFoundError(f"no commentary with id {id}")
        return _decode_commentary(row[0])

    async def get_commentary_by_slug(self, lang: str, slug: str, *, public_only: bool) -> Commentary:
        sql = "SELECT doc FROM commentaries WHERE lang = ? AND slug = ?" + (
            " AND public = 1" if public_only else ""
        )
        row = await self._fetchone(sql, (lang, slug))
        if row is None:
            raise NotFoundError(f"no commentary with slug {slug} in {lang}")
        return _decode_commentary(row[0])

    async def get_slug_languages(self, slug: str) -> list[str]:
        rows = await self._fetchall(
            "SELECT lang FROM commentaries WHERE slug = ? AND public = 1 ORDER BY lang", (slug,)
        )
        return [r[0] for r in rows]

    async def get_commentaries(self, query: Query) -> list[Commentary]:
        async with self._read() as conn:
            rows = await self._page_rows(conn, query, "c.doc")
        return [_decode_commentary(r[0]) for r in rows]

    async def _page_rows(
        self, conn: aiosqlite.Connection, query: Query, columns: str, *, plan: search.Plan | None = None
    ) -> list[Any]:
        """``columns`` (of commentaries ``c``) of a page of ``query``, newest first. With a
        tag, an author or full text, in the plan feedsvc.store.sqlite.search chooses (or
        ``plan``, forced)."""
        order = "ORDER BY c.pub_us DESC, c.id DESC LIMIT ?"
        if not (query.q or query.tag or query.author):
            where, params = build_where(query)
            return list(await conn.execute_fetchall(
                f"SELECT {columns} FROM {source_of(query)} WHERE {where} {order}", [*params, query.limit]
            ))
        before = self._watch.token()
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
                sql = f"SELECT {columns} FROM {source_of(query)} WHERE {where} {order}"
                params.append(query.limit)
            return list(await conn.execute_fetchall(sql, params))
        finally:
            await conn.execute("COMMIT")

    async def get_view_stamp(self, query: Query) -> ViewStamp:
        async with self._read() as conn:
            rows = await self._page_rows(conn, query, "c.id, c.version, c.translation_key, c.category, c.updated_us")
            keys = sorted({r[2] for r in rows if r[2]})
            categories = sorted({r[3] for r in rows})
            versions: list[tuple[str, int]] = [(r[0], r[1]) for r in rows]
            if keys:
                # Translation links render inside items, so their versions count too.
                found = await conn.execute_fetchall(
                    f"SELECT id, version FROM commentaries WHERE public = 1 AND translation_key IN"
                    f" ({','.join('?' * len(keys))}) ORDER BY id",
                    keys,
                )
                versions += [("t:" + r[0], r[1]) for r in found]
            if categories:
                found = await conn.execute_fetchall(
                    f"SELECT slug, version FROM categories WHERE slug IN ({','.join('?' * len(categories))})",
                    categories,
                )
                versions += [("c:" + r[0], r[1]) for r in found]
        updated = max((r[4] for r in rows), default=None)
        return ViewStamp(tuple(versions), from_us(updated) if updated is not None else None)

    async def get_translations(self, keys: list[str]) -> dict[str, list[Translation]]:
        if not keys:
            return {}
        rows = await self._fetchall(
            f"SELECT translation_key, doc FROM commentaries WHERE public = 1 AND translation_key IN"
            f" ({','.join('?' * len(keys))}) ORDER BY lang, id",
            keys,
        )
        out: dict[str, list[Translation]] = {}
        for key, doc in rows:
            c = _decode_commentary(doc)
            out.setdefault(key, []).append(
                Translation(lang=c.lang, id=c.id, slug=c.slug, title=c.title, url=c.canonical_url or "")
            )
        return out

    async def get_digests(
        self, *, lang: str | None, limit: int, after: tuple[date, str] | None = None, start: date | None = None
    ) -> list[DigestRecord]:
        # The page's starts walk the index on (period_start, lang) (or (lang, period_start))
        # backwards and stop at `limit`; its keys are then sorted within those starts only:
        # sorting every (start, lang) group, as one GROUP BY ... ORDER BY start DESC, lang
        # ASC would, takes 25 ms at 100k commentaries instead of well under 1 ms. Its
        # commentaries and marks are read by the range of starts it spans.
        where, params = ["public = 1", "period_start IS NOT NULL"], []
        if lang is not None:
            where.append("lang = ?")
            params.append(lang)
        if start is not None:
            where.append("period_start = ?")
            params.append(start.isoformat())
        if after is not None:
            where.append("period_start <= ? AND (period_start < ? OR lang > ?)")
            params += [after[0].isoformat(), after[0].isoformat(), after[1]]
        condition = " AND ".join(where)
        async with self._read() as conn:
            await conn.execute("BEGIN")  # one snapshot for the queries
            try:
                async with conn.execute(
                    f"SELECT DISTINCT period_start FROM commentaries WHERE {condition}"
                    " ORDER BY period_start DESC LIMIT ?",
                    (*params, limit),
                ) as cur:
                    starts = [r[0] for r in await cur.fetchall()]
                if not starts:
                    return []
                async with conn.execute(
                    f"SELECT period_start, lang FROM commentaries WHERE {condition} AND period_start >= ?"
                    " GROUP BY period_start, lang ORDER BY period_start DESC, lang LIMIT ?",
                    (*params, starts[-1], limit),
                ) as cur:
                    keys = [(date.fromisoformat(r[0]), r[1]) for r in await cur.fetchall()]
                span = (keys[-1][0].isoformat(), keys[0][0].isoformat())
                lang_clause = " AND lang = ?" if lang is not None else ""
                async with conn.execute(
                    "SELECT period_start, lang, doc FROM commentaries WHERE public = 1 AND period_start IS NOT NULL"
                    f" AND period_start BETWEEN ? AND ?{lang_clause} ORDER BY pub_us, id",
                    (*span, *([lang] if lang is not None else [])),
                ) as cur:
                    members = [(date.fromisoformat(r[0]), r[1], _decode_commentary(r[2])) for r in await cur.fetchall()]
                async with conn.execute(
                    "SELECT period_start, lang, left_us FROM digest_marks WHERE period_start BETWEEN ? AND ?", span
                ) as cur:
                    left = {(date.fromisoformat(r[0]), r[1]): from_us(r[2]) for r in await cur.fetchall()}
            finally:
                await conn.execute("COMMIT")
        return digest_records(keys, members, left)

    async def get_related(self, items: Sequence[Commentary], limit: int) -> list[list[tuple[Commentary, float]]]:
        probes = [related.probe(item) for item in items]
        found: list[list[tuple[str, int, int]]] = [[] for _ in probes]
        for start, sql, params in _related_sql(probes):
            for slot, id, pub_us, n in await self._fetchall(sql, params):
                found[start + slot].append((id, pub_us, n))
        ranked = [related.rank(p, rows, limit) for p, rows in zip(probes, found, strict=True)]
        wanted = sorted({id for best in ranked for id, _ in best})
        docs: dict[str, Commentary] = {}
        if wanted:
            rows = await self._fetchall(
                f"SELECT id, doc FROM commentaries WHERE public = 1 AND id IN ({','.join('?' * len(wanted))})", wanted
            )
            docs = {r[0]: _decode_commentary(r[1]) for r in rows}
        return [[(docs[id], score) for id, score in best if id in docs] for best in ranked]

    async def get_state(self) -> StoreState:
        token = self._watch.token()  # before the query: see feedsvc.store.sqlite.watch
        row = await self._fetchone(
            "SELECT (SELECT coalesce(max(seq), 0) FROM changes),"
            " (SELECT min(pub_us) FROM commentaries WHERE public = 0 AND status = 'published')"
        )
        state = StoreState(seq=int(row[0]), next_due=from_us(row[1]) if row[1] is not None else None)
        self._watch.remember(token, state)
        return state

    def known_state(self) -> StoreState | None:
        return self._watch.known()

    async def get_changes(self, since: int, limit: int) -> tuple[list[Change], int]:
        async with self._read() as conn:
            await conn.execute("BEGIN")
            try:
                async with conn.execute("SELECT coalesce(max(seq), 0) FROM changes") as cur:
                    row = await cur.fetchone()
                newest = int(row[0]) if row else 0
                async with conn.execute(
                    "SELECT seq, ref, public_op, at_us, doc FROM changes WHERE seq > ? AND seq <= ?"
                    " AND public_op IS NOT NULL ORDER BY seq LIMIT ?",
                    (since, newest, limit),
                ) as cur:
                    rows = list(await cur.fetchall())
            finally:
                await conn.execute("COMMIT")
        items = [
            Change(
                seq=r[0], op=r[2], id=r[1], at=from_us(r[3]),
                commentary=_decode_commentary(r[4]) if r[4] is not None else None,
            )
            for r in rows
        ]
        # A short page means every change up to `newest` was examined.
        resume = items[-1].seq if len(items) == limit else max(newest, since)
        return items, resume

    async def get_tag_counts(self) -> list[Count]:
        rows = await self._fetchall(
            "SELECT min(t.tag), count(*) AS n FROM commentary_tags t JOIN commentaries c ON c.rowid = t.cid"
            " WHERE c.public = 1 GROUP BY t.tag_key ORDER BY n DESC, t.tag_key"
        )
        return [Count(name=r[0], count=r[1]) for r in rows]

    async def get_author_counts(self) -> list[Count]:
        rows = await self._fetchall(
            "SELECT min(a.name), count(*) AS n FROM commentary_authors a JOIN commentaries c"
            " ON c.rowid = a.cid WHERE c.public = 1 GROUP BY a.name_key ORDER BY n DESC, a.name_key"
        )
        return [Count(name=r[0], count=r[1]) for r in rows]

    async def get_language_counts(self) -> list[Count]:
        rows = await self._fetchall(
            "SELECT lang, count(*) AS n FROM commentaries WHERE public = 1 GROUP BY lang ORDER BY n DESC, lang"
        )
        return [Count(name=r[0], count=r[1]) for r in rows]

    # --- categories -----------------------------------------------------------------------

    async def get_categories(self) -> list[Category]:
        rows = await self._fetchall(
            "SELECT k.slug, k.names, k.descriptions, k.updated_us,"
            " (SELECT count(*) FROM commentaries c WHERE c.category = k.slug AND c.public = 1) AS count"
            " FROM categories k ORDER BY k.slug"
        )
        return [category(r) for r in rows]

    async def get_category(self, slug: str) -> Category:
        row = await self._fetchone(
            "SELECT k.slug, k.names, k.descriptions, k.updated_us,"
            " (SELECT count(*) FROM commentaries c WHERE c.category = k.slug AND c.public = 1) AS count"
            " FROM categories k WHERE k.slug = ?",
            (slug,),
        )
        if row is None:
            raise NotFoundError(f"no category {slug}")
        return category(row)

    async def put_category(self, slug: str, data: CategoryIn, *, now: datetime) -> tuple[Category, bool]:
        async with self._write() as conn:
            exists = await _scalar(conn, "SELECT 1 FROM categories WHERE slug = ?", (slug,))
            seq = await _append_change(conn, "category", slug, "updated" if exists else "created", None, now)
            await conn.execute(
                "INSERT INTO categories (slug, names, descriptions, updated_us, version) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (slug) DO UPDATE SET names = excluded.names,"
                " descriptions = excluded.descriptions, updated_us = excluded.updated_us,"
                " version = excluded.version",
                (slug, _encode(data.names), _encode(data.descriptions), to_us(now), seq),
            )
        return await self.get_category(slug), not exists

    # --- tokens ---------------------------------------------------------------------------

    async def add_token(self, record: TokenRecord) -> None:
        info = record.info
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO tokens (id, name, scopes, salt, digest, created_us, expires_us)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    info.id, info.name, _encode(info.scopes), record.salt, record.digest,
                    to_us(info.created_at), to_us(info.expires_at) if info.expires_at else None,
                ),
            )

    async def get_token(self, id: str) -> TokenRecord:
        row = await self._fetchone(
            f"SELECT {TOKEN.sql} FROM tokens WHERE id = ?",
            (id,),
        )
        if row is None:
            raise NotFoundError(f"no token {id}")
        return token_record(row)

    async def get_tokens(self) -> list[TokenInfo]:
        rows = await self._fetchall(
            f"SELECT {TOKEN_INFO.sql} FROM tokens ORDER BY created_us DESC, id DESC"
        )
        return [token_info(r) for r in rows]

    async def revoke_token(self, id: str, *, now: datetime) -> TokenInfo:
        async with self._write() as conn:
            cur = await conn.execute(
                "UPDATE tokens SET revoked_us = coalesce(revoked_us, ?) WHERE id = ?", (to_us(now), id)
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no token {id}")
        return (await self.get_token(id)).info

    async def get_secret(self) -> bytes:
        if self._secret is None:
            row = await self._fetchone("SELECT value FROM meta WHERE key = 'secret'")
            if row is None:
                async with self._write() as conn:
                    await conn.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES ('secret', ?)", (secrets.token_bytes(32),)
                    )
                row = await self._fetchone("SELECT value FROM meta WHERE key = 'secret'")
            self._secret = bytes(row[0])
        return self._secret

    # --- webhooks (issue 4, part 6) -------------------------------------------------------

    async def add_webhook(self, hook: Webhook, *, secret: bytes, owner: str) -> Webhook:
        async with self._write() as conn:
            head = await _scalar(conn, "SELECT coalesce(max(seq), 0) FROM changes", ())
            await conn.execute(
                "INSERT INTO webhooks (id, url, events, categories, languages, description, secret, owner,"
                " created_us, cursor, state, failures, next_attempt_us, lease_until_us)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', 0, 0, 0)",
                (
                    hook.id, hook.url, _encode(hook.events), _encode(hook.categories), _encode(hook.languages),
                    hook.description, secret, owner, to_us(hook.created_at), head,
                ),
            )
        return await self.get_webhook(hook.id)

    async def get_webhooks(self) -> list[Webhook]:
        rows = await self._fetchall(f"SELECT {WEBHOOK.sql} FROM webhooks ORDER BY created_us, id")
        return [webhook_from_row(r) for r in rows]

    async def get_webhook(self, id: str) -> Webhook:
        row = await self._fetchone(f"SELECT {WEBHOOK.sql} FROM webhooks WHERE id = ?", (id,))
        if row is None:
            raise NotFoundError(f"no webhook {id}")
        return webhook_from_row(row)

    async def delete_webhook(self, id: str) -> None:
        async with self._write() as conn:
            cur = await conn.execute("DELETE FROM webhooks WHERE id = ?", (id,))
            if cur.rowcount == 0:
                raise NotFoundError(f"no webhook {id}")

    async def claim_webhooks(
        self, *, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[WebhookRecord]:
        due = (
            "state = 'active' AND next_attempt_us <= ? AND lease_until_us < ?"
            " AND cursor < (SELECT coalesce(max(seq), 0) FROM changes)"
        )
        now_us = to_us(now)
        # Looked for on a reader first, so that an idle poll never queues for the writer.
        if await self._fetchone(f"SELECT 1 FROM webhooks WHERE {due} LIMIT 1", (now_us, now_us)) is None:
            return []
        async with self._write() as conn, conn.execute(
            f"UPDATE webhooks SET lease_owner = ?, lease_until_us = ? WHERE id IN"
            f" (SELECT id FROM webhooks WHERE {due} ORDER BY next_attempt_us, id LIMIT ?)"
            f" RETURNING {WEBHOOK_WITH_SECRET.sql}",
            (owner, to_us(lease_until), now_us, now_us, limit),
        ) as cur:
            rows = list(await cur.fetchall())
        return [webhook_record(r) for r in rows]

    async def advance_webhook(
        self, id: str, *, owner: str, position: int, delivered_at: datetime | None, lease_until: datetime
    ) -> bool:
        success = (
            ", failures = 0, next_attempt_us = 0, last_success_us = ?" if delivered_at is not None else ""
        )
        params: list[Any] = [position, to_us(lease_until)]
        if delivered_at is not None:
            params.append(to_us(delivered_at))
        async with self._write() as conn:
            cur = await conn.execute(
                f"UPDATE webhooks SET cursor = max(cursor, ?), lease_until_us = ?{success}"
                " WHERE id = ? AND lease_owner = ? AND state = 'active'",
                (*params, id, owner),
            )
            return bool(cur.rowcount == 1)

    async def fail_webhook(
        self, id: str, *, owner: str, error: DeliveryError, next_attempt: datetime, disable: str | None
    ) -> bool:
        disabled = ", state = 'disabled', disabled_reason = ?, disabled_us = ?" if disable is not None else ""
        params: list[Any] = [error.message, error.status, to_us(error.at), to_us(next_attempt)]
        if disable is not None:
            params += [disable, to_us(error.at)]
        async with self._write() as conn:
            cur = await conn.execute(
                "UPDATE webhooks SET failures = failures + 1, last_error = ?, last_error_status = ?,"
                f" last_error_us = ?, next_attempt_us = ?, lease_owner = NULL, lease_until_us = 0{disabled}"
                " WHERE id = ? AND lease_owner = ? AND state = 'active'",
                (*params, id, owner),
            )
            return bool(cur.rowcount == 1)

    async def release_webhooks(self, owner: str, id: str | None = None) -> None:
        async with self._write() as conn:
            await conn.execute(
                "UPDATE webhooks SET lease_owner = NULL, lease_until_us = 0 WHERE lease_owner = ?"
                + (" AND id = ?" if id is not None else ""),
                (owner,) if id is None else (owner, id),
            )

    async def get_last_public_doc(self, id: str, before: int) -> Commentary | None:
        row = await self._fetchone(
            "SELECT doc FROM changes WHERE ref = ? AND seq < ? AND doc IS NOT NULL ORDER BY seq DESC LIMIT 1",
            (id, before),
        )
        return _decode_commentary(row[0]) if row is not None else None

    # --- bulk and maintenance -------------------------------------------------------------

    async def backup(self, target: str) -> None:
        """Write a consistent copy of the live database to ``target`` (SQLite backup API)."""
        async with self._read() as conn:
            dest = await aiosqlite.connect(target)
            try:
                await conn.backup(dest)
            finally:
                await dest.close()

    # --- bulk import and export (feedsvc import / export) ---------------------------------
    # Kept together at the end of the class. A batch runs in a worker thread on a connection
    # of its own, inside the write lock, so it costs one thread hop instead of about ten per
    # record through aiosqlite. The batch is written as rows built beforehand, one statement
    # a table (feedsvc.store.sqlite.bulk); when the database refuses one of them, record
    # by record through the very helpers add_commentary uses.

    IMPORT_CHUNK = 1000
    """Commentaries read per query by ``iter_all_commentaries``."""
    IMPORT_CACHE_KIB = 131072
    """Page cache of the import connection (128 MiB, the default is 2): a batch updates
    index pages all over the file (ids, slugs, times and related keys arrive in no order),
    and a bigger cache kept across batches reads them far less often. Memory only; how
    writes reach the disk (WAL, synchronous=FULL, one commit a batch) is unchanged."""
    IMPORT_WAL_PAGES = 65536
    """Pages (256 MiB) the WAL may hold before an import batch waits for the checkpoint
    behind it (sqlite_import.Connection): about three batches, so the WAL peaks near half a
    gigabyte during an import."""

    async def import_commentaries(
        self, items: Sequence[tuple[Commentary, bool]], *, now: datetime
    ) -> list[Commentary | FeedsvcError]:
        if not items:
            return []
        pairs = list(items)

        def write() -> list[Commentary | FeedsvcError]:
            outcomes = self._import_batch(bulk_rows.import_rows(pairs), now)
            return [
                outcome if isinstance(outcome, FeedsvcError)
                else msgspec.structs.replace(item, slug=outcome.slug, version=outcome.seq)
                for (item, _), outcome in zip(pairs, outcomes, strict=True)
            ]

        return await self._in_import_thread(write)

    async def import_rows(
        self, rows: Sequence[bulk_rows.ImportRow], *, now: datetime
    ) -> list[bulk_rows.Imported | FeedsvcError]:
        """``import_commentaries`` for rows built by ``bulk_rows.import_rows`` (by
        ``feedsvc import``'s worker processes): the stored rows' sequence numbers and slugs."""
        if not rows:
            return []
        return await self._in_import_thread(functools.partial(self._import_batch, list(rows), now))

    async def _in_import_thread(self, write: Callable[[], _T]) -> _T:
        async with self._write_lock:
            if self._writer is None:
                raise StorageError("the store is not open")
            try:
                return await asyncio.to_thread(write)
            except sqlite3.Error as e:
                raise _wrap(e) from e

    def _import_batch(
        self, rows: list[bulk_rows.ImportRow], now: datetime
    ) -> list[bulk_rows.Imported | FeedsvcError]:
        """Write one batch on the import connection (runs in a worker thread, inside the
        write lock, so one batch at a time uses it): all of it in one go, or, when the
        database refused a record, record by record (see feedsvc.store.sqlite.bulk)."""
        if self._import_conn is None:
            self._import_conn = sqlite_import.Connection(
                self.path, busy_timeout_ms=self.busy_timeout_ms, cache_kib=self.IMPORT_CACHE_KIB,
                max_wal_pages=self.IMPORT_WAL_PAGES,
            )
        conn = self._import_conn.conn
        self._import_conn.before_batch()
        conn.execute("BEGIN IMMEDIATE")
        try:
            categories = {row[0] for row in conn.execute("SELECT slug FROM categories")}
            try:
                results = sqlite_import.write_rows(conn, rows, categories, now)
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                results = self._import_isolated(conn, rows, categories, now)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._import_conn.after_commit()
        return results

    @staticmethod
    def _import_isolated(
        conn: sqlite3.Connection, rows: list[bulk_rows.ImportRow], categories: set[str], now: datetime
    ) -> list[bulk_rows.Imported | FeedsvcError]:
        """The batch record by record, each in a SAVEPOINT and through the very helpers
        add_commentary uses, so a record the database refuses fails alone."""
        items = [row.commentary() for row in rows]
        words.shared().prime(item.title for item in items)  # for the related keys
        results: list[bulk_rows.Imported | FeedsvcError] = []
        for row, item in zip(rows, items, strict=True):
            outcome = SqliteStore._import_one(conn, item, row.unique_slug, categories, now)
            results.append(outcome if isinstance(outcome, FeedsvcError) else bulk_rows.Imported(outcome.version, outcome.slug))
        return results

    @staticmethod
    def _import_one(
        conn: sqlite3.Connection, item: Commentary, unique_slug: bool, categories: set[str], now: datetime
    ) -> Commentary | FeedsvcError:
        """Store one record in a SAVEPOINT; return its error instead of raising it."""
        if item.category not in categories:
            return InvalidInputError(f"unknown category {item.category!r}", field="category")
        # Duck-types the aiosqlite.Connection the helpers are written for.
        sync_conn: Any = SqliteStore._SyncConnection(conn)
        conn.execute("SAVEPOINT import_record")
        try:
            stored = SqliteStore._run_now(
                SqliteStore._add_in_transaction(sync_conn, item, unique_slug=unique_slug, now=now)
            )
        except (FeedsvcError, sqlite3.IntegrityError) as e:
            conn.execute("ROLLBACK TO import_record")
            conn.execute("RELEASE import_record")
            error = _wrap(e) if isinstance(e, sqlite3.IntegrityError) else e
            assert isinstance(error, FeedsvcError)
            return error
        conn.execute("RELEASE import_record")
        return stored

    @staticmethod
    async def _add_in_transaction(
        conn: aiosqlite.Connection, item: Commentary, *, unique_slug: bool, now: datetime
    ) -> Commentary:
        """What ``add_commentary`` does inside its transaction: the same helpers, in order."""
        if await _scalar(conn, "SELECT 1 FROM commentaries WHERE id = ?", (item.id,)):
            raise ConflictError(f"a commentary with id {item.id} exists", field="id")
        item = await _settle_slug(conn, item, unique_slug=unique_slug)
        public = _is_public(item, now)
        seq = await _append_change(conn, "commentary", item.id, "created", "created" if public else None, now)
        item = msgspec.structs.replace(item, version=seq)
        await _insert_row(conn, item, public)
        if public:
            await _set_change_doc(conn, seq, item)
        return item

    @staticmethod
    def _run_now(coro: Coroutine[Any, Any, Commentary]) -> Commentary:
        """Drive a coroutine whose awaits all finish at once (``_SyncConnection``) to its end."""
        try:
            coro.send(None)
        except StopIteration as done:
            result: Commentary = done.value
            return result
        coro.close()
        raise RuntimeError("a store helper suspended on a synchronous connection")

    class _SyncResult:
        """An aiosqlite ``execute`` result that has already finished: awaitable, usable with
        ``async with``, with ``lastrowid`` and ``fetchone`` like aiosqlite's cursor."""

        def __init__(self, cursor: sqlite3.Cursor) -> None:
            self._cursor = cursor
            self.lastrowid = cursor.lastrowid

        def __await__(self) -> Generator[Any, None, SqliteStore._SyncResult]:
            return self
            yield  # unreachable; makes this a generator that finishes without suspending

        async def __aenter__(self) -> SqliteStore._SyncResult:
            return self

        async def __aexit__(self, *exc: object) -> None:
            self._cursor.close()

        async def fetchone(self) -> Any:
            return self._cursor.fetchone()

    class _SyncConnection:
        """The part of ``aiosqlite.Connection`` the write helpers use, on a plain sqlite3
        connection in the current thread, so those helpers run without thread hops."""

        def __init__(self, conn: sqlite3.Connection) -> None:
            self._conn = conn

        def execute(self, sql: str, parameters: Iterable[Any] = ()) -> SqliteStore._SyncResult:
            return SqliteStore._SyncResult(self._conn.execute(sql, tuple(parameters)))

        async def executemany(self, sql: str, parameters: Iterable[tuple[Any, ...]]) -> SqliteStore._SyncResult:
            return SqliteStore._SyncResult(self._conn.executemany(sql, parameters))

    async def iter_all_commentaries(self) -> AsyncIterator[Commentary]:
        after = ""
        while True:
            rows = await self._fetchall(
                "SELECT id, doc FROM commentaries WHERE id > ? ORDER BY id LIMIT ?", (after, self.IMPORT_CHUNK)
            )
            for row in rows:
                yield _decode_commentary(row[1])
            if len(rows) < self.IMPORT_CHUNK:
                return
            after = rows[-1][0]

    # --- verbatim copies between stores (feedsvc migrate-data) -----------------------------

    async def get_log(self, since: int, limit: int) -> list[LogEntry]:
        rows = await self._fetchall(
            "SELECT seq, kind, ref, op, public_op, at_us, doc FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
            (since, limit),
        )
        return [log_entry(r) for r in rows]

    async def get_stored_commentaries(
        self, *, after: str = "", ids: Sequence[str] | None = None, limit: int
    ) -> list[StoredCommentary]:
        among = "" if ids is None else f" AND id IN ({','.join('?' * len(ids))})"
        rows = await self._fetchall(
            f"SELECT doc, public FROM commentaries WHERE id > ?{among} ORDER BY id LIMIT ?",
            [after, *(ids or ()), limit],
        )
        return [StoredCommentary(item=_decode_commentary(r[0]), public=bool(r[1])) for r in rows]

    async def get_stored_categories(self) -> list[StoredCategory]:
        rows = await self._fetchall(
            "SELECT slug, names, descriptions, updated_us, version FROM categories ORDER BY slug"
        )
        return [stored_category(r) for r in rows]

    async def get_token_records(self) -> list[TokenRecord]:
        rows = await self._fetchall(
            f"SELECT {TOKEN.sql} FROM tokens ORDER BY id"
        )
        return [token_record(r) for r in rows]

    async def get_digest_marks(self) -> list[DigestMark]:
        rows = await self._fetchall("SELECT lang, period_start, left_us FROM digest_marks ORDER BY lang, period_start")
        return [DigestMark(lang=r[0], period_start=date.fromisoformat(r[1]), left_us=r[2]) for r in rows]

    async def get_stored_webhooks(self) -> list[StoredWebhook]:
        rows = await self._fetchall(f"SELECT {STORED_WEBHOOK.sql} FROM webhooks ORDER BY id")
        return [stored_webhook(r) for r in rows]

    async def load_copy(self, batch: CopyBatch) -> None:
        async with self._write() as conn:
            await conn.executemany(
                "INSERT INTO categories (slug, names, descriptions, updated_us, version) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (slug) DO UPDATE SET names = excluded.names, descriptions = excluded.descriptions,"
                " updated_us = excluded.updated_us, version = excluded.version",
                [(c.slug, _encode(c.names), _encode(c.descriptions), c.updated_us, c.version) for c in batch.categories],
            )
            rowids: dict[str, int] = {}
            for id in [*batch.removed, *(c.item.id for c in batch.commentaries)]:
                rowid = await _scalar(conn, "SELECT rowid FROM commentaries WHERE id = ?", (id,))
                if rowid is not None:
                    await _delete_row(conn, rowid)
                    rowids[id] = rowid
            for copy in batch.commentaries:
                item = copy.item
                stale = await _scalar(
                    conn, "SELECT rowid FROM commentaries WHERE lang = ? AND slug = ?", (item.lang, item.slug)
                )
                if stale is not None:
                    await _delete_row(conn, stale)
                await _insert_row(conn, item, copy.public, rowid=rowids.get(item.id))
            # An explicit seq also moves AUTOINCREMENT's counter (sqlite_sequence) up to it,
            # so the next write here gets the number after the copied ones.
            await conn.executemany(
                "INSERT INTO changes (seq, kind, ref, op, public_op, at_us, doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(e.seq, e.kind, e.ref, e.op, e.public_op, e.at_us, e.doc) for e in batch.log],
            )
            await conn.executemany(
                f"INSERT INTO tokens ({TOKEN.sql})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
                " scopes = excluded.scopes, salt = excluded.salt, digest = excluded.digest,"
                " created_us = excluded.created_us, expires_us = excluded.expires_us,"
                " revoked_us = excluded.revoked_us",
                [token_values(t) for t in batch.tokens],
            )
            await conn.executemany(
                "INSERT INTO digest_marks (lang, period_start, left_us) VALUES (?, ?, ?)"
                " ON CONFLICT (lang, period_start) DO UPDATE SET left_us = excluded.left_us",
                [(m.lang, m.period_start.isoformat(), m.left_us) for m in batch.digest_marks],
            )
            if batch.webhooks is not None:
                await conn.executemany(
                    upsert_webhook_sql(["?"] * 19), [webhook_values(h) for h in batch.webhooks]
                )
                keep = [h.id for h in batch.webhooks]
                await conn.execute(f"DELETE FROM webhooks WHERE id NOT IN ({','.join('?' * len(keep))})", keep)
            if batch.secret is not None:
                await conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('secret', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (batch.secret,),
                )
        self._secret = None  # read anew: what is stored now is what counts


# --- helpers that run inside a write transaction ------------------------------------------


def _wrap(e: sqlite3.Error) -> Exception:
    """Driver errors stop here: map them onto the feedsvc error tree."""
    text = str(e).lower()
    if isinstance(e, sqlite3.IntegrityError):
        if "foreign key" in text:
            return InvalidInputError("unknown category", field="category")
        return ConflictError(f"conflict: {e}")
    if isinstance(e, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text or "full" in text or "disk i/o" in text
    ):
        return StorageBusyError(f"database unavailable: {e}")
    return StorageError(f"database error: {e}")


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (no step uses ';' inside a string or trigger)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


async def _scalar(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...]) -> Any:
    async with conn.execute(sql, params) as cur:
        row = await cur.fetchone()
    return row[0] if row else None


def _is_public(item: Commentary, now: datetime) -> bool:
    return item.status == "published" and item.published_at <= now


def _public_op(was_public: bool, public: bool) -> str | None:
    if public:
        return "updated" if was_public else "created"
    return "deleted" if was_public else None


async def _current(conn: aiosqlite.Connection, id: str, expected_version: int | None) -> Any:
    async with conn.execute("SELECT rowid, version, public FROM commentaries WHERE id = ?", (id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"no commentary with id {id}")
    if expected_version is not None and row[1] != expected_version:
        raise PreconditionFailedError(current_version=row[1])
    return row


async def _settle_slug(conn: aiosqlite.Connection, item: Commentary, *, unique_slug: bool) -> Commentary:
    """Keep the slug unique within its language: suffix it, or refuse with ConflictError."""
    base, n, slug = item.slug, 1, item.slug
    while await _scalar(
        conn, "SELECT 1 FROM commentaries WHERE lang = ? AND slug = ? AND id != ?", (item.lang, slug, item.id)
    ):
        if not unique_slug:
            raise ConflictError(f"slug {slug!r} is taken in {item.lang}", field="slug")
        n += 1
        suffix = f"-{n}"
        slug = base[: 120 - len(suffix)] + suffix
    return item if slug == item.slug else msgspec.structs.replace(item, slug=slug)


async def _append_change(
    conn: aiosqlite.Connection, kind: str, ref: str, op: str, public_op: str | None, now: datetime
) -> int:
    cur = await conn.execute(
        "INSERT INTO changes (kind, ref, op, public_op, at_us) VALUES (?, ?, ?, ?, ?)",
        (kind, ref, op, public_op, to_us(now)),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


async def _set_change_doc(conn: aiosqlite.Connection, seq: int, item: Commentary) -> None:
    await conn.execute("UPDATE changes SET doc = ? WHERE seq = ?", (_encode(item), seq))


async def _insert_row(conn: aiosqlite.Connection, item: Commentary, public: bool, rowid: int | None = None) -> None:
    cur = await conn.execute(
        "INSERT INTO commentaries (rowid, id, lang, slug, translation_key, category, status, trend,"
        " pub_us, pub_date, updated_us, period_start, period_end, version, public, doc)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            rowid, item.id, item.lang, item.slug, item.translation_key, item.category, item.status,
            item.trend, to_us(item.published_at), item.published_at.date().isoformat(),
            to_us(item.updated_at),
            item.period.start.isoformat() if item.period else None,
            item.period.end.isoformat() if item.period else None,
            item.version, int(public), _encode(item),
        ),
    )
    cid = cur.lastrowid
    tags = {t.casefold(): t for t in item.tags}
    await conn.executemany(
        "INSERT INTO commentary_tags (cid, tag, tag_key) VALUES (?, ?, ?)", [(cid, t, k) for k, t in tags.items()]
    )
    authors = {a.name.casefold(): a.name for a in item.authors}
    await conn.executemany(
        "INSERT INTO commentary_authors (cid, name, name_key) VALUES (?, ?, ?)",
        [(cid, n, k) for k, n in authors.items()],
    )
    if public:
        await _insert_related_keys(conn, item, cid)
    await conn.execute(
        "INSERT INTO commentaries_fts (rowid, title, summary, body, tags, authors) VALUES (?, ?, ?, ?, ?, ?)",
        (
            cid, item.title, item.summary, html_to_text(item.body_html), " ".join(item.tags),
            " ".join(a.name for a in item.authors),
        ),
    )


async def _insert_related_keys(conn: aiosqlite.Connection, item: Commentary, cid: int | None) -> None:
    """The related keys (feedsvc.store.related) of a commentary that is public now."""
    pub_us = to_us(item.published_at)
    await conn.executemany(
        "INSERT INTO related_keys (lang, key, pub_us, id, translation_key, cid) VALUES (?, ?, ?, ?, ?, ?)",
        [(item.lang, key, pub_us, item.id, item.translation_key, cid) for key in related.stored_keys(item)],
    )


async def _mark_digest(conn: aiosqlite.Connection, rowid: int, now: datetime) -> None:
    """Note ``now`` on the weekly digest of a row that is public and has a period (issue 9):
    called before the row is replaced or deleted, and once it turned public when due, so
    the digest's updated time moves though none of the commentaries left in it changed."""
    await conn.execute(
        "INSERT INTO digest_marks (lang, period_start, left_us)"
        " SELECT lang, period_start, ? FROM commentaries WHERE rowid = ? AND public = 1 AND period_start IS NOT NULL"
        " ON CONFLICT (lang, period_start) DO UPDATE SET left_us = max(left_us, excluded.left_us)",
        (to_us(now), rowid),
    )


async def _delete_row(conn: aiosqlite.Connection, rowid: int) -> None:
    await conn.execute("DELETE FROM commentaries_fts WHERE rowid = ?", (rowid,))
    await conn.execute("DELETE FROM commentaries WHERE rowid = ?", (rowid,))



