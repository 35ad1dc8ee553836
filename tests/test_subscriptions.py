"""What a subscriber gets, read by feedparser from a real server (uvicorn on a socket):
the OPML's subscriptions never carry one commentary twice, a weekly digest first appears
only once its week is over and then holds the whole week, and an import keeps the
records' update times. The service's clock is moved by hand; nothing else is faked."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from litestar.testing import AsyncTestClient
from lxml import etree

from feedsvc.cli import main
from feedsvc.config import load_settings
from feedsvc.digest import Schedule
from feedsvc.http.app import create_app
from tests.conftest import CATEGORIES, PUBLIC_URL, FakeClock, commentary
from tests.live import LiveServer
from tests.test_feeds import Hub

TITLE = "Vistula Review"
WEEK = {"start": "2026-03-02", "end": "2026-03-08"}  # Monday to Sunday
MINSK = "Europe/Minsk"  # UTC+3, no daylight saving time


def serve(database: Path, clock: FakeClock | None = None, **settings: Any) -> LiveServer:
    """The real app under uvicorn serving ``database``, with a clock tests move."""
    assert database.name == "feedsvc.db"  # where LiveServer keeps its database
    return LiveServer(database.parent, clock=clock, title=TITLE, **settings)


def publish(http: httpx.Client, title: str, **fields: Any) -> dict[str, Any]:
    r = http.post("/api/v1/commentaries", json=commentary(title=title, **fields))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def file_categories(http: httpx.Client) -> None:
    for slug, body in CATEGORIES.items():
        assert http.put(f"/api/v1/categories/{slug}", json=body).status_code in (200, 201)


def read(url: str, **validators: Any) -> Any:
    """A poll as feedparser makes it (its own HTTP client, conditional when given validators)."""
    parsed = feedparser.parse(url, **validators)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def commentary_id(entry: Any) -> str:
    """The commentary id inside an item's permanent GUID (tag:…:commentary/ID)."""
    kind, _, id = str(entry.id).rpartition(":")[2].partition("/")
    assert kind == "commentary", entry.id
    return id


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "feedsvc.db"


# --- the OPML ------------------------------------------------------------------------------------


def test_the_opml_subscribes_to_every_commentary_exactly_once(database: Path) -> None:
    with serve(database) as server, server.writer() as http:
        file_categories(http)
        border = {
            lang: publish(http, f"Border {lang}", lang=lang, translation_key="border", period=WEEK)
            for lang in ("en", "be", "ru")
        }
        policy = {
            lang: publish(http, f"Policy {lang}", lang=lang, translation_key="policy", category="foreign-policy")
            for lang in ("en", "ru")
        }
        alone = [
            publish(http, "Energy", category="economy"),
            publish(http, "Мяжа", lang="be", period=WEEK),
        ]
        publish(http, "Draft", status="draft")
        public = [*border.values(), *policy.values(), *alone]

        opml = etree.fromstring(httpx.get(f"{server.url}/feeds.opml").content)
        groups = opml.findall("body/outline")
        assert [g.get("text") for g in groups] == ["English", "Беларуская", "Русский"]  # the primary first
        subscriptions = [o for g in groups for o in g.findall("outline")]
        assert all(o.get("type") == "rss" and o.get("htmlUrl", "").startswith(server.url) for o in subscriptions)
        urls = [o.get("xmlUrl", "") for o in subscriptions]
        assert urls == [
            f"{server.url}/feed.rss", f"{server.url}/digest.rss",
            f"{server.url}/be/feed.rss", f"{server.url}/be/digest.rss",
            f"{server.url}/ru/feed.rss", f"{server.url}/ru/digest.rss",
        ]

        lang_of = {c["id"]: c["lang"] for c in public}
        seen: Counter[str] = Counter()
        for group in groups:
            feeds = group.findall("outline")
            lang = feeds[0].get("language")
            commentaries, digests = (read(o.get("xmlUrl", "")) for o in feeds)
            # Each subscription is of one language; translations are links, not items.
            assert commentaries.feed.language == lang
            assert {lang_of[commentary_id(e)] for e in commentaries.entries} == {lang}
            seen.update(commentary_id(e) for e in commentaries.entries)
            assert all(":digest/" in e.id for e in digests.entries)
            # The page a subscription names (htmlUrl) shows that language's commentaries.
            for html_url in {o.get("htmlUrl", "") for o in feeds}:
                page = httpx.get(html_url)
                assert page.status_code == 200, html_url
                assert all(c["url"] in page.text for c in public if c["lang"] == lang), html_url
                if lang != "en":  # the primary language's page is the site's front page
                    assert not any(c["url"] in page.text for c in public if c["lang"] != lang), html_url
        assert seen == Counter(c["id"] for c in public)  # every public commentary, once
        english = read(f"{server.url}/feed.rss")
        [item] = [e for e in english.entries if commentary_id(e) == border["en"]["id"]]
        links = [(link.get("hreflang"), link.href) for link in item.links]
        assert ("be", border["be"]["url"]) in links and ("ru", border["ru"]["url"]) in links

        # Who wants every language in one feed has it, each translation its own item.
        everything = read(f"{server.url}/all/feed.rss")
        assert Counter(commentary_id(e) for e in everything.entries) == seen


# --- weekly digests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "hour", "now", "ended_by"),
    [
        # Published at 09:00 Minsk time (06:00 UTC) on the day after the period's end.
        (MINSK, 9, datetime(2026, 3, 9, 5, 59, tzinfo=UTC), date(2026, 3, 7)),
        (MINSK, 9, datetime(2026, 3, 9, 6, 0, tzinfo=UTC), date(2026, 3, 8)),
        # Midnight in Minsk is still the day before in UTC.
        (MINSK, 0, datetime(2026, 3, 8, 21, 0, tzinfo=UTC), date(2026, 3, 8)),
        (MINSK, 0, datetime(2026, 3, 8, 20, 59, tzinfo=UTC), date(2026, 3, 7)),
        # Warsaw moves its clocks on 29 March 2026: 08:00 is then 06:00 UTC, not 07:00.
        ("Europe/Warsaw", 8, datetime(2026, 3, 30, 6, 0, tzinfo=UTC), date(2026, 3, 29)),
        ("Europe/Warsaw", 8, datetime(2026, 3, 30, 5, 59, tzinfo=UTC), date(2026, 3, 28)),
        ("UTC", 23, datetime(2026, 1, 1, 22, 0, tzinfo=UTC), date(2025, 12, 30)),
    ],
)
def test_a_digest_is_published_at_the_set_hour_of_the_day_after_its_period(
    zone: str, hour: int, now: datetime, ended_by: date
) -> None:
    schedule = Schedule(zone, hour)
    assert schedule.ended_by(now) == ended_by
    assert schedule.due_at(ended_by) <= now < schedule.due_at(ended_by + timedelta(days=1))


def test_a_digest_first_appears_when_its_week_is_over_and_holds_all_of_it(database: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 4, 12, 0, tzinfo=UTC))  # Wednesday of WEEK
    with serve(database, clock, timezone=MINSK, digest_hour=9) as server, server.writer() as http:
        file_categories(http)
        week = [
            publish(http, "Monday", period=WEEK, published_at="2026-03-02T10:00:00+03:00", trend="worsened"),
            publish(http, "Wednesday", period=WEEK, published_at="2026-03-04T10:00:00+03:00", category="economy"),
            publish(http, "Belarusian", period=WEEK, lang="be"),
        ]
        digest_feed = f"{server.url}/digest.rss"
        first = read(digest_feed)
        assert first.entries == []
        assert httpx.get(f"{server.url}/api/v1/digests").json()["items"] == []
        assert httpx.get(f"{server.url}/api/v1/digests/2026-03-02?lang=en").status_code == 404

        clock.now = datetime(2026, 3, 8, 19, 0, tzinfo=UTC)  # Sunday evening in Minsk
        week.insert(2, publish(http, "Sunday", period=WEEK, published_at="2026-03-08T21:00:00+03:00"))
        # The week's commentaries change no public digest: a conditional poll is answered 304.
        assert read(digest_feed, etag=first.etag).status == 304

        clock.now = datetime(2026, 3, 9, 5, 59, tzinfo=UTC)  # 08:59 on Monday in Minsk
        assert read(digest_feed, etag=first.etag).status == 304

        clock.now = datetime(2026, 3, 9, 6, 0, tzinfo=UTC)  # 09:00: published, with no write
        poll = read(digest_feed, etag=first.etag)
        assert poll.status == 200 and poll.etag != first.etag
        [item] = poll.entries
        assert item.title == "Weekly digest, 2 – 8 March 2026"
        english = [c for c in week if c["lang"] == "en"]
        content = item.content[0].value
        for c in english:
            assert c["url"] in content and c["title"] in content  # every commentary of the week
        assert "Belarusian" not in content  # one language per digest feed
        assert item.published_parsed[:6] == (2026, 3, 9, 6, 0, 0)
        assert item.author == TITLE  # the publication, for a mailer's From line
        assert poll.feed.updated_parsed[:6] == (2026, 3, 9, 6, 0, 0)

        [api] = httpx.get(f"{server.url}/api/v1/digests?lang=en").json()["items"]
        assert api["published_at"] == "2026-03-09T06:00:00Z"
        assert [c["id"] for c in api["commentaries"]] == [c["id"] for c in english]
        [be] = read(f"{server.url}/be/digest.rss").entries
        assert "Belarusian" in be.content[0].value

        # A later edit updates the same item in place.
        clock.now = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
        r = http.patch(f"/api/v1/commentaries/{week[0]['id']}", json={"title": "Monday, revised"},
                       headers={"If-Match": "*"})
        assert r.status_code == 200, r.text
        again = read(digest_feed, etag=poll.etag)
        assert again.status == 200
        [edited] = again.entries
        assert edited.id == item.id and "Monday, revised" in edited.content[0].value
        assert edited.updated_parsed[:6] == (2026, 3, 10, 8, 0, 0)
        assert edited.published_parsed == item.published_parsed


# --- import --------------------------------------------------------------------------------------


def test_an_import_keeps_the_records_update_times(database: Path, tmp_path: Path) -> None:
    records = [
        {"kind": "category", "slug": "economy", "names": {"en": "Economy"}},
        commentary(title="Edited later", category="economy", published_at="2025-02-10T09:00:00+01:00",
                   updated_at="2025-03-01T12:30:00Z"),
        commentary(title="Never edited", category="economy", published_at="2025-06-09T10:00:00+03:00"),
        commentary(title="Scheduled", category="economy", published_at="2099-01-05T10:00:00Z"),
    ]
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    before = datetime.now(UTC)
    assert main(["import", str(path), "--database-url", f"sqlite:///{database}"]) == 0

    with serve(database) as server:
        feed = read(f"{server.url}/feed.atom")
        updated = {e.title: e.updated_parsed[:6] for e in feed.entries}
        assert updated == {
            "Edited later": (2025, 3, 1, 12, 30, 0),  # as the record says
            "Never edited": (2025, 6, 9, 7, 0, 0),  # unchanged since its publication
        }
        # The feed's own updated is the newest change among its items, not the import.
        assert feed.feed.updated_parsed[:6] == (2025, 6, 9, 7, 0, 0)
        items = {c["title"]: c for c in httpx.get(f"{server.url}/api/v1/commentaries").json()["items"]}
        assert items["Edited later"]["updated_at"] == "2025-03-01T12:30:00Z"
    # A commentary still to come has changed no later than the import itself.
    with serve(database, FakeClock(datetime(2099, 2, 1, tzinfo=UTC))) as server:
        scheduled = next(e for e in read(f"{server.url}/feed.atom").entries if e.title == "Scheduled")
        assert before.timetuple()[:3] <= scheduled.updated_parsed[:3] < (2099, 1, 5)


async def test_the_hub_is_told_when_digests_come_out_with_no_write(database: Path) -> None:
    hub = Hub(failures=0)
    async with hub as hub_url:
        app = create_app(load_settings(
            {}, database_url=f"sqlite:///{database}", public_url=PUBLIC_URL, websub_hub=hub_url, digest_hour=8,
        ))
        async with AsyncTestClient(app) as client:
            app.state.notifier.first_delay = 0.01
            clock = FakeClock(datetime(2026, 3, 9, 7, 59, tzinfo=UTC))  # a minute before WEEK's digest
            app.state.service.clock = clock
            token, _ = await app.state.service.create_token("t", ["write"])
            for slug, body in CATEGORIES.items():
                await client.put(f"/api/v1/categories/{slug}", json=body, headers={"Authorization": f"Bearer {token}"})
            r = await client.post("/api/v1/commentaries", json=commentary(title="Monday", period=WEEK),
                                  headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 201
            await asyncio.sleep(0.3)
            written = len(hub.calls)
            assert (await client.get("/digest.rss")).content.count(b"<item>") == 0

            clock.now = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
            assert (await client.get("/digest.rss")).content.count(b"<item>") == 1
            for _ in range(100):
                if len(hub.calls) > written:
                    break
                await asyncio.sleep(0.05)
    [(status, form)] = hub.calls[written:]
    urls = {v for k, v in form if k == "hub.url"}
    assert {f"{PUBLIC_URL}/digest.{fmt}" for fmt in ("rss", "atom", "json")} <= urls
    assert f"{PUBLIC_URL}/en/digest.rss" in urls and f"{PUBLIC_URL}/all/digest.rss" in urls
    assert not any(u.endswith("/feed.rss") for u in urls)  # no commentary feed changed
