"""Writes through the HTTP API: create, replace, merge-patch, delete, categories.

Each test asserts on the response and, where it matters, on the rows in the SQLite file.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from html.parser import HTMLParser
from typing import Any

from ulid import ULID

from tests.conftest import PUBLIC_URL, assert_error, commentary, page_url, path_of

API = "/api/v1/commentaries"
CROCKFORD_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


async def create(client: Any, auth: dict[str, str], **overrides: Any) -> Any:
    r = await client.post(API, json=commentary(**overrides), headers=auth)
    assert r.status_code == 201, r.text
    return r


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- POST -----------------------------------------------------------------------------------


async def test_post_is_201_with_absolute_location_under_the_public_url_and_an_etag(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    r = await create(client, auth)
    item = r.json()
    assert r.headers["location"] == f"{PUBLIC_URL}/api/v1/commentaries/{item['id']}"
    assert re.fullmatch(r'"[^"]+"', r.headers["etag"])

    got = await client.get(path_of(r.headers["location"]))
    assert got.status_code == 200
    assert got.json() == item
    assert got.headers["etag"] == r.headers["etag"]


async def test_server_assigns_a_ulid_id_and_both_timestamps(
    client: Any, auth: dict[str, str], categories: Any, clock: Any, rows: Any
) -> None:
    r = await create(client, auth)
    item = r.json()
    assert CROCKFORD_ULID.fullmatch(item["id"])
    assert str(ULID.from_str(item["id"])) == item["id"]
    assert at(item["created_at"]) == at(item["updated_at"]) == clock.now
    assert item["status"] == "published"
    assert item["url"] == page_url(item)
    assert rows("SELECT id, version FROM commentaries") == [(item["id"], item["version"])]


async def test_published_at_defaults_to_the_time_of_the_request(
    client: Any, auth: dict[str, str], categories: Any, clock: Any
) -> None:
    r = await create(client, auth, published_at=None)
    assert at(r.json()["published_at"]) == clock.now


async def test_canonical_url_becomes_the_public_url(client: Any, auth: dict[str, str], categories: Any) -> None:
    r = await create(client, auth, canonical_url="https://publisher.example/commentaries/border")
    assert r.json()["url"] == "https://publisher.example/commentaries/border"


# --- slugs ----------------------------------------------------------------------------------

DERIVED_SLUGS = [
    ("Border tensions ease after talks", "en", "border-tensions-ease-after-talks"),
    ("  What's next for the Union State?  ", "en", "what-s-next-for-the-union-state"),
    ("Беларусь і Расія: новы этап", "be", "belarus-i-rasiia-novy-etap"),
    ("Ўсходняе партнёрства", "be", "uskhodniae-partnerstva"),
    ("Россия и Беларусь: союзное государство", "ru", "rossiia-i-belarus-soiuznoe-gosudarstvo"),
    ("Щит и меч", "ru", "shchit-i-mech"),
    ("!!!", "en", "commentary"),
]


async def test_slug_is_derived_from_the_title_with_cyrillic_transliterated(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    for title, lang, slug in DERIVED_SLUGS:
        r = await create(client, auth, title=title, lang=lang)
        assert r.json()["slug"] == slug, title


async def test_a_long_title_gives_a_slug_of_at_most_120_characters(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    r = await create(client, auth, title="sanctions " * 30)
    slug = r.json()["slug"]
    assert 0 < len(slug) <= 120 and re.fullmatch(r"[a-z0-9-]+", slug)
    assert not slug.endswith("-")


async def test_derived_slugs_are_made_unique_within_a_language_only(
    client: Any, auth: dict[str, str], categories: Any, rows: Any
) -> None:
    slugs = [(await create(client, auth, title="Weekly monitoring", lang=lang)).json()["slug"]
             for lang in ("en", "en", "en", "be", "be", "ru")]
    assert slugs == [
        "weekly-monitoring", "weekly-monitoring-2", "weekly-monitoring-3",
        "weekly-monitoring", "weekly-monitoring-2",
        "weekly-monitoring",
    ]
    assert rows("SELECT count(DISTINCT lang || '/' || slug) FROM commentaries") == [(6,)]


async def test_an_explicit_slug_taken_in_the_same_language_is_409_and_stores_nothing(
    client: Any, auth: dict[str, str], categories: Any, stored_counts: Any
) -> None:
    await create(client, auth, slug="sanctions-week", lang="en")
    before = stored_counts()
    r = await client.post(API, json=commentary(slug="sanctions-week", lang="en", title="Other"), headers=auth)
    assert_error(r, 409)
    assert stored_counts() == before


async def test_the_same_explicit_slug_in_another_language_is_fine(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    en = await create(client, auth, slug="sanctions-week", lang="en")
    ru = await create(client, auth, slug="sanctions-week", lang="ru")
    assert en.json()["slug"] == ru.json()["slug"] == "sanctions-week"
    assert en.json()["id"] != ru.json()["id"]


async def test_concurrent_posts_of_one_slug_give_one_201_and_one_409_and_derived_slugs_stay_unique(
    client: Any, concurrent_client: Any, auth: dict[str, str], categories: Any, rows: Any
) -> None:
    explicit = await asyncio.gather(*(
        concurrent_client.post(API, json=commentary(slug="breaking", title=f"Take {i}"), headers=auth) for i in range(2)
    ))
    assert sorted(r.status_code for r in explicit) == [201, 409]
    derived = await asyncio.gather(*(
        concurrent_client.post(API, json=commentary(title="Breaking news"), headers=auth) for _ in range(3)
    ))
    assert [r.status_code for r in derived] == [201, 201, 201]
    assert sorted(r.json()["slug"] for r in derived) == ["breaking-news", "breaking-news-2", "breaking-news-3"]
    assert rows("SELECT count(*) FROM commentaries") == [(4,)]


async def test_put_to_a_slug_taken_by_another_commentary_is_409(
    client: Any, auth: dict[str, str], categories: Any, rows: Any
) -> None:
    await create(client, auth, slug="first")
    second = await create(client, auth, slug="second")
    r = await client.put(
        f"{API}/{second.json()['id']}", json=commentary(slug="first"),
        headers={**auth, "If-Match": second.headers["etag"]},
    )
    assert_error(r, 409)
    assert rows("SELECT slug FROM commentaries ORDER BY slug") == [("first",), ("second",)]


# --- summary and body -----------------------------------------------------------------------

SUMMARIES = [
    ({"body_markdown": "First para **bold**.\n\nSecond paragraph."}, "First para bold."),
    ({"body_markdown": None, "body_html": "<h2>Heading</h2><p>The lede, here.</p><p>More.</p>"}, "The lede, here."),
    ({"body_markdown": "A first\nparagraph on two lines.\n\nNext."}, "A first paragraph on two lines."),
    ({"summary": "  An explicit\tsummary.  "}, "An explicit summary."),
    ({"summary": ""}, "First paragraph of the analysis."),
]


async def test_summary_is_derived_from_the_first_paragraph_when_absent(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    for overrides, summary in SUMMARIES:
        r = await create(client, auth, **overrides)
        assert r.json()["summary"] == summary, overrides


async def test_a_derived_summary_is_cut_at_a_word_within_1000_characters(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    r = await create(client, auth, body_markdown="word " * 400 + "\n\nSecond.")
    summary = r.json()["summary"]
    assert len(summary) <= 1000
    assert summary.endswith("…") and summary.startswith("word word")
    assert "wor…" not in summary


async def test_body_markdown_is_rendered_once_to_sanitised_html(
    client: Any, auth: dict[str, str], categories: Any, rows: Any
) -> None:
    source = (
        "Some *emphasis* and [a link](https://example.org/a).\n\n"
        "- one\n- two\n\n<script>alert(1)</script>\n\n[bad](javascript:alert(1))"
    )
    r = await create(client, auth, body_markdown=source)
    item = r.json()
    assert "body_markdown" not in item
    assert item["body_html"].startswith(
        '<p>Some <em>emphasis</em> and <a href="https://example.org/a" rel="noopener noreferrer">a link</a>.</p>'
    )
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in item["body_html"]
    assert "<script" not in item["body_html"] and 'href="javascript' not in item["body_html"]
    (doc,) = rows("SELECT doc FROM commentaries")[0]
    assert "body_markdown" not in json.loads(doc)


# --- sanitising -----------------------------------------------------------------------------

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dl", "dt",
    "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li",
    "mark", "ol", "p", "pre", "q", "s", "small", "strong", "sub", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "u", "ul",
}


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))


def assert_harmless(html: str) -> None:
    """Parsed the way a browser would, the HTML has only allowed elements, no event handlers,
    no style, and no URL with a scheme that runs code or embeds data."""
    parser = _Elements()
    parser.feed(html)
    parser.close()
    for tag, attrs in parser.elements:
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attrs:
            assert not name.startswith("on"), (name, html)
            assert name != "style", html
            if name in ("href", "src", "cite", "action", "formaction"):
                scheme = re.sub(r"[\x00-\x20]", "", value or "").lower().split(":", 1)[0]
                assert scheme not in ("javascript", "data", "vbscript"), (value, html)


# (case, body_html as posted, body_html as returned; None: only checked for harmlessness)
SANITISING: list[tuple[str, str, str | None]] = [
    ("script element", "<p>Hello</p><script>alert(1)</script>", "<p>Hello</p>"),
    ("external script", '<p>Hi<script src="https://evil.example/x.js"></script></p>', "<p>Hi</p>"),
    ("style element", "<style>p{color:red}</style><p>Styled</p>", "<p>Styled</p>"),
    ("onerror handler", '<img src="https://example.org/a.png" onerror="alert(1)" alt="map">',
     '<img src="https://example.org/a.png" alt="map">'),
    ("onclick handlers", '<p onclick="alert(1)" onmouseover="x()">Click</p>', "<p>Click</p>"),
    ("javascript: href", '<a href="javascript:alert(1)">j</a>', '<a rel="noopener noreferrer">j</a>'),
    ("javascript: href in mixed case", '<a href="  JaVaScRiPt:alert(1)">j</a>', '<a rel="noopener noreferrer">j</a>'),
    ("javascript: split by an entity tab", '<a href="java&#x09;script:alert(1)">j</a>',
     '<a rel="noopener noreferrer">j</a>'),
    ("vbscript: href", '<a href="vbscript:msgbox(1)">v</a>', '<a rel="noopener noreferrer">v</a>'),
    ("data: src", '<img src="data:image/svg+xml;base64,PHN2Zz4=">', "<img>"),
    ("data: href", '<a href="data:text/html,<script>alert(1)</script>">d</a>', '<a rel="noopener noreferrer">d</a>'),
    ("iframe", '<iframe src="https://evil.example"></iframe><p>after</p>', "<p>after</p>"),
    ("object and embed", '<object data="x.swf"></object><embed src="x.swf"><p>after</p>', "<p>after</p>"),
    ("style attribute", '<p style="background:url(javascript:alert(1))">s</p>', "<p>s</p>"),
    ("form controls", '<form action="https://evil.example"><input name="q"><button>Go</button></form>', "Go"),
    ("comment hiding markup", "<!-- <img src=x onerror=alert(1)> --><p>c</p>", "<p>c</p>"),
    ("base element", '<base href="https://evil.example/"><p>b</p>', "<p>b</p>"),
    ("meta refresh", '<meta http-equiv="refresh" content="0;url=https://evil.example"><p>m</p>', "<p>m</p>"),
    ("stylesheet link", '<link rel="stylesheet" href="https://evil.example/x.css"><p>l</p>', "<p>l</p>"),
    ("target and rel are replaced", '<a href="https://example.org" target="_blank" rel="opener">t</a>',
     '<a href="https://example.org" rel="noopener noreferrer">t</a>'),
    ("handler on a table cell", '<table><tr><td colspan="2" onclick="x">c</td></tr></table>',
     '<table><tbody><tr><td colspan="2">c</td></tr></tbody></table>'),
    ("unclosed tag with handler", "<img src=x onerror=alert(1)//", ""),
    # Mutation XSS: markup whose meaning changes between parse and re-parse.
    ("mXSS via noscript", '<noscript><p title="</noscript><img src=x onerror=alert(1)>">', None),
    ("mXSS via svg style", "<svg><style><img src=x onerror=alert(1)></style></svg>", None),
    ("mXSS via math", "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", None),
    ("allowed markup is kept",
     '<p>ok <strong>bold</strong> <a href="https://example.org/x" title="t">link</a></p>',
     '<p>ok <strong>bold</strong> <a href="https://example.org/x" title="t" rel="noopener noreferrer">link</a></p>'),
]


async def test_body_html_is_sanitised_against_the_allow_list(
    client: Any, auth: dict[str, str], categories: Any, rows: Any, subtests: Any
) -> None:
    for case, posted, expected in SANITISING:
        with subtests.test(case):
            r = await create(client, auth, body_markdown=None, body_html=posted)
            body_html = r.json()["body_html"]
            assert_harmless(body_html)
            assert "onerror" not in body_html and "alert(" not in body_html
            if expected is not None:
                assert body_html == expected
            (doc,) = rows("SELECT doc FROM commentaries WHERE id = ?", r.json()["id"])[0]
            assert_harmless(json.loads(doc)["body_html"])

            # Sanitising is idempotent: posting the output again gives the same output.
            again = await create(client, auth, body_markdown=None, body_html=body_html)
            assert again.json()["body_html"] == body_html


async def test_relative_links_resolve_against_the_commentary_page_under_the_public_url(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    r = await create(
        client, auth, body_markdown=None,
        body_html=(
            '<p><a href="/commentaries/other">root</a> <a href="notes/1">relative</a> '
            '<a href="/search?a=1&amp;b=2">query</a> <a href="https://example.org/x">absolute</a> '
            '<a href="mailto:desk@example.org">mail</a> <a href="#notes">fragment</a> '
            '<img src="/media/map.png" alt="map"></p>'
            '<blockquote cite="/sources/1">quote</blockquote>'
        ),
    )
    html = r.json()["body_html"]
    page = page_url(r.json())
    for url in (
        f"{PUBLIC_URL}/commentaries/other", f"{page.rsplit('/', 1)[0]}/notes/1", f"{page}#notes",
        f"{PUBLIC_URL}/search?a=1&amp;b=2",
        "https://example.org/x", "mailto:desk@example.org", f"{PUBLIC_URL}/media/map.png", f"{PUBLIC_URL}/sources/1",
    ):
        assert f'="{url}"' in html, url
    got = await client.get(f"{API}/{r.json()['id']}")
    assert got.json()["body_html"] == html


async def test_a_root_relative_image_url_is_returned_absolute(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    r = await create(client, auth, image={"url": "/media/map.png", "alt": "Map", "credit": "Photo: Vistula Centre"})
    assert r.json()["image"] == {
        "url": f"{PUBLIC_URL}/media/map.png", "alt": "Map", "credit": "Photo: Vistula Centre",
    }


async def test_text_that_only_looks_like_an_attribute_is_left_alone(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    r = await create(client, auth, body_markdown=None, body_html='<p>Write a href="/x" in HTML</p>')
    assert r.json()["body_html"] == '<p>Write a href="/x" in HTML</p>'


async def test_nul_and_control_characters_are_stripped_from_text_fields(
    client: Any, auth: dict[str, str], categories: Any, rows: Any
) -> None:
    r = await create(
        client, auth,
        title="Border\x00 tensions\x07 ease",
        summary="A\x0b summary\x1f.",
        tags=["bor\x00der", "\x1bsanctions"],
        authors=[{"name": "Anna\x00 Kovalenko", "affiliation": "Vistula\x08 Centre"}],
        source={"name": "Daily\x00 Monitor"},
        image={"url": "https://example.org/a.png", "alt": "a\x00lt", "caption": "cap\x01tion", "credit": "cre\x02dit"},
        body_markdown="First\x00 para\x0c.\n\nSecond.",
    )
    item = r.json()
    assert item["title"] == "Border tensions ease"
    assert item["summary"] == "A summary."
    assert item["tags"] == ["border", "sanctions"]
    assert item["authors"] == [{"name": "Anna Kovalenko", "affiliation": "Vistula Centre"}]
    assert item["source"] == {"name": "Daily Monitor"}
    assert (item["image"]["alt"], item["image"]["caption"], item["image"]["credit"]) == ("alt", "caption", "credit")
    assert item["body_html"] == "<p>First para.</p>\n<p>Second.</p>"
    (doc,) = rows("SELECT doc FROM commentaries")[0]
    assert not re.search(r"\\u00[01][0-8bcef]|\\u001[0-9a-f]", doc.decode() if isinstance(doc, bytes) else doc)


async def test_whitespace_in_one_line_fields_is_collapsed(client: Any, auth: dict[str, str], categories: Any) -> None:
    r = await create(client, auth, title="  Border\n\ttensions   ease ", tags=["  regional   security "])
    assert r.json()["title"] == "Border tensions ease"
    assert r.json()["tags"] == ["regional security"]


async def test_tags_are_deduplicated_case_insensitively_keeping_the_first_spelling(
    client: Any, auth: dict[str, str], categories: Any, rows: Any
) -> None:
    r = await create(client, auth, tags=["Border", "border", "BORDER ", "Sanctions", " sanctions", "  ", "NATO"])
    assert r.json()["tags"] == ["Border", "Sanctions", "NATO"]
    assert sorted(rows("SELECT tag, tag_key FROM commentary_tags")) == [
        ("Border", "border"), ("NATO", "nato"), ("Sanctions", "sanctions"),
    ]


# --- PUT ------------------------------------------------------------------------------------


async def test_put_replaces_every_field_and_keeps_the_slug_when_omitted(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    created = await create(
        client, auth, trend="worsened", tags=["border"], period={"start": "2026-02-28", "end": "2026-03-06"}
    )
    id = created.json()["id"]
    r = await client.put(
        f"{API}/{id}",
        json={
            "title": "A new title", "lang": "en", "category": "economy",
            "authors": [{"name": "Piotr Nowak"}], "published_at": "2026-03-08T09:00:00+01:00",
            "body_html": "<p>Replaced.</p>",
        },
        headers={**auth, "If-Match": created.headers["etag"]},
    )
    assert r.status_code == 200, r.text
    item = r.json()
    assert item["id"] == id
    assert item["slug"] == created.json()["slug"]
    assert (item["title"], item["category"], item["summary"]) == ("A new title", "economy", "Replaced.")
    assert item["authors"] == [{"name": "Piotr Nowak"}]
    assert item["tags"] == [] and item["trend"] is None and item["period"] is None
    assert r.headers["etag"] != created.headers["etag"]
    assert (await client.get(f"{API}/{id}")).json() == item


async def test_put_without_if_match_is_428_and_changes_nothing(
    client: Any, auth: dict[str, str], categories: Any, rows: Any
) -> None:
    created = await create(client, auth)
    before = rows("SELECT doc FROM commentaries")
    r = await client.put(f"{API}/{created.json()['id']}", json=commentary(title="Changed"), headers=auth)
    assert_error(r, 428)
    assert rows("SELECT doc FROM commentaries") == before


async def test_put_with_a_stale_etag_is_412_and_changes_nothing(
    client: Any, auth: dict[str, str], categories: Any, rows: Any
) -> None:
    created = await create(client, auth)
    id, stale = created.json()["id"], created.headers["etag"]
    ok = await client.put(f"{API}/{id}", json=commentary(title="Second"), headers={**auth, "If-Match": stale})
    assert ok.status_code == 200
    before = rows("SELECT doc FROM commentaries")
    r = await client.put(f"{API}/{id}", json=commentary(title="Third"), headers={**auth, "If-Match": stale})
    assert_error(r, 412)
    assert rows("SELECT doc FROM commentaries") == before
    assert (await client.get(f"{API}/{id}")).json()["title"] == "Second"


async def test_put_with_an_etag_we_never_issued_is_412(client: Any, auth: dict[str, str], categories: Any) -> None:
    created = await create(client, auth)
    weak = "W/" + created.headers["etag"]  # a weak ETag never satisfies If-Match
    for if_match in (weak, '"not-ours"', "garbage", '"v999999-abc"'):
        r = await client.put(f"{API}/{created.json()['id']}", json=commentary(), headers={**auth, "If-Match": if_match})
        assert_error(r, 412)


async def test_put_with_if_match_star_replaces_whatever_is_current(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    created = await create(client, auth)
    star = {**auth, "If-Match": "*"}
    r = await client.put(f"{API}/{created.json()['id']}", json=commentary(title="Star"), headers=star)
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Star"


async def test_put_to_an_unknown_id_is_404(
    client: Any, auth: dict[str, str], categories: Any, stored_counts: Any
) -> None:
    before = stored_counts()
    r = await client.put(f"{API}/01J00000000000000000000000", json=commentary(), headers={**auth, "If-Match": "*"})
    assert_error(r, 404)
    assert stored_counts() == before


# --- PATCH ----------------------------------------------------------------------------------


async def test_patch_merges_absent_fields_stay_and_null_clears_optional_ones(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    created = await create(
        client, auth, trend="worsened", tags=["border", "NATO"], translation_key="week-10",
        period={"start": "2026-02-28", "end": "2026-03-06"}, source={"name": "Daily Monitor"},
        image={"url": "https://example.org/a.png"}, canonical_url="https://publisher.example/a",
        summary="An explicit summary.",
    )
    id = created.json()["id"]
    r = await client.patch(
        f"{API}/{id}",
        json={"title": "Patched title", "trend": None, "period": None, "source": None, "image": None,
              "canonical_url": None, "translation_key": None},
        headers={**auth, "If-Match": created.headers["etag"]},
    )
    assert r.status_code == 200, r.text
    item, before = r.json(), created.json()
    assert item["title"] == "Patched title"
    assert item["slug"] == before["slug"]
    for cleared in ("trend", "period", "source", "image", "canonical_url", "translation_key"):
        assert item[cleared] is None, cleared
    for kept in ("tags", "authors", "category", "lang", "published_at", "body_html", "summary", "created_at"):
        assert item[kept] == before[kept], kept
    assert item["url"] == page_url(before)


async def test_patch_summary_null_derives_it_again_from_the_body(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    created = await create(client, auth, summary="Explicit.")
    r = await client.patch(
        f"{API}/{created.json()['id']}", json={"summary": None}, headers={**auth, "If-Match": created.headers["etag"]}
    )
    assert r.json()["summary"] == "First paragraph of the analysis."


async def test_patch_body_markdown_replaces_the_body(client: Any, auth: dict[str, str], categories: Any) -> None:
    created = await create(client, auth)
    r = await client.patch(
        f"{API}/{created.json()['id']}", json={"body_markdown": "New *body*."},
        headers={**auth, "If-Match": created.headers["etag"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["body_html"] == "<p>New <em>body</em>.</p>"


async def test_patch_needs_if_match_and_refuses_a_stale_one(
    client: Any, auth: dict[str, str], categories: Any, rows: Any
) -> None:
    created = await create(client, auth)
    id = created.json()["id"]
    assert_error(await client.patch(f"{API}/{id}", json={"title": "x"}, headers=auth), 428)
    ok = await client.patch(f"{API}/{id}", json={"title": "y"}, headers={**auth, "If-Match": created.headers["etag"]})
    assert ok.status_code == 200
    before = rows("SELECT doc FROM commentaries")
    old = {**auth, "If-Match": created.headers["etag"]}
    stale = await client.patch(f"{API}/{id}", json={"title": "z"}, headers=old)
    assert_error(stale, 412)
    assert rows("SELECT doc FROM commentaries") == before


async def test_every_write_moves_updated_at_and_version_but_never_created_at(
    client: Any, auth: dict[str, str], categories: Any, clock: Any
) -> None:
    created = await create(client, auth)
    id, etag = created.json()["id"], created.headers["etag"]
    seen = [created.json()]
    writes = [
        ("PUT", commentary(title="Replaced")),
        ("PATCH", {"trend": "improved"}),
        ("PATCH", {"tags": ["x"]}),
        ("PUT", commentary(title="Replaced again")),
    ]
    for method, body in writes:
        clock.advance(minutes=5)
        r = await client.request(method, f"{API}/{id}", json=body, headers={**auth, "If-Match": etag})
        assert r.status_code == 200, r.text
        etag = r.headers["etag"]
        seen.append(r.json())
        assert at(r.json()["updated_at"]) == clock.now
    assert len({s["created_at"] for s in seen}) == 1
    assert len({s["updated_at"] for s in seen}) == len(seen)
    versions = [s["version"] for s in seen]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


async def test_two_racing_patches_with_the_same_etag_one_wins_one_gets_412(
    client: Any, concurrent_client: Any, auth: dict[str, str], categories: Any
) -> None:
    created = await create(client, auth)
    id, etag = created.json()["id"], created.headers["etag"]
    first, second = await asyncio.gather(
        concurrent_client.patch(f"{API}/{id}", json={"title": "From A"}, headers={**auth, "If-Match": etag}),
        concurrent_client.patch(f"{API}/{id}", json={"title": "From B"}, headers={**auth, "If-Match": etag}),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 412]
    winner = first if first.status_code == 200 else second
    assert (await client.get(f"{API}/{id}")).json()["title"] == winner.json()["title"]


async def test_a_delete_racing_an_update_never_resurrects_the_item(
    client: Any, concurrent_client: Any, auth: dict[str, str], categories: Any, rows: Any
) -> None:
    racing = concurrent_client
    for round in range(6):
        created = await create(client, auth, title=f"Round {round}")
        id, etag = created.json()["id"], created.headers["etag"]
        update = (
            racing.patch(f"{API}/{id}", json={"title": "Updated"}, headers={**auth, "If-Match": "*"})
            if round % 2 else
            racing.put(f"{API}/{id}", json=commentary(title="Updated"), headers={**auth, "If-Match": etag})
        )
        delete = racing.delete(f"{API}/{id}", headers={**auth, "If-Match": "*"})
        results = await asyncio.gather(delete, update) if round % 3 else await asyncio.gather(update, delete)
        assert {r.status_code for r in results} <= {200, 204, 404, 412}
        assert (await client.get(f"{API}/{id}")).status_code == 404
        assert rows("SELECT count(*) FROM commentaries WHERE id = ?", id) == [(0,)]
        assert rows("SELECT op FROM changes WHERE ref = ? ORDER BY seq DESC LIMIT 1", id) == [("deleted",)]


# --- DELETE ---------------------------------------------------------------------------------


async def test_delete_is_204_then_get_is_404_and_the_change_log_has_a_tombstone(
    client: Any, auth: dict[str, str], categories: Any, rows: Any
) -> None:
    created = await create(client, auth)
    id = created.json()["id"]
    r = await client.delete(f"{API}/{id}", headers={**auth, "If-Match": created.headers["etag"]})
    assert r.status_code == 204 and r.content == b""
    assert_error(await client.get(f"{API}/{id}"), 404)
    assert_error(await client.get(f"{API}/{id}", headers=auth), 404)
    assert rows("SELECT count(*) FROM commentaries") == [(0,)]
    assert rows("SELECT count(*) FROM commentary_tags") == [(0,)]

    changes = (await client.get("/api/v1/changes")).json()["items"]
    assert [(c["op"], c["id"]) for c in changes] == [("created", id), ("deleted", id)]
    assert changes[-1].get("commentary") is None

    assert_error(await client.delete(f"{API}/{id}", headers={**auth, "If-Match": "*"}), 404)


async def test_delete_needs_if_match_and_refuses_a_stale_one(
    client: Any, auth: dict[str, str], categories: Any, rows: Any
) -> None:
    created = await create(client, auth)
    id = created.json()["id"]
    assert_error(await client.delete(f"{API}/{id}", headers=auth), 428)
    old = {**auth, "If-Match": created.headers["etag"]}
    patched = await client.patch(f"{API}/{id}", json={"title": "New"}, headers=old)
    assert_error(await client.delete(f"{API}/{id}", headers={**auth, "If-Match": created.headers["etag"]}), 412)
    assert rows("SELECT count(*) FROM commentaries") == [(1,)]
    r = await client.delete(f"{API}/{id}", headers={**auth, "If-Match": patched.headers["etag"]})
    assert r.status_code == 204


async def test_a_draft_is_published_with_the_etag_a_writer_got_and_then_appears_publicly(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    draft = (await client.post(API, json=commentary(status="draft"), headers=auth)).json()
    assert (await client.get("/api/v1/changes")).json()["items"] == []
    etag = (await client.get(f"{API}/{draft['id']}", headers=auth)).headers["etag"]
    r = await client.patch(f"{API}/{draft['id']}", json={"status": "published"}, headers={**auth, "If-Match": etag})
    assert r.status_code == 200, r.text
    assert (await client.get(f"{API}/{draft['id']}")).status_code == 200
    changes = (await client.get("/api/v1/changes")).json()["items"]
    assert [(c["op"], c["id"]) for c in changes] == [("created", draft["id"])]


async def test_deleting_a_draft_or_a_scheduled_commentary_leaves_no_public_trace(
    client: Any, auth: dict[str, str], categories: Any, clock: Any
) -> None:
    draft = (await client.post(API, json=commentary(status="draft"), headers=auth)).json()
    later = (await client.post(API, json=commentary(published_at="2026-04-01T09:00:00+00:00"), headers=auth)).json()
    for item in (draft, later):
        r = await client.delete(f"{API}/{item['id']}", headers={**auth, "If-Match": "*"})
        assert r.status_code == 204
    clock.advance(days=30)
    assert (await client.get("/api/v1/changes")).json()["items"] == []
    assert (await client.get(API)).json()["items"] == []


async def test_the_slug_of_a_deleted_commentary_can_be_used_again(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    created = await create(client, auth, slug="reused")
    await client.delete(f"{API}/{created.json()['id']}", headers={**auth, "If-Match": "*"})
    again = await create(client, auth, slug="reused")
    assert again.json()["id"] != created.json()["id"]


# --- categories -----------------------------------------------------------------------------


async def test_put_category_creates_with_201_then_replaces_with_200(
    client: Any, auth: dict[str, str], rows: Any
) -> None:
    body = {"names": {"en": "Arms control", "RU": "Контроль над вооружениями"}, "descriptions": {"en": "Treaties."}}
    r = await client.put("/api/v1/categories/arms-control", json=body, headers=auth)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"{PUBLIC_URL}/api/v1/categories/arms-control"
    assert r.json()["names"] == {"en": "Arms control", "ru": "Контроль над вооружениями"}

    renamed = {"names": {"en": "Arms control and disarmament"}}
    r = await client.put("/api/v1/categories/arms-control", json=renamed, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["names"] == {"en": "Arms control and disarmament"}
    assert r.json()["descriptions"] == {}
    got = await client.get("/api/v1/categories/arms-control")
    assert got.json()["names"] == {"en": "Arms control and disarmament"}
    assert rows("SELECT count(*) FROM categories") == [(1,)]


BAD_CATEGORY_PUTS: list[tuple[str, dict[str, Any], str]] = [
    ("Arms_Control", {"names": {"en": "Arms control"}}, "slug"),
    ("arms control", {"names": {"en": "Arms control"}}, "slug"),
    ("a" * 121, {"names": {"en": "Arms control"}}, "slug"),
    ("arms-control", {"names": {}}, "names"),
    ("arms-control", {"names": {"en": "  "}}, "names"),
    ("arms-control", {"names": {"english": "Arms control"}}, "names"),
    ("arms-control", {"names": {"en": "Arms control"}, "colour": "red"}, "colour"),
]


async def test_put_category_with_bad_input_is_400_and_stores_nothing(
    client: Any, auth: dict[str, str], rows: Any, subtests: Any
) -> None:
    for slug, body, field in BAD_CATEGORY_PUTS:
        with subtests.test(f"{slug} {body}"):
            r = await client.put(f"/api/v1/categories/{slug}", json=body, headers=auth)
            assert_error(r, 400, field)
            assert rows("SELECT count(*) FROM categories") == [(0,)]
            assert rows("SELECT count(*) FROM changes") == [(0,)]


async def test_a_commentary_in_an_unknown_category_is_400_naming_category(
    client: Any, auth: dict[str, str], categories: Any, stored_counts: Any
) -> None:
    before = stored_counts()
    assert_error(await client.post(API, json=commentary(category="arms-control"), headers=auth), 400, "category")
    assert stored_counts() == before
    await client.put("/api/v1/categories/arms-control", json={"names": {"en": "Arms control"}}, headers=auth)
    r = await client.post(API, json=commentary(category="arms-control"), headers=auth)
    assert r.status_code == 201
    assert r.json()["category"] == "arms-control"


# --- a newcomer's first requests: every problem at once, with what would be right -----------


def problems_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The problems of an error body by key; each one is also in ``detail``."""
    out = {p["key"]: p for p in body["extra"]}
    assert len(out) == len(body["extra"]), body
    assert all(p["message"] in body["detail"] and p["source"] == "body" for p in body["extra"]), body
    return out


async def test_a_body_with_many_problems_names_every_one_at_once(
    client: Any, auth: dict[str, str], categories: Any, stored_counts: Any
) -> None:
    before = stored_counts()
    body = assert_error(await client.post(API, json={"title": "x"}, headers=auth), 400)
    assert set(problems_of(body)) == {"lang", "category", "authors"}
    assert body["detail"].startswith("3 problems in the body")

    sent = {
        "titel": "Exercises end early", "lang": "english", "category": "regional-securty", "trend": "worse",
        "authors": [{"name": ""}, {"nmae": "Jane"}], "tags": ["ok", ""], "status": "archived",
    }
    found = problems_of(assert_error(await client.post(API, json=sent, headers=auth), 400))
    assert set(found) == {
        "titel", "title", "lang", "category", "trend", "authors[0].name", "authors[1].nmae", "authors[1].name",
        "tags[1]", "status",
    }
    assert "did you mean `title`?" in found["titel"]["message"]
    assert "did you mean `authors[1].name`?" in found["authors[1].nmae"]["message"]
    assert found["trend"]["allowed"] == ["improved", "worsened", "unchanged"]
    assert "did you mean `worsened`?" in found["trend"]["message"]
    assert found["status"]["allowed"] == ["draft", "published"]
    assert found["category"]["allowed"] == sorted(categories)
    assert "did you mean `regional-security`?" in found["category"]["message"]
    assert stored_counts() == before


async def test_an_unknown_category_alone_lists_the_categories_there_are(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    body = assert_error(await client.post(API, json=commentary(category="sports"), headers=auth), 400, "category")
    (found,) = body["extra"]
    assert found["allowed"] == sorted(categories) and "sports" in found["message"]
    made = await client.post(API, json=commentary(), headers=auth)
    headers = {**auth, "If-Match": made.headers["etag"]}
    r = await client.patch(f"{API}/{made.json()['id']}", json={"category": "sports"}, headers=headers)
    assert assert_error(r, 400, "category")["extra"][0]["allowed"] == sorted(categories)


async def test_a_patch_names_every_problem_too(client: Any, auth: dict[str, str], categories: Any) -> None:
    made = await client.post(API, json=commentary(), headers=auth)
    headers = {**auth, "If-Match": made.headers["etag"]}
    r = await client.patch(f"{API}/{made.json()['id']}", json={"trend": "Worse", "summry": "x"}, headers=headers)
    found = problems_of(assert_error(r, 400))
    assert set(found) == {"trend", "summry"} and "did you mean `summary`?" in found["summry"]["message"]


async def test_a_put_without_published_at_keeps_the_publication_date(
    client: Any, auth: dict[str, str], categories: Any
) -> None:
    created = (await create(client, auth, published_at="2026-01-05T09:00:00+02:00")).json()
    body = commentary(title="Edited title")
    del body["published_at"]
    r = await client.put(f"{API}/{created['id']}", json=body, headers={**auth, "If-Match": "*"})
    assert r.status_code == 200, r.text
    assert r.json()["published_at"] == created["published_at"]
    assert r.json()["updated_at"] > created["updated_at"]
