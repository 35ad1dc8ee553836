"""The bulk import writes exactly what one write at a time does.

``SqliteStore.import_commentaries`` (``feedsvc import``) takes shortcuts for speed: rows built
before the transaction (feedsvc.store.sqlite.bulk), a batch checked in Python and written
with one statement a table, rowids and change numbers assigned ahead, the titles of a batch
split into words in one pass, the fast text extraction for the full-text index. None of it
may show: the same commentaries stored one by one through ``add_commentary`` leave every
table with the same rows, the full-text index with the same terms, and the same answers for
the records that break a rule.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from bench.generate import CATEGORIES, generate
from feedsvc.errors import FeedsvcError
from feedsvc.model import CategoryIn, Commentary
from feedsvc.service import ImportedCommentary, Service
from feedsvc.store.bulk_rows import import_rows
from feedsvc.store.sqlite import SqliteStore
from feedsvc.store.words import Words

NOW = datetime(2026, 1, 1, tzinfo=UTC)
# The full-text index's segments (_data, _idx) depend on where transactions end; what they
# hold is compared through the index's terms instead (fts5vocab, every term's every place).
SEGMENTS = {"commentaries_fts_data", "commentaries_fts_idx"}
SEARCH = "SELECT rowid FROM commentaries_fts WHERE commentaries_fts MATCH 'sanctions OR бяспека' ORDER BY rowid"


def prepared(n: int) -> list[Commentary]:
    service = Service(None, base_url="http://127.0.0.1")  # type: ignore[arg-type]
    return [service.prepare_import(msgspec.convert(r, ImportedCommentary), now=NOW)[0] for r in generate(n, seed=3)]


def tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table (sqlite_sequence too), the index's terms, a search."""
    with sqlite3.connect(path) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")]
        found = {name: sorted(db.execute(f"SELECT * FROM {name}").fetchall(), key=repr)
                 for name in names if name not in SEGMENTS and name != "commentaries_fts"}
        db.execute("CREATE VIRTUAL TABLE temp.terms USING fts5vocab (main, commentaries_fts, instance)")
        found["terms"] = db.execute("SELECT * FROM temp.terms ORDER BY term, doc, col, offset").fetchall()
        found["commentaries_fts"] = db.execute("SELECT rowid, * FROM commentaries_fts ORDER BY rowid").fetchall()
        found["search"] = db.execute(SEARCH).fetchall()
    return found


async def fill(
    path: Path, batches: list[list[tuple[Commentary, bool]]], *, bulk: bool, stored: Sequence[Commentary] = ()
) -> list[str | tuple[str, int, str]]:
    """Store ``stored`` one by one, then ``batches`` in bulk or one by one; what became of
    each record of ``batches`` (its error, or its id, version and slug)."""
    store = SqliteStore(str(path))
    await store.open()
    outcomes: list[str | tuple[str, int, str]] = []
    try:
        for slug, (names, descriptions) in CATEGORIES.items():
            await store.put_category(slug, CategoryIn(names=names, descriptions=descriptions), now=NOW)
        for item in stored:
            await store.add_commentary(item, unique_slug=False, now=NOW)
        for batch in batches:
            if bulk:
                results = await store.import_commentaries(batch, now=NOW)
            else:
                results = []
                for item, unique_slug in batch:
                    try:
                        results.append(await store.add_commentary(item, unique_slug=unique_slug, now=NOW))
                    except FeedsvcError as e:
                        results.append(e)
            outcomes += [
                (r.id, r.version, r.slug) if isinstance(r, Commentary) else f"{type(r).__name__}: {r.message} {r.extra}"
                for r in results
            ]
    finally:
        await store.close()
    return outcomes


async def test_a_bulk_import_stores_what_one_by_one_writes_store(tmp_path: Path) -> None:
    items = [(c, False) for c in prepared(150)]
    one_by_one = await fill(tmp_path / "one.db", [items], bulk=False)
    bulk = await fill(tmp_path / "bulk.db", [items[:70], items[70:]], bulk=True)
    assert bulk == one_by_one
    expected, got = tables(tmp_path / "one.db"), tables(tmp_path / "bulk.db")
    assert got.keys() == expected.keys()
    for table in expected:
        assert got[table] == expected[table], table
    assert len(got["related_keys"]) > len(items)
    assert got["search"] and got["terms"]


async def test_rules_inside_a_batch_as_one_by_one(tmp_path: Path) -> None:
    """Ids and slugs taken before the batch or by an earlier record of it, suffixes where
    allowed, an unknown category, drafts and scheduled commentaries (not public: no related
    keys, no document in the change log)."""
    a, b, c, d, e, f, g = prepared(7)
    before = msgspec.structs.replace(g, slug="taken")
    batch = [
        (a, False),
        (msgspec.structs.replace(b, id=a.id), False),  # id of an earlier record of the batch
        (msgspec.structs.replace(c, id=before.id), False),  # id stored before
        (msgspec.structs.replace(c, slug="taken", lang=before.lang), False),  # slug stored before
        (msgspec.structs.replace(d, slug="taken", lang=before.lang), True),  # ... suffixed: taken-2
        (msgspec.structs.replace(e, slug="taken-3", lang=before.lang), False),
        (msgspec.structs.replace(f, slug="taken", lang=before.lang), True),  # taken-2, -3 taken: taken-4
        (msgspec.structs.replace(b, category="no-such-category"), False),
        (msgspec.structs.replace(b, status="draft"), False),
        (msgspec.structs.replace(c, published_at=NOW + timedelta(days=1)), False),
        (msgspec.structs.replace(e, id=f.id), False),  # id taken by the suffixed record
    ]
    one_by_one = await fill(tmp_path / "one.db", [batch], bulk=False, stored=[before])
    bulk = await fill(tmp_path / "bulk.db", [batch], bulk=True, stored=[before])
    # The import names the unknown category (add_commentary learns of it from the database).
    assert one_by_one[7] == "InvalidInputError: unknown category {'field': 'category'}"
    assert bulk[:7] + bulk[8:] == one_by_one[:7] + one_by_one[8:]
    assert [o if isinstance(o, str) else o[2] for o in bulk][1:8] == [
        f"ConflictError: a commentary with id {a.id} exists {{'field': 'id'}}",
        f"ConflictError: a commentary with id {before.id} exists {{'field': 'id'}}",
        f"ConflictError: slug 'taken' is taken in {before.lang} {{'field': 'slug'}}",
        "taken-2", "taken-3", "taken-4",
        "InvalidInputError: unknown category 'no-such-category' {'field': 'category'}",
    ]
    expected, got = tables(tmp_path / "one.db"), tables(tmp_path / "bulk.db")
    for table in expected:
        assert got[table] == expected[table], table


async def test_a_record_the_database_refuses_fails_alone(tmp_path: Path) -> None:
    """A rule only the database knows (here a trigger): the batch is written again record
    by record, and the rest of it is stored as one-by-one writes store it."""
    items = [(c, False) for c in prepared(5)]
    refused = items[2][0]
    results = {}
    for name, bulk in (("one", False), ("bulk", True)):
        path = tmp_path / f"{name}.db"
        store = SqliteStore(str(path))
        await store.open()
        await store.close()
        with sqlite3.connect(path) as db:
            db.execute(
                f"CREATE TRIGGER refuse BEFORE INSERT ON commentaries WHEN NEW.id = '{refused.id}'"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        results[name] = await fill(path, [items], bulk=bulk)
    assert results["bulk"] == results["one"]
    assert results["bulk"][2] == "ConflictError: conflict: refused {}"
    expected, got = tables(tmp_path / "one.db"), tables(tmp_path / "bulk.db")
    for table in expected:
        assert got[table] == expected[table], table


@pytest.mark.parametrize("version", [0, 7, 123456789])
def test_a_row_gives_the_document_of_its_commentary(version: int) -> None:
    (item,) = prepared(1)
    (row,) = import_rows([(item, False)])
    assert row.document(version) == msgspec.json.encode(msgspec.structs.replace(item, version=version))
    assert row.commentary() == item


def test_primed_titles_split_as_they_would_alone() -> None:
    titles = ["Sanctions and the Café", "Рэгіянальная бяспека: ціск", "covid-19 — again", "Sanctions and the Café"]
    alone = Words()
    primed = Words()
    primed.prime(titles[:3])
    assert primed.split(titles) == alone.split(titles)
    assert primed.split(["not primed at all"]) == alone.split(["not primed at all"])
    first = primed.split([titles[0]])[0]
    first.append("changed by a caller")
    assert primed.split([titles[0]]) == alone.split([titles[0]])
