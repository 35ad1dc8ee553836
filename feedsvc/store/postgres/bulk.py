"""PostgreSQL's bulk import (``feedsvc import``): rows built off the writer, a batch a COPY.

The rows come from ``bulk_rows.import_rows`` in ``feedsvc import``'s worker processes, as
for SQLite (feedsvc.store.sqlite.bulk). Written one at a time through ``add_commentary``
each cost a round trip or more, under the write lock: 50 commentaries a second on a loaded
machine. Here a batch takes a fixed number of round trips whatever its size: the rules
``add_commentary`` checks (known category, new id, free slug, suffixed when allowed) are
checked for the whole batch in Python against two queries, the batch's change numbers
counted on from the one the write lock guards, its ``cid``s drawn from the identity's
sequence at once, and each table filled by one ``COPY`` (binary, through asyncpg). Each
row's full-text vector comes built with it (``RowImport.row_vector``): it is the costliest
part of a row, and the writer has one core. The
commentaries go through a temporary table, because asyncpg has no binary encoder for
``tsvector``: ``INSERT ... SELECT`` casts the text there. The tables end up holding the rows
one-by-one writes hold (tests/test_bulk_import.py compares them).

A rule only the database knows (a constraint added later, a trigger) fails the batch; the
store then writes it again record by record with a savepoint each, so that the record
fails alone (``PostgresStore.import_rows``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import msgspec

from feedsvc.errors import FeedsvcError
from feedsvc.model import to_us
from feedsvc.store.bulk_rows import Imported, ImportRow
from feedsvc.store.postgres.text import vector_literal
from feedsvc.store.postgres.writes import Tx
from feedsvc.store.sql import rules

_encode = msgspec.json.Encoder().encode

_COLUMNS = (
    "cid", "id", "lang", "slug", "translation_key", "category", "status", "trend", "pub_us", "pub_date",
    "updated_us", "period_start", "period_end", "version", "public", "doc", "tsv",
)
_STAGE = (
    "CREATE TEMP TABLE import_commentaries (LIKE commentaries INCLUDING DEFAULTS) ON COMMIT DROP;"
    " ALTER TABLE import_commentaries ALTER COLUMN tsv TYPE text"
)
_FROM_STAGE = (
    f"INSERT INTO commentaries ({', '.join(_COLUMNS)}) OVERRIDING SYSTEM VALUE"
    f" SELECT {', '.join(_COLUMNS[:-1])}, tsv::tsvector FROM import_commentaries"
)
_CIDS = "SELECT nextval(pg_get_serial_sequence('commentaries', 'cid')) FROM generate_series(1, $1)"


async def write_rows(tx: Tx, rows: Sequence[ImportRow], now: datetime) -> list[Imported | FeedsvcError]:
    """Store ``rows`` in the write transaction ``tx``, each as ``add_commentary`` would at
    ``now``; a row that breaks a rule gets the error ``add_commentary`` raises instead, and
    nothing of it is written.

    Raises:
        asyncpg.PostgresError: the database refused the batch (see the module docstring);
            part of it may be written, so the caller rolls the transaction back.
    """
    conn = tx.conn
    categories = {r[0] for r in await conn.fetch("SELECT slug FROM categories")}
    taken_ids = {
        r[0] for r in await conn.fetch("SELECT id FROM commentaries WHERE id = ANY($1::text[])", [r.id for r in rows])
    }
    taken_slugs: set[tuple[str, str]] = {
        (r[0], r[1]) for r in await conn.fetch(
            "SELECT c.lang, c.slug FROM commentaries c JOIN unnest($1::text[], $2::text[]) AS n (lang, slug)"
            " ON c.lang = n.lang AND c.slug = n.slug",
            [r.lang for r in rows], [r.slug for r in rows],
        )
    }
    now_us = to_us(now)
    results: list[Imported | FeedsvcError] = []
    placed: list[tuple[ImportRow, str, int, bool, bytes]] = []
    for row in rows:
        if (refused := rules.import_refusal(row, categories, taken_ids, taken_slugs)) is not None:
            results.append(refused)
            continue
        slug = row.slug
        if (row.lang, slug) in taken_slugs:
            slug = await _free_slug(tx, row, taken_slugs)
        taken_ids.add(row.id)
        taken_slugs.add((row.lang, slug))
        seq = await tx.next_seq()
        public = row.status == "published" and row.pub_us <= now_us
        if slug == row.slug:
            doc = row.document(seq)
        else:
            doc = _encode(msgspec.structs.replace(row.commentary(), slug=slug, version=seq))
        results.append(Imported(seq, slug))
        placed.append((row, slug, seq, public, doc))
    if placed:
        await _copy(tx, placed, now_us)
    return results


async def _copy(tx: Tx, placed: list[tuple[ImportRow, str, int, bool, bytes]], now_us: int) -> None:
    conn = tx.conn
    cids = [r[0] for r in await conn.fetch(_CIDS, len(placed))]
    await conn.copy_records_to_table(
        "changes", columns=["seq", "kind", "ref", "op", "public_op", "at_us", "doc"], records=[
            (seq, "commentary", row.id, "created", "created" if public else None, now_us, doc if public else None)
            for row, _, seq, public, doc in placed
        ],
    )
    await conn.execute(_STAGE)
    await conn.copy_records_to_table("import_commentaries", columns=list(_COLUMNS), records=[
        (cid, row.id, row.lang, slug, row.translation_key, row.category, row.status, row.trend, row.pub_us,
         date.fromisoformat(row.pub_date), row.updated_us, _date(row.period_start), _date(row.period_end), seq,
         public, doc, row.tsv if row.tsv is not None else vector_literal(tx.words.split(list(row.fts))))
        for cid, (row, slug, seq, public, doc) in zip(cids, placed, strict=True)
    ])
    await conn.execute(_FROM_STAGE)
    await conn.copy_records_to_table("commentary_tags", columns=["cid", "tag", "tag_key"], records=[
        (cid, tag, key) for cid, (row, *_) in zip(cids, placed, strict=True) for tag, key in row.tags
    ])
    await conn.copy_records_to_table("commentary_authors", columns=["cid", "name", "name_key"], records=[
        (cid, name, key) for cid, (row, *_) in zip(cids, placed, strict=True) for name, key in row.authors
    ])
    await conn.copy_records_to_table(
        "related_keys", columns=["lang", "key", "pub_us", "id", "translation_key", "cid"], records=[
            (row.lang, key, row.pub_us, row.id, row.translation_key, cid)
            for cid, (row, _, _, public, _) in zip(cids, placed, strict=True) if public for key in row.related_keys
        ],
    )


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value is not None else None


async def _free_slug(tx: Tx, row: ImportRow, taken: set[tuple[str, str]]) -> str:
    """The slug ``rules.settle_slug`` would give ``row``: suffixed -2, -3, ... until free, in the
    database and among the rows of this batch written before it."""
    base, n, slug = row.slug, 1, row.slug
    while (row.lang, slug) in taken or await tx.conn.fetchval(
        "SELECT 1 FROM commentaries WHERE lang = $1 AND slug = $2", row.lang, slug
    ):
        n += 1
        slug = rules.next_slug(base, n)
    return slug


def imported(outcomes: Sequence[Any]) -> list[Imported | FeedsvcError]:
    """``import_commentaries``' outcomes (stored commentaries or errors) as ``import_rows``'."""
    return [o if isinstance(o, FeedsvcError) else Imported(o.version, o.slug) for o in outcomes]
