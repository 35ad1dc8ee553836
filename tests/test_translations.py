"""Translations (issue 9): commentaries sharing a ``translation_key`` link each other in every
shape feedsvc publishes: the API (lists, single items, ``/translations``), RSS, Atom and JSON
Feed (``hreflang`` alternates), the commentary's page, and a 404 for a slug in a language it
was not written in; on both stores.

The group: "talks" in English, its Belarusian translation (with a canonical URL of its own,
which is its address everywhere) and a Russian draft, which stays out of sight until it is
published. "lone" has no translations.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from lxml import etree

from feedsvc.config import Settings
from tests.conftest import FakeClock, assert_error, commentary, page_url
from tests.feeds_check import check_json_feed, check_xml_feed

Client = AsyncTestClient[Litestar]
API = "/api/v1/commentaries"
ATOM = "{http://www.w3.org/2005/Atom}"
BE_URL = "https://example.org/be/peramovy"


@pytest.fixture
def settings(any_settings: Settings) -> Settings:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_settings


async def publish(client: Client, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = await client.post(API, json=commentary(**fields), headers=auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
async def group(client: Client, auth: dict[str, str], categories: Any, clock: FakeClock) -> dict[str, dict[str, Any]]:
    return {
        "en": await publish(client, auth, title="Border talks resume", slug="border-talks", translation_key="talks",
                            published_at="2026-03-10T09:00:00Z"),
        "be": await publish(client, auth, title="Перамовы на мяжы", lang="be", slug="peramovy", translation_key="talks",
                            canonical_url=BE_URL, published_at="2026-03-10T10:00:00Z"),
        "ru": await publish(client, auth, title="Переговоры на границе", lang="ru", slug="border-talks",
                            translation_key="talks", status="draft", published_at="2026-03-10T11:00:00Z"),
        "lone": await publish(client, auth, title="A lone commentary", published_at="2026-03-09T09:00:00Z"),
    }


def link(c: dict[str, Any], url: str | None = None) -> dict[str, str]:
    """A translation as the API lists it."""
    return {"lang": c["lang"], "id": c["id"], "slug": c["slug"], "title": c["title"], "url": url or c["url"]}


async def test_api_lists_and_items_name_their_translations(client: Client, group: Any) -> None:
    en, be, lone = group["en"], group["be"], group["lone"]
    assert en["url"] == page_url(en) and be["url"] == BE_URL
    expected = {en["id"]: [link(be, BE_URL)], be["id"]: [link(en, page_url(en))], lone["id"]: []}
    listed = (await client.get(API)).json()["items"]
    assert {c["id"]: c["translations"] for c in listed} == expected
    for c in (en, be, lone):
        assert (await client.get(f"{API}/{c['id']}")).json()["translations"] == expected[c["id"]]
    # What POST answered already named them (the draft never).
    assert en["translations"] == [] and be["translations"] == [link(en, page_url(en))]


async def test_the_translations_endpoint(client: Client, group: Any) -> None:
    en, be, ru, lone = group["en"], group["be"], group["ru"], group["lone"]
    r = await client.get(f"{API}/{en['id']}/translations")
    assert r.status_code == 200
    assert [(c["id"], c["lang"], c["url"]) for c in r.json()] == [(be["id"], "be", BE_URL)]
    assert [c["id"] for c in (await client.get(f"{API}/{be['id']}/translations")).json()] == [en["id"]]
    assert (await client.get(f"{API}/{lone['id']}/translations")).json() == []
    again = await client.get(f"{API}/{en['id']}/translations", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    for hidden in (ru["id"], "01JP0000000000000000000000"):
        assert_error(await client.get(f"{API}/{hidden}/translations"), 404)


async def test_feeds_carry_translations_as_hreflang_alternates(client: Client, group: Any) -> None:
    en, be = group["en"], group["be"]
    rss = etree.fromstring((await client.get("/all/feed.rss")).content)
    check_xml_feed(etree.tostring(rss))
    items = {i.findtext("guid", "").rsplit("/", 1)[1]: i for i in rss.iter("item")}
    alternates = [
        (a.get("hreflang"), a.get("href")) for a in items[en["id"]].iter(f"{ATOM}link") if a.get("rel") == "alternate"
    ]
    assert ("be", BE_URL) in alternates and ("en", page_url(en)) in alternates
    assert ("en", page_url(en)) in [
        (a.get("hreflang"), a.get("href")) for a in items[be["id"]].iter(f"{ATOM}link") if a.get("rel") == "alternate"
    ]
    assert not [a for a in items[group["lone"]["id"]].iter(f"{ATOM}link") if a.get("hreflang")]

    atom = etree.fromstring((await client.get("/all/feed.atom")).content)
    entries = {e.findtext(f"{ATOM}id", "").rsplit("/", 1)[1]: e for e in atom.iter(f"{ATOM}entry")}
    links = [(x.get("rel"), x.get("hreflang"), x.get("href")) for x in entries[en["id"]].iter(f"{ATOM}link")]
    assert ("alternate", "be", BE_URL) in links
    # The item's own page stays the first alternate, so readers keep it as the permalink.
    assert links[0][0] == "alternate" and links[0][2] == page_url(en)

    doc = check_json_feed((await client.get("/all/feed.json")).content)
    by_url = {i["url"]: i["_commentary"]["translations"] for i in doc["items"]}
    assert by_url[page_url(en)] == [{"id": be["id"], "lang": "be", "title": be["title"], "url": BE_URL}]
    assert by_url[BE_URL] == [{"id": en["id"], "lang": "en", "title": en["title"], "url": page_url(en)}]
    assert by_url[page_url(group["lone"])] == []


async def test_the_page_links_its_translations(client: Client, group: Any) -> None:
    en = group["en"]
    html = etree.HTML((await client.get(f"/commentaries/{en['id']}")).content)
    head = [
        (x.get("hreflang"), x.get("href")) for x in html.findall(".//head/link[@rel='alternate']") if x.get("hreflang")
    ]
    # The page names itself among the language versions, as hreflang alternates should.
    assert head == [("be", BE_URL), ("en", page_url(en))]
    body = [(a.get("hreflang"), a.get("href")) for a in html.findall(".//article//a[@hreflang]")]
    assert body == [("be", BE_URL)]


async def test_a_slug_in_a_language_it_lacks_is_404_naming_the_versions_that_exist(client: Client, group: Any) -> None:
    en, be = group["en"], group["be"]
    body = assert_error(await client.get(f"{API}/border-talks", params={"lang": "ru"}), 404)  # ru is a draft
    assert body["extra"]["available_languages"] == ["be", "en"]
    assert body["extra"]["translations"] == [
        {"lang": "be", "id": be["id"], "url": BE_URL}, {"lang": "en", "id": en["id"], "url": page_url(en)},
    ]
    # The Belarusian version exists, under a slug of its own.
    assert (await client.get(f"{API}/peramovy", params={"lang": "be"})).json()["id"] == be["id"]
    body = assert_error(await client.get(f"{API}/border-talks", params={"lang": "be"}), 404)
    assert body["extra"]["available_languages"] == ["be", "en"]
    # A slug nobody has reveals nothing.
    assert not assert_error(await client.get(f"{API}/no-such-slug", params={"lang": "en"}), 404)["extra"]


async def test_links_follow_publication_and_retraction(
    client: Client, auth: dict[str, str], group: Any
) -> None:
    en, be, ru = group["en"], group["be"], group["ru"]
    etag = (await client.get("/en/feed.rss")).headers["etag"]
    r = await client.patch(f"{API}/{ru['id']}", json={"status": "published"}, headers={**auth, "If-Match": "*"})
    assert r.status_code == 200, r.text
    assert [t["lang"] for t in (await client.get(f"{API}/{en['id']}")).json()["translations"]] == ["be", "ru"]
    # The English feed shows the new alternate: its validators moved though no English item changed.
    r = await client.get("/en/feed.rss", headers={"If-None-Match": etag})
    assert r.status_code == 200 and b'hreflang="ru"' in r.content
    r = await client.delete(f"{API}/{be['id']}", headers={**auth, "If-Match": "*"})
    assert r.status_code == 204
    assert [t["lang"] for t in (await client.get(f"{API}/{en['id']}")).json()["translations"]] == ["ru"]
    doc = check_json_feed((await client.get("/en/feed.json")).content)
    assert [t["lang"] for t in doc["items"][0]["_commentary"]["translations"]] == ["ru"]
