"""Full-text pages on SQLite come from one of three plans (feedsvc.store.sqlite.search),
chosen by how many commentaries match, with the last word's prefix spelled out as the terms
the index holds. Whatever the plan, a page is exactly what the plain query gives: the same
commentaries, in the same order, for every kind of word and filter tested here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from feedsvc.model import Author, CategoryIn, Commentary
from feedsvc.query import Query
from feedsvc.store.sqlite import SqliteStore, build_where, search, source_of

N = 1000
START = datetime(2024, 1, 1, tzinfo=UTC)


def body(n: int) -> str:
    """Words with known frequencies: ``omnipresent`` in all, ``frequent`` in a third,
    ``middling`` in 40, ``rarest`` in 10; prefixes with several terms and a phrase."""
    words = ["omnipresent"]
    if n % 3 == 0:
        words.append("frequent")
    if n % 25 == 0:
        words.append("middling")
    if n % 100 == 0:
        words.append("rarest")
    words.append(("sanction", "sanctions", "sanctioned", "sanctuary")[n % 4])
    words.append(f"covid-{n % 30}")  # "covid-1" is the phrase covid + 1*: 1, 10...19
    words.append(f"zeta{n % 20}")  # "zeta" has 20 terms: more than MAX_TERMS
    if n % 7 == 0:
        words.append("Café Ĺongword")  # diacritics: found as "cafe", "longword"
    return f"<p>{' '.join(words)}.</p><p>Filler &amp; more <b>text</b>.</p>"


def tags(n: int) -> list[str]:
    """``Trade`` on all, ``Often`` on a third, ``Seldom`` on one in a hundred."""
    return ["Trade", *(["Often"] if n % 3 == 0 else []), *(["Seldom"] if n % 100 == 3 else [])]


def make(n: int) -> Commentary:
    # Every fifth pair shares a publication time: ties are ordered by id.
    published = START + timedelta(hours=n - n % 2 * (n % 5 == 1))
    return Commentary(
        id=f"01JQ{n:022d}", slug=f"c-{n}", lang="be" if n % 4 == 1 else "en", title="Commentary",
        summary="Summary.", body_html=body(n), category="economy" if n % 2 else "politics", tags=tags(n),
        authors=[Author(name="Anna Kovalenko"), *([Author(name="Rare Author")] if n % 97 == 0 else [])],
        published_at=published, updated_at=published, created_at=published,
        status="draft" if n % 50 == 7 else "published", version=0,
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "search.db"))
    await s.open()
    now = START + timedelta(days=365)
    for slug in ("economy", "politics"):
        await s.put_category(slug, CategoryIn(names={"en": slug}), now=now)
    results = await s.import_commentaries([(make(n), False) for n in range(N)], now=now)
    assert all(isinstance(r, Commentary) for r in results)
    try:
        yield s
    finally:
        await s.close()


QUERIES = [
    Query(q="omnipresent"),
    Query(q="Frequent"),
    Query(q="middling"),
    Query(q="rarest"),
    Query(q="sanct"),
    Query(q="sanctions"),
    Query(q="sanctio"),
    Query(q="omnipresent sanctu"),
    Query(q="covid-1"),
    Query(q="covid-19"),
    Query(q="zeta"),
    Query(q="zeta1"),
    Query(q="cafe"),
    Query(q="CAF"),
    Query(q="longw"),
    Query(q="nothing"),
    Query(q='"quoted'),
    Query(q="-"),
    Query(q="frequent", categories=("economy",)),
    Query(q="middling", lang="be"),
    Query(q="sanct", from_date=date(2024, 1, 10), to_date=date(2024, 1, 20)),
    Query(q="frequent", tag="trade"),
    Query(tag="often"),
    Query(tag="Seldom"),
    Query(tag="none-such"),
    Query(author="rare author"),
    Query(author="Anna Kovalenko", tag="seldom"),
    Query(q="rarest", tag="often"),
    Query(q="omnipresent", tag="seldom", author="anna kovalenko"),
    Query(q="zeta", tag="often", lang="en"),
    Query(tag="often", after=(int((START + timedelta(hours=600)).timestamp() * 1_000_000), f"01JQ{600:022d}")),
    Query(q="omnipresent", limit=5),
    Query(q="omnipresent", after=(int((START + timedelta(hours=500)).timestamp() * 1_000_000), "01JQ" + "9" * 22)),
    Query(q="zeta", after=(int((START + timedelta(hours=701)).timestamp() * 1_000_000), f"01JQ{701:022d}")),
]


async def reference(store: SqliteStore, query: Query) -> list[str]:
    """The page as the plain query gives it: the prefix left to FTS5, every set listed."""
    where, params = build_where(query)
    async with store._read() as conn:
        rows = await conn.execute_fetchall(
            f"SELECT c.id FROM {source_of(query)} WHERE {where} ORDER BY c.pub_us DESC, c.id DESC LIMIT ?",
            [*params, query.limit],
        )
    return [r[0] for r in rows]


@pytest.mark.parametrize(
    "query",
    QUERIES,
    ids=lambda q: " ".join(f"{k}={v!r}" for k, v in msgspec.structs.asdict(q).items() if v and k != "limit"),
)
async def test_every_plan_gives_the_plain_querys_page(store: SqliteStore, query: Query) -> None:
    expected = await reference(store, query)
    plans: list[search.Plan | None] = ["probe", "list", "matches", None]
    for plan in plans:
        async with store._read() as conn:
            rows = await store._page_rows(conn, query, "c.id", plan=plan)
        assert [r[0] for r in rows] == expected, plan
    assert [c.id for c in await store.get_commentaries(query)] == expected


async def test_the_pages_of_a_search_walk_every_match_once(store: SqliteStore) -> None:
    query = Query(q="sanct", limit=7)
    expected = await reference(store, Query(q="sanct", limit=N))
    seen: list[str] = []
    while True:
        page = await store.get_commentaries(query)
        seen += [c.id for c in page]
        if len(page) < query.limit:
            break
        last = page[-1]
        query = Query(q="sanct", limit=7, after=(int(last.published_at.timestamp() * 1_000_000), last.id))
    assert seen == expected
    assert len(expected) > 100


async def test_a_prefix_is_spelled_out_as_the_terms_the_index_holds(store: SqliteStore) -> None:
    async with store._read() as conn:
        assert await search.expanded_query(conn, "sanct") == (
            '("sanction" OR "sanctioned" OR "sanctions" OR "sanctuary")', True
        )
        assert await search.expanded_query(conn, "Omni") == ('"omnipresent"', True)
        assert await search.expanded_query(conn, "frequent CAF") == ('"frequent" AND "cafe"', True)
        # Words before a prefix that spells out as several terms: FTS5 refuses a phrase next to
        # a parenthesised group without an explicit AND (a 500 until it was spelled out).
        match, exact = await search.expanded_query(conn, "frequent sanct")
        assert (match, exact) == ('"frequent" AND ("sanction" OR "sanctioned" OR "sanctions" OR "sanctuary")', True)
        # A word without a token stays out, as FTS5 leaves it out of an implicit AND.
        assert await search.expanded_query(conn, "frequent & CAF") == ('"frequent" AND "cafe"', True)
        assert await search.expanded_query(conn, "covid-19") == ('"covid 19"', True)
        # More terms than MAX_TERMS: the prefix stays for FTS5, too costly to probe. None at
        # all: it stays too, and costs nothing.
        assert await search.expanded_query(conn, "zeta") == ('"zeta"*', False)
        assert await search.expanded_query(conn, "nothing") == ('"nothing"*', True)


def test_the_plan_follows_how_many_commentaries_are_in_each_set() -> None:
    """Decisions at 1M rows, against what was measured fastest there (ms, plan chosen vs
    the next best): a word in 83 % of commentaries is probed (1.2 vs 149 listed); one in
    0.6 % is listed (1.9 vs 23 driven, 109 probed); a tag on 37 %, 4 % or 1.7 % is probed
    (0.07, 0.38, 0.65 vs 82, 7.7, 3.4 listed); a common word with a common tag probes both,
    the tag first (2.5 vs 17.5 with the tag listed); with a rare word, the word's set drives
    or is listed (31 listed vs 459 probed)."""
    rows = 1_000_000
    text, tag, prefix = (
        search.Member("text", '"w"'),
        search.Member("tag", "t"),
        search.Member("text", '"w"*', probe_ok=False),
    )

    def plan(members: list[search.Member], sizes: list[float]) -> tuple[str | None, list[str]]:
        chosen = search.choose(members, sizes, rows, 21)
        return (chosen.driver.kind if chosen.driver else None), [mode for _, mode in chosen.modes]

    assert plan([text], [830_000]) == (None, ["probe"])
    assert plan([text], [6_000]) == (None, ["list"])
    assert plan([text], [100]) == ("text", [])
    assert plan([text], [0]) == ("text", [])
    assert plan([tag], [368_000]) == (None, ["probe"])
    assert plan([tag], [40_000]) == (None, ["probe"])
    assert plan([tag], [17_000]) == (None, ["probe"])
    assert plan([tag], [30]) == ("tag", [])
    assert plan([tag, text], [40_000, 830_000]) == (None, ["probe", "probe"])
    assert plan([tag, text], [40_000, 6_000])[1] != ["probe", "probe"]
    assert plan([prefix], [rows]) == (None, ["list"])  # never probed
    assert plan([tag, prefix], [30, rows]) == ("tag", ["list"])


async def test_a_new_term_is_found_by_the_prefix_it_starts_with_right_after_its_write(store: SqliteStore) -> None:
    """Spelled-out prefixes are remembered while nothing is written: a commentary bringing
    the first "sanctimonious" shows at once in a search for "sanct"."""
    before = await store.get_commentaries(Query(q="sanct", limit=N))
    again = await store.get_commentaries(Query(q="sanct", limit=N))  # answered from the remembered terms
    assert [c.id for c in again] == [c.id for c in before]
    new = msgspec.structs.replace(make(N + 1), body_html="<p>A sanctimonious statement.</p>")
    now = START + timedelta(days=366)
    await store.add_commentary(new, unique_slug=False, now=now)
    after = await store.get_commentaries(Query(q="sanct", limit=N))
    assert [c.id for c in after] == [new.id, *(c.id for c in before)]
    assert [c.id for c in await store.get_commentaries(Query(q="sanctim"))] == [new.id]
