"""List-API pages are sent again as they were made while the store's change number stays,
and made anew as soon as it moves: a write through the API, through another node, a
commentary falling due. On SQLite and on PostgreSQL, through HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.config import Settings
from feedsvc.http.apicache import ApiPages, CachedPage
from feedsvc.model import NewCommentary
from feedsvc.query import Query
from feedsvc.service import Service
from feedsvc.store import open_store
from tests.conftest import PUBLIC_URL, FakeClock, commentary
from tests.test_fastpath import until_listening
from tests.test_observability import scrape, value

API = "/api/v1/commentaries"


@pytest.fixture
def settings(any_settings: Settings) -> Settings:
    return any_settings


@pytest.fixture
async def published(client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any) -> None:
    for n in range(3):
        body = commentary(title=f"Listed number {n}", published_at=f"2026-03-0{n + 1}T10:00:00+03:00")
        r = await client.post(API, json=body, headers=auth)
        assert r.status_code == 201, r.text
    await until_listening(client)


async def page_queries(client: AsyncTestClient[Litestar]) -> float:
    """How many times the store was asked for a page of commentaries."""
    return value(await scrape(client), "feedsvc_db_operation_duration_seconds_count", operation="get_commentaries")


async def titles(client: AsyncTestClient[Litestar], path: str = API) -> list[str]:
    r = await client.get(path)
    assert r.status_code == 200, r.text
    return [item["title"] for item in r.json()["items"]]


async def test_a_page_is_made_once_while_nothing_changes(client: AsyncTestClient[Litestar], published: None) -> None:
    first = await client.get(f"{API}?limit=2")
    asked = await page_queries(client)
    again = await client.get(f"{API}?limit=2")
    assert await page_queries(client) == asked
    assert again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]
    # The next link keeps the parameters of each request as it was written.
    assert first.headers["link"].startswith(f"<{PUBLIC_URL}{API}?limit=2&cursor=")
    assert (await client.get(f"{API}?limit=2", headers={"If-None-Match": first.headers["etag"]})).status_code == 304
    # Other filters, another cursor: other pages, each made once.
    cursor = first.json()["next_cursor"]
    second_page = await client.get(f"{API}?limit=2&cursor={cursor}")
    assert [i["title"] for i in second_page.json()["items"]] == ["Listed number 0"]
    assert await page_queries(client) == asked + 1
    assert (await client.get(f"{API}?limit=2&cursor={cursor}")).content == second_page.content
    assert await page_queries(client) == asked + 1


async def test_a_write_through_the_api_shows_on_the_next_request(
    client: AsyncTestClient[Litestar], auth: dict[str, str], published: None
) -> None:
    before = await titles(client)
    r = await client.post(API, json=commentary(title="Fresh from the API"), headers=auth)
    assert r.status_code == 201, r.text
    assert await titles(client) == ["Fresh from the API", *before]
    r = await client.delete(f"{API}/{r.json()['id']}", headers={**auth, "If-Match": r.headers["etag"]})
    assert r.status_code == 204, r.text
    assert await titles(client) == before


@pytest.fixture
async def other_node(settings: Settings, client: AsyncTestClient[Litestar]) -> AsyncIterator[Service]:
    """A second store on the same database: another worker process, or another node."""
    store = open_store(settings.database_url)
    await store.open()
    try:
        yield Service(store, base_url=PUBLIC_URL)
    finally:
        await store.close()


async def test_a_write_through_another_node_shows_on_the_next_request(
    client: AsyncTestClient[Litestar], published: None, other_node: Service, settings: Settings
) -> None:
    for round in range(3):
        await titles(client)
        asked = await page_queries(client)
        await titles(client)
        assert await page_queries(client) == asked  # sent as it was made
        title = f"Written by another node, round {round}"
        await other_node.publish(msgspec.convert(commentary(title=title), NewCommentary))
        deadline = time.monotonic() + 5  # PostgreSQL: once the notification arrived
        while title not in await titles(client):
            assert settings.database_url.startswith("postgresql") and time.monotonic() < deadline
            await asyncio.sleep(0.005)


async def test_a_scheduled_commentary_shows_when_due(
    client: AsyncTestClient[Litestar], auth: dict[str, str], published: None, clock: FakeClock
) -> None:
    due = clock.advance(hours=1)
    clock.advance(hours=-1)
    r = await client.post(API, json=commentary(title="Scheduled for later", published_at=due.isoformat()), headers=auth)
    assert r.status_code == 201, r.text
    assert "Scheduled for later" not in await titles(client)
    assert "Scheduled for later" not in await titles(client)
    clock.advance(hours=2)
    assert (await titles(client))[0] == "Scheduled for later"


def test_pages_are_kept_within_their_byte_budget_least_recently_used_first_out() -> None:
    pages = ApiPages(max_bytes=250)
    queries = [Query(limit=n) for n in range(1, 5)]
    for n, query in enumerate(queries[:3]):
        pages.put(query, None, CachedPage(7, bytes(100), f'"{n}"', None))
    # Three pages of 100 bytes do not fit in 250: the oldest went.
    assert pages.get(queries[0], None, 7) is None
    assert pages.get(queries[1], None, 7) is not None  # now the most recently used
    pages.put(queries[3], None, CachedPage(7, bytes(100), '"3"', None))
    assert pages.get(queries[2], None, 7) is None
    assert [pages.get(q, None, 7) is not None for q in (queries[1], queries[3])] == [True, True]
    # A page of another change number is not sent, and is forgotten.
    assert pages.get(queries[1], None, 8) is None
    assert pages.get(queries[1], None, 7) is None
    # One larger than the whole budget is not kept at all.
    pages.put(queries[0], "c", CachedPage(7, bytes(300), '"big"', None))
    assert pages.get(queries[0], "c", 7) is None
