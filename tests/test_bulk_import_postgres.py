"""PostgreSQL's bulk import (a COPY a table, feedsvc.store.postgres.bulk) writes exactly what
one write at a time does: the same rows in every table, the same answers for the records
that break a rule, and a record the database refuses fails alone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import msgspec
import pytest

from bench.generate import CATEGORIES
from feedsvc.errors import FeedsvcError
from feedsvc.model import CategoryIn, Commentary
from feedsvc.query import Query
from feedsvc.store.bulk_rows import Imported, import_rows
from feedsvc.store.postgres import PostgresStore
from tests.conftest import drop_schema, new_schema, postgres_dsn
from tests.test_bulk_import import NOW, prepared

Outcome = str | tuple[str, int, str]


@pytest.fixture
async def schemas() -> AsyncIterator[tuple[str, str, str]]:
    """The DSN and two new schemas: one filled one by one, one in bulk."""
    dsn = postgres_dsn()
    names = new_schema(), new_schema()
    try:
        yield dsn, *names
    finally:
        for name in names:
            await drop_schema(dsn, name)


async def fill(
    dsn: str, schema: str, batches: list[list[tuple[Commentary, bool]]], *, bulk: bool,
    stored: Sequence[Commentary] = (), refuse: str | None = None, vectors: bool = True,
) -> list[Outcome]:
    """Store ``stored`` one by one, then ``batches`` as rows in bulk or one by one; what
    became of each record of ``batches``. ``refuse``: an id a trigger refuses; ``vectors``:
    rows come with their full-text vectors, as ``feedsvc import`` builds them for PostgreSQL."""
    store = PostgresStore(dsn, schema=schema)
    await store.open()
    outcomes: list[Outcome] = []
    try:
        if refuse:
            conn = await asyncpg.connect(dsn, server_settings={"search_path": f'"{schema}"'})
            try:
                await conn.execute(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                    f" $$ BEGIN IF NEW.id = '{refuse}' THEN RAISE unique_violation USING MESSAGE = 'refused';"
                    " END IF; RETURN NEW; END $$;"
                    " CREATE TRIGGER refuse BEFORE INSERT ON commentaries FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            finally:
                await conn.close()
        for slug, (names, descriptions) in CATEGORIES.items():
            await store.put_category(slug, CategoryIn(names=names, descriptions=descriptions), now=NOW)
        for item in stored:
            await store.add_commentary(item, unique_slug=False, now=NOW)
        for batch in batches:
            if bulk:
                rows = import_rows(batch, vector=store.row_vector if vectors else None)
                assert all((row.tsv is not None) == vectors for row in rows)
                results: list[Any] = list(await store.import_rows(rows, now=NOW))
            else:
                results = []
                for item, unique_slug in batch:
                    try:
                        results.append(await store.add_commentary(item, unique_slug=unique_slug, now=NOW))
                    except FeedsvcError as e:
                        results.append(e)
            outcomes += [
                f"{type(r).__name__}: {r.message} {r.extra}" if isinstance(r, FeedsvcError)
                else (item.id, r.seq, r.slug) if isinstance(r, Imported) else (r.id, r.version, r.slug)
                for (item, _), r in zip(batch, results, strict=True)
            ]
        found = await store.get_commentaries(Query(q="sanctions", limit=500))
        outcomes.append(f"search: {sorted(c.id for c in found)}")
    finally:
        await store.close()
    return outcomes


async def tables(dsn: str, schema: str, *, cids: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of ``schema`` (tsvectors as text; without the ``cid``
    columns unless ``cids``)."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": f'"{schema}"'})
    try:
        names = [r[0] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1", schema
        )]
        found = {}
        for name in names:
            rows = await conn.fetch(f"SELECT * FROM {name}")
            found[name] = sorted(
                (tuple(str(v) if k == "tsv" else v for k, v in r.items() if cids or k != "cid") for r in rows), key=repr
            )
        return found
    finally:
        await conn.close()


@pytest.mark.parametrize("vectors", [True, False], ids=["vectors built with the rows", "vectors built by the writer"])
async def test_a_bulk_import_stores_what_one_by_one_writes_store(schemas: tuple[str, str, str], vectors: bool) -> None:
    dsn, one, bulk = schemas
    items = [(c, False) for c in prepared(150)]
    by_one = await fill(dsn, one, [items], bulk=False)
    in_bulk = await fill(dsn, bulk, [items[:70], items[70:]], bulk=True, vectors=vectors)
    assert in_bulk == by_one
    expected, got = await tables(dsn, one), await tables(dsn, bulk)
    assert got.keys() == expected.keys()
    for table in expected:
        assert got[table] == expected[table], table
    assert len(got["related_keys"]) > len(items)
    assert by_one[-1] != "search: []"


async def test_rules_inside_a_batch_as_one_by_one(schemas: tuple[str, str, str]) -> None:
    """Ids and slugs taken before the batch or by an earlier record of it, suffixes where
    allowed, an unknown category, drafts and scheduled commentaries."""
    dsn, one, bulk = schemas
    a, b, c, d, e, f, g = prepared(7)
    before = msgspec.structs.replace(g, slug="taken")
    batch = [
        (a, False),
        (msgspec.structs.replace(b, id=a.id), False),
        (msgspec.structs.replace(c, id=before.id), False),
        (msgspec.structs.replace(c, slug="taken", lang=before.lang), False),
        (msgspec.structs.replace(d, slug="taken", lang=before.lang), True),
        (msgspec.structs.replace(e, slug="taken-3", lang=before.lang), False),
        (msgspec.structs.replace(f, slug="taken", lang=before.lang), True),
        (msgspec.structs.replace(b, category="no-such-category"), False),
        (msgspec.structs.replace(b, status="draft"), False),
        (msgspec.structs.replace(c, published_at=NOW + timedelta(days=1)), False),
        (msgspec.structs.replace(e, id=f.id), False),
    ]
    by_one = await fill(dsn, one, [batch], bulk=False, stored=[before])
    in_bulk = await fill(dsn, bulk, [batch], bulk=True, stored=[before])
    # The import names the unknown category (add_commentary learns of it from the database).
    assert in_bulk[7] == "InvalidInputError: unknown category 'no-such-category' {'field': 'category'}"
    assert in_bulk[:7] + in_bulk[8:] == by_one[:7] + by_one[8:]
    assert [o if isinstance(o, str) else o[2] for o in in_bulk][4:7] == ["taken-2", "taken-3", "taken-4"]
    # One by one, the unknown category fails in the database, after its INSERT drew a cid:
    # the cids after it differ by that one. The rest is the same.
    expected, got = await tables(dsn, one, cids=False), await tables(dsn, bulk, cids=False)
    for table in expected:
        assert got[table] == expected[table], table


async def test_a_record_the_database_refuses_fails_alone(schemas: tuple[str, str, str]) -> None:
    dsn, one, bulk = schemas
    items = [(c, False) for c in prepared(5)]
    refused = items[2][0].id
    by_one = await fill(dsn, one, [items], bulk=False, refuse=refused)
    in_bulk = await fill(dsn, bulk, [items], bulk=True, refuse=refused)
    assert in_bulk == by_one
    assert isinstance(in_bulk[2], str) and in_bulk[2].startswith("ConflictError")
    # The batch drew its cids before it was refused and written again record by record: the
    # identity's sequence moved on, as in any transaction rolled back. The rest is the same.
    expected, got = await tables(dsn, one, cids=False), await tables(dsn, bulk, cids=False)
    for table in expected:
        assert got[table] == expected[table], table
