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
* **Full-text search matches what SqliteStore matches.** Words are split by SQLite's own
  FTS5 tokenizer (feedsvc.store.words), stored with their positions in ``tsv``, and queried as
  SQLite's ``fts_query`` does: every word, phrases for words the tokenizer splits, the last
  word as a prefix. On top, ``tsv_stem`` holds the same words through the language's
  text-search configuration (``TEXT_SEARCH_CONFIGS``), and a query word also matches
  through its stem, so it finds its inflected forms ("sanction" finds "sanctions",
  "санкции" finds "санкций"): PostgreSQL finds everything SQLite finds, and sometimes
  more. (On the 43 demo commentaries, of 2,056 one- and two-word queries 90% gave the
  same results and 10% more; none fewer.) With ``TEXT_SEARCH_CONFIGS`` empty the two
  searches are the same.
* **A schema of its own** when asked (``schema=`` or ``?schema=NAME`` in the URL): it is
  created if missing and made the connection's ``search_path`` as a startup setting, which
  survives the pool's ``RESET ALL`` between uses (a ``SET`` in ``init`` would not).

Driver errors stop here (``_wrap``): a unique violation is a ConflictError, a foreign key
violation an unknown category, connection trouble, timeouts, full disks and lock waits a
StorageBusyError, and anything else a StorageError.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
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
from feedsvc.store import related
from feedsvc.store.migrations import postgres as schema
from feedsvc.store.postgres.watch import PostgresWatch
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
from feedsvc.store.words import Words as _Words
from feedsvc.text import html_to_text

POOL_MIN, POOL_MAX = 1, 10
LOCK_TIMEOUT_MS = 10_000
"""How long a write waits for the write lock (or any row lock) before StorageBusyError."""
COMMAND_TIMEOUT_S = 60.0
# Advisory lock keys. The write lock is named after the change log it guards (the oid of
# this schema's `changes` table), so every node writing to that log takes the same lock,
# however its search_path was spelled, and stores on other schemas (test runs) never wait.
WRITE_LOCK_SQL = "SELECT pg_advisory_xact_lock((x'66656564'::bigint << 32) | 'changes'::regclass::oid::bigint)"
# Every write transaction also notifies the listeners of the same change log (its channel
# is named after the log, like the lock); PostgreSQL delivers it only if the transaction
# commits. Nodes then know nothing moved without asking (feedsvc.store.postgres.watch).
CHANNEL_SQL = "SELECT 'feedsvc_changes_' || 'changes'::regclass::oid::text"
WRITE_SQL = WRITE_LOCK_SQL + ", pg_notify('feedsvc_changes_' || 'changes'::regclass::oid::text, '')"
# The migration lock is named after the schema, which may not exist yet.
MIGRATE_LOCK_SQL = "SELECT pg_advisory_xact_lock(x'6d696772'::int, hashtext(coalesce($1::text, current_schema(), '')))"

TEXT_SEARCH_CONFIGS = {"en": "english", "ru": "russian"}
"""Text-search configuration by primary language subtag; ``simple`` for any other."""
MAX_LEXEME_BYTES = 2047  # PostgreSQL refuses longer lexemes; longer words are cut to this
MAX_POSITION = 16383  # positions beyond it are stored as 16383
MAX_POSITIONS_PER_LEXEME = 256
MAX_TSVECTOR_TEXT = 1_000_000  # lexeme bytes per tsvector (PostgreSQL's limit is 1 MiB)
WEIGHTS = ("A", "B", "C", "D", "D")  # title, summary, body, tags, authors

_encode = msgspec.json.Encoder().encode
_decode_commentary = msgspec.json.Decoder(Commentary).decode
_decode_str_dict = msgspec.json.Decoder(dict[str, str]).decode
_decode_str_list = msgspec.json.Decoder(list[str]).decode

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
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class PostgresStore:
    """The Store protocol on PostgreSQL (see the module docstring for the choices)."""

    def __init__(self, dsn: str, *, schema: str | None = None, lock_timeout_ms: int = LOCK_TIMEOUT_MS) -> None:
        self.dsn, url_schema = _split_schema(dsn)
        self.schema = schema or url_schema
        self.lock_timeout_ms = lock_timeout_ms
        # asyncpg connections belong to the event loop that made them. A store used from
        # another loop too (aiosqlite allows it; the test client runs the app in a thread of
        # its own while tests call the service directly) gets a pool for that loop.
        self._pools: dict[asyncio.AbstractEventLoop, asyncpg.Pool] = {}
        self._is_open = False
        self._words: _Words | None = None
        self._secret: bytes | None = None
        self._watch = PostgresWatch(self._connect_listener, CHANNEL_SQL)

    # --- connections ----------------------------------------------------------------------

    async def open(self) -> None:
        try:
            self._words = _Words()
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
        settings = {"lock_timeout": str(self.lock_timeout_ms)}
        if self.schema:
            settings["search_path"] = _quote_ident(self.schema)
        pool = await asyncpg.create_pool(
            self.dsn, min_size=POOL_MIN, max_size=POOL_MAX, command_timeout=COMMAND_TIMEOUT_S, server_settings=settings
        )
        if loop in self._pools or not self._is_open:  # made meanwhile, or closed meanwhile
            await pool.close()
            return await self._pool()
        self._pools[loop] = pool
        return pool

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with (await self._pool()).acquire() as conn:
                yield conn
        except _DRIVER_ERRORS as e:
            raise _wrap(e) from e

    async def _connect_listener(self) -> asyncpg.Connection:
        settings = {"search_path": _quote_ident(self.schema)} if self.schema else {}
        return await asyncpg.connect(self.dsn, server_settings=settings, timeout=10)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[_Tx]:
        """One write transaction holding the write lock; rolled back on any error."""
        try:
            async with (await self._pool()).acquire() as conn, conn.transaction():
                await conn.execute(WRITE_SQL)
                yield _Tx(conn)
        except _DRIVER_ERRORS as e:
            raise _wrap(e) from e
        finally:
            # This process's own writes are known at once, not when the notification is back.
            self._watch.changed()

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self._read() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self._read() as conn:
            return await conn.fetchrow(sql, *args)

    def _tokenizer(self) -> _Words:
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
                if current > schema.VERSION:
                    raise StorageError(
                        f"the database is at schema {current}, newer than this feedsvc ({schema.VERSION})"
                    )
                for n in range(current + 1, schema.VERSION + 1):
                    await conn.execute(schema.STEPS[n])
                if current < schema.VERSION:
                    await conn.execute("DELETE FROM schema_version")
                    await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", schema.VERSION)
        except _DRIVER_ERRORS as e:
            raise _wrap(e) from e
        return schema.VERSION

    async def schema_status(self) -> tuple[int, int]:
        row = await self._fetchrow(
            "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN 0"
            " ELSE (SELECT coalesce(max(version), 0) FROM schema_version) END"
        )
        assert row is not None
        return int(row[0]), schema.VERSION

    # --- commentaries: writes -------------------------------------------------------------

    async def add_commentary(self, item: Commentary, *, unique_slug: bool, now: datetime) -> Commentary:
        async with self._write() as tx:
            return await self._add(tx, item, unique_slug=unique_slug, now=now)

    async def _add(self, tx: _Tx, item: Commentary, *, unique_slug: bool, now: datetime) -> Commentary:
        """What ``add_commentary`` does inside its transaction (also used by the import)."""
        if await tx.conn.fetchval("SELECT 1 FROM commentaries WHERE id = $1", item.id):
            raise ConflictError(f"a commentary with id {item.id} exists", field="id")
        item = await _settle_slug(tx.conn, item, unique_slug=unique_slug)
        public = _is_public(item, now)
        item = msgspec.structs.replace(item, version=await tx.next_seq())
        await self._insert(tx.conn, item, public, op="created", public_op="created" if public else None, now=now)
        return item

    async def add_commentary_once(
        self, item: Commentary, *, unique_slug: bool, now: datetime, key: IdempotencyKey, not_before: datetime
    ) -> tuple[Commentary, bool]:
        # Racing calls with one key are serialised by the write lock: the second finds the key.
        async with self._write() as tx:
            await tx.conn.execute("DELETE FROM idempotency_keys WHERE created_us < $1", to_us(not_before))
            row = await tx.conn.fetchrow(
                "SELECT fingerprint, doc FROM idempotency_keys WHERE owner = $1 AND key = $2", key.owner, key.key
            )
            if row is not None:
                if row["fingerprint"] != key.fingerprint:
                    raise ConflictError(
                        "this Idempotency-Key was used with a different request body", field="Idempotency-Key"
                    )
                return _decode_commentary(row["doc"]), False
            stored = await self._add(tx, item, unique_slug=unique_slug, now=now)
            await tx.conn.execute(
                "INSERT INTO idempotency_keys (owner, key, fingerprint, commentary_id, doc, created_us)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                key.owner, key.key, key.fingerprint, stored.id, _encode(stored), to_us(now),
            )
            return stored, True

    async def update_commentary(
        self, item: Commentary, *, expected_version: int | None, unique_slug: bool, now: datetime
    ) -> Commentary:
        async with self._write() as tx:
            row = await _current(tx.conn, item.id, expected_version)
            item = await _settle_slug(tx.conn, item, unique_slug=unique_slug)
            public = _is_public(item, now)
            item = msgspec.structs.replace(item, version=await tx.next_seq())
            await tx.conn.execute(_DELETE_COMMENTARY, row["cid"], to_us(now))
            public_op = _public_op(row["public"], public)
            await self._insert(tx.conn, item, public, op="updated", public_op=public_op, now=now)
            return item

    async def delete_commentary(self, id: str, *, expected_version: int | None, now: datetime) -> int:
        async with self._write() as tx:
            row = await _current(tx.conn, id, expected_version)
            seq = await tx.next_seq()
            await _append_change(tx.conn, seq, "commentary", id, "deleted", "deleted" if row["public"] else None, now)
            await tx.conn.execute(_DELETE_COMMENTARY, row["cid"], to_us(now))
            return seq

    async def publish_due(self, now: datetime) -> int:
        async with self._write() as tx:
            rows = await tx.conn.fetch(
                "SELECT cid, doc FROM commentaries WHERE NOT public AND status = 'published'"
                " AND pub_us <= $1 ORDER BY pub_us, id",
                to_us(now),
            )
            updates, changes, keys = [], [], []
            for row in rows:
                item = _decode_commentary(row["doc"])
                item = msgspec.structs.replace(item, version=await tx.next_seq())
                doc = _encode(item)
                updates.append((item.version, doc, row["cid"]))
                keys.append((
                    item.lang, to_us(item.published_at), item.id, item.translation_key, row["cid"],
                    related.stored_keys(item),
                ))
                changes.append((item.version, "commentary", item.id, "updated", "created", to_us(now), doc))
            if rows:
                await tx.conn.executemany(
                    "UPDATE commentaries SET public = true, version = $1, doc = $2 WHERE cid = $3", updates
                )
                await tx.conn.executemany(_INSERT_CHANGE, changes)
                await tx.conn.execute(_MARK_DIGESTS, [row["cid"] for row in rows], to_us(now))
                await tx.conn.executemany(_INSERT_RELATED_KEYS, keys)
            return len(rows)

    async def _insert(
        self, conn: asyncpg.Connection, item: Commentary, public: bool, *, op: str, public_op: str | None, now: datetime
    ) -> None:
        """Insert the row, its tags, authors and search vectors, and its change, in one statement."""
        await conn.execute(
            _INSERT_COMMENTARY, *self._commentary_args(item, public, op=op, public_op=public_op, at_us=to_us(now))
        )

    def _commentary_args(
        self, item: Commentary, public: bool, *, op: str, public_op: str | None, at_us: int
    ) -> tuple[Any, ...]:
        """The parameters of ``_INSERT_COMMENTARY`` (and ``_COPY_COMMENTARY``)."""
        doc = _encode(item)
        tsv, words = _search_vectors(self._tokenizer(), item)
        tags = {t.casefold(): t for t in item.tags}
        authors = {a.name.casefold(): a.name for a in item.authors}
        return (
            item.version, item.id, op, public_op, at_us, doc if public else None,
            item.lang, item.slug, item.translation_key, item.category, item.status, item.trend,
            to_us(item.published_at), item.published_at.date(), to_us(item.updated_at),
            item.period.start if item.period else None, item.period.end if item.period else None,
            public, doc, tsv, _text_search_config(item.lang), words,
            list(tags.values()), list(tags), list(authors.values()), list(authors),
            related.stored_keys(item),
        )

    # --- commentaries: reads --------------------------------------------------------------

    async def get_commentary(self, id: str, *, public_only: bool) -> Commentary:
        sql = "SELECT doc FROM commentaries WHERE id = $1" + (" AND public" if public_only else "")
        row = await self._fetchrow(sql, id)
        if row is None:
            raise NotFoundError(f"no commentary with id {id}")
        return _decode_commentary(row[0])

    async def get_commentary_by_slug(self, lang: str, slug: str, *, public_only: bool) -> Commentary:
        sql = "SELECT doc FROM commentaries WHERE lang = $1 AND slug = $2" + (" AND public" if public_only else "")
        row = await self._fetchrow(sql, lang, slug)
        if row is None:
            raise NotFoundError(f"no commentary with slug {slug} in {lang}")
        return _decode_commentary(row[0])

    async def get_slug_languages(self, slug: str) -> list[str]:
        rows = await self._fetch("SELECT lang FROM commentaries WHERE slug = $1 AND public ORDER BY lang", slug)
        return [r[0] for r in rows]

    async def get_commentaries(self, query: Query) -> list[Commentary]:
        where, params = self._where(query)
        rows = await self._fetch(
            f"SELECT c.doc FROM commentaries c WHERE {where}"
            f" ORDER BY c.pub_us DESC, c.id DESC LIMIT ${len(params) + 1}",
            *params, query.limit,
        )
        return [_decode_commentary(r[0]) for r in rows]

    async def get_view_stamp(self, query: Query) -> ViewStamp:
        where, params = self._where(query)
        async with self._read() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(
                f"SELECT c.id, c.version, c.translation_key, c.category, c.updated_us FROM commentaries c"
                f" WHERE {where} ORDER BY c.pub_us DESC, c.id DESC LIMIT ${len(params) + 1}",
                *params, query.limit,
            )
            keys = sorted({r[2] for r in rows if r[2]})
            categories = sorted({r[3] for r in rows})
            versions: list[tuple[str, int]] = [(r[0], r[1]) for r in rows]
            if keys:
                # Translation links render inside items, so their versions count too.
                linked = await conn.fetch(
                    "SELECT id, version FROM commentaries WHERE public AND translation_key = ANY($1::text[])"
                    " ORDER BY id",
                    keys,
                )
                versions += [("t:" + r[0], r[1]) for r in linked]
            if categories:
                found = await conn.fetch(
                    "SELECT slug, version FROM categories WHERE slug = ANY($1::text[]) ORDER BY slug", categories
                )
                versions += [("c:" + r[0], r[1]) for r in found]
        updated = max((r[4] for r in rows), default=None)
        return ViewStamp(tuple(versions), from_us(updated) if updated is not None else None)

    async def get_translations(self, keys: list[str]) -> dict[str, list[Translation]]:
        if not keys:
            return {}
        rows = await self._fetch(
            "SELECT translation_key, doc FROM commentaries WHERE public AND translation_key = ANY($1::text[])"
            " ORDER BY lang, id",
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
        params: list[Any] = []

        def arg(value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        where = ["public", "period_start IS NOT NULL"]
        if lang is not None:
            where.append(f"lang = {arg(lang)}")
        if start is not None:
            where.append(f"period_start = {arg(start)}")
        if after is not None:
            day, after_lang = arg(after[0]), arg(after[1])
            where.append(f"period_start <= {day} AND (period_start < {day} OR lang > {after_lang})")
        async with self._read() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            keys = [
                (r[0], r[1])
                for r in await conn.fetch(
                    f"SELECT period_start, lang FROM commentaries WHERE {' AND '.join(where)}"
                    f" GROUP BY period_start, lang ORDER BY period_start DESC, lang LIMIT {arg(limit)}",
                    *params,
                )
            ]
            if not keys:
                return []
            span = (keys[-1][0], keys[0][0])
            lang_clause = " AND lang = $3" if lang is not None else ""
            rows = await conn.fetch(
                "SELECT period_start, lang, doc FROM commentaries WHERE public AND period_start IS NOT NULL"
                f" AND period_start BETWEEN $1 AND $2{lang_clause} ORDER BY pub_us, id",
                *span, *([lang] if lang is not None else []),
            )
            marks = await conn.fetch(
                "SELECT period_start, lang, left_us FROM digest_marks WHERE period_start BETWEEN $1 AND $2", *span
            )
        members = [(r[0], r[1], _decode_commentary(r[2])) for r in rows]
        return digest_records(keys, members, {(r[0], r[1]): from_us(r[2]) for r in marks})

    async def get_related(self, items: Sequence[Commentary], limit: int) -> list[list[tuple[Commentary, float]]]:
        probes = [related.probe(item) for item in items]
        if not probes:
            return []
        keys = [(i, key, n) for i, p in enumerate(probes) for n, key in enumerate(p.keys)]
        rows = await self._fetch(
            _RELATED,
            [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
            [p.lang for p in probes], [p.pub_us for p in probes], [p.id for p in probes],
            [p.translation_key for p in probes], related.WINDOW,
        )
        found: list[list[tuple[str, int, int]]] = [[] for _ in probes]
        for i, id, pub_us, n in rows:
            found[i].append((id, pub_us, n))
        ranked = [related.rank(p, rows, limit) for p, rows in zip(probes, found, strict=True)]
        wanted = sorted({id for best in ranked for id, _ in best})
        docs: dict[str, Commentary] = {}
        if wanted:
            docs = {
                r[0]: _decode_commentary(r[1])
                for r in await self._fetch("SELECT id, doc FROM commentaries WHERE public AND id = ANY($1::text[])", wanted)
            }
        return [[(docs[id], score) for id, score in best if id in docs] for best in ranked]

    async def get_state(self) -> StoreState:
        token = self._watch.token()  # before the query: see feedsvc.store.postgres.watch
        row = await self._fetchrow(
            "SELECT (SELECT coalesce(max(seq), 0) FROM changes),"
            " (SELECT min(pub_us) FROM commentaries WHERE NOT public AND status = 'published')"
        )
        assert row is not None
        state = StoreState(seq=int(row[0]), next_due=from_us(row[1]) if row[1] is not None else None)
        self._watch.remember(token, state)
        return state

    def known_state(self) -> StoreState | None:
        return self._watch.known()

    async def get_changes(self, since: int, limit: int) -> tuple[list[Change], int]:
        # One statement, one snapshot: the newest number and the changes up to it.
        rows = await self._fetch(
            "SELECT n.newest, c.seq, c.ref, c.public_op, c.at_us, c.doc"
            " FROM (SELECT coalesce(max(seq), 0) AS newest FROM changes) n"
            " LEFT JOIN LATERAL (SELECT seq, ref, public_op, at_us, doc FROM changes"
            "   WHERE seq > $1 AND seq <= n.newest AND public_op IS NOT NULL ORDER BY seq LIMIT $2) c ON true"
            " ORDER BY c.seq",
            since, limit,
        )
        newest = int(rows[0]["newest"]) if rows else 0
        items = [
            Change(
                seq=r["seq"], op=r["public_op"], id=r["ref"], at=from_us(r["at_us"]),
                commentary=_decode_commentary(r["doc"]) if r["doc"] is not None else None,
            )
            for r in rows
            if r["seq"] is not None
        ]
        # A short page means every change up to `newest` was examined.
        resume = items[-1].seq if len(items) == limit else max(newest, since)
        return items, resume

    async def get_tag_counts(self) -> list[Count]:
        rows = await self._fetch(
            "SELECT min(t.tag), count(*) AS n FROM commentary_tags t JOIN commentaries c ON c.cid = t.cid"
            " WHERE c.public GROUP BY t.tag_key ORDER BY n DESC, t.tag_key"
        )
        return [Count(name=r[0], count=r[1]) for r in rows]

    async def get_author_counts(self) -> list[Count]:
        rows = await self._fetch(
            "SELECT min(a.name), count(*) AS n FROM commentary_authors a JOIN commentaries c"
            " ON c.cid = a.cid WHERE c.public GROUP BY a.name_key ORDER BY n DESC, a.name_key"
        )
        return [Count(name=r[0], count=r[1]) for r in rows]

    async def get_language_counts(self) -> list[Count]:
        rows = await self._fetch(
            "SELECT lang, count(*) AS n FROM commentaries WHERE public GROUP BY lang ORDER BY n DESC, lang"
        )
        return [Count(name=r[0], count=r[1]) for r in rows]

    def _where(self, query: Query) -> tuple[str, list[Any]]:
        return build_where(query, self._tokenizer())

    # --- categories -----------------------------------------------------------------------

    async def get_categories(self) -> list[Category]:
        rows = await self._fetch(
            "SELECT k.slug, k.names, k.descriptions, k.updated_us,"
            " (SELECT count(*) FROM commentaries c WHERE c.category = k.slug AND c.public) AS count"
            " FROM categories k ORDER BY k.slug"
        )
        return [category(r) for r in rows]

    async def get_category(self, slug: str) -> Category:
        row = await self._fetchrow(
            "SELECT k.slug, k.names, k.descriptions, k.updated_us,"
            " (SELECT count(*) FROM commentaries c WHERE c.category = k.slug AND c.public) AS count"
            " FROM categories k WHERE k.slug = $1",
            slug,
        )
        if row is None:
            raise NotFoundError(f"no category {slug}")
        return category(row)

    async def put_category(self, slug: str, data: CategoryIn, *, now: datetime) -> tuple[Category, bool]:
        async with self._write() as tx:
            exists = bool(await tx.conn.fetchval("SELECT 1 FROM categories WHERE slug = $1", slug))
            seq = await tx.next_seq()
            await _append_change(tx.conn, seq, "category", slug, "updated" if exists else "created", None, now)
            await tx.conn.execute(
                "INSERT INTO categories (slug, names, descriptions, updated_us, version) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (slug) DO UPDATE SET names = excluded.names,"
                " descriptions = excluded.descriptions, updated_us = excluded.updated_us,"
                " version = excluded.version",
                slug, _encode(data.names), _encode(data.descriptions), to_us(now), seq,
            )
        return await self.get_category(slug), not exists

    # --- tokens and settings --------------------------------------------------------------

    async def add_token(self, record: TokenRecord) -> None:
        info = record.info
        async with self._write() as tx:
            await tx.conn.execute(
                "INSERT INTO tokens (id, name, scopes, salt, digest, created_us, expires_us)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                info.id, info.name, _encode(info.scopes), record.salt, record.digest,
                to_us(info.created_at), to_us(info.expires_at) if info.expires_at else None,
            )

    async def get_token(self, id: str) -> TokenRecord:
        row = await self._fetchrow(
            f"SELECT {TOKEN.sql} FROM tokens WHERE id = $1", id
        )
        if row is None:
            raise NotFoundError(f"no token {id}")
        return token_record(row)

    async def get_tokens(self) -> list[TokenInfo]:
        rows = await self._fetch(
            f"SELECT {TOKEN_INFO.sql} FROM tokens ORDER BY created_us DESC, id DESC"
        )
        return [token_info(r) for r in rows]

    async def revoke_token(self, id: str, *, now: datetime) -> TokenInfo:
        async with self._write() as tx:
            row = await tx.conn.fetchrow(
                "UPDATE tokens SET revoked_us = coalesce(revoked_us, $1) WHERE id = $2"
                f" RETURNING {TOKEN_INFO.sql}",
                to_us(now), id,
            )
        if row is None:
            raise NotFoundError(f"no token {id}")
        return token_info(row)

    async def get_secret(self) -> bytes:
        if self._secret is None:
            row = await self._fetchrow("SELECT value FROM meta WHERE key = 'secret'")
            if row is None:
                async with self._write() as tx:
                    await tx.conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('secret', $1) ON CONFLICT (key) DO NOTHING",
                        secrets.token_bytes(32),
                    )
                row = await self._fetchrow("SELECT value FROM meta WHERE key = 'secret'")
            assert row is not None
            self._secret = bytes(row[0])
        return self._secret

    # --- webhooks (issue 4, part 6) -------------------------------------------------------
    # Only registration takes the write lock (to start at an exact newest change); the
    # delivery bookkeeping is single statements on rows of its own, so senders on several
    # nodes never wait for commentary writes nor hold them up.

    async def add_webhook(self, hook: Webhook, *, secret: bytes, owner: str) -> Webhook:
        async with self._write() as tx:
            await tx.conn.execute(
                "INSERT INTO webhooks (id, url, events, categories, languages, description, secret, owner,"
                " created_us, cursor, state, failures, next_attempt_us, lease_until_us)"
                " SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, coalesce(max(seq), 0), 'active', 0, 0, 0 FROM changes",
                hook.id, hook.url, _encode(hook.events), _encode(hook.categories), _encode(hook.languages),
                hook.description, secret, owner, to_us(hook.created_at),
            )
        return await self.get_webhook(hook.id)

    async def get_webhooks(self) -> list[Webhook]:
        rows = await self._fetch(f"SELECT {WEBHOOK.sql} FROM webhooks ORDER BY created_us, id")
        return [webhook_from_row(r) for r in rows]

    async def get_webhook(self, id: str) -> Webhook:
        row = await self._fetchrow(f"SELECT {WEBHOOK.sql} FROM webhooks WHERE id = $1", id)
        if row is None:
            raise NotFoundError(f"no webhook {id}")
        return webhook_from_row(row)

    async def delete_webhook(self, id: str) -> None:
        row = await self._fetchrow("DELETE FROM webhooks WHERE id = $1 RETURNING id", id)
        if row is None:
            raise NotFoundError(f"no webhook {id}")

    async def claim_webhooks(
        self, *, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[WebhookRecord]:
        # SKIP LOCKED: two nodes claiming at once each take other subscriptions; a row
        # claimed meanwhile is re-checked against its new lease and left alone.
        rows = await self._fetch(
            f"UPDATE webhooks SET lease_owner = $1, lease_until_us = $2 WHERE id IN"
            " (SELECT id FROM webhooks WHERE state = 'active' AND next_attempt_us <= $3 AND lease_until_us < $3"
            "  AND cursor < (SELECT coalesce(max(seq), 0) FROM changes)"
            "  ORDER BY next_attempt_us, id LIMIT $4 FOR UPDATE SKIP LOCKED)"
            f" RETURNING {WEBHOOK_WITH_SECRET.sql}",
            owner, to_us(lease_until), to_us(now), limit,
        )
        return [webhook_record(r) for r in rows]

    async def advance_webhook(
        self, id: str, *, owner: str, position: int, delivered_at: datetime | None, lease_until: datetime
    ) -> bool:
        row = await self._fetchrow(
            "UPDATE webhooks SET cursor = greatest(cursor, $1), lease_until_us = $2,"
            " failures = CASE WHEN $3::bigint IS NULL THEN failures ELSE 0 END,"
            " next_attempt_us = CASE WHEN $3::bigint IS NULL THEN next_attempt_us ELSE 0 END,"
            " last_success_us = coalesce($3::bigint, last_success_us)"
            " WHERE id = $4 AND lease_owner = $5 AND state = 'active' RETURNING id",
            position, to_us(lease_until), to_us(delivered_at) if delivered_at is not None else None, id, owner,
        )
        return row is not None

    async def fail_webhook(
        self, id: str, *, owner: str, error: DeliveryError, next_attempt: datetime, disable: str | None
    ) -> bool:
        row = await self._fetchrow(
            "UPDATE webhooks SET failures = failures + 1, last_error = $1, last_error_status = $2,"
            " last_error_us = $3, next_attempt_us = $4, lease_owner = NULL, lease_until_us = 0,"
            " state = CASE WHEN $5::text IS NULL THEN state ELSE 'disabled' END,"
            " disabled_reason = coalesce($5::text, disabled_reason),"
            " disabled_us = CASE WHEN $5::text IS NULL THEN disabled_us ELSE $3 END"
            " WHERE id = $6 AND lease_owner = $7 AND state = 'active' RETURNING id",
            error.message, error.status, to_us(error.at), to_us(next_attempt), disable, id, owner,
        )
        return row is not None

    async def release_webhooks(self, owner: str, id: str | None = None) -> None:
        async with self._read() as conn:
            await conn.execute(
                "UPDATE webhooks SET lease_owner = NULL, lease_until_us = 0"
                " WHERE lease_owner = $1 AND ($2::text IS NULL OR id = $2)",
                owner, id,
            )

    async def get_last_public_doc(self, id: str, before: int) -> Commentary | None:
        row = await self._fetchrow(
            "SELECT doc FROM changes WHERE ref = $1 AND seq < $2 AND doc IS NOT NULL ORDER BY seq DESC LIMIT 1",
            id, before,
        )
        return _decode_commentary(row[0]) if row is not None else None

    # --- bulk import and export -----------------------------------------------------------

    IMPORT_CHUNK = 1000
    """Commentaries read per query by ``iter_all_commentaries``."""

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

    async def _import_batch(
        self, items: Sequence[tuple[Commentary, bool]], now: datetime, *, isolate: bool
    ) -> list[Commentary | FeedsvcError]:
        """One write transaction for the batch, each record stored as ``add_commentary``
        stores it. Without ``isolate`` (the fast path) a record that breaks a rule fails
        before writing anything: id, slug and category are checked first. With it, each
        record runs in a savepoint, and a database error is that record's alone."""
        results: list[Commentary | FeedsvcError] = []
        async with self._write() as tx:
            categories = {r[0] for r in await tx.conn.fetch("SELECT slug FROM categories")}
            for item, unique_slug in items:
                if item.category not in categories:
                    results.append(InvalidInputError(f"unknown category {item.category!r}", field="category"))
                    continue
                seq = tx.seq
                try:
                    if isolate:
                        async with tx.conn.transaction():
                            results.append(await self._add(tx, item, unique_slug=unique_slug, now=now))
                    else:
                        results.append(await self._add(tx, item, unique_slug=unique_slug, now=now))
                except FeedsvcError as e:
                    results.append(e)
                except _BUSY:
                    raise
                except _DRIVER_ERRORS as e:
                    if not isolate:
                        raise _Isolate() from e
                    tx.seq = seq
                    results.append(_wrap(e))
        return results

    async def iter_all_commentaries(self) -> AsyncIterator[Commentary]:
        after = ""
        while True:
            rows = await self._fetch(
                "SELECT id, doc FROM commentaries WHERE id > $1 ORDER BY id LIMIT $2", after, self.IMPORT_CHUNK
            )
            for row in rows:
                yield _decode_commentary(row[1])
            if len(rows) < self.IMPORT_CHUNK:
                return
            after = rows[-1][0]

    # --- verbatim copies between stores (feedsvc migrate-data) -----------------------------

    async def get_log(self, since: int, limit: int) -> list[LogEntry]:
        rows = await self._fetch(
            "SELECT seq, kind, ref, op, public_op, at_us, doc FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
            since, limit,
        )
        return [log_entry(r) for r in rows]

    async def get_stored_commentaries(
        self, *, after: str = "", ids: Sequence[str] | None = None, limit: int
    ) -> list[StoredCommentary]:
        among = "" if ids is None else " AND id = ANY($3::text[])"
        rows = await self._fetch(
            f"SELECT doc, public FROM commentaries WHERE id > $1{among} ORDER BY id LIMIT $2",
            after, limit, *([] if ids is None else [list(ids)]),
        )
        return [StoredCommentary(item=_decode_commentary(r[0]), public=r[1]) for r in rows]

    async def get_stored_categories(self) -> list[StoredCategory]:
        rows = await self._fetch("SELECT slug, names, descriptions, updated_us, version FROM categories ORDER BY slug")
        return [stored_category(r) for r in rows]

    async def get_token_records(self) -> list[TokenRecord]:
        rows = await self._fetch(
            f"SELECT {TOKEN.sql} FROM tokens ORDER BY id"
        )
        return [token_record(r) for r in rows]

    async def get_digest_marks(self) -> list[DigestMark]:
        rows = await self._fetch("SELECT lang, period_start, left_us FROM digest_marks ORDER BY lang, period_start")
        return [DigestMark(lang=r[0], period_start=r[1], left_us=r[2]) for r in rows]

    async def get_stored_webhooks(self) -> list[StoredWebhook]:
        rows = await self._fetch(f"SELECT {STORED_WEBHOOK.sql} FROM webhooks ORDER BY id")
        return [stored_webhook(r) for r in rows]

    async def load_copy(self, batch: CopyBatch) -> None:
        async with self._write() as tx:
            conn = tx.conn
            if batch.categories:
                await conn.executemany(
                    "INSERT INTO categories (slug, names, descriptions, updated_us, version)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (slug) DO UPDATE SET names = excluded.names,"
                    " descriptions = excluded.descriptions, updated_us = excluded.updated_us,"
                    " version = excluded.version",
                    [
                        (c.slug, _encode(c.names), _encode(c.descriptions), c.updated_us, c.version)
                        for c in batch.categories
                    ],
                )
            replaced = [*batch.removed, *(c.item.id for c in batch.commentaries)]
            if replaced:
                await conn.execute("DELETE FROM commentaries WHERE id = ANY($1::text[])", replaced)
            if batch.commentaries:
                await conn.execute(
                    "DELETE FROM commentaries c USING unnest($1::text[], $2::text[]) AS n (lang, slug)"
                    " WHERE c.lang = n.lang AND c.slug = n.slug",
                    [c.item.lang for c in batch.commentaries], [c.item.slug for c in batch.commentaries],
                )
                await conn.executemany(
                    _COPY_COMMENTARY,
                    [self._commentary_args(c.item, c.public, op="", public_op=None, at_us=0) for c in batch.commentaries],
                )
            if batch.log:
                await conn.executemany(
                    _INSERT_CHANGE, [(e.seq, e.kind, e.ref, e.op, e.public_op, e.at_us, e.doc) for e in batch.log]
                )
            if batch.tokens:
                await conn.executemany(
                    f"INSERT INTO tokens ({TOKEN.sql})"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
                    " scopes = excluded.scopes, salt = excluded.salt, digest = excluded.digest,"
                    " created_us = excluded.created_us, expires_us = excluded.expires_us,"
                    " revoked_us = excluded.revoked_us",
                    [token_values(t) for t in batch.tokens],
                )
            if batch.digest_marks:
                await conn.executemany(
                    "INSERT INTO digest_marks (lang, period_start, left_us) VALUES ($1, $2, $3)"
                    " ON CONFLICT (lang, period_start) DO UPDATE SET left_us = excluded.left_us",
                    [(m.lang, m.period_start, m.left_us) for m in batch.digest_marks],
                )
            if batch.webhooks is not None:
                if batch.webhooks:
                    await conn.executemany(
                        upsert_webhook_sql([f"${n}" for n in range(1, 20)]),
                        [webhook_values(h) for h in batch.webhooks],
                    )
                await conn.execute(
                    "DELETE FROM webhooks WHERE NOT (id = ANY($1::text[]))", [h.id for h in batch.webhooks]
                )
            if batch.secret is not None:
                await conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('secret', $1)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    batch.secret,
                )
        self._secret = None  # read anew: what is stored now is what counts


# --- statements -----------------------------------------------------------------------------

# Issue 9: a public commentary with a period leaves its weekly digest when it is replaced or
# deleted, and joins one when it turns public; the digest notes the time (see
# SqliteStore's _mark_digest), so its updated time moves though no commentary left in it did.
_DIGEST_MARK_UPSERT = (
    " ON CONFLICT (lang, period_start) DO UPDATE SET left_us = greatest(digest_marks.left_us, excluded.left_us)"
)
_DELETE_COMMENTARY = (
    "WITH gone AS (DELETE FROM commentaries WHERE cid = $1 RETURNING lang, period_start, public)"
    " INSERT INTO digest_marks (lang, period_start, left_us)"
    " SELECT lang, period_start, $2 FROM gone WHERE public AND period_start IS NOT NULL" + _DIGEST_MARK_UPSERT
)
_MARK_DIGESTS = (
    "INSERT INTO digest_marks (lang, period_start, left_us)"
    " SELECT DISTINCT lang, period_start, $2::bigint FROM commentaries"
    " WHERE cid = ANY($1::bigint[]) AND public AND period_start IS NOT NULL" + _DIGEST_MARK_UPSERT
)

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

_INSERT_RELATED_KEYS = (
    "INSERT INTO related_keys (lang, key, pub_us, id, translation_key, cid)"
    " SELECT $1, k.key, $2, $3, $4, $5 FROM unnest($6::text[]) AS k (key)"
)

_INSERT_CHANGE = (
    "INSERT INTO changes (seq, kind, ref, op, public_op, at_us, doc) VALUES ($1, $2, $3, $4, $5, $6, $7)"
)

# The row, its tags and its authors, after a first CTE (the change).
_COMMENTARY_ROW = """
row AS (
    INSERT INTO commentaries (id, lang, slug, translation_key, category, status, trend, pub_us, pub_date,
        updated_us, period_start, period_end, version, public, doc, tsv, tsv_stem)
    VALUES ($2, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $1, $18, $19, $20::text::tsvector,
        strip(to_tsvector($21::text::regconfig, $22::text)))
    RETURNING cid
), tags AS (
    INSERT INTO commentary_tags (cid, tag, tag_key)
    SELECT row.cid, t.tag, t.tag_key FROM row, unnest($23::text[], $24::text[]) AS t (tag, tag_key)
), related AS (
    INSERT INTO related_keys (lang, key, pub_us, id, translation_key, cid)
    SELECT $7, k.key, $13, $2, $9, row.cid FROM row, unnest($27::text[]) AS k (key) WHERE $18
)
INSERT INTO commentary_authors (cid, name, name_key)
SELECT row.cid, a.name, a.name_key FROM row, unnest($25::text[], $26::text[]) AS a (name, name_key)
"""

# The change, the row, its tags and its authors in one round trip.
_INSERT_COMMENTARY = """
WITH change AS (
    INSERT INTO changes (seq, kind, ref, op, public_op, at_us, doc)
    VALUES ($1, 'commentary', $2, $3, $4, $5, $6)
),""" + _COMMENTARY_ROW

# The same without the change, for a copy from another store (feedsvc migrate-data), which
# brings its log entries as they were. The parameters stay those of _INSERT_COMMENTARY (the
# change's are only typed, never used), so that both take ``_commentary_args``.
_COPY_COMMENTARY = "WITH change AS (SELECT $3::text, $4::text, $5::bigint, $6::bytea)," + _COMMENTARY_ROW


# --- helpers that run inside a write transaction ------------------------------------------


class _Isolate(Exception):
    """A record of an import batch failed in the database; retry the batch with savepoints."""


class _Tx:
    """A write transaction: its connection and the change numbers it hands out.

    The first number is read once the write lock is held; later ones count on from it,
    since no one else can write until this transaction ends.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.seq: int | None = None

    async def next_seq(self) -> int:
        if self.seq is None:
            self.seq = int(await self.conn.fetchval("SELECT coalesce(max(seq), 0) FROM changes"))
        self.seq += 1
        return self.seq


def _wrap(e: BaseException) -> FeedsvcError:
    """Driver errors stop here: map them onto the feedsvc error tree."""
    if isinstance(e, asyncpg.UniqueViolationError):
        fields = {"commentaries_id_key": "id", "commentaries_lang_slug": "slug"}
        field = fields.get(e.constraint_name or "")
        return ConflictError(f"conflict: {e}", field=field) if field else ConflictError(f"conflict: {e}")
    if isinstance(e, asyncpg.ForeignKeyViolationError):
        return InvalidInputError("unknown category", field="category")
    if isinstance(e, _BUSY):
        return StorageBusyError(f"database unavailable: {type(e).__name__}: {e}")
    return StorageError(f"database error: {type(e).__name__}: {e}")


async def _append_change(
    conn: asyncpg.Connection, seq: int, kind: str, ref: str, op: str, public_op: str | None, now: datetime
) -> None:
    await conn.execute(_INSERT_CHANGE, seq, kind, ref, op, public_op, to_us(now), None)


def _is_public(item: Commentary, now: datetime) -> bool:
    return item.status == "published" and item.published_at <= now


def _public_op(was_public: bool, public: bool) -> str | None:
    if public:
        return "updated" if was_public else "created"
    return "deleted" if was_public else None


async def _current(conn: asyncpg.Connection, id: str, expected_version: int | None) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT cid, version, public FROM commentaries WHERE id = $1", id)
    if row is None:
        raise NotFoundError(f"no commentary with id {id}")
    if expected_version is not None and row["version"] != expected_version:
        raise PreconditionFailedError(current_version=row["version"])
    return row


async def _settle_slug(conn: asyncpg.Connection, item: Commentary, *, unique_slug: bool) -> Commentary:
    """Keep the slug unique within its language: suffix it, or refuse with ConflictError."""
    base, n, slug = item.slug, 1, item.slug
    while await conn.fetchval(
        "SELECT 1 FROM commentaries WHERE lang = $1 AND slug = $2 AND id != $3", item.lang, slug, item.id
    ):
        if not unique_slug:
            raise ConflictError(f"slug {slug!r} is taken in {item.lang}", field="slug")
        n += 1
        suffix = f"-{n}"
        slug = base[: 120 - len(suffix)] + suffix
    return item if slug == item.slug else msgspec.structs.replace(item, slug=slug)





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


# --- filters and full-text search -------------------------------------------------------------


def _date_window(query: Query, arg: Any) -> list[str]:
    """SQL for the published-date bounds, as in SqliteStore: calendar dates compare with the
    date written in published_at; the ±24 h instant range beside it lets the index narrow
    the scan (RFC 3339 offsets reach ±23:59) before that exact comparison."""
    clauses: list[str] = []
    margin = timedelta(hours=24)
    if query.from_date is not None:
        start = datetime.combine(query.from_date, datetime.min.time(), UTC) - margin
        clauses.append(f"c.pub_us >= {arg(to_us(start))} AND c.pub_date >= {arg(query.from_date)}")
    if query.to_date is not None:
        end = datetime.combine(query.to_date, datetime.min.time(), UTC) + timedelta(days=1) + margin
        clauses.append(f"c.pub_us < {arg(to_us(end))} AND c.pub_date <= {arg(query.to_date)}")
    if query.from_time is not None:
        clauses.append(f"c.pub_us >= {arg(to_us(query.from_time))}")
    if query.to_time is not None:
        clauses.append(f"c.pub_us <= {arg(to_us(query.to_time))}")
    return clauses


def build_where(query: Query, words: _Words) -> tuple[str, list[Any]]:
    """The WHERE clause (public commentaries only) and its parameters for a Query."""
    params: list[Any] = []

    def arg(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    clauses = ["c.public"]
    if query.categories:
        clauses.append(f"c.category = ANY({arg(list(query.categories))}::text[])")
    if query.lang:
        clauses.append(f"c.lang = {arg(query.lang)}")
    if query.trend:
        clauses.append(f"c.trend = {arg(query.trend)}")
    if query.tag:
        clauses.append(f"c.cid IN (SELECT cid FROM commentary_tags WHERE tag_key = {arg(query.tag.casefold())})")
    if query.author:
        clauses.append(
            f"c.cid IN (SELECT cid FROM commentary_authors WHERE name_key = {arg(query.author.casefold())})"
        )
    clauses += _date_window(query, arg)
    if query.updated_since is not None:
        clauses.append(f"c.updated_us >= {arg(to_us(query.updated_since))}")
    if query.q:
        clauses.append(_search_clause(query.q, words, arg))
    if query.after is not None:
        clauses.append(f"(c.pub_us, c.id) < ({arg(query.after[0])}::bigint, {arg(query.after[1])}::text)")
    return " AND ".join(clauses), params


def _search_clause(text: str, words: _Words, arg: Any) -> str:
    """SQLite's ``fts_query`` semantics on tsvector: every whitespace-separated word must
    occur; a word the tokenizer splits ("well-known") is a phrase within one field; the
    last token of the last word is a prefix; a word with no tokens is ignored (and takes
    the prefix with it, as in SQLite); no tokens at all match nothing.

    The user's text never reaches tsquery syntax: tsquery literals are built here from the
    tokenizer's words (letters and digits only), each quoted."""
    split = text.split()
    parts: list[str] = []
    for n, tokens in enumerate(words.split(split)):
        if not tokens:
            continue
        prefix = ":*" if n == len(split) - 1 else ""
        lexemes = [_tsquery_quote(_lexeme(t)) for t in tokens]
        exact = " <-> ".join(lexemes) + prefix
        condition = f"c.tsv @@ {arg(exact)}::text::tsquery"
        configs = sorted(set(TEXT_SEARCH_CONFIGS.values()))
        if len(lexemes) == 1 and configs:
            # The word through each configuration's stemmer, computed once per query. Never
            # as a prefix: the stem of a word still being typed means nothing, and a prefix
            # of a stem ("added" -> "ad") would match far too much.
            word = arg(lexemes[0])
            stems = " || ".join(f"to_tsquery('{cfg}', {word}::text)" for cfg in configs)
            condition = f"({condition} OR c.tsv_stem @@ (SELECT {stems}))"
        parts.append(condition)
    return " AND ".join(parts) if parts else "false"


def _text_search_config(lang: str) -> str:
    return TEXT_SEARCH_CONFIGS.get(lang.split("-")[0].lower(), "simple")


def _lexeme(token: str) -> str:
    """A token as PostgreSQL can store it: cut to MAX_LEXEME_BYTES at a character boundary."""
    data = token.encode()
    if len(data) <= MAX_LEXEME_BYTES:
        return token
    return data[:MAX_LEXEME_BYTES].decode(errors="ignore")


def _tsquery_quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _search_vectors(words: _Words, item: Commentary) -> tuple[str, str]:
    """``tsv`` as a tsvector literal (the tokenizer's words with positions and weights; a
    gap between fields, so a phrase never spans two) and the distinct words as text for
    ``tsv_stem``. Within PostgreSQL's limits: positions stop at 16383, 256 per word, and
    once the words reach ~1 MB the rest of a very long body is not indexed."""
    fields = words.split(
        [item.title, item.summary, html_to_text(item.body_html), " ".join(item.tags),
         " ".join(a.name for a in item.authors)]
    )
    positions: dict[str, list[int]] = {}
    weights: dict[tuple[str, int], str] = {}
    budget = MAX_TSVECTOR_TEXT
    position = 0
    for tokens, weight in zip(fields, WEIGHTS):
        for token in tokens:
            position = min(position + 1, MAX_POSITION)
            lexeme = _lexeme(token)
            found = positions.get(lexeme)
            if found is None:
                size = len(lexeme.encode())
                if size > budget:
                    continue
                budget -= size
                found = positions[lexeme] = []
            if len(found) < MAX_POSITIONS_PER_LEXEME and (not found or found[-1] != position):
                found.append(position)
                weights[(lexeme, position)] = weight
        position = min(position + 1, MAX_POSITION)
    literal = " ".join(
        _tsquery_quote(lexeme) + ":" + ",".join(f"{p}{weights[(lexeme, p)]}" for p in found)
        for lexeme, found in positions.items()
    )
    return literal, " ".join(positions)
