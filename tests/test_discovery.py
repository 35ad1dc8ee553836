"""What search engines read (issue 21, discovery): robots.txt naming the sitemaps, the sitemap
index and its parts, the news sitemap of the last two days; every document valid against the
sitemap schemas (tests/data/sitemaps); on both stores."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from lxml import etree

from feedsvc.config import Settings
from feedsvc.feeds.sitemaps import Sitemaps
from tests.conftest import PUBLIC_URL, FakeClock, commentary, page_url, path_of

COMMENTARY_PAGE = re.compile(r"^https://feeds\.example\.org/[a-z]{2}/\d{4}/\d{2}/[^/]+$")
"""A commentary's page (docs/pages.md) among the sitemaps' URLs, which list digests too."""

Client = AsyncTestClient[Litestar]
SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"
SCHEMAS = Path(__file__).parent / "data" / "sitemaps"


def _schema(*files: str) -> etree.XMLSchema:
    """One schema that knows the sitemap namespace and, for the news sitemap, its extension:
    the sitemap schema checks foreign elements strictly, so both must be loaded together."""
    namespaces = {"sitemap.xsd": SM[1:-1], "siteindex.xsd": SM[1:-1], "sitemap-news.xsd": NEWS[1:-1]}
    imports = "".join(f'<xsd:import namespace="{namespaces[f]}" schemaLocation="{f}"/>' for f in files)
    text = f'<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">{imports}</xsd:schema>'
    return etree.XMLSchema(etree.fromstring(text.encode(), base_url=str(SCHEMAS) + "/"))


URLSET = _schema("sitemap.xsd")
INDEX = _schema("siteindex.xsd")
NEWS_URLSET = _schema("sitemap.xsd", "sitemap-news.xsd")


@pytest.fixture
def settings(any_settings: Settings) -> Settings:
    return any_settings


async def publish(client: Client, auth: dict[str, str], title: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("published_at", "2026-03-07T10:00:00+03:00")
    r = await client.post("/api/v1/commentaries", json=commentary(title=title, **fields), headers=auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def fetch_xml(client: Client, url: str, schema: etree.XMLSchema) -> etree._Element:
    r = await client.get(path_of(url))
    assert r.status_code == 200, (url, r.text)
    assert r.headers["content-type"].startswith("application/xml")
    doc = etree.fromstring(r.content)
    assert schema.validate(doc), (url, schema.error_log)
    return doc


async def sitemap_urls(client: Client) -> dict[str, str]:
    """Every page URL in every commentary and digest sitemap the index names, with its lastmod."""
    index = await fetch_xml(client, f"{PUBLIC_URL}/sitemap.xml", INDEX)
    found: dict[str, str] = {}
    for loc in index.iterfind(f"{SM}sitemap/{SM}loc"):
        if loc.text and not loc.text.endswith("/news.xml"):
            part = await fetch_xml(client, loc.text, URLSET)
            for url in part.iterfind(f"{SM}url"):
                page = url.findtext(f"{SM}loc")
                assert page is not None and page not in found, f"{page} listed twice"
                found[page] = url.findtext(f"{SM}lastmod") or ""
    return found


async def test_robots_txt_names_the_sitemap_index_and_the_news_sitemap(client: Client) -> None:
    r = await client.get("/robots.txt")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    named = [line.split(": ", 1)[1] for line in r.text.splitlines() if line.startswith("Sitemap: ")]
    assert named == [f"{PUBLIC_URL}/sitemap.xml", f"{PUBLIC_URL}/sitemaps/news.xml"]
    for url in named:
        assert (await client.get(path_of(url))).status_code == 200


async def test_every_public_commentary_page_is_listed_once_with_its_updated_time(
    client: Client, auth: dict[str, str], categories: Any, clock: FakeClock
) -> None:
    shown = [
        await publish(client, auth, f"Public {n}", published_at=f"2026-03-0{n + 1}T10:00:00+03:00") for n in range(3)
    ]
    draft = await publish(client, auth, "Draft", status="draft")
    scheduled = await publish(client, auth, "Scheduled", published_at="2026-04-01T10:00:00+00:00")
    elsewhere = await publish(client, auth, "Elsewhere", canonical_url="https://other.example.net/a")

    urls = await sitemap_urls(client)

    pages = {u: m for u, m in urls.items() if COMMENTARY_PAGE.search(u)}
    assert pages == {
        c["url"]: datetime.fromisoformat(c["updated_at"]).replace(microsecond=0).isoformat() for c in shown
    }
    for hidden in (draft, scheduled, elsewhere):
        assert page_url(hidden) not in urls


async def test_the_sitemaps_follow_changes_and_answer_revalidation_with_304(
    client: Client, auth: dict[str, str], categories: Any, clock: FakeClock
) -> None:
    first = await publish(client, auth, "First")
    r = await client.get("/sitemap.xml")
    again = await client.get("/sitemap.xml", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304

    second = await publish(client, auth, "Second", published_at="2026-03-08T10:00:00+03:00")
    assert set(await sitemap_urls(client)) >= {first["url"], second["url"]}
    await client.delete(f"/api/v1/commentaries/{first['id']}", headers={**auth, "If-Match": "*"})
    urls = await sitemap_urls(client)
    assert first["url"] not in urls and second["url"] in urls


async def test_a_large_site_is_split_into_sitemaps_of_at_most_the_protocol_limit(
    app: Litestar, client: Client, auth: dict[str, str], categories: Any, clock: FakeClock
) -> None:
    # The protocol's limit is 50,000 URLs; a small limit and batch show the same walk.
    sitemaps: Sitemaps = app.state["sitemaps"]
    sitemaps.max_urls, sitemaps.batch = 2, 2
    made = [await publish(client, auth, f"Item {n}", published_at=f"2026-03-0{n + 1}T10:00:00+03:00") for n in range(5)]

    index = await fetch_xml(client, f"{PUBLIC_URL}/sitemap.xml", INDEX)
    parts = [loc.text for loc in index.iterfind(f"{SM}sitemap/{SM}loc") if loc.text and "/commentaries-" in loc.text]
    assert parts == [f"{PUBLIC_URL}/sitemaps/commentaries-{n}.xml" for n in (1, 2, 3)]
    sizes = [len((await fetch_xml(client, p, URLSET)).findall(f"{SM}url")) for p in parts]
    assert sizes == [2, 2, 1]
    assert {u for u in await sitemap_urls(client) if COMMENTARY_PAGE.search(u)} == {c["url"] for c in made}
    assert (await client.get("/sitemaps/commentaries-4.xml")).status_code == 404


async def test_digest_pages_are_listed(client: Client, auth: dict[str, str], categories: Any, clock: FakeClock) -> None:
    await publish(client, auth, "In a week", period={"start": "2026-03-02", "end": "2026-03-08"})
    urls = await sitemap_urls(client)
    assert f"{PUBLIC_URL}/digests/2026-03-02?lang=en" in urls


async def test_the_news_sitemap_holds_the_last_two_days_with_publication_language_date_and_title(
    client: Client, auth: dict[str, str], categories: Any, clock: FakeClock, settings: Settings
) -> None:
    # The clock stands at 2026-03-20 12:00 UTC.
    fresh = await publish(client, auth, "Talks resume <today> & more", published_at="2026-03-19T15:00:00+03:00")
    ru = await publish(client, auth, "Переговоры", lang="ru", published_at="2026-03-20T09:00:00+00:00")
    old = await publish(client, auth, "Old news", published_at="2026-03-17T10:00:00+00:00")

    doc = await fetch_xml(client, f"{PUBLIC_URL}/sitemaps/news.xml", NEWS_URLSET)

    entries = {
        u.findtext(f"{SM}loc"): (
            u.findtext(f"{NEWS}news/{NEWS}publication/{NEWS}name"),
            u.findtext(f"{NEWS}news/{NEWS}publication/{NEWS}language"),
            u.findtext(f"{NEWS}news/{NEWS}publication_date"),
            u.findtext(f"{NEWS}news/{NEWS}title"),
        )
        for u in doc.iterfind(f"{SM}url")
    }
    assert entries == {
        fresh["url"]: (settings.title, "en", "2026-03-19T15:00:00+03:00", "Talks resume <today> & more"),
        ru["url"]: (settings.title, "ru", "2026-03-20T09:00:00+00:00", "Переговоры"),
    }
    assert old["url"] not in entries

    clock.advance(hours=30)  # 2026-03-21 18:00 UTC: the first has left the window
    doc = await fetch_xml(client, f"{PUBLIC_URL}/sitemaps/news.xml", NEWS_URLSET)
    assert [u.findtext(f"{SM}loc") for u in doc.iterfind(f"{SM}url")] == [ru["url"]]


async def test_an_unknown_sitemap_is_404(client: Client) -> None:
    for path in ("/sitemaps/nothing.xml", "/sitemaps/index.xml", "/sitemaps/news"):
        assert (await client.get(path)).status_code == 404
