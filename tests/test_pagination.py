"""Keyset pagination of the list API: cursors and Link headers walk every commentary exactly
once, in order, even while commentaries are added, edited and deleted between pages; a cursor
that was altered or made for other filters is a 400, never a 500."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar.testing import AsyncTestClient

from feedsvc.http.app import create_app
from feedsvc.model import Author, NewCommentary
from tests.conftest import PUBLIC_URL, assert_error, path_of

API = "/api/v1/commentaries"
BASE = datetime(2026, 1, 1, tzinfo=UTC)
CATEGORIES = ("economy", "foreign-policy", "regional-security")


async def publish(service: Any, i: int, *, published_at: datetime, category: str = "economy") -> str:
    new = NewCommentary(
        title=f"Commentary {i}", lang="en", category=category, authors=[Author(name="Anna Kovalenko")],
        published_at=published_at, body_html=f"<p>Body {i}.</p>", tags=["sanctions"] if i % 2 else [],
    )
    return (await service.publish(new)).id


async def seed(service: Any, count: int) -> list[str]:
    """``count`` commentaries in groups of three sharing a published_at (ties), published
    in shuffled order; return their ids in the order the API must list them."""
    keyed = []
    for i in sorted(range(count), key=lambda i: (i * 7919) % count):
        published_at = BASE + timedelta(hours=i // 3)
        # Write a third of them with another offset: the same instant, a different text.
        if i % 3 == 1:
            published_at = published_at.astimezone(timezone(timedelta(hours=3)))
        id = await publish(service, i, published_at=published_at, category=CATEGORIES[i % 3])
        keyed.append((published_at, id))
    return [id for _, id in sorted(keyed, reverse=True)]


def next_link(response: Any) -> str | None:
    header = response.headers.get("link")
    if header is None:
        return None
    match = re.fullmatch(r'<([^>]+)>; rel="next"', header)
    assert match, header
    return match.group(1)


def cursor_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["cursor"][0]


@pytest.fixture
async def three_hundred(service: Any, categories: Any, clock: Any) -> list[str]:
    return await seed(service, 300)


async def test_walking_300_commentaries_by_cursor_and_by_link_yields_each_once_in_order(
    client: Any, three_hundred: list[str]
) -> None:
    by_cursor: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        r = await client.get(API, params={"limit": 7, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        pages += 1
        by_cursor += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            assert "link" not in r.headers
            assert len(body["items"]) == 300 - 7 * (pages - 1)
            break
        assert len(body["items"]) == 7
        link = next_link(r)
        assert link is not None and link.startswith(f"{PUBLIC_URL}{API}?")
        assert parse_qs(urlsplit(link).query) == {"limit": ["7"], "cursor": [cursor]}
    assert pages == 43
    assert by_cursor == three_hundred

    by_link: list[str] = []
    url: str | None = f"{PUBLIC_URL}{API}?limit=7"
    while url is not None:
        r = await client.get(path_of(url))
        by_link += [item["id"] for item in r.json()["items"]]
        url = next_link(r)
    assert by_link == three_hundred


async def test_a_walk_sees_every_commentary_that_existed_at_its_start_despite_writes_between_pages(
    client: Any, service: Any, auth: dict[str, str], three_hundred: list[str]
) -> None:
    """Between pages: a newer commentary is published, an unseen one is edited, another
    unseen one is deleted, and sometimes the last one seen (the cursor's anchor) too."""
    deleted: set[str] = set()
    edited: dict[str, str] = {}
    walked: list[tuple[str, str]] = []
    url: str | None = f"{PUBLIC_URL}{API}?limit=7"
    page = 0
    while url is not None:
        r = await client.get(path_of(url))
        assert r.status_code == 200, r.text
        walked += [(item["id"], item["title"]) for item in r.json()["items"]]
        url = next_link(r)
        page += 1

        await publish(service, 1000 + page, published_at=BASE + timedelta(days=365, minutes=page))
        seen = {id for id, _ in walked}
        unseen = [id for id in three_hundred if id not in seen and id not in deleted]
        if len(unseen) > 6:
            title = f"Edited between pages {page}"
            r = await client.patch(f"{API}/{unseen[2]}", json={"title": title}, headers={**auth, "If-Match": "*"})
            assert r.status_code == 200, r.text
            edited[unseen[2]] = title
            r = await client.delete(f"{API}/{unseen[5]}", headers={**auth, "If-Match": "*"})
            assert r.status_code == 204
            deleted.add(unseen[5])
        if page % 5 == 0 and url is not None:
            anchor = walked[-1][0]
            assert (await client.delete(f"{API}/{anchor}", headers={**auth, "If-Match": "*"})).status_code == 204

    assert [id for id, _ in walked] == [id for id in three_hundred if id not in deleted]
    assert len(edited) > 30 and len(deleted) > 30
    for id, title in walked:
        assert title == edited.get(id, title)
        if id in edited:
            assert title.startswith("Edited between pages")


async def test_a_filtered_walk_keeps_its_filters_in_the_link(
    client: Any, service: Any, categories: Any, clock: Any
) -> None:
    everything = await seed(service, 60)
    economy_page = await client.get(API, params={"category": "economy", "limit": 100})
    economy = [item["id"] for item in economy_page.json()["items"]]
    assert len(economy) == 20 and set(economy) <= set(everything)

    walked: list[str] = []
    url: str | None = f"{PUBLIC_URL}{API}?category=economy&tag=sanctions&limit=3"
    while url is not None:
        r = await client.get(path_of(url))
        assert r.status_code == 200, r.text
        walked += [item["id"] for item in r.json()["items"]]
        url = next_link(r)
        if url is not None:
            query = parse_qs(urlsplit(url).query)
            assert query["category"] == ["economy"] and query["tag"] == ["sanctions"] and query["limit"] == ["3"]
    expected = [item["id"] for item in (await client.get(
        API, params={"category": "economy", "tag": "sanctions", "limit": 100})).json()["items"]]
    assert walked == expected and len(walked) == 10


async def test_a_page_that_fills_exactly_has_no_next_page(
    client: Any, service: Any, categories: Any, clock: Any
) -> None:
    await seed(service, 14)
    first = await client.get(API, params={"limit": 7})
    second = await client.get(API, params={"limit": 7, "cursor": first.json()["next_cursor"]})
    assert len(second.json()["items"]) == 7
    assert second.json()["next_cursor"] is None and "link" not in second.headers


async def test_a_cursor_from_one_node_works_on_another_sharing_the_database(
    client: Any, service: Any, settings: Any, categories: Any, clock: Any
) -> None:
    ids = await seed(service, 10)
    cursor = (await client.get(API, params={"limit": 4})).json()["next_cursor"]
    async with AsyncTestClient(create_app(settings), base_url="http://other-node.local") as other:
        r = await other.get(API, params={"limit": 4, "cursor": cursor})
        assert r.status_code == 200, r.text
        assert [item["id"] for item in r.json()["items"]] == ids[4:8]


# --- tampered cursors -----------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _flip(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("A" if char != "A" else "B") + text[index + 1 :]


async def test_an_altered_or_foreign_cursor_is_400_never_500(
    client: Any, service: Any, categories: Any, clock: Any, subtests: Any
) -> None:
    await seed(service, 12)
    cursor = (await client.get(API, params={"limit": 3})).json()["next_cursor"]
    payload, signature = cursor.split(".")
    economy_cursor = (await client.get(API, params={"limit": 3, "category": "economy"})).json()["next_cursor"]
    changes_cursor = (await client.get("/api/v1/changes", params={"limit": 2})).json()["next_cursor"]

    tampered = [
        ("a character of the payload flipped", _flip(payload, len(payload) // 2) + "." + signature),
        ("the last character of the payload flipped", _flip(payload, -1) + "." + signature),
        ("a character of the signature flipped", payload + "." + _flip(signature, 3)),
        ("the signature cut short", payload + "." + signature[:-2]),
        ("no signature", payload),
        ("an empty signature", payload + "."),
        ("garbage", "garbage"),
        ("dots only", "...."),
        ("not base64", "!!!.???"),
        ("non-ASCII", "курсор.подпись"),
        ("base64 of other JSON, old signature", _b64(b'["list","0000000000000000",1,"X"]') + "." + signature),
        ("base64 of other JSON, made-up signature", _b64(b'["list","0000000000000000",1,"X"]') + "." + _b64(b"0" * 16)),
        ("base64 of non-JSON", _b64(b"\x00\xff binary") + "." + signature),
        ("a changes cursor", changes_cursor),
        ("a cursor of another filter set", economy_cursor),
        ("too long", "A" * 501),
    ]
    for case, value in tampered:
        with subtests.test(case):
            assert_error(await client.get(API, params={"limit": 3, "cursor": value}), 400)

    with subtests.test("a cursor of no filter used with a filter"):
        assert_error(await client.get(API, params={"limit": 3, "cursor": cursor, "lang": "en"}), 400)
    with subtests.test("a list cursor used for the change log"):
        assert_error(await client.get("/api/v1/changes", params={"since": cursor}), 400)
    with subtests.test("the same filters with another page size is fine"):
        r = await client.get(API, params={"limit": 5, "cursor": cursor})
        assert r.status_code == 200 and len(r.json()["items"]) == 5
