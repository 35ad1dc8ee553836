"""Feeds over HTTP: every view in every format, valid, cheap to poll, complete, pushed."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import feedparser
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from lxml import etree

from feedsvc.config import Settings, load_settings
from feedsvc.http.app import create_app
from tests.conftest import PUBLIC_URL, commentary, page_url
from tests.feeds_check import check_feed, check_json_feed, check_xml_feed

Client = AsyncTestClient[Litestar]
FORMATS = ("rss", "atom", "json")


async def publish(client: Client, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/commentaries", json=commentary(**fields), headers=auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def etag_of(client: Client, path: str) -> str:
    r = await client.get(path, headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200, r.text
    return r.headers["etag"]


@pytest.fixture
async def seeded(client: Client, auth: dict[str, str], categories: Any) -> list[dict[str, Any]]:
    """Six commentaries: two categories, two languages, a translation pair, all fields used."""
    full = {
        "period": {"start": "2026-03-02", "end": "2026-03-08"}, "trend": "worsened",
        "source": {"name": "The Outlet", "url": "https://outlet.example/a"},
        "image": {"url": "/media/map.svg", "alt": "A map", "caption": "The border", "credit": "Photo: A. B."},
        "authors": [{"name": "Anna Kovalenko", "affiliation": "Vistula Centre"}, {"name": "Piotr Nowak"}],
        "tags": ["border", "nato"], "translation_key": "w10-border",
    }
    items = [
        await publish(client, auth, title="Border one", published_at="2026-03-01T10:00:00+03:00", **full),
        await publish(client, auth, title="Мяжа адзін", lang="be", published_at="2026-03-01T11:00:00+03:00", **full),
        await publish(client, auth, title="Policy two", category="foreign-policy", published_at="2026-03-02T10:00:00Z"),
        await publish(
            client, auth, title="Policy three", category="foreign-policy", published_at="2026-03-03T10:00:00Z"
        ),
        await publish(
            client, auth, title="Economy four", category="economy", published_at="2026-03-04T10:00:00Z", tags=["energy"]
        ),
        await publish(
            client,
            auth,
            title="Border five",
            published_at="2026-03-05T10:00:00+01:00",
            body_html='<p>See <a href="/about">about</a></p>',
            body_markdown=None,
        ),
    ]
    return items


FEED_PATHS = [
    *(f"/feed.{fmt}" for fmt in FORMATS),
    *(f"/categories/regional-security/feed.{fmt}" for fmt in FORMATS),
    *(f"/be/feed.{fmt}" for fmt in FORMATS),
    *(f"/all/feed.{fmt}" for fmt in FORMATS),
    *(f"/feed.{fmt}?tag=border&trend=worsened" for fmt in FORMATS),
    *(f"/feed.{fmt}?q=policy&category=foreign-policy&category=economy" for fmt in FORMATS),
    *(f"/feed.{fmt}?from=2026-03-02&to=2026-03-04" for fmt in FORMATS),
]


@pytest.mark.parametrize("path", FEED_PATHS)
async def test_every_feed_variant_is_valid(client: Client, seeded: list[dict[str, Any]], path: str) -> None:
    fmt = path.split("?")[0].rsplit(".", 1)[1]
    r = await client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(
        {"rss": "application/rss+xml", "atom": "application/atom+xml", "json": "application/feed+json"}[fmt]
    )
    check_feed(fmt, r.content)


EVERY_LANGUAGE = ["Border five", "Economy four", "Policy three", "Policy two", "Мяжа адзін", "Border one"]


@pytest.mark.parametrize(
    ("path", "expected_titles"),
    [
        ("/feed.atom", ["Border five", "Economy four", "Policy three", "Policy two", "Border one"]),
        ("/all/feed.atom", EVERY_LANGUAGE),
        ("/feed.atom?lang=all", EVERY_LANGUAGE),
        ("/feed.atom?lang=be", ["Мяжа адзін"]),
        ("/categories/foreign-policy/feed.atom", ["Policy three", "Policy two"]),
        ("/be/feed.atom", ["Мяжа адзін"]),
        ("/feed.atom?tag=energy", ["Economy four"]),
        ("/feed.atom?category=economy&category=foreign-policy", ["Economy four", "Policy three", "Policy two"]),
        ("/feed.atom?from=2026-03-02&to=2026-03-03", ["Policy three", "Policy two"]),
        ("/feed.atom?lang=xx", []),
    ],
)
async def test_feeds_accept_the_list_api_filters(
    client: Client, seeded: list[dict[str, Any]], path: str, expected_titles: list[str]
) -> None:
    parsed = check_xml_feed((await client.get(path)).content)
    assert [e.title for e in parsed.entries] == expected_titles


async def test_items_are_complete(client: Client, seeded: list[dict[str, Any]]) -> None:
    first = seeded[0]
    rss = (await client.get("/feed.rss?tag=nato&lang=en")).content
    atom = (await client.get("/feed.atom?tag=nato&lang=en")).content
    jf = check_json_feed((await client.get("/feed.json?tag=nato&lang=en")).content)

    # RSS: one dc:creator naming every author, affiliations in the commentary namespace,
    # the image as an enclosure and as Media RSS with its credit, the GUID from the id.
    doc = etree.fromstring(rss)
    ns = {"dc": "http://purl.org/dc/elements/1.1/", "media": "http://search.yahoo.com/mrss/",
          "c": "https://feedsvc.dev/ns/commentary/1.0", "atom": "http://www.w3.org/2005/Atom",
          "content": "http://purl.org/rss/1.0/modules/content/"}
    item = doc.find("channel/item")
    assert item is not None
    assert [e.text for e in item.findall("dc:creator", ns)] == ["Anna Kovalenko and Piotr Nowak"]
    assert [(a.get("name"), a.get("affiliation")) for a in item.findall("c:author", ns)] == [
        ("Anna Kovalenko", "Vistula Centre"), ("Piotr Nowak", None)]
    enclosure = item.find("enclosure")
    assert enclosure is not None and enclosure.attrib == {
        "url": f"{PUBLIC_URL}/media/map.svg", "length": "0", "type": "image/svg+xml"}
    assert item.findtext("guid") is not None and first["id"] in item.findtext("guid", "")
    assert item.find("guid").get("isPermaLink") == "false"  # type: ignore[union-attr]
    assert item.find("media:content", ns).get("url") == f"{PUBLIC_URL}/media/map.svg"  # type: ignore[union-attr]
    assert item.findtext(".//media:credit", namespaces=ns) == "Photo: A. B."
    assert item.find(".//media:description", ns) is None and item.find(".//media:title", ns) is None
    assert item.findtext("c:trend", namespaces=ns) == "worsened"
    period = item.find("c:period", ns)
    assert period is not None and (period.get("start"), period.get("end")) == ("2026-03-02", "2026-03-08")
    alternates = item.findall("atom:link[@rel='alternate']", ns)
    # The hreflang set names the item itself and its translation.
    assert {a.get("hreflang") for a in alternates} == {"en", "be"}
    content = item.findtext("content:encoded", namespaces=ns, default="")
    assert "Originally published in" in content and "Anna Kovalenko (Vistula Centre)" in content

    # Atom: one author naming both, translations as hreflang alternates, published and updated.
    parsed = feedparser.parse(atom)
    entry = parsed.entries[0]
    assert [a.name for a in entry.authors] == ["Anna Kovalenko and Piotr Nowak"]
    assert [e.get("type") for e in entry.enclosures] == ["image/svg+xml"]
    assert any(link.get("hreflang") == "be" for link in entry.links)
    assert entry.published_parsed and entry.updated_parsed
    assert {t.term for t in entry.tags} >= {"regional-security", "border", "nato"}

    # JSON Feed: authors by name, image and attachment, the _commentary extension.
    jitem = jf["items"][0]
    assert [a["name"] for a in jitem["authors"]] == ["Anna Kovalenko", "Piotr Nowak"]
    assert jitem["image"] == f"{PUBLIC_URL}/media/map.svg"
    assert jitem["attachments"] == [{"url": f"{PUBLIC_URL}/media/map.svg", "mime_type": "image/svg+xml"}]
    assert [(a["name"], a.get("affiliation")) for a in jitem["_commentary"]["authors"]] == [
        ("Anna Kovalenko", "Vistula Centre"), ("Piotr Nowak", None)]
    ext = jitem["_commentary"]
    assert ext["trend"] == "worsened" and ext["period"] == {"start": "2026-03-02", "end": "2026-03-08"}
    assert ext["source"]["name"] == "The Outlet" and ext["image"]["credit"] == "Photo: A. B."
    assert [t["lang"] for t in ext["translations"]] == ["be"]


async def test_relative_links_in_content_become_absolute(client: Client, seeded: list[dict[str, Any]]) -> None:
    jf = check_json_feed((await client.get("/feed.json")).content)
    body = next(i["content_html"] for i in jf["items"] if i["title"] == "Border five")
    assert f'href="{PUBLIC_URL}/about"' in body


async def test_guid_survives_title_slug_and_url_changes(
    client: Client, auth: dict[str, str], seeded: list[dict[str, Any]]
) -> None:
    item = seeded[2]
    before = {e.id for e in check_xml_feed((await client.get("/feed.atom")).content).entries}
    r = await client.patch(
        f"/api/v1/commentaries/{item['id']}",
        json={"title": "Renamed", "slug": "renamed", "canonical_url": "https://elsewhere.example/x"},
        headers={**auth, "If-Match": "*"},
    )
    assert r.status_code == 200, r.text
    after = check_xml_feed((await client.get("/feed.atom")).content).entries
    assert {e.id for e in after} == before
    assert next(e for e in after if e.title == "Renamed").link == "https://elsewhere.example/x"


async def test_feed_updated_is_the_newest_item_change_not_the_render_time(
    client: Client, seeded: list[dict[str, Any]]
) -> None:
    newest = max(datetime.fromisoformat(i["updated_at"]) for i in seeded)
    r = await client.get("/feed.atom")
    updated = etree.fromstring(r.content).findtext("{http://www.w3.org/2005/Atom}updated")
    assert updated is not None and datetime.fromisoformat(updated) == newest.replace(microsecond=newest.microsecond)
    assert parsedate_to_datetime(r.headers["last-modified"]) == newest.replace(microsecond=0)
    await asyncio.sleep(1.1)
    again = await client.get("/feed.atom")
    assert again.content == r.content  # nothing changed, same bytes, same date


async def test_empty_feed_is_valid_and_dated_at_the_epoch(client: Client, categories: Any) -> None:
    for fmt in FORMATS:
        r = await client.get(f"/categories/economy/feed.{fmt}")
        assert r.status_code == 200
        check_feed(fmt, r.content)
    atom = etree.fromstring((await client.get("/feed.atom")).content)
    assert atom.findtext("{http://www.w3.org/2005/Atom}updated", "").startswith("1970-01-01")


async def test_unknown_category_and_bad_language_are_404(client: Client, categories: Any) -> None:
    assert (await client.get("/categories/nope/feed.rss")).status_code == 404
    assert (await client.get("/english/feed.rss")).status_code == 404


# --- cheap to poll -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_conditional_requests_get_304_with_empty_body(client: Client, seeded: Any, fmt: str) -> None:
    path = f"/feed.{fmt}"
    r = await client.get(path, headers={"Accept-Encoding": "identity"})
    assert r.headers["cache-control"] == "public, max-age=60, stale-while-revalidate=600"
    # Everything the answer is chosen by: the coding, and for RSS/Atom a browser's navigation.
    navigation = "" if fmt == "json" else ", Sec-Fetch-Dest, Sec-Fetch-Mode, Accept"
    assert r.headers["vary"] == f"Accept-Encoding{navigation}"
    etag, last_modified = r.headers["etag"], r.headers["last-modified"]
    assert not etag.startswith("W/")

    r = await client.get(path, headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
    assert (r.status_code, r.content, r.headers["etag"]) == (304, b"", etag)
    r = await client.get(path, headers={"If-Modified-Since": last_modified})
    assert (r.status_code, r.content) == (304, b"")
    r = await client.get(path, headers={"If-None-Match": '"other"'})
    assert r.status_code == 200

    head = await client.head(path, headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag


@pytest.mark.parametrize("encoding", ["gzip", "br"])
async def test_compressed_variants(client: Client, seeded: Any, encoding: str) -> None:
    plain = await client.get("/feed.rss", headers={"Accept-Encoding": "identity"})
    r = await client.get("/feed.rss", headers={"Accept-Encoding": encoding})
    assert r.headers["content-encoding"] == encoding
    assert r.content == plain.content  # httpx decodes; the bytes underneath are the same feed
    assert int(r.headers["content-length"]) < len(plain.content)
    assert r.headers["etag"] != plain.headers["etag"]  # strong validators differ per coding
    again = await client.get("/feed.rss", headers={"Accept-Encoding": encoding, "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


async def test_a_write_shows_in_the_next_fetch(client: Client, auth: dict[str, str], seeded: Any) -> None:
    await client.get("/feed.atom")
    created = await publish(client, auth, title="Fresh news", published_at="2026-03-09T10:00:00Z")
    titles = [e.title for e in check_xml_feed((await client.get("/feed.atom")).content).entries]
    assert titles[0] == "Fresh news"
    r = await client.delete(f"/api/v1/commentaries/{created['id']}", headers={**auth, "If-Match": "*"})
    assert r.status_code == 204
    titles = [e.title for e in check_xml_feed((await client.get("/feed.atom")).content).entries]
    assert "Fresh news" not in titles


TOMBSTONE = "{http://purl.org/atompub/tombstones/1.0}deleted-entry"


async def tombstones(client: Client, path: str) -> dict[str, str]:
    """The RFC 6721 tombstones of a feed (ref: when), after checking it parses cleanly."""
    r = await client.get(path)
    assert r.status_code == 200, r.text
    check_feed(path.split("?")[0].rsplit(".", 1)[1], r.content)
    if path.split("?")[0].endswith(".json"):
        return {}
    return {e.get("ref", ""): e.get("when", "") for e in etree.fromstring(r.content).iter(TOMBSTONE)}


async def test_atom_feeds_name_the_commentaries_deleted_from_their_window(
    client: Client, auth: dict[str, str], seeded: list[dict[str, Any]]
) -> None:
    gone = next(c for c in seeded if c["title"] == "Policy two")
    guid = next(e.id for e in check_xml_feed((await client.get("/feed.atom")).content).entries if gone["id"] in e.id)
    assert await tombstones(client, "/feed.atom") == {}
    r = await client.delete(f"/api/v1/commentaries/{gone['id']}", headers={**auth, "If-Match": "*"})
    assert r.status_code == 204

    told = await tombstones(client, "/feed.atom")
    assert list(told) == [guid]
    assert datetime.fromisoformat(told[guid]) <= datetime.now().astimezone()
    assert list(await tombstones(client, "/categories/foreign-policy/feed.atom")) == [guid]
    assert list(await tombstones(client, "/all/feed.atom")) == [guid]
    # feeds it was never in, and formats that cannot say it, say nothing
    for path in ("/categories/economy/feed.atom", "/be/feed.atom", "/feed.rss", "/feed.json"):
        assert await tombstones(client, path) == {}, path
    # readers that do not know tombstones see a feed without the item, nothing else
    parsed = check_xml_feed((await client.get("/feed.atom")).content)
    english = [c for c in seeded if c["lang"] == "en"]
    assert guid not in {e.id for e in parsed.entries} and len(parsed.entries) == len(english) - 1

    # a commentary taken back to draft is gone too, until it is published again
    back = next(c for c in seeded if c["title"] == "Policy three")
    patch = {**auth, "If-Match": "*"}
    r = await client.patch(f"/api/v1/commentaries/{back['id']}", json={"status": "draft"}, headers=patch)
    assert r.is_success
    assert len(await tombstones(client, "/categories/foreign-policy/feed.atom")) == 2
    r = await client.patch(f"/api/v1/commentaries/{back['id']}", json={"status": "published"}, headers=patch)
    assert r.is_success
    assert list(await tombstones(client, "/categories/foreign-policy/feed.atom")) == [guid]


async def test_a_write_in_one_category_leaves_other_views_alone(
    client: Client, auth: dict[str, str], seeded: Any
) -> None:
    others = ["/categories/foreign-policy/feed.rss", "/categories/economy/feed.atom", "/feed.json?category=economy"]
    touched = ["/feed.rss", "/categories/regional-security/feed.rss"]
    before = {p: await etag_of(client, p) for p in others + touched}
    await publish(client, auth, title="Another border piece", published_at="2026-03-10T10:00:00Z")
    after = {p: await etag_of(client, p) for p in others + touched}
    assert {p: after[p] for p in others} == {p: before[p] for p in others}
    assert all(after[p] != before[p] for p in touched)


async def test_an_unchanged_view_is_never_rendered_again(
    client: Client, auth: dict[str, str], app: Litestar, seeded: Any
) -> None:
    stats = app.state.publisher.stats
    await client.get("/categories/economy/feed.rss")
    renders = stats.renders
    for _ in range(5):
        await client.get("/categories/economy/feed.rss")
    await publish(client, auth, title="Elsewhere", category="foreign-policy", published_at="2026-03-11T10:00:00Z")
    await client.get("/categories/economy/feed.rss")
    assert stats.renders == renders


async def test_concurrent_misses_share_one_render(client: Client, app: Litestar, seeded: Any) -> None:
    stats = app.state.publisher.stats
    renders = stats.renders
    responses = await asyncio.gather(*(client.get("/feed.rss?tag=border") for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert stats.renders == renders + 1


# --- complete history ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_archive_links_walk_back_to_the_first_commentary(
    client: Client, auth: dict[str, str], categories: Any, fmt: str
) -> None:
    ids = []
    for n in range(23):
        # Pairs share a timestamp: ties must not lose or repeat items across pages.
        ids.append(
            (await publish(client, auth, title=f"Item {n}", published_at=f"2026-01-{n // 2 + 1:02d}T10:00:00Z"))["id"]
        )
    url: str | None = f"{PUBLIC_URL}/feed.{fmt}?limit=5"
    seen: list[str] = []
    pages = 0
    while url:
        r = await client.get(url.removeprefix(PUBLIC_URL))
        assert r.status_code == 200, r.text
        doc = check_feed(fmt, r.content)
        pages += 1
        if fmt == "json":
            seen += [i["id"].rsplit("/", 1)[1] for i in doc["items"]]
            url = doc.get("next_url")
        else:
            seen += [e.id.rsplit("/", 1)[1] for e in doc.entries]
            links = re.findall(rb'<(?:atom:)?link[^>]*rel="prev-archive"[^>]*>', r.content)
            url = re.search(rb'href="([^"]+)"', links[0]).group(1).decode().replace("&amp;", "&") if links else None  # type: ignore[union-attr]
            if pages > 1:
                assert b"archive" in r.content and b"http://purl.org/syndication/history/1.0" in r.content
    assert pages == 5
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))


# --- push ------------------------------------------------------------------------------------


class Hub:
    """A tiny WebSub hub on 127.0.0.1 that fails its first ``failures`` pings."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[int, list[tuple[str, str]]]] = []
        self.server: asyncio.base_events.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from urllib.parse import parse_qsl

        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
        body = await reader.readexactly(length)
        status = 500 if len(self.calls) < self.failures else 204
        self.calls.append((status, parse_qsl(body.decode())))
        writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hub"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_websub_hub_is_advertised_and_pinged_with_retries(settings: Settings, categories: Any) -> None:
    hub = Hub(failures=2)
    async with hub as hub_url:
        app = create_app(
            load_settings({}, database_url=settings.database_url, public_url=PUBLIC_URL, websub_hub=hub_url)
        )
        async with AsyncTestClient(app) as client:
            notifier = app.state.notifier
            notifier.first_delay = 0.05
            token, _ = await app.state.service.create_token("t", ["write"])
            auth = {"Authorization": f"Bearer {token}"}
            for fmt in FORMATS:
                body = (await client.get(f"/feed.{fmt}")).content
                assert hub_url.encode() in body
            started = asyncio.get_running_loop().time()
            await publish(client, auth, title="Pushed", category="economy")
            assert asyncio.get_running_loop().time() - started < 0.5  # the write did not wait for the hub
            for _ in range(100):  # the app runs on the test client's own loop: watch the hub
                if len(hub.calls) >= 3:
                    break
                await asyncio.sleep(0.05)
    statuses = [status for status, _ in hub.calls]
    assert statuses == [500, 500, 204]
    form = hub.calls[-1][1]
    assert ("hub.mode", "publish") in form
    urls = {v for k, v in form if k == "hub.url"}
    assert {f"{PUBLIC_URL}/feed.{f}" for f in FORMATS} <= urls
    assert {f"{PUBLIC_URL}/categories/economy/feed.{f}" for f in FORMATS} <= urls
    assert f"{PUBLIC_URL}/categories/foreign-policy/feed.rss" not in urls


# --- for people ------------------------------------------------------------------------------


async def test_index_lists_every_feed_with_autodiscovery(client: Client, seeded: Any) -> None:
    r = await client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert (
        "script-src" not in r.headers["content-security-policy"]
        and "default-src 'none'" in r.headers["content-security-policy"]
    )
    html = etree.HTML(r.content)
    discovered = {(link.get("type"), link.get("href")) for link in html.iterfind(".//link[@rel='alternate']")}
    for path in [
        "/feed",
        "/categories/regional-security/feed",
        "/categories/foreign-policy/feed",
        "/categories/economy/feed",
        "/en/feed",
        "/be/feed",
        "/all/feed",
        "/digest",
        "/be/digest",
        "/all/digest",
    ]:
        for fmt, mime in (
            ("rss", "application/rss+xml"),
            ("atom", "application/atom+xml"),
            ("json", "application/feed+json"),
        ):
            assert (mime, f"{PUBLIC_URL}{path}.{fmt}") in discovered
    opml = etree.fromstring((await client.get("/feeds.opml")).content)
    # One subscription per language (tests/test_subscriptions.py has the rest).
    assert {f"{PUBLIC_URL}/feed.rss", f"{PUBLIC_URL}/be/feed.rss"} <= {o.get("xmlUrl") for o in opml.iter("outline")}


async def test_commentary_page_is_the_url_of_items_without_canonical_url(client: Client, seeded: Any) -> None:
    item = seeded[0]
    assert item["url"] == page_url(item)
    r = await client.get(item["url"].removeprefix(PUBLIC_URL))
    assert r.status_code == 200
    html = etree.HTML(r.content)
    assert html.findtext(".//h1") == "Border one"
    links = html.findall(".//link[@rel='alternate']")
    assert any(link.get("hreflang") == "be" for link in links)
    assert any(link.get("type") == "application/rss+xml" for link in links)


async def test_browsers_get_a_stylesheet_that_renders_the_feed(client: Client, seeded: Any) -> None:
    xsl = etree.XSLT(etree.fromstring((await client.get("/feed.xsl")).content))
    for fmt in ("rss", "atom"):
        body = (await client.get(f"/feed.{fmt}")).content
        assert f'<?xml-stylesheet type="text/xsl" href="{PUBLIC_URL}/feed.xsl"?>'.encode() in body[:300]
        page = str(xsl(etree.fromstring(body)))
        assert "Border five" in page and "<script" not in page


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.mark.parametrize("fmt", ["rss", "atom"])
async def test_a_browser_navigation_gets_the_feed_as_a_page(client: Client, seeded: Any, fmt: str) -> None:
    navigate = {"Accept": BROWSER_ACCEPT, "Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate"}
    r = await client.get(f"/feed.{fmt}", headers=navigate)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    page = etree.HTML(r.content)
    assert "Border five" in "".join(page.itertext())
    assert (
        await client.get(f"/feed.{fmt}", headers={**navigate, "If-None-Match": r.headers["etag"]})
    ).status_code == 304
    # A reader that copies a browser's Accept header, without Sec-Fetch-*, still gets the feed.
    reader = await client.get(f"/feed.{fmt}", headers={"Accept": BROWSER_ACCEPT, "If-None-Match": r.headers["etag"]})
    assert reader.status_code == 200 and b"<?xml" in reader.content[:50]


async def test_query_string_variety_cannot_evict_the_canonical_feeds(
    client: Client, app: Litestar, seeded: Any
) -> None:
    publisher = app.state.publisher
    publisher.max_bytes = 200_000  # room for a handful of filtered documents
    await client.get("/feed.rss")
    await client.get("/categories/economy/feed.atom")
    renders = publisher.stats.renders
    for n in range(40):
        assert (await client.get(f"/feed.rss?to=2100-01-01T00:00:{n:02d}Z")).status_code == 200
    assert publisher.stats.renders == renders + 40
    assert publisher._cache_bytes <= publisher.max_bytes
    await client.get("/feed.rss")
    await client.get("/categories/economy/feed.atom")
    assert publisher.stats.renders == renders + 40  # both still cached


async def test_a_filter_on_a_friendly_address_is_part_of_its_self_url(client: Client, seeded: Any) -> None:
    body = (await client.get("/categories/regional-security/feed.atom?lang=be")).content
    assert f'href="{PUBLIC_URL}/categories/regional-security/feed.atom?lang=be" rel="self"'.encode() in body or (
        f'rel="self" href="{PUBLIC_URL}/categories/regional-security/feed.atom?lang=be"'.encode() in body
    )
