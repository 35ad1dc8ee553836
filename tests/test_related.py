"""Related commentaries (issue 9): ``GET /api/v1/commentaries/{id}/related``, the commentary's
page and JSON Feed's ``_commentary.related``; on both stores, which must agree to the last tie.

The set below is made so that the right answer is plain. The commentary everything relates
to, "drones", is filed under regional-security with the tags Border, NATO and Drones; its
title words that count are drones, border, new, kind and pressure. Each other commentary
shares something chosen with it, and the expected scores are written out with the formula
of feedsvc.store.related: 3 per shared tag, 2 for the category, 3 x the share of the title
words repeated, 1 / (1 + days apart / 30).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.config import Settings
from feedsvc.store import related
from feedsvc.store.migrations import postgres as pg_schema
from feedsvc.store.migrations import sqlite as sqlite_schema
from tests.conftest import FakeClock, assert_error, commentary, page_path, page_url, path_of, rows_for
from tests.feeds_check import check_json_feed

Client = AsyncTestClient[Litestar]
API = "/api/v1/commentaries"


@pytest.fixture
def settings(any_settings: Settings) -> Settings:
    """Every test here runs on SQLite and on PostgreSQL, with the same expectations."""
    return any_settings


def closeness(days: float) -> float:
    return 1 / (1 + days / 30)


# name: (fields of the commentary, expected score against "drones" or None when never listed)
SET: dict[str, tuple[dict[str, Any], float | None]] = {
    "drones": ({
        "title": "Drones over the border: a new kind of pressure", "tags": ["Border", "NATO", "Drones"],
        "published_at": "2026-03-10T12:00:00Z", "translation_key": "drones-2026",
    }, None),
    # Two tags (case differs), the category, "border" of five title words, a day before.
    "patrols": ({
        "title": "Border patrols step up after drone sightings", "tags": ["border", "nato"],
        "published_at": "2026-03-09T12:00:00Z",
    }, 3 * 2 + 2 + 3 * 1 / 5 + closeness(1)),
    # One tag and the category, five days after.
    "summit": ({
        "title": "Alliance summit in Vilnius", "tags": ["NATO"], "published_at": "2026-03-15T12:00:00Z",
    }, 3 + 2 + closeness(5)),
    # No tag, but the category and four of the five title words, 28 days before.
    "pressure": ({
        "title": "A new kind of border pressure", "tags": [], "published_at": "2026-02-10T12:00:00Z",
    }, 2 + 3 * 4 / 5 + closeness(28)),
    # One tag and "drones", in another category, nine days before.
    "factories": ({
        "title": "Who builds the drones", "tags": ["drones"], "category": "economy",
        "published_at": "2026-03-01T12:00:00Z",
    }, 3 + 3 * 1 / 5 + closeness(9)),
    # The same score five days before and five days after: the newer one first.
    "budget": ({
        "title": "Budget lines for the year", "tags": ["Drones"], "category": "economy",
        "published_at": "2026-03-05T12:00:00Z",
    }, 3 + closeness(5)),
    "output": ({
        "title": "Factory output falls", "tags": ["Drones"], "category": "economy",
        "published_at": "2026-03-15T12:00:00Z",
    }, 3 + closeness(5)),
    # Never listed: nothing shared; its translations (in its language and another); another
    # language; a draft; a scheduled one.
    "grain": ({
        "title": "Grain exports recover", "tags": ["trade"], "category": "economy",
        "published_at": "2026-03-10T12:00:00Z",
    }, None),
    "drones-edited": ({
        "title": "Drones over the border: a new kind of pressure (edited)", "tags": ["Border", "NATO", "Drones"],
        "published_at": "2026-03-10T13:00:00Z", "translation_key": "drones-2026",
    }, None),
    "drones-be": ({
        "title": "Дроны над мяжой", "lang": "be", "tags": ["Border", "NATO", "Drones"],
        "published_at": "2026-03-10T14:00:00Z", "translation_key": "drones-2026",
    }, None),
    "ru": ({
        "title": "Дроны над границей: новый вид давления", "lang": "ru", "tags": ["Border", "NATO", "Drones"],
        "published_at": "2026-03-10T12:00:00Z",
    }, None),
    "draft": ({
        "title": "Drones over the border, draft", "tags": ["Border", "NATO", "Drones"], "status": "draft",
        "published_at": "2026-03-10T12:00:00Z",
    }, None),
    "scheduled": ({
        "title": "Drones over the border: next week", "tags": ["Border", "NATO", "Drones"],
        "published_at": "2026-03-21T12:00:00Z",  # the clock stands at 2026-03-20 12:00 UTC
    }, None),
}
RANKED = ["patrols", "summit", "pressure", "factories", "output", "budget"]


async def publish(client: Client, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = await client.post(API, json=commentary(**fields), headers=auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
async def made(client: Client, auth: dict[str, str], categories: Any, clock: FakeClock) -> dict[str, dict[str, Any]]:
    """The set above, published through the API; name -> the commentary as returned."""
    return {name: await publish(client, auth, **fields) for name, (fields, _) in SET.items()}


async def related_to(client: Client, id: str, query: str = "") -> list[dict[str, Any]]:
    r = await client.get(f"{API}/{id}/related{query}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def names(made: dict[str, dict[str, Any]], items: list[dict[str, Any]]) -> list[str]:
    by_id = {c["id"]: name for name, c in made.items()}
    return [by_id[item["id"]] for item in items]


async def test_ranked_by_shared_tags_category_title_words_and_closeness(client: Client, made: Any) -> None:
    items = await related_to(client, made["drones"]["id"], "?limit=20")
    assert names(made, items) == RANKED
    assert [item["score"] for item in items] == [pytest.approx(SET[name][1], abs=1e-6) for name in RANKED]
    first = items[0]
    patrols = made["patrols"]
    assert first == {
        "id": patrols["id"], "lang": "en", "slug": patrols["slug"], "title": patrols["title"],
        "summary": patrols["summary"], "url": page_url(patrols),
        "category": "regional-security", "tags": ["border", "nato"], "published_at": "2026-03-09T12:00:00Z",
        "score": first["score"],
    }


async def test_never_itself_its_translations_other_languages_drafts_or_scheduled(client: Client, made: Any) -> None:
    listed = set(names(made, await related_to(client, made["drones"]["id"], "?limit=20")))
    assert listed.isdisjoint({"drones", "drones-edited", "drones-be", "ru", "draft", "scheduled", "grain"})
    # The Belarusian translation has no other Belarusian commentary to relate to.
    assert await related_to(client, made["drones-be"]["id"]) == []
    # The Russian one relates to nothing in Russian either, and never to English ones.
    assert await related_to(client, made["ru"]["id"]) == []


async def test_follows_writes_scheduling_and_deletions(
    client: Client, auth: dict[str, str], made: Any, clock: FakeClock
) -> None:
    drones = made["drones"]["id"]
    # The scheduled commentary shares everything: once due, it comes first.
    clock.advance(days=1, minutes=1)
    assert names(made, await related_to(client, drones, "?limit=20")) == ["scheduled", *RANKED]
    # Retitled and retagged, "patrols" keeps only the category.
    r = await client.patch(
        f"{API}/{made['patrols']['id']}", json={"title": "Patrols", "tags": []}, headers={**auth, "If-Match": "*"}
    )
    assert r.status_code == 200, r.text
    items = await related_to(client, drones, "?limit=20")
    assert names(made, items) == ["scheduled", "summit", "pressure", "factories", "output", "budget", "patrols"]
    assert items[-1]["score"] == pytest.approx(2 + closeness(1), abs=1e-6)
    # Deleted, a commentary is gone from every list.
    r = await client.delete(f"{API}/{made['summit']['id']}", headers={**auth, "If-Match": "*"})
    assert r.status_code == 204, r.text
    assert "summit" not in names(made, await related_to(client, drones, "?limit=20"))


async def test_limit(client: Client, made: Any) -> None:
    drones = made["drones"]["id"]
    assert names(made, await related_to(client, drones)) == RANKED[:5]  # the default
    assert names(made, await related_to(client, drones, "?limit=2")) == RANKED[:2]
    for bad in ("0", "21", "many"):
        assert_error(await client.get(f"{API}/{drones}/related?limit={bad}"), 400, "limit")


async def test_unknown_draft_or_scheduled_is_404(client: Client, made: Any) -> None:
    for id in ("01JP0000000000000000000000", made["draft"]["id"], made["scheduled"]["id"], "drones-over-the-border"):
        assert_error(await client.get(f"{API}/{id}/related"), 404)


async def test_conditional_get(client: Client, auth: dict[str, str], made: Any) -> None:
    path = f"{API}/{made['drones']['id']}/related"
    r = await client.get(path)
    etag = r.headers["etag"]
    again = await client.get(path, headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    # A write elsewhere leaves the answer and its ETag alone; a new related one changes them.
    await publish(client, auth, title="Grain harvest", tags=["trade"], category="economy", lang="ru")
    assert (await client.get(path, headers={"If-None-Match": etag})).status_code == 304
    await publish(client, auth, title="More drones", tags=["Drones"], published_at="2026-03-10T11:00:00Z")
    changed = await client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


async def test_the_commentary_page_links_the_top_five(client: Client, made: Any) -> None:
    r = await client.get(page_path(made["drones"]))
    assert r.status_code == 200
    section = r.text.split("<h2>Related commentaries</h2>", 1)[1].split("</nav>", 1)[0]
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', section)
    assert links == [(page_url(made[n]), made[n]["title"]) for n in RANKED[:5]]


async def test_json_feed_lists_the_top_three_and_follows_writes_elsewhere(
    client: Client, auth: dict[str, str], made: Any
) -> None:
    def related_of(doc: dict[str, Any], id: str) -> list[dict[str, Any]]:
        item = next(i for i in doc["items"] if i["id"].endswith(f"/{id}"))  # tag:…:commentary/ID
        return item["_commentary"]["related"]  # type: ignore[no-any-return]

    drones = made["drones"]["id"]
    feed = "/categories/regional-security/feed"
    doc = check_json_feed((await client.get(f"{feed}.json")).content)
    assert related_of(doc, drones) == [
        {
            "id": made[n]["id"],
            "lang": "en",
            "title": made[n]["title"],
            "url": page_url(made[n]),
        }
        for n in RANKED[:3]
    ]
    rss = (await client.get(f"{feed}.rss")).headers["etag"]
    json_etag = (await client.get(f"{feed}.json")).headers["etag"]
    # A commentary in another category that shares all three tags: the regional-security
    # JSON Feed lists it at once; its RSS shows no related lists and stays as it was.
    newcomer = await publish(
        client, auth, title="Drone makers", tags=["Border", "NATO", "Drones"], category="economy",
        published_at="2026-03-10T12:30:00Z",
    )
    r = await client.get(f"{feed}.json", headers={"If-None-Match": json_etag})
    assert r.status_code == 200
    assert [x["id"] for x in related_of(check_json_feed(r.content), drones)] == [
        newcomer["id"], made["patrols"]["id"], made["summit"]["id"]
    ]
    assert (await client.get(f"{feed}.rss", headers={"If-None-Match": rss})).status_code == 304
    # Retitled, a related commentary shows its new title in the lists that name it.
    r = await client.patch(
        f"{API}/{newcomer['id']}", json={"title": "Drone makers, revised"}, headers={**auth, "If-Match": "*"}
    )
    assert r.status_code == 200
    doc = check_json_feed((await client.get(f"{feed}.json")).content)
    assert related_of(doc, drones)[0]["title"] == "Drone makers, revised"


async def test_a_key_many_carry_counts_for_the_nearest_ones(
    client: Client, auth: dict[str, str], categories: Any, clock: FakeClock
) -> None:
    """Windows: with more than WINDOW carriers of a key on one side, only the nearest count."""
    probe = await publish(
        client, auth, title="Probe", tags=["common"], published_at="2026-03-01T00:00:00Z", category="economy"
    )
    older = [
        await publish(client, auth, title=f"Older {n}", tags=["common"], category="foreign-policy",
                      published_at=f"2026-02-{28 - n:02d}T00:00:00Z")
        for n in range(related.WINDOW + 2)
    ]
    # The farthest also shares a rare tag with the probe, so it is still found: through that tag.
    r = await client.patch(f"{API}/{probe['id']}", json={"tags": ["common", "rare"]}, headers={**auth, "If-Match": "*"})
    assert r.status_code == 200
    r = await client.patch(
        f"{API}/{older[-1]['id']}", json={"tags": ["common", "rare"]}, headers={**auth, "If-Match": "*"}
    )
    assert r.status_code == 200
    items = await related_to(client, probe["id"], "?limit=20")
    assert [i["id"] for i in items] == [c["id"] for c in older[: related.WINDOW]] + [older[-1]["id"]]
    # Outside the window of "common", the farthest is credited with "rare" alone.
    assert items[-1]["score"] == pytest.approx(3 + closeness(1 + related.WINDOW + 1), abs=1e-6)


async def test_an_upgraded_database_gets_the_keys_of_its_commentaries(
    client: Client, made: Any, settings: Settings
) -> None:
    """Schema step 5 fills related_keys from what the database holds: run again on a database
    without them, it gives back the same answers."""
    drones = made["drones"]["id"]
    before = await related_to(client, drones, "?limit=20")
    url = settings.database_url
    if url.startswith("sqlite:///"):
        import sqlite3

        from feedsvc.store.migrations.steps import statements as _split_sql

        conn = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DROP TABLE related_keys")
            for statement in _split_sql(sqlite_schema.STEPS[5]):
                conn.execute(statement)
            conn.execute("COMMIT")
        finally:
            conn.close()
    else:
        import asyncpg

        dsn, _, schema = url.rpartition("schema=")
        conn = await asyncpg.connect(dsn.rstrip("?&"), server_settings={"search_path": f'"{schema}"'})
        try:
            async with conn.transaction():
                await conn.execute("DROP TABLE related_keys")
                await conn.execute(pg_schema.STEPS[5])
        finally:
            await conn.close()
    count = rows_for(url)("SELECT count(*) FROM related_keys")[0][0]
    assert count > 0
    assert await related_to(client, drones, "?limit=20") == before


def test_the_related_step_is_step_5() -> None:
    """The upgrade test above replays step 5: it must be the step that makes related_keys."""
    assert "CREATE TABLE related_keys" in sqlite_schema.STEPS[5]
    assert "CREATE TABLE related_keys" in pg_schema.STEPS[5]


async def test_links_in_the_page_and_feed_resolve(client: Client, made: Any) -> None:
    items = await related_to(client, made["drones"]["id"])
    for item in items:
        assert (await client.get(path_of(item["url"]))).status_code == 200


async def test_feed_lists_agree_with_the_api_item_by_item(
    client: Client, made: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed asks the store for all its items at once (on SQLite, a few per statement: here
    three, so that they spread over several). Each list is what the API gives alone."""
    from feedsvc.store.sqlite import related as sqlite_store

    monkeypatch.setattr(sqlite_store, "RELATED_SLOTS", 3)
    doc = check_json_feed((await client.get("/all/feed.json")).content)
    assert len(doc["items"]) == len(made) - 2  # not the draft nor the scheduled one
    for item in doc["items"]:
        id = item["id"].rsplit("/", 1)[1]  # tag:…:commentary/ID
        alone = await related_to(client, id, "?limit=3")
        assert item["_commentary"]["related"] == [
            {"id": r["id"], "lang": r["lang"], "title": r["title"], "url": r["url"]} for r in alone
        ]
