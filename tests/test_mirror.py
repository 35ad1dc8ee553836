"""Exact mirroring through GET /api/v1/changes (issue 4, part 4).

A mirror walks the change log from no cursor with small pages, applying each entry
(``created``/``updated``: store the commentary it carries; ``deleted``: drop the id) while
the test writes between its pages: creates, edits with If-Match, replacements, deletions,
drafts published, published items taken back to drafts, items scheduled and made due by
moving ``service.clock``, category changes. After a final walk the mirror must equal the
public commentaries the list API pages out, field by field.

Compared: every field of a change entry's commentary except ``translations``. A change
entry carries the commentary as it was right after that change, and a commentary's
translation links change when *another* commentary is published or retracted, without a
change of its own; so entries carry no translation links (``[]``) and a mirror derives them
from ``translation_key``, which is compared. ``url``, ``body_html`` with absolute links,
``version`` (the seq of the entry) and the rest are equal to what the list API presents.

The tests run on SQLite and, when FEEDSVC_TEST_POSTGRES_DSN is set, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import FakeClock, assert_error, commentary

API = "/api/v1/commentaries"
CHANGES = "/api/v1/changes"
# Change entries carry no translation links; see the module docstring.
NOT_IN_CHANGES = {"translations"}


class Mirror:
    """An aggregator's copy: commentaries by id, and the cursor to resume from."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.items: dict[str, dict[str, Any]] = {}
        self.cursor: str | None = None
        self.last_seq = 0
        self.pages = 0

    async def page(self, limit: int) -> list[dict[str, Any]]:
        """Fetch and apply one page; check the log's order and the cursor's progress."""
        params: dict[str, Any] = {"limit": limit}
        if self.cursor is not None:
            params["since"] = self.cursor
        r = await self.client.get(CHANGES, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        items: list[dict[str, Any]] = body["items"]
        assert len(items) <= limit
        for change in items:
            assert change["seq"] > self.last_seq, "the log goes backwards or repeats"
            self.last_seq = change["seq"]
            if change["op"] == "deleted":
                assert change.get("commentary") is None
                self.items.pop(change["id"], None)
            else:
                assert change["op"] in ("created", "updated")
                doc = change["commentary"]
                assert doc["id"] == change["id"]
                assert doc["version"] == change["seq"], "the entry carries the commentary as of this change"
                assert doc["translations"] == []
                self.items[change["id"]] = doc
        assert isinstance(body["next_cursor"], str) and body["next_cursor"]
        if items:
            assert body["next_cursor"] != self.cursor, "a page with entries must move the cursor"
        self.cursor = body["next_cursor"]
        self.pages += 1
        return items

    async def catch_up(self, limit: int) -> None:
        """Walk until an empty page: then the mirror has everything up to the cursor."""
        while await self.page(limit):
            pass


async def public_commentaries(client: Any) -> dict[str, dict[str, Any]]:
    """Every public commentary, by paging the list API to its end."""
    out: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(API, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        for item in page["items"]:
            assert item["id"] not in out, "the list repeated an item"
            out[item["id"]] = item
        cursor = page["next_cursor"]
        if not cursor:
            return out


def assert_mirror_equals_source(mirror: Mirror, source: dict[str, dict[str, Any]]) -> None:
    assert set(mirror.items) == set(source), (
        f"missing {sorted(set(source) - set(mirror.items))}, extra {sorted(set(mirror.items) - set(source))}"
    )
    for id, item in source.items():
        copy = mirror.items[id]
        fields = set(copy) - NOT_IN_CHANGES
        assert fields == set(item) - NOT_IN_CHANGES, "a change entry and the list API show different fields"
        different = {f: (copy[f], item[f]) for f in sorted(fields) if copy[f] != item[f]}
        assert different == {}, f"{id}: the mirror differs from the source in {different}"


class Writer:
    """The source's editor: writes through the API, each edit with a fresh If-Match."""

    def __init__(self, client: Any, auth: dict[str, str]) -> None:
        self.client = client
        self.auth = auth

    async def etag(self, id: str) -> str:
        # Writers see drafts and scheduled items (and their current ETag) with their token.
        r = await self.client.get(f"{API}/{id}", headers=self.auth)
        assert r.status_code == 200, r.text
        etag: str = r.headers["etag"]
        return etag

    async def create(self, **fields: Any) -> str:
        r = await self.client.post(API, json=commentary(**fields), headers=self.auth)
        assert r.status_code == 201, r.text
        id: str = r.json()["id"]
        return id

    async def patch(self, id: str, **fields: Any) -> dict[str, Any]:
        r = await self.client.patch(f"{API}/{id}", json=fields, headers={**self.auth, "If-Match": await self.etag(id)})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def replace(self, id: str, **fields: Any) -> None:
        r = await self.client.put(
            f"{API}/{id}", json=commentary(**fields), headers={**self.auth, "If-Match": await self.etag(id)}
        )
        assert r.status_code == 200, r.text

    async def delete(self, id: str) -> None:
        r = await self.client.delete(f"{API}/{id}", headers={**self.auth, "If-Match": await self.etag(id)})
        assert r.status_code == 204, r.text

    async def put_category(self, slug: str, names: dict[str, str]) -> None:
        r = await self.client.put(f"/api/v1/categories/{slug}", json={"names": names}, headers=self.auth)
        assert r.status_code in (200, 201), r.text


def iso(clock: FakeClock, **delta: float) -> str:
    return (clock.now + timedelta(**delta)).isoformat()


async def test_a_mirror_walking_the_log_during_writes_ends_equal_to_the_source(
    client: Any, auth: dict[str, str], categories: Any, clock: FakeClock
) -> None:
    w = Writer(client, auth)
    a = await w.create(title="Alpha")
    b = await w.create(title="Bravo", tags=["border", "talks"])
    c = await w.create(title="Charlie draft", status="draft")
    d = await w.create(title="Delta scheduled", published_at=iso(clock, hours=1))
    e = await w.create(title="Echo", translation_key="echo", lang="en")
    f = await w.create(title="Эхо", translation_key="echo", lang="ru", body_markdown="See [the map](/media/map.png).")
    g = await w.create(title="Golf", image={"url": "/media/golf.jpg", "alt": "A map"})
    made: dict[str, str] = {}

    async def create_and_schedule() -> None:
        made["india"] = await w.create(title="India scheduled", published_at=iso(clock, minutes=30))
        made["juliet"] = await w.create(title="Juliet draft", status="draft")

    async def create_hotel() -> None:
        made["hotel"] = await w.create(title="Hotel", category="economy", trend="worsened")

    async def time_passes() -> None:
        clock.advance(hours=2)  # D and India fall due; the next read publishes them

    steps: list[Callable[[], Awaitable[Any]]] = [
        create_hotel,
        lambda: w.patch(a, title="Alpha, revised", tags=["revised"]),
        lambda: w.delete(g),
        lambda: w.patch(c, status="published"),  # a draft goes public: "created"
        lambda: w.patch(b, status="draft"),  # back to a draft: a tombstone
        create_and_schedule,
        time_passes,
        lambda: w.patch(e, category="foreign-policy"),
        lambda: w.put_category("economy", {"en": "Economy and trade", "ru": "Экономика"}),
        lambda: w.patch(made["juliet"], title="Juliet draft, edited"),  # invisible to mirrors
        lambda: w.delete(made["juliet"]),  # invisible to mirrors
        lambda: w.patch(b, status="published", summary="Back again."),  # public again: "created"
        lambda: w.replace(made["hotel"], title="Hotel, replaced", category="economy", body_markdown="New body."),
        lambda: w.patch(a, published_at=iso(clock, days=1)),  # rescheduled into the future: a tombstone
        lambda: w.create(title="Эха", translation_key="echo", lang="be"),  # new translation links for E and F
        lambda: w.patch(f, body_markdown="Revised, with [a link](/commentaries/x)."),
        lambda: w.delete(made["hotel"]),
        lambda: w.patch(d, trend="improved"),
        lambda: w.create(
            title="Kilo", period={"start": "2026-03-01", "end": "2026-03-07"}, trend="unchanged",
            source={"name": "Vistula Review", "url": "https://example.org/kilo"},
            canonical_url="https://example.org/kilo", image={"url": "/media/kilo.jpg", "credit": "K."},
        ),
        lambda: w.patch(e, translation_key=None),  # E leaves the group: F and the be one keep theirs
    ]

    mirror = Mirror(client)
    pending = list(steps)
    while True:
        items = await mirror.page(limit=2)
        if pending:
            await pending.pop(0)()
        elif not items:
            break
    assert mirror.pages > len(steps)

    # A final walk finds nothing more, and the mirror is the source.
    before = mirror.cursor
    assert await mirror.page(limit=2) == []
    assert mirror.cursor == before, "an empty page returns the position it was given"
    source = await public_commentaries(client)
    assert_mirror_equals_source(mirror, source)
    # The scenario reached every state it means to test.
    assert {c, d, e, f, made["india"]} <= set(source)
    assert not {a, g, made["hotel"], made["juliet"]} & set(source)
    assert source[b]["summary"] == "Back again."
    assert source[e]["category"] == "foreign-policy"
    assert source[e]["translations"] == [] and {t["lang"] for t in source[f]["translations"]} == {"be"}

    # A mirror that starts now, from nothing, reaches the same state in one walk.
    fresh = Mirror(client)
    await fresh.catch_up(limit=1000)
    assert_mirror_equals_source(fresh, source)


async def test_concurrent_writes_and_a_polling_mirror_converge(
    client: Any, concurrent_client: Any, auth: dict[str, str], categories: Any
) -> None:
    """The writer and the mirror really interleave (one event loop, many awaits)."""
    w = Writer(concurrent_client, auth)
    rng = random.Random(4)
    live: list[str] = []
    done, progress = asyncio.Event(), asyncio.Event()

    async def step(n: int, id: str | None) -> None:
        roll = rng.random()
        if id is None:
            status = "draft" if rng.random() < 0.2 else "published"
            live.append(await w.create(title=f"Item {n}", status=status, tags=[f"t{n % 5}"]))
        elif roll < 0.35:
            await w.patch(id, title=f"Edited {n}")
        elif roll < 0.6:
            await w.patch(id, status=rng.choice(["draft", "published"]))
        elif roll < 0.8:
            await w.patch(id, category=rng.choice(["economy", "foreign-policy", "regional-security"]))
        else:
            live.remove(id)
            await w.delete(id)

    async def write() -> None:
        # Rounds of up to three writes at once, on distinct commentaries (or new ones).
        for n in range(25):
            targets = rng.sample(live, min(len(live), rng.randrange(3))) if live else []
            targets += [None] * (3 - len(targets)) if rng.random() < 0.5 or not targets else []
            await asyncio.gather(*(step(n * 3 + i, id) for i, id in enumerate(targets)))
            progress.set()
        done.set()

    mirror = Mirror(concurrent_client)

    async def poll() -> None:
        # Polite polling: once caught up, wait for news instead of spinning (the read budget
        # would end the spinning with 429s, as it should).
        while not done.is_set():
            progress.clear()
            if not await mirror.page(limit=3):
                await progress.wait()  # the writer sets it after every round, the last one too

    await asyncio.gather(write(), poll())
    await mirror.catch_up(limit=3)
    assert_mirror_equals_source(mirror, await public_commentaries(client))


async def test_the_cursor_moves_over_changes_mirrors_do_not_see(
    client: Any, auth: dict[str, str], categories: Any, clock: FakeClock
) -> None:
    w = Writer(client, auth)
    await w.create(title="Public one")
    mirror = Mirror(client)
    await mirror.catch_up(limit=10)
    caught_up = mirror.cursor
    assert caught_up is not None

    # Only drafts, scheduled items and categories change: nothing to see, but the cursor moves,
    # so the next poll does not examine those changes again.
    draft = await w.create(title="A draft", status="draft")
    await w.patch(draft, title="A draft, edited")
    await w.create(title="Later", published_at=iso(clock, days=3))
    await w.put_category("economy", {"en": "Economy"})
    await w.delete(draft)
    r = (await client.get(CHANGES, params={"since": caught_up})).json()
    assert r["items"] == []
    assert r["next_cursor"] != caught_up
    # From there on an empty page keeps its position...
    again = (await client.get(CHANGES, params={"since": r["next_cursor"]})).json()
    assert again == {"items": [], "next_cursor": r["next_cursor"]}
    # ...and the next public change is the only entry after it.
    new = await w.create(title="Public two")
    after = (await client.get(CHANGES, params={"since": r["next_cursor"]})).json()
    assert [(c["op"], c["id"]) for c in after["items"]] == [("created", new)]
    # Without a cursor the walk starts at the beginning and shows public changes only.
    everything = (await client.get(CHANGES, params={"limit": 1000})).json()["items"]
    assert [c["commentary"]["title"] for c in everything] == ["Public one", "Public two"]


async def test_a_full_page_resumes_right_after_its_last_entry(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    w = Writer(client, auth)
    ids = [await w.create(title=f"Number {n}") for n in range(5)]
    first = (await client.get(CHANGES, params={"limit": 2})).json()
    assert [c["id"] for c in first["items"]] == ids[:2]
    second = (await client.get(CHANGES, params={"limit": 2, "since": first["next_cursor"]})).json()
    assert [c["id"] for c in second["items"]] == ids[2:4]
    rest = (await client.get(CHANGES, params={"limit": 2, "since": second["next_cursor"]})).json()
    assert [c["id"] for c in rest["items"]] == ids[4:]


async def test_the_change_log_answers_304_to_a_poll_that_found_nothing_new(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    await Writer(client, auth).create(title="One")
    r = await client.get(CHANGES)
    assert r.status_code == 200 and r.headers["etag"]
    again = await client.get(CHANGES, headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    await Writer(client, auth).create(title="Two")
    changed = await client.get(CHANGES, headers={"If-None-Match": r.headers["etag"]})
    assert changed.status_code == 200


def tampered(cursor: str) -> str:
    body, mac = cursor.split(".", 1)
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B")
    return f"{flipped}.{mac}"


async def test_altered_or_foreign_cursors_are_400(client: Any, auth: dict[str, str], categories: Any) -> None:
    w = Writer(client, auth)
    for n in range(3):
        await w.create(title=f"Item {n}")
    cursor = (await client.get(CHANGES, params={"limit": 1})).json()["next_cursor"]
    list_cursor = (await client.get(API, params={"limit": 1})).json()["next_cursor"]
    assert list_cursor
    for bad in (tampered(cursor), cursor[:-2], cursor.split(".")[0], "not-a-cursor", "a.b", list_cursor, "." * 3):
        assert_error(await client.get(CHANGES, params={"since": bad}), 400)
    assert_error(await client.get(CHANGES, params={"since": "x" * 501}), 400, "since")
    # The untouched cursor still works.
    assert (await client.get(CHANGES, params={"since": cursor})).status_code == 200


@pytest.mark.parametrize(
    ("limit", "status"),
    [("0", 400), ("-1", 400), ("1001", 400), ("many", 400), ("1", 200), ("1000", 200)],
)
async def test_limit_is_bounded(client: Any, auth: dict[str, str], categories: Any, limit: str, status: int) -> None:
    await Writer(client, auth).create(title="One")
    await Writer(client, auth).create(title="Two")
    r = await client.get(CHANGES, params={"limit": limit})
    if status == 400:
        assert_error(r, 400, "limit")
    else:
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) == min(int(limit), 2)


async def test_without_limit_a_page_holds_at_most_100(client: Any, auth: dict[str, str], categories: Any) -> None:
    w = Writer(client, auth)
    first = await w.create(title="First")
    for n in range(100):
        await w.patch(first, title=f"First, take {n}")
    page = (await client.get(CHANGES)).json()
    assert len(page["items"]) == 100
    rest = (await client.get(CHANGES, params={"since": page["next_cursor"]})).json()
    assert len(rest["items"]) == 1 and rest["items"][0]["commentary"]["title"] == "First, take 99"
