"""Feed rendering, as a specification.

The renderers are pure functions ``(FeedView, [Commentary]) -> bytes``. These tests build
commentaries by hand, exactly as the service hands them over ("presented": absolute URLs,
sanitised HTML, translations filled), and check the documents with the tools feed readers
use: lxml for XML, feedparser for RSS and Atom, a JSON Schema of JSON Feed 1.1 for JSON.

Golden files in tests/data/ pin the exact bytes; ``UPDATE_GOLDEN=1`` rewrites them.
"""

from __future__ import annotations

import ast
import calendar
import json
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from html import escape
from pathlib import Path
from typing import Any

import feedparser
import jsonschema
import msgspec
import pytest
from lxml import etree

from feedsvc.model import Author, Category, Commentary, Image, Period, Source, Translation
from feedsvc.render.atom import render_atom
from feedsvc.render.feedview import (
    ATOM_NS,
    COMMENTARY_NS,
    DC_NS,
    HISTORY_NS,
    MEDIA_NS,
    FeedView,
    image_type,
    tag_uri,
)
from feedsvc.render.jsonfeed import render_jsonfeed
from feedsvc.render.rss import render_rss, rfc822

DATA = Path(__file__).parent / "data"
XSL = Path(__file__).parent.parent / "feedsvc" / "render" / "static" / "feed.xsl"
BASE = "https://feeds.example.org"
MSK = timezone(timedelta(hours=3))
NS = {"atom": ATOM_NS, "commentary": COMMENTARY_NS, "dc": DC_NS, "fh": HISTORY_NS, "media": MEDIA_NS}

Renderer = Callable[[FeedView, Sequence[Commentary]], bytes]
RENDERERS: dict[str, Renderer] = {"rss": render_rss, "atom": render_atom, "json": render_jsonfeed}
XML_FORMATS = ["rss", "atom"]

CATEGORIES = {
    "regional-security": Category(
        slug="regional-security",
        names={"en": "Regional security", "be": "Рэгіянальная бяспека", "ru": "Региональная безопасность"},
    ),
    "foreign-policy": Category(slug="foreign-policy", names={"en": "Foreign policy", "ru": "Внешняя политика"}),
}

# Text a hostile or careless writer could store: CDATA terminator, markup, entities, emoji,
# right-to-left scripts with a direction override, and characters XML 1.0 cannot carry.
HOSTILE = "]]> & <script>alert('x')</script> &amp; 🙂 שלום مرحبا\u202e\x00\x01\x08\x0b\x0c\x1f\ufffe\uffff end"
HOSTILE_CLEAN = "]]> & <script>alert('x')</script> &amp; 🙂 שלום مرحبا\u202e end"


# --- commentaries, by hand ------------------------------------------------------------------


def border_talks(**changes: Any) -> Commentary:
    """Every optional field set: two authors with affiliations, image with credit, etc."""
    c = Commentary(
        id="01HZX5J8K9M2N3P4Q5R6S7T8V9",
        slug="border-tensions-ease",
        lang="en",
        title="Border tensions ease after talks",
        summary="Talks between the border services lowered the temperature, for now.",
        body_html=(
            '<p>First paragraph, with <a href="https://example.org/report">a report</a>.</p>'
            "<p>Second paragraph.</p>"
        ),
        category="regional-security",
        tags=["border", "diplomacy", "eu"],
        authors=[
            Author(name="Anna Kovalenko", affiliation="Senior Analyst, Vistula Centre", url="https://example.org/anna"),
            Author(
                name="Yauheni Preiherman", affiliation="Director, Minsk Dialogue Council on International Relations"
            ),
        ],
        published_at=datetime(2022, 3, 7, 10, 0, tzinfo=MSK),
        updated_at=datetime(2022, 3, 8, 9, 30, tzinfo=UTC),
        created_at=datetime(2022, 3, 6, 22, 15, tzinfo=UTC),
        status="published",
        version=12,
        translation_key="border-talks",
        period=Period(start=date(2022, 2, 28), end=date(2022, 3, 6)),
        trend="worsened",
        source=Source(name="Minsk Dialogue", url="https://minskdialogue.example/commentary/1"),
        image=Image(
            url=f"{BASE}/media/border-map.png",
            alt="Map of the border area",
            caption="Checkpoints along the western border",
            credit="Photo: Jane Doe / Agency",
        ),
        url=f"{BASE}/en/commentaries/border-tensions-ease",
        translations=[
            Translation(
                lang="be",
                id="01HZX5J8K9M2N3P4Q5R6S7T8W0",
                slug="napruzhanasc-na-myazhy",
                title="Напружанасць на мяжы спадае",
                url=f"{BASE}/be/commentaries/napruzhanasc-na-myazhy",
            )
        ],
    )
    return msgspec.structs.replace(c, **changes) if changes else c


def belarusian_weekly() -> Commentary:
    """Also complete, in another language: three authors, a JPEG, a source without URL."""
    return Commentary(
        id="01HZX5J8K9M2N3P4Q5R6S7T8W0",
        slug="napruzhanasc-na-myazhy",
        lang="be",
        title="Напружанасць на мяжы спадае",
        summary="Перамовы памежных службаў знізілі напружанасць.",
        body_html="<p>Першы абзац.</p><h2>Што далей</h2><p>Другі абзац.</p>",
        category="regional-security",
        tags=["мяжа", "дыпламатыя"],
        authors=[
            Author(name="Ганна Каваленка", affiliation="Старэйшая аналітыца", url="https://example.org/hanna"),
            Author(name="Яўген Прэйгерман", affiliation="Дырэктар"),
            Author(name="Tomas Adamkus", url="https://example.org/tomas"),
        ],
        published_at=datetime(2022, 3, 7, 12, 0, tzinfo=MSK),
        updated_at=datetime(2022, 3, 7, 12, 5, tzinfo=MSK),
        created_at=datetime(2022, 3, 7, 8, 0, tzinfo=UTC),
        status="published",
        version=13,
        translation_key="border-talks",
        period=Period(start=date(2022, 2, 28), end=date(2022, 3, 6)),
        trend="improved",
        source=Source(name="Дыялог"),
        image=Image(url=f"{BASE}/media/checkpoint.JPG", credit="Фота: Агенцтва"),
        url=f"{BASE}/be/commentaries/napruzhanasc-na-myazhy",
        translations=[
            Translation(
                lang="en",
                id="01HZX5J8K9M2N3P4Q5R6S7T8V9",
                slug="border-tensions-ease",
                title="Border tensions ease after talks",
                url=f"{BASE}/en/commentaries/border-tensions-ease",
            )
        ],
    )


def minimal() -> Commentary:
    """Only what every commentary has: one author, no affiliation, no optional fields."""
    return Commentary(
        id="01HZX5J8K9M2N3P4Q5R6S7T8A1",
        slug="quiet-week",
        lang="en",
        title="A quiet week",
        summary="Nothing of note happened.",
        body_html="<p>Nothing of note happened.</p>",
        category="foreign-policy",
        tags=[],
        authors=[Author(name="Tomas Adamkus")],
        published_at=datetime(2022, 2, 1, 9, 0, tzinfo=UTC),
        updated_at=datetime(2022, 2, 1, 9, 0, tzinfo=UTC),
        created_at=datetime(2022, 2, 1, 9, 0, tzinfo=UTC),
        status="published",
        version=3,
        url=f"{BASE}/en/commentaries/quiet-week",
    )


def hostile() -> Commentary:
    return Commentary(
        id="01HZX5J8K9M2N3P4Q5R6S7T8H0",
        slug="hostile",
        lang="ar",
        title=HOSTILE,
        summary=HOSTILE,
        body_html="<p>" + escape(HOSTILE, quote=False) + "</p>",
        category="regional-security",
        tags=[HOSTILE, "x]]>y", "\x00"],
        authors=[Author(name=HOSTILE, affiliation=HOSTILE), Author(name="\x00\x01")],
        published_at=datetime(2022, 1, 10, 8, 0, tzinfo=UTC),
        updated_at=datetime(2022, 1, 11, 8, 0, tzinfo=UTC),
        created_at=datetime(2022, 1, 10, 8, 0, tzinfo=UTC),
        status="published",
        version=4,
        trend="unchanged",
        source=Source(name=HOSTILE, url="https://outlet.example/a?x=1&y=2"),
        image=Image(url=f"{BASE}/media/x.png?w=1&h=2", caption=HOSTILE, credit=HOSTILE, alt=HOSTILE),
        url=f"{BASE}/ar/commentaries/hostile?ref=feed&x=<1>",
        translations=[Translation(lang="en", id="t1", slug="t1", title=HOSTILE, url=f"{BASE}/en/c/t1")],
    )


def edge_values() -> Commentary:
    """Values the model allows that feed libraries choke on unless handled."""
    return Commentary(
        id="01HZX5J8K9M2N3P4Q5R6S7T8E0",
        slug="edge",
        lang="ru",
        title="\x00",  # nothing left once cleaned
        summary="",
        body_html="",
        category="no-such-category",
        tags=[],
        authors=[],  # Atom needs an author anyway
        published_at=datetime(2022, 1, 5, 10, 0),  # naive: read as UTC
        updated_at=datetime(2022, 1, 5, 10, 0, tzinfo=timezone(timedelta(hours=5, minutes=30, seconds=15))),
        created_at=datetime(2022, 1, 5, 10, 0),
        status="published",
        version=1,
        image=Image(url="/media/plan.weird"),  # root-relative, unknown type
        url=f"{BASE}/ru/commentaries/edge",
        translations=[Translation(lang="ru", id="x", slug="x", title="same language", url=f"{BASE}/ru/x")],
    )


def feed_view(fmt: str, **changes: Any) -> FeedView:
    """The English subscription feed, in format ``fmt``."""
    fields: dict[str, Any] = {
        "id": f"{BASE}/feed",
        "title": "feedsvc: analytical commentaries",
        "subtitle": "Security and foreign-policy commentaries, several times a week.",
        "self_url": f"{BASE}/feed.{fmt}",
        "html_url": f"{BASE}/",
        "lang": "en",
        "updated": None,
        "tag_authority": "feeds.example.org",
        "base_url": BASE,
        "icon": f"{BASE}/static/icon.png",
        "logo": f"{BASE}/static/logo.png",
        "generator_version": "0.1.0",
        "hubs": ("https://hub.example.org/",),
        "prev_archive": f"{BASE}/feed.{fmt}?archive=2022-02",
        "alternates": tuple(
            (f"{BASE}/feed.{other}", t, title)
            for other, t, title in (
                ("rss", "application/rss+xml", "RSS"),
                ("atom", "application/atom+xml", "Atom"),
                ("json", "application/feed+json", "JSON Feed"),
            )
            if other != fmt
        ),
        "categories": CATEGORIES,
        "xsl_url": "/feed.xsl" if fmt != "json" else None,
        "ttl": 15 if fmt == "rss" else None,
    }
    fields.update(changes)
    return FeedView(**fields)


def render(fmt: str, items: Sequence[Commentary], **changes: Any) -> bytes:
    return RENDERERS[fmt](feed_view(fmt, **changes), items)


def parse(fmt: str, items: Sequence[Commentary], **changes: Any) -> Any:
    """feedparser's view of the document, asserted to be free of problems."""
    parsed = feedparser.parse(render(fmt, items, **changes))
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    return parsed


def xml(fmt: str, items: Sequence[Commentary], **changes: Any) -> etree._Element:
    return etree.fromstring(render(fmt, items, **changes))


def jsonfeed(items: Sequence[Commentary], **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(render("json", items, **changes))
    return doc


ALL = [border_talks(), belarusian_weekly(), minimal(), hostile(), edge_values()]
GUID = "tag:feeds.example.org,2022-03-06:commentary/01HZX5J8K9M2N3P4Q5R6S7T8V9"


def ts(value: datetime) -> time.struct_time:
    return time.gmtime(calendar.timegm(value.utctimetuple()))


# --- every document is well-formed and readable ---------------------------------------------


@pytest.mark.parametrize("fmt", XML_FORMATS)
def test_xml_documents_are_utf8_with_declaration_and_stylesheet(fmt: str) -> None:
    data = render(fmt, ALL)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n")
    assert b'<?xml-stylesheet type="text/xsl" href="/feed.xsl"?>' in data.split(b"\n")[1]
    root = etree.fromstring(data)
    assert root.tag == ("rss" if fmt == "rss" else f"{{{ATOM_NS}}}feed")
    assert b"xml-stylesheet" not in render(fmt, ALL, xsl_url=None)


@pytest.mark.parametrize("fmt", XML_FORMATS)
@pytest.mark.parametrize(
    "items", [ALL, [minimal()], [hostile()], [edge_values()], []], ids=["all", "minimal", "hostile", "edge", "empty"]
)
def test_feedparser_reads_every_document_without_problems(fmt: str, items: list[Commentary]) -> None:
    parsed = parse(fmt, items)
    assert parsed.version == ("rss20" if fmt == "rss" else "atom10")
    assert len(parsed.entries) == len(items)


@pytest.mark.parametrize("fmt", XML_FORMATS)
def test_each_item_has_guid_link_authors_dates_and_image(fmt: str) -> None:
    entry = parse(fmt, [border_talks()]).entries[0]
    assert entry.id == GUID
    assert entry.link == f"{BASE}/en/commentaries/border-tensions-ease"
    # one author naming both: readers that keep one author string show them all
    assert [a.name for a in entry.authors] == ["Anna Kovalenko and Yauheni Preiherman"]
    assert entry.published_parsed == ts(datetime(2022, 3, 7, 7, 0, tzinfo=UTC))
    assert entry.updated_parsed == ts(datetime(2022, 3, 8, 9, 30, tzinfo=UTC))
    assert entry.title == "Border tensions ease after talks"
    image = f"{BASE}/media/border-map.png"
    if fmt == "rss":
        assert entry.guidislink is False
        assert entry.media_content == [{"url": image, "medium": "image", "type": "image/png"}]
        assert entry.media_credit == [{"content": "Photo: Jane Doe / Agency"}]
        assert entry.media_thumbnail == [{"url": image}]
        # length 0: the size is unknown (the publisher gave none)
        assert [(e.href, e.type, e.length) for e in entry.enclosures] == [(image, "image/png", "0")]
    else:
        assert [(e.href, e.type) for e in entry.enclosures] == [(image, "image/png")]
    # the caption is no summary or title
    assert entry.summary == "Talks between the border services lowered the temperature, for now."
    assert entry.title == "Border tensions ease after talks"


@pytest.mark.parametrize("fmt", XML_FORMATS)
def test_rss_and_atom_carry_summary_and_full_content(fmt: str) -> None:
    entry = parse(fmt, [border_talks()]).entries[0]
    assert entry.summary == "Talks between the border services lowered the temperature, for now."
    content = entry.content[0].value  # as feedparser's sanitiser rewrites it
    # the lede (written apart from the body) opens the content, the image follows it
    lede = "<p>Talks between the border services lowered the temperature, for now.</p>\n"
    assert content.startswith(lede)
    figure = content[len(lede) : content.index("</figure>")]
    assert figure.startswith("<figure><img ")
    assert 'src="https://feeds.example.org/media/border-map.png"' in figure
    assert 'alt="Map of the border area"' in figure
    assert "<figcaption>Checkpoints along the western border<br /><small>Photo: Jane Doe / Agency</small>" in content
    assert '<p>First paragraph, with <a href="https://example.org/report">a report</a>.</p>' in content
    # then the source, then every author with their affiliation
    assert content.endswith(
        '<p>Originally published in <a href="https://minskdialogue.example/commentary/1">Minsk Dialogue</a>.</p>\n'
        "<p>Anna Kovalenko (Senior Analyst, Vistula Centre)<br />"
        "Yauheni Preiherman (Director, Minsk Dialogue Council on International Relations)</p>"
    )


def test_the_content_html_is_the_same_in_every_format() -> None:
    rss_item = xml("rss", [border_talks()]).find("channel/item")
    assert rss_item is not None
    rss_content = rss_item.findtext("{http://purl.org/rss/1.0/modules/content/}encoded")
    atom_content = xml("atom", [border_talks()]).findtext("atom:entry/atom:content", namespaces=NS)
    json_content = jsonfeed([border_talks()])["items"][0]["content_html"]
    assert rss_content == atom_content == json_content
    assert json_content.count("<figure>") == 1
    be = jsonfeed([belarusian_weekly()])["items"][0]["content_html"]
    assert "<p>Упершыню апублікавана ў Дыялог.</p>\n<p>Ганна Каваленка" in be  # no URL: no link
    assert '<figcaption><small>Фота: Агенцтва</small></figcaption>' in be


# --- identity and time -----------------------------------------------------------------------


def test_guid_is_a_tag_uri_from_id_and_creation_date() -> None:
    assert tag_uri("feeds.example.org", border_talks()) == GUID
    # created_at is read in UTC, whatever offset the store returns it with
    shifted = border_talks(created_at=datetime(2022, 3, 7, 1, 15, tzinfo=MSK))
    assert tag_uri("feeds.example.org", shifted) == GUID


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_guid_survives_changes_of_title_slug_url_and_time(fmt: str) -> None:
    changed = border_talks(
        title="A new title",
        slug="a-new-slug",
        url="https://publisher.example/elsewhere",
        published_at=datetime(2023, 1, 1, tzinfo=UTC),
        updated_at=datetime(2023, 1, 2, tzinfo=UTC),
        version=99,
    )
    ids = []
    for item in (border_talks(), changed):
        if fmt == "json":
            ids.append(jsonfeed([item])["items"][0]["id"])
        else:
            ids.append(parse(fmt, [item]).entries[0].id)
    assert ids == [GUID, GUID]
    other = border_talks(id="01HZX5J8K9M2N3P4Q5R6S7T8ZZ")
    assert tag_uri("feeds.example.org", other) != GUID


@pytest.mark.parametrize("fmt", XML_FORMATS)
def test_feed_updated_is_the_newest_item_change_never_the_render_time(fmt: str) -> None:
    newest = datetime(2022, 3, 8, 9, 30, tzinfo=UTC)  # border_talks().updated_at
    assert parse(fmt, ALL).feed.updated_parsed == ts(newest)
    # a later fixed bound from the caller (e.g. a deletion) wins; an earlier one does not
    later = datetime(2022, 4, 1, tzinfo=UTC)
    assert parse(fmt, ALL, updated=later).feed.updated_parsed == ts(later)
    assert parse(fmt, ALL, updated=datetime(2000, 1, 1, tzinfo=UTC)).feed.updated_parsed == ts(newest)
    # no items and no bound: the epoch
    assert parse(fmt, []).feed.updated_parsed == ts(datetime(1970, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2022, 3, 7, 10, 0, tzinfo=MSK), "Mon, 07 Mar 2022 10:00:00 +0300"),
        (
            datetime(2022, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
            "Sat, 31 Dec 2022 23:59:59 -0530",
        ),
        (datetime(1999, 1, 1, tzinfo=UTC), "Fri, 01 Jan 1999 00:00:00 +0000"),
    ],
)
def test_rss_dates_are_rfc822_whatever_the_locale(value: datetime, text: str) -> None:
    assert rfc822(value) == text


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_rendering_twice_gives_identical_bytes(fmt: str) -> None:
    first = render(fmt, ALL)
    time.sleep(0.002)  # anything taken from the clock would now differ
    assert render(fmt, ALL) == first
    assert render(fmt, []) == render(fmt, [])


# --- people, categories, languages ----------------------------------------------------------


def test_rss_authors_are_one_dc_creator_naming_all_in_the_items_language() -> None:
    """RSS <author> needs an e-mail address; several dc:creator lose all but the last in
    most readers; affiliations in a name field become fake authors in some."""
    item = xml("rss", [belarusian_weekly()]).find("channel/item")
    assert item is not None
    assert item.find("author") is None
    assert [e.text for e in item.findall("dc:creator", NS)] == ["Ганна Каваленка, Яўген Прэйгерман і Tomas Adamkus"]
    details = [(e.get("name"), e.get("affiliation")) for e in item.findall("commentary:author", NS)]
    assert details == [
        ("Ганна Каваленка", "Старэйшая аналітыца"), ("Яўген Прэйгерман", "Дырэктар"), ("Tomas Adamkus", None)]


def test_json_authors_have_names_and_structured_details() -> None:
    item = jsonfeed([border_talks()])["items"][0]
    assert item["authors"] == [
        {"name": "Anna Kovalenko", "url": "https://example.org/anna"},
        {"name": "Yauheni Preiherman"},
    ]
    assert item["_commentary"]["authors"] == [
        {"name": "Anna Kovalenko", "affiliation": "Senior Analyst, Vistula Centre", "url": "https://example.org/anna"},
        {"name": "Yauheni Preiherman", "affiliation": "Director, Minsk Dialogue Council on International Relations"},
    ]


@pytest.mark.parametrize("fmt", XML_FORMATS)
def test_category_in_the_feed_language_and_tags_as_categories(fmt: str) -> None:
    tags = parse(fmt, [belarusian_weekly()]).entries[0].tags
    scheme_c, scheme_t = f"{BASE}/categories", f"{BASE}/tags"
    if fmt == "rss":  # RSS has only the label, with the scheme as domain
        assert [(t.term, t.scheme) for t in tags] == [
            ("Regional security", scheme_c), ("мяжа", scheme_t), ("дыпламатыя", scheme_t)
        ]
    else:
        assert [(t.term, t.scheme, t.label) for t in tags] == [
            ("regional-security", scheme_c, "Regional security"),
            ("мяжа", scheme_t, "мяжа"),
            ("дыпламатыя", scheme_t, "дыпламатыя"),
        ]
    # a feed without one language names categories in each item's language
    mixed = parse(fmt, [belarusian_weekly()], lang=None).entries[0].tags[0]
    assert (mixed.label if fmt == "atom" else mixed.term) == "Рэгіянальная бяспека"


def test_item_language_is_marked_where_it_differs_from_the_feed() -> None:
    atom = xml("atom", [border_talks(), belarusian_weekly()])
    xml_lang = "{http://www.w3.org/XML/1998/namespace}lang"
    assert atom.get(xml_lang) == "en"
    assert [e.get(xml_lang) for e in atom.findall("atom:entry", NS)] == [None, "be"]
    rss = xml("rss", [border_talks(), belarusian_weekly()])
    assert [i.findtext("dc:language", namespaces=NS) for i in rss.iter("item")] == [None, "be"]
    assert [i["language"] for i in jsonfeed([border_talks(), belarusian_weekly()])["items"]] == ["en", "be"]
    assert xml("atom", [border_talks()], lang=None).get(xml_lang) is None


@pytest.mark.parametrize("fmt", XML_FORMATS)
def test_translations_are_hreflang_alternates_and_the_permalink_stays_the_item(fmt: str) -> None:
    entry = parse(fmt, [border_talks()]).entries[0]
    assert entry.link == f"{BASE}/en/commentaries/border-tensions-ease"
    alternates = [(link.get("hreflang"), link.href) for link in entry.links if link.rel == "alternate"]
    assert ("be", f"{BASE}/be/commentaries/napruzhanasc-na-myazhy") in alternates
    # the item's own link comes first, for readers that take the first alternate
    assert alternates[0] == ("en", f"{BASE}/en/commentaries/border-tensions-ease")
    translation = next(link for link in entry.links if link.get("hreflang") == "be")
    assert translation.title == "Напружанасць на мяжы спадае"


def test_json_translations_and_related_commentaries() -> None:
    related = {border_talks().id: [Translation(lang="en", id="r1", slug="r", title="Related", url=f"{BASE}/en/c/r")]}
    items = json.loads(render_jsonfeed(feed_view("json"), [border_talks(), minimal()], related=related))["items"]
    assert items[0]["_commentary"]["translations"] == [
        {
            "id": "01HZX5J8K9M2N3P4Q5R6S7T8W0",
            "lang": "be",
            "title": "Напружанасць на мяжы спадае",
            "url": f"{BASE}/be/commentaries/napruzhanasc-na-myazhy",
        }
    ]
    assert items[0]["_commentary"]["related"] == [
        {"id": "r1", "lang": "en", "title": "Related", "url": f"{BASE}/en/c/r"}
    ]
    assert items[1]["_commentary"]["translations"] == items[1]["_commentary"]["related"] == []


# --- the commentary extension ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", XML_FORMATS)
def test_trend_period_and_source_in_the_commentary_namespace(fmt: str) -> None:
    root = xml(fmt, [border_talks(), minimal()])
    items = root.findall("channel/item") if fmt == "rss" else root.findall("atom:entry", NS)
    full, bare = items
    assert full.findtext("commentary:trend", namespaces=NS) == "worsened"
    period = full.find("commentary:period", NS)
    assert period is not None and dict(period.attrib) == {"start": "2022-02-28", "end": "2022-03-06"}
    source = full.find("commentary:source", NS)
    assert source is not None
    assert dict(source.attrib) == {"name": "Minsk Dialogue", "url": "https://minskdialogue.example/commentary/1"}
    assert bare.find("commentary:trend", NS) is None and bare.find("commentary:period", NS) is None
    if fmt == "rss":
        assert full.findtext("source") == "Minsk Dialogue"
        assert full.xpath("source/@url") == ["https://minskdialogue.example/commentary/1"]
    # the namespace is only declared when some item uses it
    assert "commentary" not in xml(fmt, [minimal()]).nsmap


def test_json_commentary_object() -> None:
    ext = jsonfeed([border_talks()])["items"][0]["_commentary"]
    assert ext["category"] == {"slug": "regional-security", "name": "Regional security"}
    assert ext["trend"] == "worsened"
    assert ext["period"] == {"start": "2022-02-28", "end": "2022-03-06"}
    assert ext["source"] == {"name": "Minsk Dialogue", "url": "https://minskdialogue.example/commentary/1"}
    assert ext["image"] == {
        "url": f"{BASE}/media/border-map.png",
        "alt": "Map of the border area",
        "caption": "Checkpoints along the western border",
        "credit": "Photo: Jane Doe / Agency",
    }
    bare = jsonfeed([minimal()])["items"][0]["_commentary"]
    assert bare == {
        "category": {"slug": "foreign-policy", "name": "Foreign policy"},
        "authors": [{"name": "Tomas Adamkus"}],
        "translations": [],
        "related": [],
    }


def test_namespace_is_documented() -> None:
    from feedsvc.render import feedview

    doc = feedview.__doc__ or ""
    for needle in (COMMENTARY_NS, "<commentary:trend>", "<commentary:period", "<commentary:source", "_commentary"):
        assert needle in doc


# --- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "media_type"),
    [
        ("https://x.example/a.svg", "image/svg+xml"),
        ("https://x.example/a.png", "image/png"),
        ("https://x.example/a.JPG", "image/jpeg"),
        ("https://x.example/a.jpeg?w=100", "image/jpeg"),
        ("https://x.example/a.webp#f", "image/webp"),
        ("https://x.example/a.gif", "image/gif"),
        ("https://x.example/a.tiff", None),
        ("https://x.example/no-extension", None),
        ("https://x.example/dir.png/file", None),
    ],
)
def test_image_media_type_comes_from_the_file_extension(url: str, media_type: str | None) -> None:
    assert image_type(url) == media_type


def test_unknown_image_types_stay_valid() -> None:
    entry = parse("atom", [edge_values()]).entries[0]
    assert [(e.href, e.type) for e in entry.enclosures] == [(f"{BASE}/media/plan.weird", "application/octet-stream")]
    item = xml("rss", [edge_values()]).find("channel/item")
    assert item is not None
    content = item.find("media:content", NS)
    assert content is not None and "type" not in content.attrib and content.get("medium") == "image"
    assert jsonfeed([edge_values()])["items"][0]["image"] == f"{BASE}/media/plan.weird"


# --- feed level -------------------------------------------------------------------------------


def test_rss_channel() -> None:
    channel = xml("rss", ALL).find("channel")
    assert channel is not None
    assert channel.findtext("title") == "feedsvc: analytical commentaries"
    assert channel.findtext("link") == f"{BASE}/"
    assert channel.findtext("description") == "Security and foreign-policy commentaries, several times a week."
    assert channel.findtext("language") == "en"
    assert channel.findtext("generator") == "feedsvc 0.1.0"
    assert channel.findtext("docs") == "https://www.rssboard.org/rss-specification"
    assert channel.findtext("ttl") == "15"
    assert channel.findtext("lastBuildDate") == "Tue, 08 Mar 2022 09:30:00 +0000"
    assert channel.findtext("image/url") == f"{BASE}/static/logo.png"
    links = {(link.get("rel"), link.get("href")) for link in channel.findall("atom:link", NS)}
    assert links == {
        ("self", f"{BASE}/feed.rss"),
        ("alternate", f"{BASE}/feed.atom"),
        ("alternate", f"{BASE}/feed.json"),
        ("hub", "https://hub.example.org/"),
        ("prev-archive", f"{BASE}/feed.rss?archive=2022-02"),
    }
    assert channel.find("fh:archive", NS) is None


def test_atom_feed() -> None:
    feed = parse("atom", ALL).feed
    assert feed.id == f"{BASE}/feed"
    assert feed.title == "feedsvc: analytical commentaries"
    assert feed.subtitle == "Security and foreign-policy commentaries, several times a week."
    assert feed.language == "en"
    assert feed.icon == f"{BASE}/static/icon.png" and feed.logo == f"{BASE}/static/logo.png"
    assert feed.generator_detail == {"name": "feedsvc", "version": "0.1.0"}
    links = {(link.rel, link.type, link.href) for link in feed.links}
    assert links == {
        ("self", "application/atom+xml", f"{BASE}/feed.atom"),
        ("alternate", "text/html", f"{BASE}/"),
        ("alternate", "application/rss+xml", f"{BASE}/feed.rss"),
        ("alternate", "application/feed+json", f"{BASE}/feed.json"),
        ("hub", "text/html", "https://hub.example.org/"),  # feedparser's default type
        ("prev-archive", "text/html", f"{BASE}/feed.atom?archive=2022-02"),
    }


def test_json_feed_top_level() -> None:
    doc = jsonfeed(ALL)
    assert {k: v for k, v in doc.items() if k != "items"} == {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "feedsvc: analytical commentaries",
        "home_page_url": f"{BASE}/",
        "feed_url": f"{BASE}/feed.json",
        "description": "Security and foreign-policy commentaries, several times a week.",
        "user_comment": (
            "This is a feed: a list of the latest commentaries for feed readers. "
            "Copy its URL into your reader to subscribe."
        ),
        "next_url": f"{BASE}/feed.json?archive=2022-02",  # older items: the previous archive
        "icon": f"{BASE}/static/icon.png",
        "favicon": f"{BASE}/static/icon.png",
        "language": "en",
        "hubs": [{"type": "WebSub", "url": "https://hub.example.org/"}],
    }
    item = doc["items"][0]
    assert item["id"] == GUID
    assert item["date_published"] == "2022-03-07T10:00:00+03:00"
    assert item["date_modified"] == "2022-03-08T09:30:00Z"
    assert item["image"] == f"{BASE}/media/border-map.png"
    assert item["tags"] == ["border", "diplomacy", "eu"]
    assert item["summary"] == "Talks between the border services lowered the temperature, for now."


@pytest.mark.parametrize("fmt", XML_FORMATS)
def test_archive_documents_follow_rfc5005(fmt: str) -> None:
    archive = f"{BASE}/feed.{fmt}?archive=2022-02"
    root = xml(
        fmt,
        [minimal()],
        self_url=archive,
        is_archive=True,
        current=f"{BASE}/feed.{fmt}",
        prev_archive=f"{BASE}/feed.{fmt}?archive=2022-01",
        next_archive=f"{BASE}/feed.{fmt}?archive=2022-03",
        hubs=(),
    )
    head = root.find("channel") if fmt == "rss" else root
    assert head is not None
    assert head.find("fh:archive", NS) is not None
    link = "atom:link"
    rels = {e.get("rel"): e.get("href") for e in head.findall(link, NS) if e.get("rel") != "alternate"}
    assert rels == {
        "self": archive,
        "current": f"{BASE}/feed.{fmt}",
        "prev-archive": f"{BASE}/feed.{fmt}?archive=2022-01",
        "next-archive": f"{BASE}/feed.{fmt}?archive=2022-03",
    }


# --- hostile and odd input --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", XML_FORMATS)
def test_hostile_text_comes_out_as_the_same_text(fmt: str) -> None:
    root = xml(fmt, [hostile()])
    assert not list(root.iter("script", "{http://www.w3.org/1999/xhtml}script"))
    entry = parse(fmt, [hostile()]).entries[0]
    assert entry.title == HOSTILE_CLEAN
    assert entry.authors[0].name == HOSTILE_CLEAN
    assert len(entry.authors) == 1  # a name of control characters only is no author
    terms = [t.term for t in entry.tags]
    assert HOSTILE_CLEAN in terms and "x]]>y" in terms and "" not in terms
    # RSS <description> and Atom <summary type="html"> are HTML to readers, so the
    # plain-text summary is escaped for them
    assert entry.summary == escape(HOSTILE_CLEAN, quote=False)
    assert entry.link == f"{BASE}/ar/commentaries/hostile?ref=feed&x=%3C1%3E"  # URI-safe


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_urls_from_a_request_are_made_uri_safe(fmt: str) -> None:
    data = render(fmt, [], self_url=f"{BASE}/feed.{fmt}?tag=мяжа 2&q=\"<x>\"")
    if fmt == "json":
        self_url = json.loads(data)["feed_url"]
    else:
        self_url = etree.fromstring(data).xpath("//atom:link[@rel='self']/@href", namespaces=NS)[0]
    assert self_url == f"{BASE}/feed.{fmt}?tag=%D0%BC%D1%8F%D0%B6%D0%B0%202&q=%22%3Cx%3E%22"


def test_hostile_text_in_json_is_clean_text() -> None:
    item = jsonfeed([hostile()])["items"][0]
    assert item["title"] == item["summary"] == HOSTILE_CLEAN
    assert item["tags"] == [HOSTILE_CLEAN, "x]]>y"]
    assert item["authors"] == [{"name": HOSTILE_CLEAN}]
    assert "<script>" not in item["content_html"]
    assert escape(HOSTILE_CLEAN, quote=False) in item["content_html"]


def test_values_the_model_allows_all_render() -> None:
    """Naive datetimes, second-precision offsets, an empty title, no authors, no body."""
    for fmt in XML_FORMATS:
        entry = parse(fmt, [edge_values()]).entries[0]
        assert entry.title == "edge"  # the slug stands in for a title with nothing left
        assert entry.published_parsed == ts(datetime(2022, 1, 5, 10, 0, tzinfo=UTC))
        assert entry.updated_parsed == ts(datetime(2022, 1, 5, 4, 29, 45, tzinfo=UTC))
        assert not [link for link in entry.links if link.get("hreflang") == "ru" and link.href.endswith("/ru/x")]
    atom_entry = parse("atom", [edge_values()]).entries[0]
    assert atom_entry.author == "feedsvc: analytical commentaries"  # Atom requires an author
    nothing = msgspec.structs.replace(edge_values(), image=None)
    assert parse("atom", [nothing]).entries[0].get("content") is None  # no blank content; the link suffices
    item = jsonfeed([edge_values()])["items"][0]
    assert item["content_html"] == '<figure><img src="https://feeds.example.org/media/plan.weird" alt=""></figure>'
    assert item["date_modified"] == "2022-01-05T04:29:45Z"
    assert item["_commentary"]["category"] == {"slug": "no-such-category", "name": "no-such-category"}


# --- JSON Feed 1.1 schema ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def jsonfeed_schema() -> jsonschema.Draft202012Validator:
    schema = json.loads((DATA / "jsonfeed-1.1.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(
    "items", [ALL, [minimal()], [hostile()], [edge_values()], []], ids=["all", "minimal", "hostile", "edge", "empty"]
)
def test_json_feed_matches_version_1_1(
    jsonfeed_schema: jsonschema.Draft202012Validator, items: list[Commentary]
) -> None:
    doc = jsonfeed(items)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in jsonfeed_schema.iter_errors(doc)]
    assert errors == []


def test_the_schema_catches_what_it_should(jsonfeed_schema: jsonschema.Draft202012Validator) -> None:
    good = jsonfeed([minimal()])
    assert jsonfeed_schema.is_valid(good)
    breakages: list[Callable[[dict[str, Any]], object]] = [
        lambda d: d.pop("version"),
        lambda d: d["items"][0].pop("id"),
        lambda d: d["items"][0].pop("content_html"),
        lambda d: d["items"][0].update(date_published="2022-02-01 09:00"),
        lambda d: d["items"][0].update(authors=[{}]),
        lambda d: d.update(hubs=[{"type": "WebSub"}]),
        lambda d: d.update(titel="typo"),
    ]
    for breakage in breakages:
        broken = json.loads(json.dumps(good))
        breakage(broken)
        assert not jsonfeed_schema.is_valid(broken)


# --- the browser view -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", XML_FORMATS)
def test_the_stylesheet_turns_both_formats_into_a_readable_page(fmt: str) -> None:
    transform = etree.XSLT(etree.parse(str(XSL)))
    page = transform(xml(fmt, [border_talks(), hostile()]))
    html = str(page)
    root = etree.HTML(html.encode())
    assert root.findtext("head/title") == "feedsvc: analytical commentaries (feed)"
    assert root.findtext(".//h1") == "feedsvc: analytical commentaries"
    assert "Security and foreign-policy commentaries" in html
    assert "This is a web feed." in html and f"{BASE}/feed.{fmt}" in html
    articles = root.findall(".//article")
    assert len(articles) == 2
    first = articles[0]
    link = first.find("h2/a")
    assert link is not None and link.get("href") == f"{BASE}/en/commentaries/border-tensions-ease"
    assert link.text == "Border tensions ease after talks"
    assert first.findtext(".//time") == "7 March 2022"
    assert "Anna Kovalenko and Yauheni Preiherman" in (first.findtext(".//span") or "")
    assert (
        first.findtext(".//p[@class='summary']")
        == "Talks between the border services lowered the temperature, for now."
    )
    # hostile text is shown as text: no script element, no markup from the feed
    assert not root.findall(".//script")
    assert articles[1].findtext("h2/a") == HOSTILE_CLEAN
    assert articles[1].findtext(".//p[@class='summary']") == HOSTILE_CLEAN


def test_the_stylesheet_never_disables_escaping_and_links_only_http() -> None:
    stylesheet = etree.parse(str(XSL))
    assert stylesheet.xpath("//@disable-output-escaping") == []
    transform = etree.XSLT(stylesheet)
    evil = xml("rss", [border_talks(url="javascript:alert(1)")])
    root = etree.HTML(str(transform(evil)).encode())
    assert [a.get("href") for a in root.iter("a") if "javascript" in (a.get("href") or "")] == []


# --- golden files -----------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "name"), [("rss", "full.rss"), ("atom", "full.atom"), ("json", "full.json")])
def test_golden_files(fmt: str, name: str) -> None:
    """Exact bytes for a complete feed; rewrite with UPDATE_GOLDEN=1 after a deliberate change."""
    data = render(fmt, [border_talks(), belarusian_weekly(), minimal()])
    golden = DATA / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_bytes(data)
    assert data == golden.read_bytes()


# --- layering ---------------------------------------------------------------------------------


def test_renderers_import_only_model_text_errors_and_each_other() -> None:
    allowed = {"feedsvc.model", "feedsvc.text", "feedsvc.errors"}
    render_dir = Path(__file__).parent.parent / "feedsvc" / "render"
    for module in ("feedview", "xmlfeed", "rss", "atom", "jsonfeed"):
        tree = ast.parse((render_dir / f"{module}.py").read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("feedsvc"):
                    assert name in allowed or name.startswith("feedsvc.render."), (module, name)
