"""PostgreSQL's writes: each a few statements in one transaction that holds the write lock
(feedsvc.store.postgres.store), the commentary's rows and change in one round trip.

The shared writes (feedsvc.store.sql.rules) run here through ``Tx.do``, which answers their
requests with awaits; change numbers are handed out by ``Tx`` in commit order (see the
store's module docstring).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from feedsvc.model import Commentary, to_us
from feedsvc.store import related
from feedsvc.store.postgres.text import search_vectors
from feedsvc.store.records import Columns, CopyBatch, decode_commentary, encode
from feedsvc.store.sql import copy, rules
from feedsvc.store.sql.dialect import POSTGRES
from feedsvc.store.sql.digests import MARK_UPSERT
from feedsvc.store.words import Words

DUE = Columns("cid", "doc")

# Issue 9: a public commentary with a period leaves its weekly digest when it is replaced or
# deleted, and joins one when it turns public; the digest notes the time (rules.Drop).
_DIGEST_MARK_UPSERT = MARK_UPSERT.format(greatest=POSTGRES.greatest)
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
        updated_us, period_start, period_end, version, public, doc, tsv)
    VALUES ($2, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $1, $18, $19, $20::text::tsvector)
    RETURNING cid
), tags AS (
    INSERT INTO commentary_tags (cid, tag, tag_key)
    SELECT row.cid, t.tag, t.tag_key FROM row, unnest($21::text[], $22::text[]) AS t (tag, tag_key)
), related AS (
    INSERT INTO related_keys (lang, key, pub_us, id, translation_key, cid)
    SELECT $7, k.key, $13, $2, $9, row.cid FROM row, unnest($25::text[]) AS k (key) WHERE $18
)
INSERT INTO commentary_authors (cid, name, name_key)
SELECT row.cid, a.name, a.name_key FROM row, unnest($23::text[], $24::text[]) AS a (name, name_key)
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


class Tx:
    """A write transaction: its connection and the change numbers it hands out.

    The first number is read once the write lock is held; later ones count on from it,
    since no one else can write until this transaction ends.
    """

    def __init__(self, conn: asyncpg.Connection, words: Words) -> None:
        self.conn = conn
        self.words = words
        self.seq: int | None = None

    async def next_seq(self) -> int:
        if self.seq is None:
            self.seq = int(await self.conn.fetchval("SELECT coalesce(max(seq), 0) FROM changes"))
        self.seq += 1
        return self.seq

    async def do(self, op: rules.Op) -> Any:
        """What a shared write (feedsvc.store.sql.rules) asks for, done in this transaction."""
        match op:
            case rules.One(sql, params):
                return await self.conn.fetchrow(POSTGRES.sql(sql), *params)
            case rules.Run(sql, params):
                await self.conn.execute(POSTGRES.sql(sql), *params)
            case rules.Change(kind, ref, what, public_op, now):
                seq = await self.next_seq()
                await self.conn.execute(_INSERT_CHANGE, seq, kind, ref, what, public_op, to_us(now), None)
                return seq
            case rules.Put(item, public, what, public_op, now, _):
                item = msgspec.structs.replace(item, version=await self.next_seq())
                await _insert(self, item, public, op=what, public_op=public_op, now=now)
                return item
            case rules.Drop(cid, now):
                await self.conn.execute(_DELETE_COMMENTARY, cid, to_us(now))
        return None


async def publish_due(tx: Tx, now: datetime) -> int:
    """``publish_due``: scheduled commentaries whose time has come turn public."""
    rows = await tx.conn.fetch(
        f"SELECT {DUE.sql} FROM commentaries WHERE NOT public AND status = 'published' AND pub_us <= $1"
        " ORDER BY pub_us, id",
        to_us(now),
    )
    updates, changes, keys = [], [], []
    for row in rows:
        cid = row[DUE.at["cid"]]
        item = decode_commentary(row[DUE.at["doc"]])
        item = msgspec.structs.replace(item, version=await tx.next_seq())
        doc = encode(item)
        updates.append((item.version, doc, cid))
        keys.append(
            (item.lang, to_us(item.published_at), item.id, item.translation_key, cid, related.stored_keys(item))
        )
        changes.append((item.version, "commentary", item.id, "updated", "created", to_us(now), doc))
    if rows:
        await tx.conn.executemany(
            "UPDATE commentaries SET public = true, version = $1, doc = $2 WHERE cid = $3", updates
        )
        await tx.conn.executemany(_INSERT_CHANGE, changes)
        await tx.conn.execute(_MARK_DIGESTS, [row[DUE.at["cid"]] for row in rows], to_us(now))
        await tx.conn.executemany(_INSERT_RELATED_KEYS, keys)
    return len(rows)


async def load_copy(tx: Tx, batch: CopyBatch) -> None:
    """``load_copy``: each commentary replaces the row of its id and any stale one holding
    its language and slug."""
    conn = tx.conn
    await _run(conn, copy.before_commentaries(batch))
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
            [_commentary_args(tx.words, c.item, c.public, op="", public_op=None, at_us=0) for c in batch.commentaries],
        )
    await _run(conn, copy.after_commentaries(batch, POSTGRES))


async def _run(conn: asyncpg.Connection, statements: copy.Statements) -> None:
    for sql, rows in statements:
        if rows:
            await conn.executemany(POSTGRES.sql(sql), rows)


async def _insert(tx: Tx, item: Commentary, public: bool, *, op: str, public_op: str | None, now: datetime) -> None:
    """Insert the row, its tags, authors and search vectors, and its change, in one statement."""
    # The body's text and search vectors take tens of milliseconds for a long body: built
    # in a thread, so the event loop serves others meanwhile (the tokenizer has a lock).
    args = await asyncio.to_thread(
        _commentary_args, tx.words, item, public, op=op, public_op=public_op, at_us=to_us(now)
    )
    await tx.conn.execute(_INSERT_COMMENTARY, *args)


def _commentary_args(
    words: Words, item: Commentary, public: bool, *, op: str, public_op: str | None, at_us: int
) -> tuple[Any, ...]:
    """The parameters of ``_INSERT_COMMENTARY`` (and ``_COPY_COMMENTARY``)."""
    doc = encode(item)
    tsv = search_vectors(words, item)
    tags = {t.casefold(): t for t in item.tags}
    authors = {a.name.casefold(): a.name for a in item.authors}
    return (
        item.version, item.id, op, public_op, at_us, doc if public else None,
        item.lang, item.slug, item.translation_key, item.category, item.status, item.trend,
        to_us(item.published_at), item.published_at.date(), to_us(item.updated_at),
        item.period.start if item.period else None, item.period.end if item.period else None,
        public, doc, tsv,
        list(tags.values()), list(tags), list(authors.values()), list(authors),
        related.stored_keys(item),
    )
