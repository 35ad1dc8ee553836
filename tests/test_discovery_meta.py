"""A commentary page as search engines and social networks read it (issue 21, discovery):
extruct, an independent parser, must find a schema.org NewsArticle with every property we
require and the Open Graph tags, the canonical and hreflang links must point where the
contract says, and JSON-LD must survive a title written to break out of it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import extruct
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from lxml import html as lxml_html

from feedsvc.config import Settings
from tests.conftest import PUBLIC_URL, commentary, page_path, path_of

Client = AsyncTestClient[Litestar]

REQUIRED = {
    "headline", "datePublished", "dateModified", "author", "image", "publisher", "inLanguage", "mainEntityOfPage",
}
"""What we promise every NewsArticle carries (those with an image): Google's recommended
properties plus language and page."""

IMAGE = {"url": "https://img.example.org/border.jpg", "alt": "A border crossing at dawn", "credit": "Photo: A. K."}


@pytest.fixture
def settings(any_settings: Settings) -> Settings:
    return any_settings


async def publish(client: Client, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/commentaries", json=commentary(**fields), headers=auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def page(client: Client, item: dict[str, Any]) -> str:
    r = await client.get(page_path(item))
    assert r.status_code == 200, r.text
    return r.text


def extracted(text: str, url: str) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The JSON-LD objects and the Open Graph properties (name to every value) extruct finds."""
    data = extruct.extract(text, base_url=url, syntaxes=["json-ld", "opengraph"], uniform=False)
    og: dict[str, list[str]] = {}
    for block in data["opengraph"]:
        for key, value in block["properties"]:
            og.setdefault(key, []).append(value)
    return data["json-ld"], og


def head_links(text: str) -> list[dict[str, str]]:
    return [dict(link.attrib) for link in lxml_html.fromstring(text).iterfind(".//head/link")]


def head_meta(text: str, attr: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for meta in lxml_html.fromstring(text).iterfind(".//head/meta"):
        if meta.get(attr):
            out.setdefault(meta.get(attr, ""), []).append(meta.get("content", ""))
    return out


async def test_a_commentary_page_carries_a_complete_news_article(
    client: Client, auth: dict[str, str], categories: Any, settings: Settings
) -> None:
    item = await publish(
        client, auth, image=IMAGE, tags=["border", "talks"], published_at="2026-03-07T10:00:00+03:00",
        authors=[
            {"name": "Anna Kovalenko", "affiliation": "Vistula Centre", "url": "https://vistula.example.org/ak"},
            {"name": "Piotr Nowak"},
        ],
    )
    ld, _ = extracted(await page(client, item), item["url"])

    [article] = [d for d in ld if d.get("@type") == "NewsArticle"]
    assert REQUIRED <= set(article), REQUIRED - set(article)
    assert article["@context"] == "https://schema.org"
    assert article["headline"] == item["title"]
    for field, stored in (("datePublished", item["published_at"]), ("dateModified", item["updated_at"])):
        when = datetime.fromisoformat(article[field])
        assert when.utcoffset() is not None, f"{field} has no offset"
        assert when == datetime.fromisoformat(stored).replace(microsecond=0)
    assert article["datePublished"].endswith("+03:00")
    assert article["author"] == [
        {
            "@type": "Person", "name": "Anna Kovalenko", "url": "https://vistula.example.org/ak",
            "affiliation": {"@type": "Organization", "name": "Vistula Centre"},
        },
        {"@type": "Person", "name": "Piotr Nowak"},
    ]
    assert [i["url"] for i in article["image"]] == [IMAGE["url"]]
    assert article["publisher"] == {"@type": "Organization", "name": settings.title, "url": PUBLIC_URL + "/"}
    assert article["inLanguage"] == "en"
    assert article["mainEntityOfPage"]["@id"] == item["url"]
    assert article["isPartOf"]["@type"] == "WebSite"
    assert article["about"]["name"] == article["articleSection"] == "Regional security"
    assert article["keywords"] == ["border", "talks"]


async def test_open_graph_and_twitter_card_tags_describe_the_article_and_its_image(
    client: Client, auth: dict[str, str], categories: Any, settings: Settings
) -> None:
    item = await publish(client, auth, image=IMAGE, tags=["border", "talks"], summary="What changed at the border.")
    text = await page(client, item)
    _, og = extracted(text, item["url"])

    assert og["og:type"] == ["article"]
    assert og["og:title"] == [item["title"]]
    assert og["og:description"] == ["What changed at the border."]
    assert og["og:url"] == [item["url"]]
    assert og["og:site_name"] == [settings.title]
    assert og["og:locale"] == ["en_US"]
    assert og["og:image"] == [IMAGE["url"]] and og["og:image:alt"] == [IMAGE["alt"]]
    assert datetime.fromisoformat(og["article:published_time"][0]) == datetime.fromisoformat(item["published_at"])
    assert datetime.fromisoformat(og["article:modified_time"][0]).utcoffset() is not None
    assert og["article:author"] == ["Anna Kovalenko"]
    assert og["article:section"] == ["Regional security"]
    assert og["article:tag"] == ["border", "talks"]

    twitter = head_meta(text, "name")
    assert twitter["twitter:card"] == ["summary_large_image"]
    assert twitter["twitter:image"] == [IMAGE["url"]] and twitter["twitter:image:alt"] == [IMAGE["alt"]]

    plain = await publish(client, auth, title="No picture")
    assert head_meta(await page(client, plain), "name")["twitter:card"] == ["summary"]
    assert "og:image" not in extracted(await page(client, plain), plain["url"])[1]


async def test_canonical_and_hreflang_links_name_every_language_version(
    client: Client, auth: dict[str, str], categories: Any
) -> None:
    en = await publish(client, auth, translation_key="talks-1")
    ru = await publish(client, auth, translation_key="talks-1", lang="ru", title="Переговоры")
    elsewhere = await publish(client, auth, title="Syndicated", canonical_url="https://origin.example.net/a")

    links = head_links(await page(client, en))
    assert [x["href"] for x in links if x.get("rel") == "canonical"] == [en["url"]]
    hreflang = {x["hreflang"]: x["href"] for x in links if x.get("rel") == "alternate" and "hreflang" in x}
    assert hreflang == {"en": en["url"], "ru": ru["url"]}
    _, og = extracted(await page(client, ru), ru["url"])
    assert og["og:locale"] == ["ru_RU"] and og["og:locale:alternate"] == ["en_US"]

    links = head_links(await page(client, elsewhere))
    assert [x["href"] for x in links if x.get("rel") == "canonical"] == ["https://origin.example.net/a"]


async def test_json_ld_cannot_be_broken_out_of_by_a_title(
    client: Client, auth: dict[str, str], categories: Any
) -> None:
    title = '</script><script>alert(1)</script><!-- "quoted" & more'
    item = await publish(client, auth, title=title, summary="</SCRIPT> in the summary")
    text = await page(client, item)

    # The only script element is the JSON-LD block, and it ends where it should.
    assert len(re.findall(r"<script\b", text, flags=re.IGNORECASE)) == 1
    assert len(re.findall(r"</script", text, flags=re.IGNORECASE)) == 1
    ld, og = extracted(text, item["url"])
    [article] = [d for d in ld if d.get("@type") == "NewsArticle"]
    assert article["headline"] == title
    assert article["description"] == "</SCRIPT> in the summary"
    assert og["og:title"] == [title]
    assert path_of(item["url"]) == page_path(item)
