"""The bulk import writes exactly what one write at a time does.

``SqliteStore.import_commentaries`` (``feedsvc import``) takes shortcuts for speed: a batch a
transaction on a connection of its own, the titles of a batch split into words in one pass,
the fast text extraction for the full-text index. None of it may show: the same commentaries
stored one by one through ``add_commentary`` leave every table with the same rows.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from bench.generate import CATEGORIES, generate
from feedsvc.model import CategoryIn, Commentary
from feedsvc.service import ImportedCommentary, Service
from feedsvc.store.sqlite import SqliteStore
from feedsvc.store.words import Words

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TABLES = {
    "commentaries": "SELECT * FROM commentaries ORDER BY rowid",
    "commentaries_fts": "SELECT rowid, * FROM commentaries_fts ORDER BY rowid",
    "commentary_tags": "SELECT * FROM commentary_tags ORDER BY cid, tag_key",
    "commentary_authors": "SELECT * FROM commentary_authors ORDER BY cid, name_key",
    "related_keys": "SELECT * FROM related_keys ORDER BY lang, key, pub_us, id",
    "changes": "SELECT * FROM changes ORDER BY seq",
    "search": "SELECT rowid FROM commentaries_fts WHERE commentaries_fts MATCH 'sanctions OR бяспека' ORDER BY rowid",
}


def prepared(n: int) -> list[Commentary]:
    service = Service(None, base_url="http://127.0.0.1")  # type: ignore[arg-type]
    return [service.prepare_import(msgspec.convert(r, ImportedCommentary), now=NOW)[0] for r in generate(n, seed=3)]


async def fill(path: Path, items: list[Commentary], *, bulk: bool) -> dict[str, list[tuple[object, ...]]]:
    store = SqliteStore(str(path))
    await store.open()
    try:
        for slug, (names, descriptions) in CATEGORIES.items():
            await store.put_category(slug, CategoryIn(names=names, descriptions=descriptions), now=NOW)
        if bulk:
            results = await store.import_commentaries([(c, False) for c in items[:70]], now=NOW)
            results += await store.import_commentaries([(c, False) for c in items[70:]], now=NOW)
            assert all(isinstance(r, Commentary) for r in results)
        else:
            for item in items:
                await store.add_commentary(item, unique_slug=False, now=NOW)
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        return {name: db.execute(sql).fetchall() for name, sql in TABLES.items()}


async def test_a_bulk_import_stores_what_one_by_one_writes_store(tmp_path: Path) -> None:
    items = prepared(150)
    one_by_one = await fill(tmp_path / "one.db", items, bulk=False)
    bulk = await fill(tmp_path / "bulk.db", items, bulk=True)
    for table in TABLES:
        assert bulk[table] == one_by_one[table], table
    assert len(bulk["related_keys"]) > len(items)
    assert bulk["search"]


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
