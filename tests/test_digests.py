"""Weekly digests (issue 9): commentaries whose period starts on the same day form one digest
per language, in the API, in three feed formats and on a page; on both stores."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from lxml import etree

from feedsvc.config import Settings
from tests.conftest import PUBLIC_URL, FakeClock, assert_error, commentary, path_of
from tests.feeds_check import check_feed, check_json_feed, check_xml_feed

Client = AsyncTestClient[Litestar]
FORMATS = ("rss", "atom", "json")
ATOM = "{http://www.w3.org/2005/Atom}"

# Monitoring weeks, Monday to Sunday, as the publisher writes them.
W10 = {"start": "2026-03-02", "end": "2026-03-08"}
W09 = {"start": "2026-02-23", "end": "2026-03-01"}  # crosses a month
W01 = {"start": "2025-12-29", "end": "2026-01-04"}  # crosses a year
W52 = {"start": "2025-12-22", "end": "2025-12-28"}


@pytest.fixture
def settings(any_settings: Settings) -> Settings:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_settings


async def publish(
    client: Client, auth: dict[str, str], title: str, period: dict[str, str] | None, **fields: Any
) -> dict[str, Any]:
    fields.setdefault("published_at", "2026-03-09T09:00:00+03:00")
    r = await client.post("/api/v1/commentaries", json=commentary(title=title, period=period, **fields), headers=auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def patch(client: Client, auth: dict[str, str], id: str, **fields: Any) -> dict[str, Any]:
    r = await client.patch(f"/api/v1/commentaries/{id}", json=fields, headers={**auth, "If-Match": "*"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def digests(client: Client, query: str = "") -> list[dict[str, Any]]:
    r = await client.get(f"/api/v1/digests{query}")
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def digest(client: Client, start: str, lang: str = "en") -> dict[str, Any]:
    r = await client.get(f"/api/v1/digests/{start}?lang={lang}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def keys(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["period"]["start"], d["lang"]) for d in items]


def titles(d: dict[str, Any]) -> list[str]:
    return [c["title"] for c in d["commentaries"]]


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture
async def week(client: Client, auth: dict[str, str], categories: Any, clock: FakeClock) -> dict[str, dict[str, Any]]:
    """Commentaries of two weeks in two languages, a translation, every trend, and one
    without a period; each written a minute after the one before."""
    made = {}
    for name, period, fields in [
        ("border", W10, {"trend": "worsened", "published_at": "2026-03-09T09:00:00+03:00", "translation_key": "w10"}),
        ("energy", W10, {"trend": "improved", "published_at": "2026-03-09T14:00:00+03:00", "category": "economy"}),
        ("potash", W10, {"published_at": "2026-03-10T08:00:00Z", "summary": "Routes after the ban."}),
        ("мяжа", W10, {"lang": "be", "trend": "worsened", "translation_key": "w10"}),
        ("drills", W09, {"trend": "unchanged", "published_at": "2026-03-02T10:00:00+01:00"}),
        ("undated", None, {"trend": "worsened"}),
    ]:
        clock.advance(minutes=1)
        made[name] = await publish(client, auth, name.title(), period, **fields)
    return made


# --- grouping ---------------------------------------------------------------------------------


async def test_commentaries_whose_period_starts_on_one_day_form_a_digest_per_language(
    client: Client, week: dict[str, dict[str, Any]]
) -> None:
    items = await digests(client)
    assert keys(items) == [("2026-03-02", "be"), ("2026-03-02", "en"), ("2026-02-23", "en")]
    w10 = items[1]
    assert titles(w10) == ["Border", "Energy", "Potash"]  # oldest publication first; "Undated" is in none
    assert w10["title"] == "Weekly digest, 2 – 8 March 2026"
    assert w10["period"] == W10
    assert w10["url"] == f"{PUBLIC_URL}/digests/2026-03-02?lang=en"
    first = w10["commentaries"][0]
    border = week["border"]
    assert first == {
        "id": border["id"], "title": "Border", "category": "regional-security", "trend": "worsened",
        "url": border["url"], "summary": border["summary"], "published_at": border["published_at"],
        "updated_at": border["updated_at"],
    }
    assert w10["commentaries"][2]["trend"] is None
    assert items[0]["title"] == "Штотыднёвы агляд, 2 – 8 сакавіка 2026"
    assert titles(items[0]) == ["Мяжа"]


async def test_a_digest_tallies_the_trends_of_its_commentaries(client: Client, week: dict[str, dict[str, Any]]) -> None:
    assert (await digest(client, "2026-03-02"))["trends"] == {
        "improved": 1,
        "worsened": 1,
        "unchanged": 0,
        "unmarked": 1,
    }
    assert (await digest(client, "2026-02-23"))["trends"] == {
        "improved": 0,
        "worsened": 0,
        "unchanged": 1,
        "unmarked": 0,
    }


async def test_a_digest_ends_on_the_latest_end_among_its_commentaries(
    client: Client, auth: dict[str, str], week: dict[str, dict[str, Any]]
) -> None:
    await publish(client, auth, "Long view", {"start": "2026-03-02", "end": "2026-03-15"})
    d = await digest(client, "2026-03-02")
    assert d["period"] == {"start": "2026-03-02", "end": "2026-03-15"}
    assert d["title"] == "Weekly digest, 2 – 15 March 2026"


@pytest.mark.parametrize(
    ("period", "lang", "title"),
    [
        (W09, "en", "Weekly digest, 23 February – 1 March 2026"),
        (W01, "en", "Weekly digest, 29 December 2025 – 4 January 2026"),
        (W01, "ru", "Еженедельный обзор, 29 декабря 2025 – 4 января 2026"),
        (W01, "be", "Штотыднёвы агляд, 29 снежня 2025 – 4 студзеня 2026"),
        ({"start": "2026-03-02", "end": "2026-03-02"}, "en", "Weekly digest, 2 March 2026"),
        (W10, "de", "Weekly digest, 2 – 8 March 2026"),  # no German words yet: English
    ],
)
async def test_weeks_crossing_months_and_years_are_one_digest_each(
    client: Client, auth: dict[str, str], categories: Any, period: dict[str, str], lang: str, title: str
) -> None:
    first = await publish(client, auth, "First", period, lang=lang, published_at="2026-01-05T09:00:00+03:00")
    second = await publish(client, auth, "Second", period, lang=lang, published_at="2026-01-06T09:00:00Z")
    [d] = await digests(client)
    assert (d["lang"], d["period"], d["title"]) == (lang, period, title)
    assert [c["id"] for c in d["commentaries"]] == [first["id"], second["id"]]


async def test_digests_come_newest_period_first_across_years(
    client: Client, auth: dict[str, str], categories: Any
) -> None:
    for period in (W52, W10, W01, W09):
        await publish(client, auth, f"Week of {period['start']}", period)
    assert [d["period"]["start"] for d in await digests(client)] == [
        "2026-03-02",
        "2026-02-23",
        "2025-12-29",
        "2025-12-22",
    ]


# --- changes move the digest ---------------------------------------------------------------


async def test_a_moved_commentary_leaves_one_digest_joins_another_and_both_are_updated(
    client: Client, auth: dict[str, str], week: dict[str, dict[str, Any]], clock: FakeClock
) -> None:
    before_w10, before_w09 = await digest(client, "2026-03-02"), await digest(client, "2026-02-23")
    moved_at = clock.advance(hours=1)
    await patch(client, auth, week["energy"]["id"], period=W09)
    w10, w09 = await digest(client, "2026-03-02"), await digest(client, "2026-02-23")
    assert titles(w10) == ["Border", "Potash"]
    assert titles(w09) == ["Drills", "Energy"]
    # Nothing left in week 10 changed, yet its digest did: its updated time says so.
    assert at(before_w10["updated_at"]) < at(w10["updated_at"]) == moved_at
    assert at(before_w09["updated_at"]) < at(w09["updated_at"]) == moved_at
    assert w10["trends"]["improved"] == 0 and w09["trends"]["improved"] == 1


async def test_a_commentary_moved_to_another_language_leaves_its_digest(
    client: Client, auth: dict[str, str], week: dict[str, dict[str, Any]], clock: FakeClock
) -> None:
    moved_at = clock.advance(hours=1)
    await patch(client, auth, week["potash"]["id"], lang="be")
    assert titles(await digest(client, "2026-03-02", "en")) == ["Border", "Energy"]
    assert at((await digest(client, "2026-03-02", "en"))["updated_at"]) == moved_at
    assert titles(await digest(client, "2026-03-02", "be")) == ["Мяжа", "Potash"]


async def test_an_edit_moves_the_digest_updated_time(
    client: Client, auth: dict[str, str], week: dict[str, dict[str, Any]], clock: FakeClock
) -> None:
    edited_at = clock.advance(hours=2)
    await patch(client, auth, week["potash"]["id"], title="Potash, revised", trend="worsened")
    d = await digest(client, "2026-03-02")
    assert at(d["updated_at"]) == edited_at
    assert titles(d) == ["Border", "Energy", "Potash, revised"]
    assert d["trends"]["worsened"] == 2


async def test_a_deleted_commentary_disappears_and_a_digest_left_empty_with_it(
    client: Client, auth: dict[str, str], week: dict[str, dict[str, Any]], clock: FakeClock
) -> None:
    deleted_at = clock.advance(hours=1)
    r = await client.delete(f"/api/v1/commentaries/{week['energy']['id']}", headers={**auth, "If-Match": "*"})
    assert r.status_code == 204, r.text
    d = await digest(client, "2026-03-02")
    assert titles(d) == ["Border", "Potash"]
    assert at(d["updated_at"]) == deleted_at
    # The last commentary of week 9 goes, and its digest with it.
    r = await client.delete(f"/api/v1/commentaries/{week['drills']['id']}", headers={**auth, "If-Match": "*"})
    assert r.status_code == 204
    assert keys(await digests(client)) == [("2026-03-02", "be"), ("2026-03-02", "en")]
    assert_error(await client.get("/api/v1/digests/2026-02-23?lang=en"), 404)


async def test_a_commentary_unpublished_to_a_draft_leaves_its_digest(
    client: Client, auth: dict[str, str], week: dict[str, dict[str, Any]], clock: FakeClock
) -> None:
    hidden_at = clock.advance(hours=1)
    await patch(client, auth, week["border"]["id"], status="draft")
    d = await digest(client, "2026-03-02")
    assert titles(d) == ["Energy", "Potash"]
    assert at(d["updated_at"]) == hidden_at


async def test_drafts_and_scheduled_commentaries_are_in_no_digest_until_public(
    client: Client, auth: dict[str, str], week: dict[str, dict[str, Any]], clock: FakeClock
) -> None:
    await publish(client, auth, "Draft", W10, status="draft")
    due = clock.now + timedelta(days=1)
    await publish(client, auth, "Scheduled", W10, published_at=due.isoformat())
    await publish(client, auth, "Scheduled alone", W52, published_at=due.isoformat())
    assert titles(await digest(client, "2026-03-02")) == ["Border", "Energy", "Potash"]
    assert_error(await client.get("/api/v1/digests/2025-12-22?lang=en"), 404)
    assert "2025-12-22" not in [d["period"]["start"] for d in await digests(client)]

    clock.advance(days=1, minutes=1)
    d = await digest(client, "2026-03-02")
    assert titles(d) == ["Border", "Energy", "Potash", "Scheduled"]
    # Written a day before it turned public; the digest changed when it appeared.
    assert at(d["updated_at"]) == clock.now
    assert titles(await digest(client, "2025-12-22")) == ["Scheduled alone"]


# --- one digest, filters and pages ---------------------------------------------------------


async def test_one_digest_by_its_start_date_with_validators(client: Client, week: dict[str, dict[str, Any]]) -> None:
    r = await client.get("/api/v1/digests/2026-02-23")  # one language only: no need to name it
    assert r.status_code == 200, r.text
    assert r.json()["lang"] == "en" and titles(r.json()) == ["Drills"]
    assert r.headers["link"] == f'<{PUBLIC_URL}/digests/2026-02-23?lang=en>; rel="alternate"; type="text/html"'
    assert r.headers["last-modified"]
    again = await client.get("/api/v1/digests/2026-02-23", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert (await client.get("/api/v1/digests/2026-03-02?lang=BE")).json()["lang"] == "be"


async def test_one_digest_errors_name_what_is_wrong(client: Client, week: dict[str, dict[str, Any]]) -> None:
    body = assert_error(await client.get("/api/v1/digests/2026-03-02"), 400, "lang")  # en and be exist
    assert "be" in body["detail"] and "en" in body["detail"]
    body = assert_error(await client.get("/api/v1/digests/2026-02-23?lang=be"), 404)
    assert body["extra"]["available_languages"] == ["en"]
    assert_error(await client.get("/api/v1/digests/2026-03-03?lang=en"), 404)  # a day inside it is not its name
    assert_error(await client.get("/api/v1/digests/1999-01-04"), 404)
    for bad in ("2026-13-01", "2026-3-2", "yesterday", "2026-03-02T00:00:00Z", "0000-01-01"):
        assert_error(await client.get(f"/api/v1/digests/{bad}"), 400, "start")
    assert_error(await client.get("/api/v1/digests/2026-03-02?lang=english!"), 400, "lang")


async def test_the_list_filters_by_language(client: Client, week: dict[str, dict[str, Any]]) -> None:
    assert keys(await digests(client, "?lang=en")) == [("2026-03-02", "en"), ("2026-02-23", "en")]
    assert keys(await digests(client, "?lang=be")) == [("2026-03-02", "be")]
    assert await digests(client, "?lang=ru") == []
    assert_error(await client.get("/api/v1/digests?lang=english!"), 400, "lang")
    assert_error(await client.get("/api/v1/digests?limit=0"), 400, "limit")
    assert_error(await client.get("/api/v1/digests?limit=101"), 400, "limit")


async def test_pages_walk_every_digest_once_with_cursors(client: Client, auth: dict[str, str], categories: Any) -> None:
    weeks = [f"2026-0{m}-0{d}" for m, d in ((1, 5), (2, 2), (3, 2), (4, 6), (5, 4))]
    for start in weeks:
        for lang in ("en", "be"):
            end = (datetime.fromisoformat(start) + timedelta(days=6)).date().isoformat()
            await publish(client, auth, f"{start} {lang}", {"start": start, "end": end}, lang=lang)
    expected = [(start, lang) for start in reversed(weeks) for lang in ("be", "en")]

    seen: list[tuple[str, str]] = []
    url = "/api/v1/digests?limit=3"
    while True:
        r = await client.get(url)
        assert r.status_code == 200, r.text
        seen += keys(r.json()["items"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            assert "link" not in r.headers
            break
        link = r.headers["link"]
        assert link.endswith('>; rel="next"') and "limit=3" in link
        url = path_of(link[1 : link.index(">")])
    assert seen == expected

    be = await client.get("/api/v1/digests?lang=be&limit=2")
    cursor = be.json()["next_cursor"]
    nxt = await client.get("/api/v1/digests", params={"lang": "be", "limit": 2, "cursor": cursor})
    assert keys(nxt.json()["items"]) == [(weeks[2], "be"), (weeks[1], "be")]
    # A cursor belongs to its filter, and a tampered one is refused.
    assert_error(await client.get("/api/v1/digests", params={"lang": "en", "cursor": cursor}), 400, "cursor")
    assert_error(await client.get("/api/v1/digests", params={"cursor": cursor[:-2] + "xx"}), 400, "cursor")
    list_cursor = (await client.get("/api/v1/commentaries?limit=1")).json()["next_cursor"]
    assert_error(await client.get("/api/v1/digests", params={"cursor": list_cursor}), 400, "cursor")


async def test_the_list_answers_conditional_requests(
    client: Client, auth: dict[str, str], week: dict[str, dict[str, Any]]
) -> None:
    r = await client.get("/api/v1/digests")
    assert (await client.get("/api/v1/digests", headers={"If-None-Match": r.headers["etag"]})).status_code == 304
    await patch(client, auth, week["drills"]["id"], title="Drills, revised")
    assert (await client.get("/api/v1/digests", headers={"If-None-Match": r.headers["etag"]})).status_code == 200


# --- the digest feeds ------------------------------------------------------------------------


FEEDS = [f"/digest.{fmt}" for fmt in FORMATS] + [f"/be/digest.{fmt}" for fmt in FORMATS]


@pytest.mark.parametrize("path", FEEDS)
async def test_the_digest_feeds_are_valid(client: Client, week: dict[str, dict[str, Any]], path: str) -> None:
    fmt = path.rsplit(".", 1)[1]
    r = await client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(
        {"rss": "application/rss+xml", "atom": "application/atom+xml", "json": "application/feed+json"}[fmt]
    )
    check_feed(fmt, r.content)


async def test_an_empty_digest_feed_is_valid(client: Client, categories: Any) -> None:
    for fmt in FORMATS:
        r = await client.get(f"/ru/digest.{fmt}")
        assert r.status_code == 200
        check_feed(fmt, r.content)
    assert (await client.get("/english!/digest.rss")).status_code == 404


async def test_a_digest_item_lists_each_commentary_with_trend_summary_and_link(
    client: Client, week: dict[str, dict[str, Any]]
) -> None:
    parsed = check_xml_feed((await client.get("/digest.atom")).content)
    # /digest.* carries the primary language; /all/digest.* every one.
    assert [e.title for e in parsed.entries] == [
        "Weekly digest, 2 – 8 March 2026",
        "Weekly digest, 23 February – 1 March 2026",
    ]
    assert [e.title for e in check_xml_feed((await client.get("/all/digest.atom")).content).entries] == [
        "Штотыднёвы агляд, 2 – 8 сакавіка 2026",
        "Weekly digest, 2 – 8 March 2026",
        "Weekly digest, 23 February – 1 March 2026",
    ]
    entry = parsed.entries[0]
    assert entry.id == "tag:feeds.example.org,2026-03-02:digest/en"
    assert entry.link == f"{PUBLIC_URL}/digests/2026-03-02?lang=en"
    content = entry.content[0].value
    for name in ("border", "energy", "potash"):
        assert f'<a href="{week[name]["url"]}">{week[name]["title"]}</a>' in content
        assert week[name]["summary"] in content
    assert f"{week['border']['title']}</a> — ↘ worsened" in content
    assert f"{week['energy']['title']}</a> — ↗ improved" in content
    assert f"{week['potash']['title']}</a></p>" in content  # no trend, no marker
    assert entry.summary == "↘ worsened: 1 · ↗ improved: 1 · no trend: 1"

    doc = etree.fromstring((await client.get("/digest.rss")).content)
    item = doc.findall("channel/item")[0]
    assert item.findtext("guid") == "tag:feeds.example.org,2026-03-02:digest/en"
    period = item.find("{https://feedsvc.dev/ns/commentary/1.0}period")
    assert period is not None and (period.get("start"), period.get("end")) == ("2026-03-02", "2026-03-08")

    jf = check_json_feed((await client.get("/be/digest.json")).content)
    assert jf["language"] == "be" and jf["feed_url"] == f"{PUBLIC_URL}/be/digest.json"
    [be] = jf["items"]
    assert be["id"] == "tag:feeds.example.org,2026-03-02:digest/be"
    assert be["_commentary"]["period"] == W10
    assert "↘ пагаршэнне" in be["content_html"]


async def test_the_digest_feed_links_itself_and_its_other_formats(
    client: Client, week: dict[str, dict[str, Any]]
) -> None:
    feed = etree.fromstring((await client.get("/be/digest.atom")).content)
    links = {
        (link.get("rel"), link.get("type")): link.get("href")
        for link in feed.iter(f"{ATOM}link")
        if link.getparent() is feed
    }
    assert links[("self", "application/atom+xml")] == f"{PUBLIC_URL}/be/digest.atom"
    assert links[("alternate", "application/rss+xml")] == f"{PUBLIC_URL}/be/digest.rss"
    assert links[("alternate", "application/feed+json")] == f"{PUBLIC_URL}/be/digest.json"
    assert feed.findtext(f"{ATOM}id") == f"{PUBLIC_URL}/be/digest"


async def test_the_guid_stays_and_the_item_updated_moves_when_a_commentary_changes(
    client: Client, auth: dict[str, str], week: dict[str, dict[str, Any]], clock: FakeClock
) -> None:
    before = check_xml_feed((await client.get("/en/digest.atom")).content).entries
    etag = (await client.get("/en/digest.atom", headers={"Accept-Encoding": "identity"})).headers["etag"]
    edited_at = clock.advance(hours=3)
    await patch(client, auth, week["potash"]["id"], title="Potash, revised", slug="potash-revised")
    r = await client.get("/en/digest.atom", headers={"Accept-Encoding": "identity", "If-None-Match": etag})
    assert r.status_code == 200
    after = check_xml_feed(r.content).entries
    assert [e.id for e in after] == [e.id for e in before]
    assert at(after[0].updated) == edited_at > at(before[0].updated)
    assert "Potash, revised" in after[0].content[0].value
    assert after[1].updated == before[1].updated  # the other week did not change


async def test_the_digest_feeds_are_cheap_to_poll(
    client: Client, auth: dict[str, str], week: dict[str, dict[str, Any]], clock: FakeClock
) -> None:
    r = await client.get("/digest.rss", headers={"Accept-Encoding": "identity"})
    etag, last_modified = r.headers["etag"], r.headers["last-modified"]
    assert r.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=600"
    assert (
        await client.get("/digest.rss", headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
    ).status_code == 304
    assert (await client.get("/digest.rss", headers={"If-Modified-Since": last_modified})).status_code == 304
    gz = await client.get("/digest.rss", headers={"Accept-Encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip" and gz.content == r.content
    # A write no digest shows (a commentary without a period) leaves the ETag alone.
    clock.advance(minutes=5)
    await patch(client, auth, week["undated"]["id"], title="Still undated")
    assert (await client.get("/digest.rss", headers={"Accept-Encoding": "identity"})).headers["etag"] == etag
    # One that a digest shows changes it.
    await patch(client, auth, week["drills"]["id"], trend="worsened")
    assert (await client.get("/digest.rss", headers={"Accept-Encoding": "identity"})).headers["etag"] != etag


async def test_the_digest_page_the_item_links_to_exists(client: Client, week: dict[str, dict[str, Any]]) -> None:
    entry = check_xml_feed((await client.get("/en/digest.rss")).content).entries[0]
    r = await client.get(path_of(entry.link))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    assert "Weekly digest, 2 – 8 March 2026" in page
    for name in ("border", "energy", "potash"):
        assert week[name]["url"] in page
    assert f'hreflang="be" href="{PUBLIC_URL}/digests/2026-03-02?lang=be"' in page  # the same week in Belarusian
    assert f"{PUBLIC_URL}/en/digest.rss" in page
    assert_error(await client.get("/digests/2026-03-09?lang=en"), 404)
    assert_error(await client.get("/digests/not-a-date"), 400, "start")


async def test_the_index_page_and_the_opml_list_the_digest_feed(
    client: Client, week: dict[str, dict[str, Any]]
) -> None:
    assert f"{PUBLIC_URL}/digest.atom" in (await client.get("/")).text
    assert f'xmlUrl="{PUBLIC_URL}/digest.rss"' in (await client.get("/feeds.opml")).text
