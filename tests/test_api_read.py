"""Public reads: filters, ordering, visibility of drafts and scheduled items, conditional GET,
HEAD and CORS. The seed is imported through the service with fixed ids so that the filter
table below can name its expected results; every read goes through HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from feedsvc.service import ImportedCommentary
from tests.conftest import assert_error, commentary

API = "/api/v1/commentaries"


def ID(n: int) -> str:
    """The fixed id of seed commentary ``n``: ULID-shaped, growing with n."""
    return f"01JP{n:022d}"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# The clock fixture stands at 2026-03-20 12:00 UTC. Comments give each published_at in UTC.
SEED: dict[int, dict[str, Any]] = {
    1: {"lang": "en", "category": "regional-security", "tags": ["Border", "Sanctions"], "authors": ["Anna Kovalenko"],
        "trend": "worsened", "published_at": "2026-03-01T09:00:00+00:00",  # 03-01 09:00Z
        "title": "Border tensions rise", "body": "Troops gathered near the border crossing."},
    2: {"lang": "be", "category": "regional-security", "tags": ["border"], "authors": ["Andrei Dzienisau"],
        "trend": "worsened", "published_at": "2026-03-02T10:00:00+03:00",  # 03-02 07:00Z
        "title": "Напружанасць на мяжы", "body": "Войскі сабраліся каля мяжы."},
    3: {"lang": "ru", "category": "foreign-policy", "tags": ["Sanctions"], "authors": ["Ivan Petrov"],
        "trend": "unchanged", "published_at": "2026-03-03T12:00:00+03:00",  # 03-03 09:00Z
        "updated_at": "2026-03-18T00:00:00+00:00",
        "title": "Санкции и дипломатия", "body": "Новые санкции обсуждаются в Брюсселе."},
    4: {"lang": "en", "category": "foreign-policy", "tags": ["Diplomacy"], "authors": ["Anna Kovalenko", "Piotr Nowak"],
        "trend": "improved", "published_at": "2026-03-04T08:00:00-05:00",  # 03-04 13:00Z
        "title": "Talks resume in Vienna", "body": "Diplomats returned to the table."},
    5: {"lang": "en", "category": "economy", "tags": ["Trade", "sanctions"], "authors": ["Piotr Nowak"],
        "published_at": "2026-03-05T10:00:00+01:00",  # 03-05 09:00Z
        "title": "Sanctions hit trade volumes", "body": "Exports fell sharply."},
    # Written on March 6 in Moscow: on 2026-03-06 by its own calendar, though 20:30Z.
    6: {"lang": "en", "category": "regional-security", "tags": [], "authors": ["Anna Kovalenko"],
        "trend": "unchanged", "published_at": "2026-03-06T23:30:00+03:00",  # 03-06 20:30Z
        "title": "Late-night border incident", "body": "A patrol reported shots."},
    # Written on March 7 in Kiribati, an earlier instant than #6.
    7: {"lang": "en", "category": "economy", "tags": ["Energy"], "authors": ["Piotr Nowak"], "trend": "improved",
        "published_at": "2026-03-07T00:30:00+14:00",  # 03-06 10:30Z
        "updated_at": "2026-03-16T12:00:00+00:00", "slug": "energy-week", "translation_key": "energy-week",
        "title": "Energy prices stabilise", "body": "Gas deliveries resumed."},
    # Written on March 6 at UTC-12, a later instant than #6.
    8: {"lang": "en", "category": "foreign-policy", "tags": ["Diplomacy"], "authors": ["Maria Silva"],
        "trend": "worsened", "published_at": "2026-03-06T23:00:00-12:00",  # 03-07 11:00Z
        "title": "Summit postponed", "body": "Leaders could not agree on a date."},
    9: {"lang": "ru", "category": "economy", "tags": ["Energy"], "authors": ["Ivan Petrov"],
        "published_at": "2026-03-10T12:00:00+00:00",  # 03-10 12:00Z, tied with #10
        "slug": "energy-week", "translation_key": "energy-week",
        "title": "Энергетический кризис", "body": "Цены на газ выросли."},
    10: {"lang": "be", "category": "foreign-policy", "tags": ["Diplomacy"], "authors": ["Andrei Dzienisau"],
        "trend": "improved", "published_at": "2026-03-10T15:00:00+03:00",  # 03-10 12:00Z, tied with #9
        "title": "Дыпламатычны прарыў", "body": "Перамовы працягваюцца."},
    11: {"lang": "ru", "category": "regional-security", "tags": ["Border"], "authors": ["Ivan Petrov"],
        "trend": "worsened", "published_at": "2026-03-12T08:00:00+03:00",  # 03-12 05:00Z
        "title": "Учения у границы", "body": "Военные учения начались."},
    12: {"lang": "be", "category": "economy", "tags": ["Trade"], "authors": ["Andrei Dzienisau"], "trend": "unchanged",
        "published_at": "2026-03-14T10:00:00+03:00",  # 03-14 07:00Z
        "title": "Гандаль з суседзямі", "body": "Экспарт вырас."},
    13: {"lang": "en", "category": "regional-security", "tags": ["Border", "Secret"], "authors": ["Draft Author"],
        "status": "draft", "published_at": "2026-03-15T09:00:00+00:00",
        "title": "Draft border memo", "body": "Not for publication."},
    14: {"lang": "en", "category": "economy", "tags": ["Outlook"], "authors": ["Future Author"],
        "published_at": "2026-03-25T09:00:00+00:00",  # scheduled: after the clock
        "title": "Quarterly outlook", "body": "Growth will border on zero."},
    15: {"lang": "en", "category": "regional-security", "tags": ["Border", "NATO"], "authors": ["Maria Silva"],
        "trend": "worsened", "published_at": "2026-03-15T18:00:00+02:00",  # 03-15 16:00Z, tied with #16
        "title": "NATO reinforces the eastern flank", "body": "Allied troops arrive in the Baltic states."},
    16: {"lang": "en", "category": "economy", "tags": ["Trade"], "authors": ["Anna Kovalenko"],
        "published_at": "2026-03-15T16:00:00+00:00",  # 03-15 16:00Z, tied with #15
        "title": "Grain corridor reopens", "body": "Ships left the port."},
}
DRAFT, SCHEDULED = 13, 14
# Every public commentary, newest first; ties on the instant by id, descending.
ALL = [16, 15, 12, 11, 10, 9, 8, 6, 7, 5, 4, 3, 2, 1]


def record(n: int) -> ImportedCommentary:
    spec = dict(SEED[n])
    body = spec.pop("body")
    authors = [{"name": name} for name in spec.pop("authors")]
    published_at = spec["published_at"]
    return msgspec.convert(
        {**spec, "id": ID(n), "authors": authors, "body_markdown": body,
         "updated_at": spec.get("updated_at", published_at), "created_at": published_at},
        ImportedCommentary,
    )


@pytest.fixture
async def seeded(service: Any, categories: Any, clock: Any) -> dict[int, str]:
    """Import the seed (through the service, keeping its ids); return {n: id}."""
    for n in SEED:
        await service.import_commentary(record(n))
    return {n: ID(n) for n in SEED}


async def ids_for(client: Any, query: str) -> list[str]:
    r = await client.get(f"{API}?{query}&limit=100" if query else f"{API}?limit=100")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["next_cursor"] is None
    return [item["id"] for item in body["items"]]


# (query string, expected seed numbers in order)
FILTERS: list[tuple[str, list[int]]] = [
    ("", ALL),
    # category: single, repeated, comma-separated
    ("category=economy", [16, 12, 9, 7, 5]),
    ("category=economy&category=foreign-policy", [16, 12, 10, 9, 8, 7, 5, 4, 3]),
    ("category=economy,foreign-policy", [16, 12, 10, 9, 8, 7, 5, 4, 3]),
    ("category=economy,%20foreign-policy", [16, 12, 10, 9, 8, 7, 5, 4, 3]),
    ("category=economy&category=economy", [16, 12, 9, 7, 5]),
    # tag: case-insensitive, whole tag
    ("tag=border", [15, 11, 2, 1]),
    ("tag=BORDER", [15, 11, 2, 1]),
    ("tag=Sanctions", [5, 3, 1]),
    ("tag=sanction", []),
    ("tag=Secret", []),
    ("tag=Outlook", []),
    # author: the exact name, case-insensitive
    ("author=Anna%20Kovalenko", [16, 6, 4, 1]),
    ("author=anna%20kovalenko", [16, 6, 4, 1]),
    ("author=Anna", []),
    ("author=Draft%20Author", []),
    # lang, normalised like stored tags
    ("lang=be", [12, 10, 2]),
    ("lang=BE", [12, 10, 2]),
    ("lang=ru", [11, 9, 3]),
    ("lang=en-GB", []),
    # trend
    ("trend=worsened", [15, 11, 8, 2, 1]),
    ("trend=improved", [10, 7, 4]),
    ("trend=unchanged", [12, 6, 3]),
    # from/to with dates: inclusive, compared with the calendar date written in published_at
    # (its own offset). #6 (23:30+03:00 on the 6th) is ON March 6; #7 (00:30+14:00 on the 7th)
    # is on March 7 though it is the earlier instant; #8 (23:00-12:00 on the 6th) is on March 6.
    ("to=2026-03-06", [8, 6, 5, 4, 3, 2, 1]),
    ("from=2026-03-07", [16, 15, 12, 11, 10, 9, 7]),
    ("from=2026-03-06&to=2026-03-06", [8, 6]),
    ("from=2026-03-07&to=2026-03-07", [7]),
    ("from=2026-03-01&to=2026-03-01", [1]),
    ("from=2026-03-16", []),
    # from/to with datetimes: instants, inclusive
    ("from=2026-03-06T12:00:00Z&to=2026-03-07T11:00:00Z", [8, 6]),
    ("from=2026-03-06T10:30:00Z", [16, 15, 12, 11, 10, 9, 8, 6, 7]),
    ("to=2026-03-06T13:30:00%2B03:00", [7, 5, 4, 3, 2, 1]),
    ("from=2026-03-10T12:00:00Z&to=2026-03-10T15:00:00%2B03:00", [10, 9]),
    ("from=2026-03-06T10:30:00.000001Z&to=2026-03-06T20:30:00Z", [6]),
    # updated_since: a date means its midnight in UTC; datetimes are instants, inclusive
    ("updated_since=2026-03-15", [16, 15, 7, 3]),
    ("updated_since=2026-03-16T12:00:00Z", [7, 3]),
    ("updated_since=2026-03-16T15:00:00%2B03:00", [7, 3]),
    ("updated_since=2026-03-16T12:00:01Z", [3]),
    # q: full text over title, summary, body, tags and authors; every word, last one as prefix
    ("q=border", [15, 11, 6, 2, 1]),
    ("q=BORDER", [15, 11, 6, 2, 1]),
    ("q=sanct", [5, 3, 1]),
    ("q=diploma", [10, 8, 4]),
    ("q=troops%20border", [15, 1]),
    ("q=Kovalenko", [16, 6, 4, 1]),
    ("q=санкции", [3]),
    ("q=САНКЦИИ", [3]),
    ("q=мяж", [2]),
    ("q=%22border%20tensions%22", [1]),
    ("q=tensions%20border", [1]),
    ("q=publication", []),
    ("q=nonexistentword", []),
    # combinations
    ("category=economy&lang=en&trend=improved", [7]),
    ("category=regional-security&tag=border&from=2026-03-02", [15, 11, 2]),
    ("lang=en&q=border&to=2026-03-06", [6, 1]),
    ("author=Piotr%20Nowak&category=economy", [7, 5]),
    ("category=economy&lang=be&trend=worsened", []),
    ("tag=diplomacy&from=2026-03-05&to=2026-03-10", [10, 8]),
]


async def test_filters_select_the_expected_commentaries_newest_first(
    client: Any, seeded: dict[int, str], subtests: Any
) -> None:
    for query, expected in FILTERS:
        with subtests.test(query or "(no filter)"):
            assert await ids_for(client, query) == [seeded[n] for n in expected]


async def test_date_bounds_use_the_written_date_for_any_offset_rfc3339_allows(
    client: Any, auth: dict[str, str], categories: Any, clock: Any
) -> None:
    # RFC 3339 allows offsets up to ±23:59, beyond the ±14 h of real time zones.
    east = await client.post(API, json=commentary(title="East", published_at="2026-03-08T00:30:00+23:00"), headers=auth)
    west = await client.post(API, json=commentary(title="West", published_at="2026-03-08T23:30:00-23:00"), headers=auth)
    both = [west.json()["id"], east.json()["id"]]
    assert await ids_for(client, "from=2026-03-08&to=2026-03-08") == both
    assert await ids_for(client, "from=2026-03-08") == both
    assert await ids_for(client, "to=2026-03-08") == both
    assert await ids_for(client, "to=2026-03-07") == []
    assert await ids_for(client, "from=2026-03-09") == []


FTS_SYNTAX = [
    "AND", "OR", "NOT", "*", '"', 'border AND OR NOT * "', "NEAR(border, troops)", "(", ")", "-border",
    "^border", "title:border", "border*", '"unterminated', "{body}: x", "a'b", "\\", "%", "_", "   ",
]


async def test_full_text_operators_and_quotes_are_plain_text_never_an_error(
    client: Any, seeded: dict[int, str], subtests: Any
) -> None:
    for q in FTS_SYNTAX:
        with subtests.test(q):
            r = await client.get(API, params={"q": q})
            assert r.status_code == 200, r.text
            assert isinstance(r.json()["items"], list)
    # Operators are words like any other: "AND border" needs the word "and" too.
    assert await ids_for(client, "q=AND%20border") == []
    assert await ids_for(client, "q=border*") == await ids_for(client, "q=border")


async def test_an_empty_result_is_200_with_no_items_and_no_cursor(client: Any, seeded: dict[int, str]) -> None:
    r = await client.get(API, params={"q": "nonexistentword"})
    assert r.status_code == 200
    assert r.json() == {"items": [], "next_cursor": None}
    assert "link" not in r.headers


async def test_an_empty_store_lists_nothing(client: Any) -> None:
    r = await client.get(API)
    assert r.status_code == 200
    assert r.json() == {"items": [], "next_cursor": None}


INVALID_FILTERS: list[tuple[str, str]] = [
    ("from=2026-02-30", "from"),
    ("from=2026-13-01", "from"),
    ("to=yesterday", "to"),
    ("to=2026-03-07T10:00:00", "to"),
    ("from=06.03.2026", "from"),
    ("updated_since=soon", "updated_since"),
    ("trend=better", "trend"),
    ("limit=0", "limit"),
    ("limit=101", "limit"),
    ("limit=-1", "limit"),
    ("limit=ten", "limit"),
    ("limit=99999999999999999999999", "limit"),
    ("lang=english", "lang"),
    ("lang=e", "lang"),
    ("category=Bad_Slug", "category"),
    ("category=economy,Bad%20Slug", "category"),
    ("q=" + "x" * 201, "q"),
    ("from=2026-03-08&to=2026-03-07", "from"),
    ("from=2026-03-07T12:00:00Z&to=2026-03-07T11:00:00Z", "from"),
    ("category=arms-control", "category"),  # no category has this slug (there are none yet)
]


async def test_an_invalid_filter_is_400_naming_it(client: Any, subtests: Any) -> None:
    for query, field in INVALID_FILTERS:
        with subtests.test(query[:40]):
            assert_error(await client.get(f"{API}?{query}"), 400, field)


async def test_an_unknown_category_is_400_naming_it_and_the_categories_there_are(
    client: Any, seeded: dict[int, str]
) -> None:
    known = ["economy", "foreign-policy", "regional-security"]
    for path in (API, "/feed.rss", "/feed.json", "/be/feed.atom"):
        for query, unknown in [
            ("category=arms-control", ["arms-control"]),
            ("category=economy,arms-control,sports", ["arms-control", "sports"]),
            ("category=econmy", ["econmy"]),
        ]:
            body = assert_error(await client.get(f"{path}?{query}"), 400, "category")
            assert [p["key"] for p in body["extra"]] == ["category"] * len(unknown)
            assert all(p["allowed"] == known and p["source"] == "query" for p in body["extra"])
            assert all(u in p["message"] for u, p in zip(unknown, body["extra"], strict=True))
    assert "did you mean `economy`" in body["detail"]
    # A category made after the first refusal is known at once.
    token, _ = await client.app.state.service.create_token("t", ["write"])
    r = await client.put(
        "/api/v1/categories/arms-control", json={"names": {"en": "Arms control"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    assert (await client.get(f"{API}?category=arms-control")).json() == {"items": [], "next_cursor": None}


async def test_limit_bounds_are_inclusive(client: Any, seeded: dict[int, str]) -> None:
    assert len((await client.get(f"{API}?limit=1")).json()["items"]) == 1
    assert len((await client.get(f"{API}?limit=100")).json()["items"]) == len(ALL)
    assert len((await client.get(API)).json()["items"]) == len(ALL)  # default 20


# --- drafts and scheduled commentaries --------------------------------------------------------


async def test_drafts_and_scheduled_commentaries_are_invisible_everywhere_public(
    client: Any, seeded: dict[int, str]
) -> None:
    hidden = {seeded[DRAFT], seeded[SCHEDULED]}
    assert not hidden & set(await ids_for(client, ""))
    for n in (DRAFT, SCHEDULED):
        assert_error(await client.get(f"{API}/{seeded[n]}"), 404)
    assert not {"Secret", "Outlook"} & {t["name"] for t in (await client.get("/api/v1/tags")).json()}
    assert not {"Draft Author", "Future Author"} & {a["name"] for a in (await client.get("/api/v1/authors")).json()}
    counts = {c["slug"]: c["count"] for c in (await client.get("/api/v1/categories")).json()}
    assert counts == {"regional-security": 5, "foreign-policy": 4, "economy": 5}
    assert (await client.get("/api/v1/categories/economy")).json()["count"] == 5
    changes = (await client.get("/api/v1/changes")).json()["items"]
    assert not hidden & {c["id"] for c in changes}


async def test_a_scheduled_commentary_appears_everywhere_once_its_time_comes(
    client: Any, seeded: dict[int, str], clock: Any
) -> None:
    scheduled = seeded[SCHEDULED]
    first = (await client.get("/api/v1/changes")).json()
    clock.now = datetime(2026, 3, 25, 8, 59, 59, tzinfo=UTC)
    assert_error(await client.get(f"{API}/{scheduled}"), 404)

    clock.now = datetime(2026, 3, 25, 9, 0, tzinfo=UTC)
    assert (await ids_for(client, ""))[0] == scheduled
    assert (await client.get(f"{API}/{scheduled}")).json()["title"] == "Quarterly outlook"
    assert {"name": "Outlook", "count": 1} in (await client.get("/api/v1/tags")).json()
    assert {"name": "Future Author", "count": 1} in (await client.get("/api/v1/authors")).json()
    counts = {c["slug"]: c["count"] for c in (await client.get("/api/v1/categories")).json()}
    assert counts["economy"] == 6
    assert (await client.get("/api/v1/categories/economy")).json()["count"] == 6
    assert await ids_for(client, "category=economy&q=outlook") == [scheduled]

    new = (await client.get("/api/v1/changes", params={"since": first["next_cursor"]})).json()["items"]
    assert [(c["op"], c["id"]) for c in new] == [("created", scheduled)]
    assert new[0]["commentary"]["title"] == "Quarterly outlook"
    # The draft stays hidden whatever the time.
    assert seeded[DRAFT] not in await ids_for(client, "")


async def test_a_single_category_counts_a_scheduled_commentary_once_it_is_due(
    client: Any, seeded: dict[int, str], clock: Any
) -> None:
    clock.now = datetime(2026, 3, 26, tzinfo=UTC)
    # The first read after the due time is of the category itself.
    assert (await client.get("/api/v1/categories/economy")).json()["count"] == 6


async def test_tags_and_authors_are_counted_over_public_commentaries(client: Any, seeded: dict[int, str]) -> None:
    assert (await client.get("/api/v1/tags")).json() == [
        {"name": "Border", "count": 4}, {"name": "Diplomacy", "count": 3}, {"name": "Sanctions", "count": 3},
        {"name": "Trade", "count": 3}, {"name": "Energy", "count": 2}, {"name": "NATO", "count": 1},
    ]
    assert (await client.get("/api/v1/authors")).json() == [
        {"name": "Anna Kovalenko", "count": 4}, {"name": "Andrei Dzienisau", "count": 3},
        {"name": "Ivan Petrov", "count": 3}, {"name": "Piotr Nowak", "count": 3}, {"name": "Maria Silva", "count": 2},
    ]


async def test_the_change_log_lists_public_creations_in_order(client: Any, seeded: dict[int, str]) -> None:
    items = (await client.get("/api/v1/changes")).json()["items"]
    public_in_import_order = [seeded[n] for n in SEED if n not in (DRAFT, SCHEDULED)]
    assert [c["id"] for c in items] == public_in_import_order
    assert {c["op"] for c in items} == {"created"}
    seqs = [c["seq"] for c in items]
    assert seqs == sorted(seqs)


# --- single commentaries by id and by slug ------------------------------------------------


async def test_a_slug_resolves_with_its_language(client: Any, seeded: dict[int, str]) -> None:
    en = await client.get(f"{API}/energy-week", params={"lang": "en"})
    ru = await client.get(f"{API}/energy-week", params={"lang": "RU"})
    assert en.json()["id"] == seeded[7]
    assert ru.json()["id"] == seeded[9]
    assert [t["id"] for t in en.json()["translations"]] == [seeded[9]]
    assert en.headers["etag"] == (await client.get(f"{API}/{seeded[7]}")).headers["etag"]


async def test_a_slug_missing_in_the_language_asked_is_404_listing_the_languages_it_has(
    client: Any, seeded: dict[int, str]
) -> None:
    body = assert_error(await client.get(f"{API}/energy-week", params={"lang": "be"}), 404)
    assert body["extra"]["available_languages"] == ["en", "ru"]


async def test_the_slug_of_a_draft_reveals_nothing(client: Any, seeded: dict[int, str]) -> None:
    body = assert_error(await client.get(f"{API}/draft-border-memo", params={"lang": "be"}), 404)
    assert not body["extra"].get("available_languages")
    assert_error(await client.get(f"{API}/draft-border-memo", params={"lang": "en"}), 404)


async def test_an_id_resolves_even_with_a_lang_parameter(client: Any, seeded: dict[int, str]) -> None:
    # Slugs are [a-z0-9-], ids upper-case ULIDs: an id can never be mistaken for a slug.
    for lang in ("en", "ru"):
        r = await client.get(f"{API}/{seeded[7]}", params={"lang": lang})
        assert r.status_code == 200, r.text
        assert r.json()["id"] == seeded[7]


async def test_a_slug_without_lang_or_an_unknown_id_is_404(client: Any, seeded: dict[int, str]) -> None:
    assert_error(await client.get(f"{API}/energy-week"), 404)
    assert_error(await client.get(f"{API}/01JP9999999999999999999999"), 404)


# --- conditional GET, HEAD, CORS --------------------------------------------------------------


async def test_a_matching_if_none_match_is_304_on_a_single_commentary(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    created = (await client.post(API, json=commentary(), headers=auth)).json()
    first = await client.get(f"{API}/{created['id']}")
    etag = first.headers["etag"]
    again = await client.get(f"{API}/{created['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert (await client.get(f"{API}/{created['id']}", headers={"If-None-Match": f"W/{etag}"})).status_code == 304
    assert (await client.get(f"{API}/{created['id']}", headers={"If-None-Match": f'"x", {etag}'})).status_code == 304
    assert (await client.get(f"{API}/{created['id']}", headers={"If-None-Match": '"other"'})).status_code == 200

    await client.patch(f"{API}/{created['id']}", json={"title": "Changed"}, headers={**auth, "If-Match": etag})
    changed = await client.get(f"{API}/{created['id']}", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["title"] == "Changed"


async def test_a_matching_if_none_match_is_304_on_the_list(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    await client.post(API, json=commentary(), headers=auth)
    first = await client.get(API, params={"category": "regional-security"})
    etag = first.headers["etag"]
    again = await client.get(API, params={"category": "regional-security"}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""

    await client.post(API, json=commentary(title="Another"), headers=auth)
    after_write = await client.get(API, params={"category": "regional-security"}, headers={"If-None-Match": etag})
    assert after_write.status_code == 200 and len(after_write.json()["items"]) == 2


async def test_head_answers_like_get_without_a_body(
    client: Any, auth: dict[str, str], categories: Any, subtests: Any
) -> None:
    created = (await client.post(API, json=commentary(), headers=auth)).json()
    for path in (API, f"{API}/{created['id']}", "/api/v1/categories", "/api/v1/tags", "/api/v1/changes"):
        with subtests.test(path):
            get, head = await client.get(path), await client.head(path)
            assert head.status_code == 200
            assert head.content == b""
            assert head.headers["etag"] == get.headers["etag"]
            assert head.headers["content-type"] == get.headers["content-type"]


async def test_any_origin_may_read_with_cors(client: Any, auth: dict[str, str], categories: Any) -> None:
    created = (await client.post(API, json=commentary(), headers=auth)).json()
    for path in (API, f"{API}/{created['id']}", "/api/v1/categories"):
        r = await client.get(path, headers={"Origin": "https://partner.example"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "*"
        assert "etag" in r.headers["access-control-expose-headers"].lower()


async def test_a_cors_preflight_grants_get_but_not_post(client: Any) -> None:
    get = await client.options(
        API, headers={"Origin": "https://partner.example", "Access-Control-Request-Method": "GET"}
    )
    assert get.status_code in (200, 204)
    assert get.headers["access-control-allow-origin"] == "*"
    assert "GET" in get.headers["access-control-allow-methods"]

    post = await client.options(
        API, headers={"Origin": "https://partner.example", "Access-Control-Request-Method": "POST"}
    )
    assert post.status_code >= 400 or "POST" not in post.headers.get("access-control-allow-methods", "")
    assert "POST" not in post.headers.get("access-control-allow-methods", "")
