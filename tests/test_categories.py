"""Categories as first-class pages (issue 9): a category's name and description in every
language it has are in ``/api/v1/categories`` and in the title and description of its
feeds, in all three formats, in the language the feed is asked for (``?lang=``), with
English (then any name) where a language has none; on both stores.
"""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from lxml import etree

from feedsvc.config import Settings
from tests.conftest import FakeClock, commentary
from tests.feeds_check import check_json_feed, check_xml_feed

Client = AsyncTestClient[Litestar]
ATOM = "{http://www.w3.org/2005/Atom}"
SITE = "Commentaries"  # the default FEEDSVC_TITLE

SECURITY = {
    "names": {"en": "Regional security", "be": "Рэгіянальная бяспека", "ru": "Региональная безопасность"},
    "descriptions": {
        "en": "Military activity, borders and alliances.",
        "be": "Вайсковая актыўнасць, межы і саюзы.",
        "ru": "Военная активность, границы и союзы.",
    },
}
# Named in two languages, described in one.
ECONOMY = {"names": {"en": "Economy", "ru": "Экономика"}, "descriptions": {"en": "Trade, sanctions, energy."}}

# (lang asked for, expected title start, expected description) for regional-security, then economy
EXPECTED = [
    (None, "Regional security", SECURITY["descriptions"]["en"], "Economy", ECONOMY["descriptions"]["en"]),
    ("en", "Regional security", SECURITY["descriptions"]["en"], "Economy", ECONOMY["descriptions"]["en"]),
    ("be", "Рэгіянальная бяспека", SECURITY["descriptions"]["be"], "Economy", ECONOMY["descriptions"]["en"]),
    ("ru", "Региональная безопасность", SECURITY["descriptions"]["ru"], "Экономика", ECONOMY["descriptions"]["en"]),
    ("be-BY", "Рэгіянальная бяспека", SECURITY["descriptions"]["be"], "Economy", ECONOMY["descriptions"]["en"]),
]


@pytest.fixture
def settings(any_settings: Settings) -> Settings:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_settings


@pytest.fixture
async def filed(client: Client, auth: dict[str, str], clock: FakeClock) -> None:
    for slug, body in (("regional-security", SECURITY), ("economy", ECONOMY)):
        r = await client.put(f"/api/v1/categories/{slug}", json=body, headers=auth)
        assert r.status_code == 201, r.text
    for lang, category in (("en", "regional-security"), ("be", "regional-security"), ("ru", "economy")):
        r = await client.post(
            "/api/v1/commentaries", json=commentary(title=f"In {lang}", lang=lang, category=category), headers=auth
        )
        assert r.status_code == 201, r.text


def labels(fmt: str, body: bytes) -> tuple[str, str]:
    """A feed's title and description (RSS description, Atom subtitle, JSON Feed description)."""
    if fmt == "json":
        doc = check_json_feed(body)
        return doc["title"], doc["description"]
    check_xml_feed(body)
    root = etree.fromstring(body)
    if fmt == "rss":
        return root.findtext("channel/title", ""), root.findtext("channel/description", "")
    return root.findtext(f"{ATOM}title", ""), root.findtext(f"{ATOM}subtitle", "")


async def test_the_api_lists_every_name_and_description(client: Client, filed: None) -> None:
    listed = {c["slug"]: c for c in (await client.get("/api/v1/categories")).json()}
    assert (listed["regional-security"]["names"], listed["regional-security"]["descriptions"]) == (
        SECURITY["names"],
        SECURITY["descriptions"],
    )
    assert (listed["economy"]["names"], listed["economy"]["descriptions"]) == (
        ECONOMY["names"],
        ECONOMY["descriptions"],
    )
    assert (listed["regional-security"]["count"], listed["economy"]["count"]) == (2, 1)
    one = (await client.get("/api/v1/categories/economy")).json()
    assert one["names"] == ECONOMY["names"]


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
@pytest.mark.parametrize(("lang", "security", "security_text", "economy", "economy_text"), EXPECTED)
async def test_category_feeds_are_titled_and_described_in_their_language(
    client: Client, filed: None, fmt: str, lang: str | None, security: str, security_text: str, economy: str,
    economy_text: str,
) -> None:
    query = f"?lang={lang}" if lang else ""
    for slug, name, text in (("regional-security", security, security_text), ("economy", economy, economy_text)):
        r = await client.get(f"/categories/{slug}/feed.{fmt}{query}")
        assert r.status_code == 200, r.text
        assert labels(fmt, r.content) == (f"{name} — {SITE}", text)


async def test_items_name_their_category_in_the_feeds_language(client: Client, filed: None) -> None:
    # A feed of one language names categories in it; a feed of mixed languages in each item's.
    for query, expected in (
        ("?lang=be", {"Рэгіянальная бяспека"}),
        ("", {"Regional security"}),  # the primary language
        ("?lang=all", {"Regional security", "Рэгіянальная бяспека"}),
    ):
        doc = check_json_feed((await client.get(f"/categories/regional-security/feed.json{query}")).content)
        assert {i["_commentary"]["category"]["name"] for i in doc["items"]} == expected
        rss = etree.fromstring((await client.get(f"/categories/regional-security/feed.rss{query}")).content)
        assert {c.text for c in rss.iter("category") if c.get("domain", "").endswith("/categories")} == expected
    atom = etree.fromstring((await client.get("/ru/feed.atom")).content)
    assert [
        (c.get("term"), c.get("label"))
        for c in atom.iter(f"{ATOM}category")
        if c.get("scheme", "").endswith("/categories")
    ] == [("economy", "Экономика")]


async def test_renaming_a_category_retitles_its_feeds_only(client: Client, auth: dict[str, str], filed: None) -> None:
    own = await client.get("/categories/economy/feed.rss?lang=ru")
    other = await client.get("/categories/regional-security/feed.rss?lang=ru")
    renamed = {
        "names": {"en": "Economy and energy", "ru": "Экономика и энергетика"},
        "descriptions": {"ru": "Торговля."},
    }
    assert (await client.put("/api/v1/categories/economy", json=renamed, headers=auth)).status_code == 200
    r = await client.get("/categories/economy/feed.rss?lang=ru", headers={"If-None-Match": own.headers["etag"]})
    assert r.status_code == 200
    assert labels("rss", r.content) == (f"Экономика и энергетика — {SITE}", "Торговля.")
    r = await client.get(
        "/categories/regional-security/feed.rss?lang=ru", headers={"If-None-Match": other.headers["etag"]}
    )
    assert r.status_code == 304
