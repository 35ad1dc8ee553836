"""Partner views through real HTTP on a real SQLite file: /embed, /embed.js, /oembed and the
snippets on the index page. The browser behaviour of both embeds is in test_browser.py."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import lxml.html
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.config import Settings, load_settings
from feedsvc.http.app import create_app
from feedsvc.http.routes.embeds import commentary_ref
from feedsvc.render.embed import RESIZE_SCRIPT, SCRIPT_HASH
from tests.conftest import PUBLIC_URL, assert_error, commentary, page_url, path_of


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    """The embed views render what the list queries (tested on both stores) return.

    SQLite only (see ``sqlite_settings``).
    """
    return sqlite_settings


Client = AsyncTestClient[Litestar]

HOSTILE_TITLES = [
    "<script>alert(1)</script> Border talks",
    '<img src=x onerror=alert(1)> Sanctions',
    '" onmouseover="alert(1)" x=" Minsk format',
]
HOSTILE_SUMMARY = '<script>alert(2)</script><img src=x onerror="alert(3)"> " onfocus="alert(4)'


async def publish(client: Client, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/commentaries", json=commentary(**fields), headers=auth)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def items(page: str) -> list[dict[str, Any]]:
    """The commentaries an embed page lists, as a reader sees them."""
    doc = lxml.html.fromstring(page)
    out = []
    for li in doc.xpath('//li[@class="feedsvc-item"]'):
        link = li.xpath('.//*[contains(@class, "feedsvc-title")]')[0]
        meta = li.xpath('.//p[@class="feedsvc-meta"]')[0]
        summary = li.xpath('.//p[@class="feedsvc-summary"]')
        out.append(
            {
                "title": link.text_content(),
                "href": link.get("href"),
                "target": link.get("target"),
                "rel": link.get("rel"),
                "meta": meta.text_content(),
                "summary": summary[0].text_content() if summary else None,
                "lang": li.get("lang"),
            }
        )
    return out


@pytest.fixture
async def seeded(client: Client, auth: dict[str, str], categories: Any) -> list[dict[str, Any]]:
    """Seven commentaries, one per day, newest last: three languages, three categories."""
    specs = [
        ("regional-security", "en", "improved"),
        ("foreign-policy", "en", None),
        ("regional-security", "ru", "worsened"),
        ("economy", "en", "unchanged"),
        ("regional-security", "be", None),
        ("foreign-policy", "ru", "improved"),
        ("regional-security", "en", "worsened"),
    ]
    out = []
    for day, (category, lang, trend) in enumerate(specs, start=1):
        out.append(
            await publish(
                client, auth, title=f"Commentary {day} ({category}, {lang})", category=category, lang=lang,
                trend=trend, published_at=f"2026-03-{day:02d}T10:00:00+03:00",
                summary=f"Summary of commentary {day}.",
            )
        )
    return out


# --- /embed -------------------------------------------------------------------------------


async def test_embed_lists_the_latest_five_by_default(client: Client, seeded: list[dict[str, Any]]) -> None:
    r = await client.get("/embed")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    shown = items(r.text)
    assert [i["title"] for i in shown] == [c["title"] for c in reversed(seeded)][:5]
    first = shown[0]
    newest = seeded[-1]
    assert first["href"] == newest["url"] == page_url(newest)
    assert first["target"] == "_top" and first["rel"] == "noopener"
    assert first["summary"] == "Summary of commentary 7."
    assert "7 March 2026" in first["meta"] and "Regional security" in first["meta"] and "↘ worsened" in first["meta"]
    assert first["lang"] == "en"


@pytest.mark.parametrize("limit", [1, 3, 20])
async def test_embed_limit(client: Client, seeded: list[dict[str, Any]], limit: int) -> None:
    r = await client.get("/embed", params={"limit": limit})
    assert [i["title"] for i in items(r.text)] == [c["title"] for c in reversed(seeded)][:limit]


FILTERS_AND_EXPECTED_DAYS: list[tuple[dict[str, Any], list[int]]] = [
    ({"category": "regional-security"}, [7, 5, 3, 1]),
    ({"category": "foreign-policy,economy"}, [6, 4, 2]),
    ({"category": ["economy", "foreign-policy"]}, [6, 4, 2]),
    ({"lang": "ru"}, [6, 3]),
    ({"lang": "EN", "category": "regional-security"}, [7, 1]),
    ({"lang": "de"}, []),
]


@pytest.mark.parametrize(("params", "days"), FILTERS_AND_EXPECTED_DAYS)
async def test_embed_filters(
    client: Client, seeded: list[dict[str, Any]], params: dict[str, Any], days: list[int]
) -> None:
    r = await client.get("/embed", params={**params, "limit": 20})
    assert r.status_code == 200, r.text
    assert [i["title"] for i in items(r.text)] == [seeded[d - 1]["title"] for d in days]
    if not days:  # the empty state names the filter and what there is instead
        assert "No commentaries match lang=de." in lxml.html.fromstring(r.text).text_content()
        assert "Languages: en, ru, be." in lxml.html.fromstring(r.text).text_content()


async def test_embed_labels_follow_the_language(client: Client, seeded: list[dict[str, Any]]) -> None:
    ru = items((await client.get("/embed", params={"lang": "ru", "limit": 20})).text)
    assert "Региональная безопасность" in ru[1]["meta"] and "↘ ухудшение" in ru[1]["meta"]
    assert "Внешняя политика" in ru[0]["meta"] and "↗ улучшение" in ru[0]["meta"]
    # Without ?lang= each commentary is labelled in its own language ("be" has its own name).
    mixed = {i["lang"]: i["meta"] for i in items((await client.get("/embed", params={"limit": 20})).text)}
    assert "Рэгіянальная бяспека" in mixed["be"]


async def test_embed_hides_drafts_and_scheduled(client: Client, auth: dict[str, str], categories: Any) -> None:
    await publish(client, auth, title="Visible one")
    await publish(client, auth, title="A draft", status="draft")
    await publish(client, auth, title="Scheduled", published_at="2099-01-01T00:00:00+00:00")
    assert [i["title"] for i in items((await client.get("/embed")).text)] == ["Visible one"]


async def test_embed_themes_differ(client: Client, seeded: list[dict[str, Any]]) -> None:
    light = await client.get("/embed")
    dark = await client.get("/embed", params={"theme": "dark"})
    assert (await client.get("/embed", params={"theme": "light"})).text == light.text
    assert 'class="theme-light"' in light.text and 'class="theme-dark"' in dark.text
    assert light.headers["etag"] != dark.headers["etag"]
    assert items(light.text) == items(dark.text)


async def test_embed_is_self_contained(client: Client, seeded: list[dict[str, Any]]) -> None:
    """No external resources: inline CSS, links and one inline script, the one that posts
    the page's height (the CSP allows it by its hash and no other)."""
    doc = lxml.html.fromstring((await client.get("/embed")).text)
    assert [s.text for s in doc.xpath("//script")] == [RESIZE_SCRIPT]
    assert doc.xpath("//script/@*") == []
    assert doc.xpath("//img | //iframe | //object | //embed | //link | //form") == []
    assert doc.xpath("//*[@src]") == []
    assert (
        doc.xpath("//style")
        and "@import" not in doc.xpath("//style")[0].text
        and "url(" not in doc.xpath("//style")[0].text
    )


async def test_embed_headers(client: Client, seeded: list[dict[str, Any]]) -> None:
    r = await client.get("/embed")
    assert r.headers["content-security-policy"] == (
        f"default-src 'none'; script-src {SCRIPT_HASH}; style-src 'unsafe-inline'; img-src 'self' https: data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors *"
    )
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert r.headers["cache-control"] == "public, max-age=60"
    assert "x-frame-options" not in r.headers  # it is made to be framed
    assert r.headers["etag"].startswith('"')


@pytest.fixture
async def partner_only_client(tmp_path: Path) -> AsyncIterator[Client]:
    settings = load_settings(
        {}, database_url=f"sqlite:///{tmp_path / 'f.db'}", public_url=PUBLIC_URL,
        frame_ancestors="https://partner.example 'self'", cache_max_age=300,
    )
    async with AsyncTestClient(create_app(settings), base_url="http://testserver.local") as c:
        yield c


async def test_embed_frame_ancestors_and_max_age_come_from_settings(partner_only_client: Client) -> None:
    r = await partner_only_client.get("/embed")
    assert r.status_code == 200
    assert r.headers["content-security-policy"].endswith("; frame-ancestors https://partner.example 'self'")
    assert r.headers["cache-control"] == "public, max-age=300"


async def test_embed_conditional_get(client: Client, auth: dict[str, str], seeded: list[dict[str, Any]]) -> None:
    r = await client.get("/embed", params={"category": "economy"})
    etag = r.headers["etag"]
    again = await client.get("/embed", params={"category": "economy"}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    await publish(client, auth, title="New on economy", category="economy", published_at="2026-03-20T10:00:00+00:00")
    changed = await client.get("/embed", params={"category": "economy"}, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and "New on economy" in changed.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 21}, "limit"),
        ({"limit": "five"}, "limit"),
        ({"theme": "blue"}, "theme"),
        ({"lang": "not a language"}, "lang"),
        ({"category": "Not_A_Slug"}, "category"),
    ],
)
async def test_embed_rejects_bad_parameters(client: Client, params: dict[str, Any], field: str) -> None:
    assert_error(await client.get("/embed", params=params), 400, field)


async def test_embed_card(client: Client, auth: dict[str, str], categories: Any) -> None:
    c = await publish(
        client, auth, title="One card", trend="improved", lang="ru", category="foreign-policy",
        authors=[{"name": "Anna Kovalenko"}, {"name": "Piotr Nowak"}],
    )
    r = await client.get("/embed", params={"id": c["id"], "theme": "dark"})
    assert r.status_code == 200
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    [card] = items(r.text)
    assert card["title"] == "One card" and card["href"] == c["url"] and card["target"] == "_top"
    assert "Внешняя политика" in card["meta"] and "↗ улучшение" in card["meta"]
    assert "Anna Kovalenko, Piotr Nowak" in r.text
    assert 'class="theme-dark"' in r.text
    assert_error(await client.get("/embed", params={"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}), 404)
    draft = await publish(client, auth, title="Secret draft", status="draft")
    assert_error(await client.get("/embed", params={"id": draft["id"]}), 404)


IMAGE = {
    "url": "/media/border-map.svg", "alt": "Map of the border area", "caption": "Crossing points.",
    "credit": "Vistula Centre",
}


async def test_embed_thumbnails_are_asked_for(client: Client, auth: dict[str, str], categories: Any) -> None:
    """``thumbnails=true`` shows each commentary's image beside its title, with its alt text;
    without it, or for a commentary without an image, there is none."""
    with_image = await publish(client, auth, title="With a map", image=IMAGE)
    await publish(client, auth, title="Without an image", published_at="2026-03-08T10:00:00+03:00")
    plain = lxml.html.fromstring((await client.get("/embed")).text)
    assert plain.xpath("//img") == []
    doc = lxml.html.fromstring((await client.get("/embed", params={"thumbnails": "true"})).text)
    [img] = doc.xpath("//li[@class='feedsvc-item']//img")
    assert img.get("class") == "feedsvc-thumb" and img.get("alt") == "Map of the border area"
    assert img.get("src") == with_image["image"]["url"] == f"{PUBLIC_URL}/media/border-map.svg"
    assert img.xpath("ancestor::li")[0].xpath(".//*[contains(@class, 'feedsvc-title')]")[0].text == "With a map"


async def test_embed_card_shows_the_image_with_alt_text_and_credit(
    client: Client, auth: dict[str, str], categories: Any
) -> None:
    c = await publish(client, auth, title="A card with a map", image=IMAGE)
    doc = lxml.html.fromstring((await client.get("/embed", params={"id": c["id"]})).text)
    [figure] = doc.xpath("//figure[@class='feedsvc-figure']")
    [img] = figure.xpath("img")
    assert img.get("src") == f"{PUBLIC_URL}/media/border-map.svg" and img.get("alt") == "Map of the border area"
    assert figure.xpath("figcaption")[0].text_content() == "Crossing points. Vistula Centre"
    assert figure.xpath("figcaption/span[@class='feedsvc-credit']")[0].text == "Vistula Centre"
    # oEmbed leaves room for it: 16:9 across the card, and two lines of caption.
    r = await client.get("/oembed", params={"url": c["url"]})
    assert (r.json()["width"], r.json()["height"]) == (600, 240 + 320 + 48)


async def test_embed_empty_state_says_what_to_change(client: Client, seeded: list[dict[str, Any]]) -> None:
    """A filter that matches nothing is named, with the categories and languages there are;
    in the language asked for."""
    r = await client.get("/embed", params={"category": "sports", "lang": "en"})
    assert r.status_code == 200 and items(r.text) == []
    lines = [p.text_content() for p in lxml.html.fromstring(r.text).xpath("//p[@class='feedsvc-empty']")]
    assert lines == [
        "No commentaries match category=sports, lang=en.",
        "Categories: economy, foreign-policy, regional-security.",
        "Languages: en, ru, be.",
    ]
    ru = await client.get("/embed", params={"category": "economy", "lang": "ru"})
    lines = [p.text_content() for p in lxml.html.fromstring(ru.text).xpath("//p[@class='feedsvc-empty']")]
    assert lines[0] == "Нет комментариев для category=economy, lang=ru."
    assert lines[1].startswith("Рубрики: ") and lines[2].startswith("Языки: ")


async def test_languages_are_listed_with_counts(client: Client, seeded: list[dict[str, Any]]) -> None:
    r = await client.get("/api/v1/languages")
    assert r.status_code == 200
    assert {c["name"]: c["count"] for c in r.json()} == {"en": 4, "ru": 2, "be": 1}


# --- hostile content ----------------------------------------------------------------------


async def test_hostile_commentaries_are_shown_as_text(client: Client, auth: dict[str, str], categories: Any) -> None:
    for title in HOSTILE_TITLES:
        await publish(
            client, auth, title=title, summary=HOSTILE_SUMMARY,
            body_html='<p>Body <script>alert(5)</script><a href="javascript:alert(6)">x</a></p>', body_markdown=None,
        )
    r = await client.get("/embed", params={"limit": 10})
    doc = lxml.html.fromstring(r.text)
    assert [s.text for s in doc.xpath("//script")] == [RESIZE_SCRIPT] and doc.xpath("//img") == []
    handlers = [(el.tag, name) for el in doc.iter() for name in el.attrib if name.lower().startswith("on")]
    assert handlers == []
    assert not any(href.strip().lower().startswith("javascript:") for href in doc.xpath("//@href"))
    shown = items(r.text)
    assert sorted(i["title"] for i in shown) == sorted(HOSTILE_TITLES)
    assert all(i["summary"] == HOSTILE_SUMMARY for i in shown)
    # Every link keeps exactly the attributes we wrote.
    for a in doc.xpath("//a"):
        assert set(a.attrib) == {"class", "href", "target", "rel"}
    # The cards of the same commentaries (their links are pages now, which name no id).
    listed = (await client.get("/api/v1/commentaries", params={"limit": 10})).json()["items"]
    assert sorted(c["url"] for c in listed) == sorted(i["href"] for i in shown)
    for c_id in [c["id"] for c in listed]:
        card = await client.get("/embed", params={"id": c_id})
        assert card.status_code == 200, card.text
        card_doc = lxml.html.fromstring(card.text)
        assert card_doc.xpath("//img | //@*[starts-with(name(), 'on')]") == []
        assert [s.text for s in card_doc.xpath("//script")] == [RESIZE_SCRIPT]


async def test_javascript_canonical_url_is_refused(client: Client, auth: dict[str, str], categories: Any) -> None:
    r = await client.post("/api/v1/commentaries", json=commentary(canonical_url="javascript:alert(1)"), headers=auth)
    assert_error(r, 400, "canonical_url")


# --- /embed.js ----------------------------------------------------------------------------


async def test_embed_js_is_served_as_a_script(client: Client) -> None:
    r = await client.get("/embed.js")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "public, max-age=86400"
    again = await client.get("/embed.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


async def test_embed_js_uses_text_only_dom_operations(client: Client) -> None:
    """A grep-level guard; test_browser.py checks the real behaviour."""
    source = (await client.get("/embed.js")).text
    code = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)  # the header comment shows the markup a partner writes
    for forbidden in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "eval(",
        "new Function",
        "document.write",
        'setTimeout("',
        "srcdoc",
    ):
        assert forbidden not in code, forbidden
    assert "textContent" in code and "createElement" in code
    # setAttribute only for fixed attribute names; href and src only after the http(s) check.
    names = set(re.findall(r'setAttribute\("([^"]+)"', code))
    assert names <= {
        "href", "target", "rel", "datetime", "lang", "data-feedsvc-ready", "aria-busy", "src", "alt", "loading",
        "decoding",
    }
    assert re.search(r"var image = thumbnails && item\.image \? safeHttpUrl\(item\.image\.url, base\) : null;", code)
    assert len(re.findall(r"setAttribute\(", code)) == len(re.findall(r'setAttribute\("[a-z-]+"', code))
    assert re.search(r"var href = safeHttpUrl\(item\.url\);\s+var title;\s+if \(href\)", code)
    assert 'credentials: "omit"' in code


async def test_the_api_the_script_reads_is_open_to_other_origins(client: Client, seeded: list[dict[str, Any]]) -> None:
    for path in ("/api/v1/commentaries?limit=5&category=economy", "/api/v1/categories"):
        r = await client.get(path, headers={"Origin": "http://partner.example"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in r.headers


# --- /oembed ------------------------------------------------------------------------------


def iframe_src(doc: dict[str, Any]) -> str:
    match = re.search(r'<iframe src="([^"]+)"', doc["html"])
    assert match, doc["html"]
    return html.unescape(match.group(1))


async def test_oembed_for_a_page_url(client: Client, auth: dict[str, str], categories: Any) -> None:
    c = await publish(
        client, auth, title='A "quoted" <title>',
        authors=[{"name": "Anna Kovalenko", "url": "https://example.org/anna"}],
    )
    r = await client.get("/oembed", params={"url": c["url"], "format": "json"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "public, max-age=60"
    doc = r.json()
    assert doc == {
        "version": "1.0",
        "type": "rich",
        "title": 'A "quoted" <title>',
        "author_name": "Anna Kovalenko",
        "author_url": "https://example.org/anna",
        "provider_name": "Commentaries",
        "provider_url": f"{PUBLIC_URL}/",
        "cache_age": 60,
        "html": doc["html"],
        "width": 600,
        "height": 240,
    }
    frame = lxml.html.fragment_fromstring(doc["html"])
    assert frame.tag == "iframe" and frame.get("title") == 'A "quoted" <title>'
    assert frame.get("width") == "600" and frame.get("height") == "240"
    src = iframe_src(doc)
    assert src == f"{PUBLIC_URL}/embed?id={c['id']}"
    card = await client.get(path_of(src))
    assert [i["title"] for i in items(card.text)] == ['A "quoted" <title>']


async def test_oembed_discovery_link_on_the_commentary_page(
    client: Client, auth: dict[str, str], categories: Any
) -> None:
    c = await publish(client, auth, title="Discoverable")
    page = lxml.html.fromstring((await client.get(path_of(c["url"]))).text)
    [link] = page.xpath('//link[@type="application/json+oembed"]')
    r = await client.get(path_of(link.get("href")))
    assert r.status_code == 200 and r.json()["title"] == "Discoverable"


@pytest.mark.parametrize(
    "form",
    [
        "{base}/commentaries/{id}",
        "{base}/commentaries/{id}/",
        "{base}/commentaries/{id}?utm_source=x#top",
        "{base}/api/v1/commentaries/{id}",
        "{base}/api/v1/commentaries/{slug}?lang=en",
        "http://feeds.example.org/commentaries/{id}",
        "HTTPS://FEEDS.example.org/commentaries/{id}",
    ],
)
async def test_oembed_url_forms(client: Client, auth: dict[str, str], categories: Any, form: str) -> None:
    c = await publish(client, auth, title="Many addresses")
    url = form.format(base=PUBLIC_URL, id=c["id"], slug=c["slug"])
    r = await client.get("/oembed", params={"url": url})
    assert r.status_code == 200, r.text
    assert iframe_src(r.json()) == f"{PUBLIC_URL}/embed?id={c['id']}"


@pytest.mark.parametrize(
    "form",
    [
        "{base}/commentaries/01ARZ3NDEKTSV4RRFFQ69G5FAV",  # no such id
        "{base}/commentaries/{slug}",  # slugs need the API form with ?lang=
        "{base}/api/v1/commentaries/{slug}?lang=ru",
        "https://evil.example/commentaries/{id}",
        "https://feeds.example.org.evil.example/commentaries/{id}",
        "https://feeds.example.org@evil.example/commentaries/{id}",
        "https://user@feeds.example.org/commentaries/{id}",
        "https://feeds.example.org:8443/commentaries/{id}",
        "ftp://feeds.example.org/commentaries/{id}",
        "javascript:alert(1)//feeds.example.org/commentaries/{id}",
        "{base}/feed.rss",
        "{base}/commentaries/{id}/translations",
        "{base}/api/v1/commentaries/{id}/translations",
        "/commentaries/{id}",
        "not a url at all",
        "https://[::1/commentaries/{id}",
    ],
)
async def test_oembed_unknown_or_foreign_urls_are_404(
    client: Client, auth: dict[str, str], categories: Any, form: str
) -> None:
    c = await publish(client, auth, title="Ours")
    url = form.format(base=PUBLIC_URL, id=c["id"], slug=c["slug"])
    assert_error(await client.get("/oembed", params={"url": url}), 404)


async def test_oembed_hides_drafts(client: Client, auth: dict[str, str], categories: Any) -> None:
    draft = await publish(client, auth, title="Draft", status="draft")
    assert_error(await client.get("/oembed", params={"url": page_url(draft)}), 404)


@pytest.mark.parametrize("fmt", ["xml", "XML", "yaml"])
async def test_oembed_formats_other_than_json_are_501(
    client: Client, auth: dict[str, str], categories: Any, fmt: str
) -> None:
    c = await publish(client, auth)
    assert_error(await client.get("/oembed", params={"url": c["url"], "format": fmt}), 501)


@pytest.mark.parametrize(
    ("params", "size"),
    [
        ({"maxwidth": 320}, (320, 240)),
        ({"maxheight": 100}, (600, 100)),
        ({"maxwidth": 2000, "maxheight": 2000}, (600, 240)),
    ],
)
async def test_oembed_respects_maxwidth_and_maxheight(
    client: Client, auth: dict[str, str], categories: Any, params: dict[str, int], size: tuple[int, int]
) -> None:
    c = await publish(client, auth)
    doc = (await client.get("/oembed", params={"url": c["url"], **params})).json()
    assert (doc["width"], doc["height"]) == size
    frame = lxml.html.fragment_fromstring(doc["html"])
    assert (int(frame.get("width")), int(frame.get("height"))) == size


@pytest.mark.parametrize(
    ("params", "field"), [({"url": "x", "maxwidth": 0}, "maxwidth"), ({"url": "x", "maxheight": "tall"}, "maxheight")]
)
async def test_oembed_bad_parameters_are_400(client: Client, params: dict[str, Any], field: str) -> None:
    assert_error(await client.get("/oembed", params=params), 400, field)


async def test_oembed_needs_a_url(client: Client) -> None:
    assert "'url'" in assert_error(await client.get("/oembed"), 400)["detail"]


async def test_oembed_is_open_to_other_origins(client: Client, auth: dict[str, str], categories: Any) -> None:
    c = await publish(client, auth)
    r = await client.get("/oembed", params={"url": c["url"]}, headers={"Origin": "https://consumer.example"})
    assert r.headers["access-control-allow-origin"] == "*"


def test_commentary_ref_under_a_path_prefix() -> None:
    base = "https://example.org/feeds"
    assert commentary_ref("https://example.org/feeds/commentaries/ABC", base) == ("ABC", None)
    assert commentary_ref("https://example.org/feeds/api/v1/commentaries/a-slug?lang=be", base) == ("a-slug", "be")
    assert commentary_ref("https://example.org/commentaries/ABC", base) is None
    assert commentary_ref("https://example.org/feedsX/commentaries/ABC", base) is None


# --- the snippets on / --------------------------------------------------------------------


async def test_index_shows_embed_snippets(client: Client, seeded: list[dict[str, Any]]) -> None:
    r = await client.get("/")
    assert r.status_code == 200
    doc = lxml.html.fromstring(r.text)
    assert doc.xpath("//script") == [] and doc.xpath("//iframe") == []  # shown, not embedded
    [section] = doc.xpath('//section[@id="embed"]')
    assert section.xpath("h2")[0].text_content() == "Embed on your site"
    codes = [c.text_content() for c in section.xpath(".//pre/code")]
    assert len(codes) == 3
    # The iframe, and the script that sizes it to its content.
    frame, sizer = lxml.html.fragments_fromstring(codes[0])
    assert frame.tag == "iframe" and "width" not in frame.attrib and "width:100%" in frame.get("style")
    assert sizer.tag == "script" and sizer.get("src") == f"{PUBLIC_URL}/embed.js"
    assert html.unescape(frame.get("src")) == f"{PUBLIC_URL}/embed?limit=5&theme=light"
    assert f'<script src="{PUBLIC_URL}/embed.js" async></script>' in codes[1]
    assert "<div data-feedsvc-embed" in codes[1]
    oembed = urlsplit(codes[2])
    assert f"{oembed.scheme}://{oembed.netloc}{oembed.path}" == f"{PUBLIC_URL}/oembed"
    assert parse_qs(oembed.query)["url"] == [page_url(seeded[-1])]
    # Each snippet works as printed.
    assert (await client.get(path_of(html.unescape(frame.get("src"))))).status_code == 200
    assert (await client.get(path_of(codes[2]))).status_code == 200
    assert "<code>economy</code>" in r.text
