"""Pages for people (docs/pages.md): readable addresses that stay put, lists paginated with
the API's cursors, a digest leading to the weeks either side, error pages for browsers and
the JSON body for everyone else, and pages served from the cache until something public
changes. Through real HTTP on both stores; page addresses are spelt here from the items'
own fields, not by feedsvc."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import lxml.html
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.config import Settings, load_settings
from feedsvc.errors import InvalidInputError
from tests.conftest import PUBLIC_URL, FakeClock, assert_error, commentary, page_path, page_url, path_of
from tests.test_page_language import assert_no_english_label

Client = AsyncTestClient[Litestar]

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SITE_LINKS = "About us=https://example.org/about; Contact=mailto:desk@example.org"
FOOTER_NOTE = "© 2026 Vistula Centre"
PAGER = "//nav[@class='pager']"


@pytest.fixture
def settings(any_settings: Settings) -> Settings:
    return msgspec.structs.replace(any_settings, site_links=SITE_LINKS, footer_note=FOOTER_NOTE)


async def publish(client: Client, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/commentaries", json=commentary(**fields), headers=auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def links(page: str, part: str = "//main") -> list[tuple[str, str]]:
    """(href, text) of the links in the part of a page the XPath ``part`` selects."""
    doc = lxml.html.fromstring(page)
    return [(a.get("href"), " ".join(a.text_content().split())) for p in doc.xpath(part) for a in p.iter("a")]


def listed(page: str) -> list[str]:
    """The titles a list page shows, in order."""
    doc = lxml.html.fromstring(page)
    return [" ".join(a.text_content().split()) for a in doc.xpath("//ul[@class='entries']/li/h2/a")]


# --- addresses ------------------------------------------------------------------------------


async def test_a_commentary_lives_at_its_language_month_and_slug_and_its_id_address_redirects_there(
    client: Client, auth: dict[str, str], categories: Any
) -> None:
    item = await publish(client, auth, title="Border talks resume", published_at="2026-03-07T10:00:00+03:00")
    assert item["url"] == f"{PUBLIC_URL}/en/2026/03/border-talks-resume" == page_url(item)
    r = await client.get(page_path(item))
    assert r.status_code == 200 and "Border talks resume" in r.text
    assert f'<link rel="canonical" href="{item["url"]}">' in r.text
    old = await client.get(f"/commentaries/{item['id']}", follow_redirects=False)
    assert old.status_code == 308 and old.headers["location"] == item["url"]
    # A month the commentary was not published in, or a language spelt in capitals: one address.
    for wrong in ("/en/2026/04/border-talks-resume", "/EN/2026/03/border-talks-resume"):
        moved = await client.get(wrong, follow_redirects=False)
        assert moved.status_code == 308 and moved.headers["location"] == item["url"], wrong
    assert (await client.get("/en/2026/03/no-such-slug")).status_code == 404
    assert (await client.get("/xx/2026/03/border-talks-resume")).status_code == 404


async def test_when_the_publication_date_moves_the_old_address_leads_to_the_new_one(
    client: Client, auth: dict[str, str], categories: Any
) -> None:
    item = await publish(client, auth, title="Exercises end early", published_at="2026-02-27T10:00:00+03:00")
    r = await client.patch(
        f"/api/v1/commentaries/{item['id']}", json={"published_at": "2026-03-02T10:00:00+03:00"},
        headers={**auth, "If-Match": "*"},
    )
    assert r.status_code == 200, r.text
    moved = r.json()
    assert path_of(moved["url"]) == "/en/2026/03/exercises-end-early"
    old = await client.get(page_path(item), follow_redirects=False)
    assert old.status_code == 308 and old.headers["location"] == moved["url"]
    # The feeds, the sitemap and the API all name the new address.
    assert moved["url"] in (await client.get("/feed.rss")).text
    assert moved["url"] in (await client.get("/sitemaps/commentaries-1.xml")).text
    assert (await client.get(f"/api/v1/commentaries/{item['id']}")).json()["url"] == moved["url"]


# --- lists ----------------------------------------------------------------------------------


async def test_a_list_pages_with_the_api_cursor_and_never_repeats_or_skips(
    client: Client, auth: dict[str, str], categories: Any
) -> None:
    made = [
        await publish(client, auth, title=f"Note {n:02d}", published_at=f"2026-03-{n + 1:02d}T10:00:00+03:00")
        for n in range(25)
    ]
    first = (await client.get("/en/")).text
    assert listed(first) == [f"Note {n:02d}" for n in range(24, 4, -1)]
    older = [href for href, text in links(first, PAGER) if "→" in text]
    assert len(older) == 1 and older[0].startswith(f"{PUBLIC_URL}/en/?cursor=")
    second = (await client.get(path_of(older[0]))).text
    assert listed(second) == [f"Note {n:02d}" for n in range(4, -1, -1)]
    assert not [href for href, text in links(second, PAGER) if "→" in text]
    # A later page leads back to the first, and only the first is for search engines.
    assert (f"{PUBLIC_URL}/en/", "← Newest") in links(second, PAGER)
    assert 'name="robots" content="noindex' in second and 'name="robots"' not in first
    # The API's cursor for the same list is accepted too: the pages and the API page alike.
    api = (await client.get("/api/v1/commentaries", params={"lang": "en", "limit": 20})).json()
    assert listed((await client.get("/en/", params={"cursor": api["next_cursor"]})).text) == listed(second)
    assert len(made) == 25


async def test_category_tag_author_month_and_search_pages_list_exactly_their_commentaries(
    client: Client, auth: dict[str, str], categories: Any
) -> None:
    border = await publish(
        client, auth, title="Border patrols double", tags=["Border", "patrols"],
        published_at="2026-03-05T10:00:00+03:00",
        authors=[{"name": "Ales Maroz", "affiliation": "Associate Fellow, Polesie Policy Lab"}],
    )
    await publish(
        client, auth, title="Grain prices fall", category="economy", tags=["grain"],
        published_at="2026-02-10T10:00:00+03:00",
    )
    await publish(
        client, auth, title="Мяжа зачынена", lang="be", tags=["border"], published_at="2026-03-06T10:00:00+03:00"
    )
    pages = {
        "/en/categories/regional-security": ["Border patrols double"],
        "/en/categories/economy": ["Grain prices fall"],
        "/en/tags/border": ["Border patrols double"],
        f"/en/tags/{quote('border')}": ["Border patrols double"],
        "/en/authors/ales%20maroz": ["Border patrols double"],
        "/en/authors/Ales%20Maroz": ["Border patrols double"],
        "/en/2026/03/": ["Border patrols double"],
        "/en/2026/02/": ["Grain prices fall"],
        "/be/": ["Мяжа зачынена"],
        "/en/search?q=patrol": ["Border patrols double"],
    }
    for path, titles in pages.items():
        r = await client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert listed(r.text) == titles, path
    # The author's page names their affiliation; the month links to the month before.
    assert "Associate Fellow, Polesie Policy Lab" in (await client.get("/en/authors/ales%20maroz")).text
    assert (f"{PUBLIC_URL}/en/2026/02/", "← February 2026") in links((await client.get("/en/2026/03/")).text)
    # A commentary's tags, category and authors are links to those pages.
    page = (await client.get(page_path(border))).text
    hrefs = {href for href, _ in links(page, "//article")}
    assert {
        f"{PUBLIC_URL}/en/tags/border", f"{PUBLIC_URL}/en/tags/patrols", f"{PUBLIC_URL}/en/authors/ales%20maroz",
        f"{PUBLIC_URL}/en/categories/regional-security",
    } <= hrefs
    for missing in ("/en/categories/sports", "/en/authors/nobody", "/de/", "/en/2026/13/"):
        assert (await client.get(missing)).status_code == 404, missing
    assert "Nothing matches" in (await client.get("/en/search?q=zzzzzz")).text


async def test_a_digest_page_leads_to_the_weeks_before_and_after(
    client: Client, auth: dict[str, str], categories: Any, clock: FakeClock
) -> None:
    weeks = [("2026-02-16", "2026-02-22"), ("2026-03-02", "2026-03-08"), ("2026-03-09", "2026-03-15")]
    for n, (start, end) in enumerate(weeks):
        await publish(client, auth, title=f"Week {n}", period={"start": start, "end": end},
                      published_at=f"{end}T10:00:00+03:00")
    middle = (await client.get("/digests/2026-03-02", params={"lang": "en"})).text
    nav = links(middle, PAGER)
    assert (f"{PUBLIC_URL}/digests/2026-02-16?lang=en", "← Previous week") in nav
    assert (f"{PUBLIC_URL}/digests/2026-03-09?lang=en", "Next week →") in nav
    last = links((await client.get("/digests/2026-03-09", params={"lang": "en"})).text, PAGER)
    assert [text for _, text in last] == ["← Previous week"]


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/no/such/deeper/page/here", 404),
        ("GET", "/api/v1/commentaries/01ARZ3NDEKTSV4RRFFQ69G5FAV", 404),
        ("GET", "/be/2026/03/no-such-slug", 404),
        ("GET", "/digests/yesterday?lang=ru", 400),
        ("POST", "/", 405),
        ("GET", "/" + "a" * 3000, 414),  # refused before routing (feedsvc.http.cost)
        ("GET", "/en/?limit=1&limit=2", 400),
    ],
)
async def test_browsers_get_an_error_page_and_api_clients_the_json_body_with_the_same_status(
    client: Client, auth: dict[str, str], categories: Any, method: str, path: str, status: int
) -> None:
    await publish(client, auth, lang="be", title="Каментарый")
    await publish(client, auth, lang="ru", title="Комментарий")
    page = await client.request(method, path, headers=BROWSER)
    assert page.status_code == status
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    doc = lxml.html.fromstring(page.text)
    lang = path.split("/")[1] if path.split("/")[1] in ("be", "ru") else "ru" if "lang=ru" in path else "en"
    assert doc.get("lang") == lang
    assert f"{status}" in doc.xpath("//main")[0].text_content()
    assert doc.xpath("//header//a[@class='brand']")[0].get("href").startswith(PUBLIC_URL + "/")
    head = await client.request("HEAD", path, headers=BROWSER) if method == "GET" else None
    assert head is None or (head.status_code == status and head.content == b"")
    for accept in (None, "application/json", "*/*", "application/json, text/html;q=0.5"):
        headers = {"Accept": accept} if accept else {}
        api = await client.request(method, path, headers=headers)
        assert api.headers["content-type"].startswith("application/json"), accept
        assert_error(api, status)


# --- what every page has, and the cache ------------------------------------------------------


async def test_every_page_has_the_masthead_the_footer_and_a_print_style(
    client: Client, auth: dict[str, str], categories: Any
) -> None:
    item = await publish(client, auth)
    for path in ("/", page_path(item), "/en/", "/en/categories/regional-security", "/en/search?q=border"):
        r = await client.get(path)
        doc = lxml.html.fromstring(r.text)
        assert doc.xpath("//header[@class='masthead']//a[@class='brand']")[0].get("href") == f"{PUBLIC_URL}/", path
        footer = links(r.text, "//footer")
        assert ("https://example.org/about", "About us") in footer and ("mailto:desk@example.org", "Contact") in footer
        assert FOOTER_NOTE in doc.xpath("//footer")[0].text_content()
        assert doc.xpath("//form[@class='search']")[0].get("action") == f"{PUBLIC_URL}/en/search"
        assert "@media print" in r.text
        # No ISO date is left for a reader; dates are written as people write them.
        assert not re.search(r"\d{4}-\d{2}-\d{2}", doc.xpath("//main")[0].text_content()), path


async def test_pages_come_from_the_cache_until_something_public_changes(
    app: Litestar, client: Client, auth: dict[str, str], categories: Any
) -> None:
    stats = app.state["pages"].stats
    await publish(client, auth, title="First")
    first = await client.get("/en/")
    renders = stats.renders
    again = await client.get("/en/")
    assert again.text == first.text and stats.renders == renders and stats.hits >= 1
    assert (await client.get("/en/", headers={"If-None-Match": first.headers["etag"]})).status_code == 304
    await publish(client, auth, title="Second")
    after = await client.get("/en/")
    assert stats.renders == renders + 1 and listed(after.text) == ["Second", "First"]


@pytest.mark.parametrize("lang", ["be", "ru"])
async def test_every_page_type_speaks_its_language_with_no_english_label_left(
    client: Client, auth: dict[str, str], categories: Any, lang: str
) -> None:
    item = await publish(
        client, auth, lang=lang, title="Мяжа", tags=["мяжа"], period={"start": "2026-03-02", "end": "2026-03-08"},
        authors=[{"name": "Алесь Мароз"}], published_at="2026-03-07T10:00:00+03:00",
    )
    pages = [
        f"/?lang={lang}", page_path(item), f"/{lang}/", f"/{lang}/2026/03/", f"/{lang}/categories/regional-security",
        f"/{lang}/tags/{quote('мяжа')}", f"/{lang}/authors/{quote('алесь мароз')}", f"/{lang}/search?q=Мяжа",
        f"/{lang}/search",
    ]
    for path in pages:
        r = await client.get(path)
        assert r.status_code == 200, (path, r.text[:200])
        doc = lxml.html.fromstring(r.text)
        for pre in doc.iter("pre"):  # the embed snippets to copy are code, not labels
            pre.drop_tree()
        for link in doc.xpath("//footer//a[@href='https://example.org/about' or starts-with(@href, 'mailto:')]"):
            link.drop_tree()  # the publisher's own links, as configured
        assert doc.get("lang") == lang, path
        assert_no_english_label(" ".join(doc.body.text_content().split()))


async def test_oembed_takes_a_commentary_s_page_address(client: Client, auth: dict[str, str], categories: Any) -> None:
    item = await publish(client, auth, title="Embedded commentary")
    r = await client.get("/oembed", params={"url": item["url"], "format": "json"})
    assert r.status_code == 200, r.text
    assert "Embedded commentary" in r.json()["title"]


def test_site_links_are_label_url_pairs_and_a_bad_one_is_named_at_start_up() -> None:
    settings = load_settings({"FEEDSVC_SITE_LINKS": "About=https://example.org/a; Desk = mailto:d@example.org;"})
    assert settings.links == [("About", "https://example.org/a"), ("Desk", "mailto:d@example.org")]
    for bad in ("About", "About=javascript:alert(1)", "=https://example.org", "About=//evil.example"):
        with pytest.raises(InvalidInputError, match="FEEDSVC_SITE_LINKS"):
            load_settings({"FEEDSVC_SITE_LINKS": bad})
