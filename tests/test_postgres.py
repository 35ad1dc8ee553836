"""The PostgreSQL store beyond the shared contract (issue 5): the same answers as SQLite
through HTTP, the same search, change numbers in commit order with several writers,
migrations under a lock, driver errors mapped, and two real server processes on one
database staying coherent.

Every test needs FEEDSVC_TEST_POSTGRES_DSN and works in a schema of its own.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient
from msgspec.structs import replace as msgspec_replace

from feedsvc.config import load_settings
from feedsvc.errors import ConflictError, StorageBusyError, StorageError
from feedsvc.http.app import create_app
from feedsvc.model import Author, CategoryIn, Commentary
from feedsvc.query import Query
from feedsvc.service import Service
from feedsvc.store import IdempotencyKey, Store
from feedsvc.store import postgres as postgres_module
from feedsvc.store.postgres import PostgresStore
from feedsvc.store.sqlite import SqliteStore
from tests.conftest import (
    CATEGORIES,
    CLOCK_START,
    PUBLIC_URL,
    FakeClock,
    commentary,
    drop_schema,
    new_schema,
    postgres_dsn,
    with_schema,
)
from tests.test_api_read import FILTERS, FTS_SYNTAX, SEED, record

API = "/api/v1/commentaries"
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(days=1)


@pytest.fixture
async def schema() -> AsyncIterator[tuple[str, str]]:
    """(DSN, a fresh schema name), dropped afterwards."""
    dsn = postgres_dsn()
    name = new_schema()
    try:
        yield dsn, name
    finally:
        await drop_schema(dsn, name)


@pytest.fixture
async def both(schema: tuple[str, str], tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, PostgresStore]]:
    """An open SQLite store and an open PostgreSQL store, each with the same categories."""
    dsn, name = schema
    stores = (SqliteStore(str(tmp_path / "both.db")), PostgresStore(dsn, schema=name))
    for store in stores:
        await store.open()
        await store.put_category("economy", CategoryIn(names={"en": "Economy"}), now=NOW)
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


def item(n: int, **fields: Any) -> Commentary:
    values: dict[str, Any] = {
        "id": f"01JR{n:022d}", "slug": f"c-{n}", "lang": "en", "title": f"Item {n}", "summary": "",
        "body_html": "<p>Body.</p>", "category": "economy", "tags": [], "authors": [Author(name="A N Other")],
        "published_at": NOW - timedelta(minutes=n), "updated_at": NOW, "created_at": NOW,
        "status": "published", "version": 0,
    }
    values.update(fields)
    return Commentary(**values)


async def search(store: Store, q: str) -> list[str]:
    return [c.id for c in await store.get_commentaries(Query(q=" ".join(q.split()) or None, limit=100))]


# --- the API answers the same on both stores --------------------------------------------------


class SequentialUlid:
    """Stands in for ``ULID`` in the service: ids in order, so both runs get the same ids."""

    def __init__(self) -> None:
        self.n = 0

    def from_datetime(self, _: datetime) -> str:
        self.n += 1
        return f"01KZ{self.n:022d}"


FEED_PATHS = [
    "/feed.rss", "/feed.atom", "/feed.json", "/categories/economy/feed.json",
    "/categories/regional-security/feed.atom", "/be/feed.rss", "/feed.json?q=border&lang=en", "/",
]


async def transcript(database_url: str, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    """Run one scripted session against a fresh app on ``database_url`` and return what it
    saw: ids, pages, counts, feed bytes and ETags, change log, statuses. Cursors are left
    out (they are signed with a key of each database); everything else must be identical."""
    monkeypatch.setattr("feedsvc.service.ULID", SequentialUlid())
    seen: list[tuple[Any, Any]] = []
    app = create_app(load_settings({}, database_url=database_url, public_url=PUBLIC_URL))
    async with AsyncTestClient(app, base_url="http://testserver.local") as client:
        service: Service = app.state.service
        clock = FakeClock(CLOCK_START)
        service.clock = clock
        token, _ = await service.create_token("tests", ["write"])
        auth = {"Authorization": f"Bearer {token}"}
        racing = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver.local")

        async def get(path: str, **params: Any) -> Any:
            r = await client.get(path, params=params or None)
            body = r.json()
            if isinstance(body, dict) and body.get("next_cursor"):
                body["next_cursor"] = body["next_cursor"].split(".")[0]  # the position, not the signature
            seen.append((path + repr(sorted(params.items())), (r.status_code, body)))
            return r

        async def feeds(label: str) -> dict[str, str]:
            etags = {}
            for path in FEED_PATHS:
                r = await client.get(path)
                etags[path] = r.headers.get("etag", "")
                seen.append(((label, path), (r.status_code, etags[path], r.content)))
            return etags

        for slug, body in CATEGORIES.items():
            assert (await client.put(f"/api/v1/categories/{slug}", json=body, headers=auth)).status_code == 201
        for n in SEED:
            await service.import_commentary(record(n))

        # Filters (the table of test_api_read), and text that looks like search syntax.
        for query, _ in FILTERS:
            await get(f"{API}?{query}&limit=100" if query else f"{API}?limit=100")
        for q in FTS_SYNTAX:
            await get(API, q=q, limit=100)
        # A walk by cursor through ties on published_at, with and without a filter.
        for params in ({"limit": 3}, {"limit": 2, "category": "economy,foreign-policy"}):
            pages, cursor = [], None
            while True:
                r = await client.get(API, params={**params, **({"cursor": cursor} if cursor else {})})
                assert r.status_code == 200, r.text
                pages.append([c["id"] for c in r.json()["items"]])
                cursor = r.json()["next_cursor"]
                if not cursor:
                    break
            seen.append((("walk", repr(params)), pages))
        for path in ("/api/v1/tags", "/api/v1/authors", "/api/v1/categories", "/api/v1/categories/economy"):
            await get(path)
        before = await feeds("seeded")

        # Writes: slugs derived, suffixed, and refused when explicit and taken.
        for body in (
            commentary(title="Weekly monitoring", slug="weekly", category="economy"),
            commentary(title="Weekly monitoring", category="economy"),
            commentary(title="Weekly monitoring", category="economy"),
            commentary(title="Another", slug="weekly", category="economy"),
            commentary(title="Later", category="economy", published_at="2026-03-21T09:00:00+00:00"),
        ):
            r = await client.post(API, json=body, headers=auth)
            seen.append(("post", (r.status_code, r.json(), r.headers.get("etag"))))
        first = (await client.get(f"{API}/01KZ{1:022d}")).headers["etag"]
        # Three writers race with one If-Match: one wins, the others get 412.
        race = await asyncio.gather(*(
            racing.put(f"{API}/01KZ{1:022d}", json=commentary(title="Revised", slug="weekly", category="economy"),
                       headers={**auth, "If-Match": first})
            for _ in range(3)
        ))
        seen.append(("race", sorted(r.status_code for r in race)))
        r = await client.patch(f"{API}/01KZ{1:022d}", json={"tags": ["Energy"]}, headers={**auth, "If-Match": first})
        seen.append(("stale", r.status_code))
        current = (await client.get(f"{API}/01KZ{1:022d}")).headers["etag"]
        r = await client.delete(f"{API}/01KZ{2:022d}", headers={**auth, "If-Match": '"v999-x"'})
        seen.append(("stale delete", r.status_code))
        r = await client.delete(f"{API}/01KZ{2:022d}", headers={**auth, "If-Match": "*"})
        seen.append(("delete", r.status_code))
        r = await client.patch(f"{API}/01KZ{1:022d}", json={"tags": ["Energy"]}, headers={**auth, "If-Match": current})
        seen.append(("patch", (r.status_code, r.json())))
        after = await feeds("written")
        # A write in economy leaves the other categories' feeds alone.
        assert after["/categories/regional-security/feed.atom"] == before["/categories/regional-security/feed.atom"]
        assert after["/categories/economy/feed.json"] != before["/categories/economy/feed.json"]

        # The scheduled commentaries (one seeded, one posted) appear when their time comes.
        clock.now = datetime(2026, 3, 25, 9, 0, tzinfo=UTC)
        await get(API, limit=5)
        await feeds("scheduled")

        # The change log, in pages of four, tombstones included.
        changes, cursor = [], None
        while True:
            r = await client.get("/api/v1/changes", params={"limit": 4, **({"since": cursor} if cursor else {})})
            items = r.json()["items"]
            changes.append([(c["seq"], c["op"], c["id"], (c.get("commentary") or {}).get("title")) for c in items])
            cursor = r.json()["next_cursor"]
            if not items:
                break
        seen.append(("changes", changes))
        await racing.aclose()
    return seen


async def test_the_api_answers_identically_on_both_stores(
    pg_database_url: str, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_sqlite = await transcript(f"sqlite:///{db_path}", monkeypatch)
    on_postgres = await transcript(pg_database_url, monkeypatch)
    assert len(on_postgres) == len(on_sqlite)
    for (label, a), (_, b) in zip(on_sqlite, on_postgres, strict=True):
        assert b == a, f"differs at {label}: {_first_difference(a, b)}"
    # Not vacuous: the filters found what the table says, the walk saw every item once.
    results = dict(on_postgres)
    assert len(results[f"{API}?q=border&limit=100[]"][1]["items"]) == 5
    walk = results[("walk", repr({"limit": 3}))]
    assert sum(len(page) for page in walk) == 14 and len({i for page in walk for i in page}) == 14
    assert results["race"] == [200, 412, 412]
    assert [op for page in results["changes"] for (_, op, _, _) in page].count("deleted") == 1


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}")
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: sqlite {a!r:.300} != postgres {b!r:.300}"


# --- full-text search -------------------------------------------------------------------------

# Texts on which the tokenizer has opinions: diacritics, case (İ, final sigma, ß), ligatures,
# joined words, numbers, apostrophes, scripts without spaces, emoji, very long words.
TEXTS = {
    1: "Café crème brûlée in Zürich",
    2: "ΣΊΣΥΦΟΣ and İstanbul; Straße",
    3: "ﬁnancial well-known e-mail example.com 3.14 don't",
    4: "Ёлка и йод: Вялікае княства, санкции",
    5: "北京的新闻 and 😀smile🥳party",
    6: "border crossing",
    7: "x" * 3000 + " tail",
    8: "e\u0301cole ecole",
}
SEARCHES = [
    "cafe", "CAFÉ", "creme brulee", "zur", "zürich", "σισυφοσ", "ΣΊΣΥΦΟΣ", "istanbul", "straße", "strasse",
    "ﬁnancial", "financial", "well-known", "well known", "known-well", "well-kn", "e-mail", "example.com",
    "example", "com", "3.14", "3", "14", "don't", "don", "t", "ёлка", "елка", "йод", "иод", "вялікае", "санкции",
    "санкц", "北京的新闻", "北京", "smile", "party", "😀smile", "smile🥳party", "border crossing", "crossing border",
    "\"border crossing\"", "bord cross", "border -", "bord -", "-", "x" * 3000, "x" * 100, "école", "ecole",
    "'", "\\", "a:*", "border & crossing", "border | nothing", "!border", "border <-> crossing",
]


async def test_search_finds_exactly_what_sqlite_finds(both: tuple[SqliteStore, PostgresStore], subtests: Any) -> None:
    for n, text in TEXTS.items():
        for store in both:
            await store.add_commentary(item(n, title=text, lang="be"), unique_slug=False, now=NOW)
    sqlite, postgres = both
    for q in SEARCHES:
        with subtests.test(q):
            assert await search(postgres, q) == await search(sqlite, q)
    # A few checks that the table is not vacuous.
    assert await search(sqlite, "cafe") == [item(1).id]
    assert await search(sqlite, "well-kn") == [item(3).id]
    assert await search(sqlite, "crossing border") == [item(6).id]
    assert await search(sqlite, "bord -") == []


async def test_search_reaches_title_summary_body_tags_and_authors_alike(
    both: tuple[SqliteStore, PostgresStore],
) -> None:
    fields: list[dict[str, Any]] = [
        {"title": "Alpha"}, {"summary": "Alpha"}, {"body_html": "<p>Alpha <b>beta</b></p>"},
        {"tags": ["Alpha"]}, {"authors": [Author(name="Alpha Beta")]},
    ]
    for n, values in enumerate(fields, start=1):
        for store in both:
            await store.add_commentary(item(n, **values), unique_slug=False, now=NOW)
    sqlite, postgres = both
    for q in ("alpha", "alph", "alpha beta", "beta alpha", "item alpha", "body alpha"):
        assert await search(postgres, q) == await search(sqlite, q), q
    assert len(await search(postgres, "alpha")) == 5
    # A phrase never spans two fields: the title "Item 1" and the summary "Alpha" in item 2.
    assert await search(postgres, "2-alpha") == await search(sqlite, "2-alpha") == []


async def test_both_stores_find_the_same_commentaries_for_the_same_words(
    both: tuple[SqliteStore, PostgresStore],
) -> None:
    """No stemming on either store: a word finds the commentaries that hold it as written,
    the last word of a query also as a prefix, in every language alike."""
    sqlite, postgres = both
    titles = {1: ("Sanctions policies", "en"), 2: ("Новые санкций", "ru"), 3: ("New sanction policy", "en"),
              4: ("Санкції і мита", "uk"), 5: ("Новыя санкцыі", "be")}
    for store in both:
        for n, (title, lang) in titles.items():
            await store.add_commentary(item(n, title=title, lang=lang), unique_slug=False, now=NOW)
    queries = {
        "sanction policies": [], "sanctions policies": [item(1).id], "sanction": [item(1).id, item(3).id],
        "sanctions": [item(1).id], "policy": [item(3).id], "polic": [item(1).id, item(3).id],
        "санкции новые": [], "новые санкций": [item(2).id], "санкцыі": [item(5).id],
        "санкц": [item(2).id, item(4).id, item(5).id],
        "the sanctions": [],  # stop words are words too: "the" must occur
    }
    for q, expected in queries.items():
        found = await search(sqlite, q)
        assert sorted(found) == sorted(expected), q
        assert await search(postgres, q) == found, q


ALPHABET = st.sampled_from(
    list("abcxyzABC éüßİıσςΣ")
    + ["ёй", "бел", "北京", "😀", "🥳", "-", "'", ".", "e\u0301", "ﬁ", "3", "٣", "\u00a0", "_"]
)
PHRASE = st.lists(ALPHABET, min_size=1, max_size=12).map("".join)
SearchPair = tuple[asyncio.AbstractEventLoop, SqliteStore, PostgresStore, "itertools.count[int]"]


@pytest.fixture(scope="module")
def search_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchPair]:
    """Both stores on a loop of their own, kept for every example of the property test."""
    dsn = postgres_dsn()
    name = new_schema()
    loop = asyncio.new_event_loop()
    sqlite = SqliteStore(str(tmp_path_factory.mktemp("search") / "search.db"))
    postgres = PostgresStore(dsn, schema=name)

    async def setup() -> None:
        for store in (sqlite, postgres):
            await store.open()
            await store.put_category("economy", CategoryIn(names={"en": "Economy"}), now=NOW)

    async def teardown() -> None:
        for store in (sqlite, postgres):
            await store.close()
        await drop_schema(dsn, name)

    loop.run_until_complete(setup())
    try:
        yield loop, sqlite, postgres, itertools.count(1)
    finally:
        loop.run_until_complete(teardown())
        loop.close()


@settings(max_examples=40, deadline=None)
@given(
    texts=st.lists(PHRASE, min_size=1, max_size=3),
    cuts=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 12)), min_size=1, max_size=4),
)
def test_search_matches_sqlite_on_any_text(
    search_pair: SearchPair, texts: list[str], cuts: list[tuple[int, int]]
) -> None:
    """The PostgreSQL search is SQLite's, on any text. Queries are slices of the stored text, so they often match;
    commentaries pile up over the examples, so each query runs over all of them."""
    loop, sqlite, postgres, numbers = search_pair

    async def run() -> None:
        for text in texts:
            n = next(numbers)
            for store in (sqlite, postgres):
                await store.add_commentary(item(n, title=text, tags=[text[:64]], lang="en"), unique_slug=False, now=NOW)
        whole = " ".join(texts)
        for at, length in cuts:
            q = whole[at % len(whole):][:length]
            assert await search(postgres, q) == await search(sqlite, q), q

    loop.run_until_complete(run())


# --- idempotent creation (issue 7) ---------------------------------------------------------


async def test_idempotent_creation_behaves_alike_and_racing_retries_store_once(
    both: tuple[SqliteStore, PostgresStore],
) -> None:
    key = IdempotencyKey(owner="tok", key="k-1", fingerprint="f1")
    outcomes = []
    for store in both:
        first = await store.add_commentary_once(item(1), unique_slug=False, now=NOW, key=key, not_before=EARLIER)
        retry = await store.add_commentary_once(item(2), unique_slug=False, now=NOW, key=key, not_before=EARLIER)
        with pytest.raises(ConflictError) as info:
            await store.add_commentary_once(
                item(3), unique_slug=False, now=NOW, key=IdempotencyKey(owner="tok", key="k-1", fingerprint="f2"),
                not_before=EARLIER,
            )
        assert info.value.extra.get("field") == "Idempotency-Key"
        # Once forgotten, the key stores again.
        later = await store.add_commentary_once(
            item(4), unique_slug=False, now=NOW, key=key, not_before=NOW + timedelta(microseconds=1)
        )
        outcomes.append([(c.id, c.version, created) for c, created in (first, retry, later)])
    assert outcomes[0] == outcomes[1] == [(item(1).id, 2, True), (item(1).id, 2, False), (item(4).id, 3, True)]

    _, postgres = both
    racing = IdempotencyKey(owner="tok", key="k-2", fingerprint="f")
    results = await asyncio.gather(*(
        postgres.add_commentary_once(item(10 + n), unique_slug=True, now=NOW, key=racing, not_before=EARLIER)
        for n in range(4)
    ))
    assert sorted(created for _, created in results) == [False, False, False, True]
    assert len({c.id for c, _ in results}) == 1


# --- writes from several nodes ----------------------------------------------------------------


async def test_change_numbers_follow_commit_order_with_writers_on_several_nodes(schema: tuple[str, str]) -> None:
    """Writers on three "nodes" (stores with pools of their own) and a mirror polling the
    change log all at once: the mirror ends with every change, in order, none skipped."""
    dsn, name = schema
    nodes = [PostgresStore(dsn, schema=name) for _ in range(3)]
    await asyncio.gather(*(node.open() for node in nodes))  # several nodes start at once
    try:
        await nodes[0].put_category("economy", CategoryIn(names={"en": "Economy"}), now=NOW)
        mirrored: list[int] = []
        done = asyncio.Event()

        async def mirror() -> None:
            since = 0
            while True:
                finished = done.is_set()
                changes, since = await nodes[2].get_changes(since, 7)
                mirrored.extend(c.seq for c in changes)
                if finished and not changes:
                    return
                await asyncio.sleep(0)

        async def writer(node: PostgresStore, first: int) -> None:
            for n in range(first, first + 40, 2):
                stored = await node.add_commentary(item(n), unique_slug=True, now=NOW)
                if n % 4 == 0:
                    await node.update_commentary(
                        msgspec_replace(stored, title="Edited"), expected_version=None, unique_slug=False, now=NOW
                    )

        reader = asyncio.create_task(mirror())
        await asyncio.gather(writer(nodes[0], 1), writer(nodes[1], 2))
        done.set()
        await reader
        newest = (await nodes[1].get_state()).seq
        # No gaps, no repeats, in order: the category (1), then 40 creations and 10 edits.
        assert newest == 51
        assert mirrored == list(range(2, newest + 1))
    finally:
        for node in nodes:
            await node.close()


async def test_nodes_starting_at_once_migrate_once(schema: tuple[str, str]) -> None:
    dsn, name = schema
    nodes = [PostgresStore(with_schema(dsn, name)) for _ in range(4)]
    await asyncio.gather(*(node.open() for node in nodes))
    try:
        statuses = await asyncio.gather(*(node.schema_status() for node in nodes))
        assert len(set(statuses)) == 1 and statuses[0][0] == statuses[0][1]
    finally:
        for node in nodes:
            await node.close()


async def test_a_schema_may_be_named_by_the_url_or_by_search_path(schema: tuple[str, str]) -> None:
    dsn, name = schema
    by_argument = PostgresStore(dsn, schema=name)
    await by_argument.open()  # creates the schema
    by_url = PostgresStore(with_schema(dsn, name))
    by_option = PostgresStore(f"{dsn}{'&' if '?' in dsn else '?'}options=-csearch_path%3D{name}")
    try:
        await by_url.open()
        await by_option.open()
        await by_argument.put_category("economy", CategoryIn(names={"en": "Economy"}), now=NOW)
        await by_url.add_commentary(item(1), unique_slug=False, now=NOW)
        assert [c.id for c in await by_option.get_commentaries(Query())] == [item(1).id]
        # Writers however they named the schema take one lock and share one numbering.
        await asyncio.gather(*(
            store.add_commentary(item(n), unique_slug=False, now=NOW)
            for n, store in enumerate([by_argument, by_url, by_option] * 3, start=2)
        ))
        changes, _ = await by_argument.get_changes(0, 100)
        assert [c.seq for c in changes] == list(range(2, 12))
    finally:
        for store in (by_argument, by_url, by_option):
            await store.close()


# --- driver errors --------------------------------------------------------------------------


async def test_an_unreachable_database_is_a_storage_error() -> None:
    postgres_dsn()
    store = PostgresStore("postgresql://postgres@127.0.0.1:9/test")
    with pytest.raises(StorageError):
        await store.open()


async def test_a_write_waiting_too_long_for_the_lock_is_busy(schema: tuple[str, str]) -> None:
    import asyncpg

    dsn, name = schema
    store = PostgresStore(dsn, schema=name, lock_timeout_ms=200)
    await store.open()
    holder = await asyncpg.connect(dsn, server_settings={"search_path": name})
    try:
        async with holder.transaction():
            await holder.execute(postgres_module.WRITE_LOCK_SQL)
            with pytest.raises(StorageBusyError):
                await store.put_category("economy", CategoryIn(names={"en": "Economy"}), now=NOW)
        # Once the lock is free, writing works again and nothing half-done is left.
        await store.put_category("economy", CategoryIn(names={"en": "Economy"}), now=NOW)
        assert (await store.get_state()).seq == 1
    finally:
        await holder.close()
        await store.close()


async def test_import_keeps_good_records_when_one_fails_inside_the_database(
    both: tuple[SqliteStore, PostgresStore],
) -> None:
    """A tag with a NUL character is refused by PostgreSQL alone (the service strips such
    characters before any store sees them): that record fails, its neighbours are kept."""
    _, postgres = both
    batch = [(item(1), False), (item(2, tags=["bad\x00tag"]), False), (item(3), False), (item(1), False)]
    results = await postgres.import_commentaries(batch, now=NOW)
    assert [type(r).__name__ for r in results] == ["Commentary", "StorageError", "Commentary", "ConflictError"]
    assert [c.id for c in await postgres.get_commentaries(Query())] == [item(1).id, item(3).id]
    changes, _ = await postgres.get_changes(0, 100)
    assert [c.seq for c in changes] == [2, 3]  # no gap where the failed record was


# --- two real server processes on one database ------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def two_nodes(schema: tuple[str, str], tmp_path: Path) -> AsyncIterator[tuple[str, str, str]]:
    """Two ``feedsvc serve`` processes on one PostgreSQL schema: (URL of A, URL of B, token)."""
    dsn, name = schema
    url = with_schema(dsn, name)
    store = PostgresStore(url)
    await store.open()
    try:
        token, _ = await Service(store, base_url=PUBLIC_URL).create_token("nodes", ["write"])
        for slug, body in CATEGORIES.items():
            await store.put_category(slug, CategoryIn(**body), now=NOW)
    finally:
        await store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env["FEEDSVC_LOG_LEVEL"] = "WARNING"
    nodes: list[tuple[asyncio.subprocess.Process, str, Path]] = []
    try:
        for n in range(2):
            port, log = free_port(), tmp_path / f"node-{n}.log"
            with log.open("wb") as err:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "feedsvc", "serve", "--database-url", url, "--host", "127.0.0.1",
                    "--port", str(port), "--public-url", PUBLIC_URL,
                    cwd=tmp_path, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=err,
                )
            nodes.append((process, f"http://127.0.0.1:{port}", log))
        async with httpx.AsyncClient() as probe:
            deadline = time.monotonic() + 30
            for process, base, log in nodes:
                while True:
                    assert process.returncode is None, log.read_text()
                    try:
                        if (await probe.get(base + "/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, f"a node did not start: {log.read_text()}"
                    await asyncio.sleep(0.1)
        yield nodes[0][1], nodes[1][1], token
    finally:
        for process, _, _ in nodes:
            if process.returncode is None:
                process.terminate()
        for process, _, _ in nodes:
            try:
                await asyncio.wait_for(process.wait(), timeout=15)
            except TimeoutError:  # pragma: no cover
                process.kill()
                await process.wait()


async def test_two_nodes_on_one_database_answer_as_one(two_nodes: tuple[str, str, str]) -> None:
    node_a, node_b, token = two_nodes
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient() as http:
        # Both nodes render the same bytes, hence the same ETag, for every view.
        feeds = ["/feed.json", "/categories/economy/feed.atom", "/categories/foreign-policy/feed.rss"]
        etags = {path: (await http.get(node_b + path)).headers["etag"] for path in feeds}
        for path in feeds:
            assert (await http.get(node_a + path)).headers["etag"] == etags[path]
        # Cursors are signed with a key kept in the database: one node's cursor works on the other.
        start = (await http.get(node_a + "/api/v1/changes")).json()["next_cursor"]

        # A write through A is visible through B on the very next request.
        r = await http.post(node_a + API, json=commentary(title="Written on A", category="economy"), headers=auth)
        assert r.status_code == 201, r.text
        created = r.json()
        assert (await http.get(f"{node_b}{API}/{created['id']}")).json()["title"] == "Written on A"
        assert (await http.get(node_b + "/feed.json")).json()["items"][0]["title"] == "Written on A"
        economy = await http.get(node_b + "/categories/economy/feed.atom")
        assert economy.headers["etag"] != etags["/categories/economy/feed.atom"]
        assert b"Written on A" in economy.content
        # The untouched category keeps its ETag on both nodes, and a 304 on either.
        untouched = "/categories/foreign-policy/feed.rss"
        for node in (node_a, node_b):
            r = await http.get(node + untouched, headers={"If-None-Match": etags[untouched]})
            assert r.status_code == 304
        new = (await http.get(node_b + "/api/v1/changes", params={"since": start})).json()
        assert [(c["op"], c["id"]) for c in new["items"]] == [("created", created["id"])]

        # An edit through B with A's ETag, then a delete through A with B's: each sees the other.
        etag_a = (await http.get(f"{node_a}{API}/{created['id']}")).headers["etag"]
        r = await http.patch(
            f"{node_b}{API}/{created['id']}", json={"title": "Edited on B"}, headers={**auth, "If-Match": etag_a}
        )
        assert r.status_code == 200, r.text
        stale = await http.patch(
            f"{node_a}{API}/{created['id']}", json={"title": "Lost update"}, headers={**auth, "If-Match": etag_a}
        )
        assert stale.status_code == 412
        assert (await http.get(node_a + "/feed.json")).json()["items"][0]["title"] == "Edited on B"
        r = await http.delete(f"{node_a}{API}/{created['id']}", headers={**auth, "If-Match": r.headers["etag"]})
        assert r.status_code == 204
        assert (await http.get(f"{node_b}{API}/{created['id']}")).status_code == 404
        tail = (await http.get(node_b + "/api/v1/changes", params={"since": new["next_cursor"]})).json()
        assert [(c["op"], c["id"]) for c in tail["items"]] == [("updated", created["id"]), ("deleted", created["id"])]
        assert tail["items"][1].get("commentary") is None
        # Back where it started, every view is byte-identical (same ETag) on both nodes again.
        for path in feeds:
            a, b = await http.get(node_a + path), await http.get(node_b + path)
            assert a.headers["etag"] == b.headers["etag"]
