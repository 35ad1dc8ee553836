"""Pages in the reader's language: every label of a page, the embed and the index in the
language of what they show (English, Belarusian, Russian), dates as people write them, and
a summary that is the body's first paragraph shown once.

Through real HTTP on a real SQLite file; the labels a page must not carry are read from the
message catalogue itself (feedsvc.render.messages), so a label added later is checked too.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any

import lxml.html
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from lxml import etree

from feedsvc.config import Settings
from feedsvc.digest import _TRENDS
from feedsvc.render.messages import FEED_PAGE_MESSAGES, LANGUAGE_NAMES, LANGUAGES, MESSAGES, Messages
from tests.conftest import commentary, path_of

Client = AsyncTestClient[Litestar]


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    """Pages render what the reads (tested on both stores) return: SQLite only."""
    return sqlite_settings


WEEK = {"start": "2026-10-26", "end": "2026-11-01"}
PERIOD_TEXT = {
    "en": "26 October – 1 November 2026",
    "be": "26 кастрычніка – 1 лістапада 2026",
    "ru": "26 октября – 1 ноября 2026",
}
PUBLISHED_TEXT = {"en": "2 November 2026", "be": "2 лістапада 2026", "ru": "2 ноября 2026"}
TITLES = {"en": "Border tensions ease", "be": "Напружанасць на мяжы спадае", "ru": "Напряжённость на границе спадает"}
FIRST = {
    "en": "Both sides agreed to reopen two crossings.",
    "be": "Абодва бакі пагадзіліся адкрыць два пераходы.",
    "ru": "Обе стороны согласились открыть два перехода.",
}


async def publish(client: Client, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    r = await client.post("/api/v1/commentaries", json=commentary(**fields), headers=auth)
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture
async def week(client: Client, auth: dict[str, str], categories: Any) -> dict[str, dict[str, Any]]:
    """One commentary in three languages (translations of each other) with a period, a
    trend, a source and a summary derived from the body; and a related one per language."""
    made: dict[str, dict[str, Any]] = {}
    for lang in LANGUAGES:
        made[lang] = await publish(
            client, auth, lang=lang, title=TITLES[lang], translation_key="border-week", period=WEEK,
            trend="worsened", tags=["border", "crossings"], published_at="2026-11-02T10:00:00+03:00",
            source={"name": "Minsk Dialogue", "url": "https://minskdialogue.example/1"},
            body_markdown=f"{FIRST[lang]}\n\nSecond paragraph.",
        )
        await publish(
            client, auth, lang=lang, title=f"{TITLES[lang]} (2)", tags=["border"], period=WEEK, trend="improved",
            published_at="2026-10-30T10:00:00+03:00", summary="A lede of its own.",
        )
    return made


def visible_text(page: str) -> str:
    """What a reader sees: the text of the body, and the title, one space between words."""
    doc = lxml.html.fromstring(page)
    for script in doc.body.iter("script"):  # code, not words (the embed's height messenger)
        script.drop_tree()
    return " ".join(f"{doc.findtext('.//title') or ''} {doc.body.text_content()}".split())


def english_labels() -> dict[str, list[str]]:
    """The literal words of each English message that its translations do not share."""
    out: dict[str, list[str]] = {}
    for key, texts in MESSAGES.items():
        if all(texts[lang] == texts["en"] for lang in LANGUAGES):
            continue  # the same in every language ("API")
        pieces = [literal.strip(" :.,()") for literal, *_ in string.Formatter().parse(texts["en"])]
        out[key] = [p for p in pieces if len(p) >= 3]
    return out


def assert_no_english_label(text: str) -> None:
    text = text.replace("JSON Feed", "")  # a format's name, in every language
    for key, pieces in english_labels().items():
        for piece in pieces:
            assert piece not in text, f"English label {key!r} ({piece!r}) on the page: {text}"
    for word in ("worsened", "improved", "unchanged"):
        assert word not in text, text
    for name in LANGUAGE_NAMES["en"].values():
        assert name not in text, text


# --- the catalogue ------------------------------------------------------------------------


def test_every_message_is_in_every_language_with_the_same_placeholders() -> None:
    for key, texts in MESSAGES.items():
        assert set(texts) == set(LANGUAGES), key
        names = {lang: sorted(n for _, n, _, _ in string.Formatter().parse(t) if n) for lang, t in texts.items()}
        assert all(n == names["en"] for n in names.values()), (key, names)
    for lang in LANGUAGES:
        assert set(LANGUAGE_NAMES[lang]) == set(LANGUAGE_NAMES["en"])


def test_labels_of_other_languages_are_english_and_tags_find_their_primary_language() -> None:
    assert Messages("be-BY")("follow") == MESSAGES["follow"]["be"]
    assert Messages("de")("follow") == MESSAGES["follow"]["en"]
    assert Messages(None).day(__import__("datetime").date(2026, 3, 7)) == "7 March 2026"
    assert Messages("ru").language("be") == "белорусский" and Messages("ru").language("xx") == "xx"


# --- a commentary's page ------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_a_commentary_page_speaks_its_language(
    client: Client, week: dict[str, dict[str, Any]], lang: str
) -> None:
    r = await client.get(path_of(week[lang]["url"]))
    assert r.status_code == 200, r.text
    text = visible_text(r.text)
    m = Messages(lang)
    assert f'<html lang="{lang}"' in r.text
    assert m("period", period=PERIOD_TEXT[lang]) in text
    assert PUBLISHED_TEXT[lang] in text
    assert f"↘ {_TRENDS[lang]['worsened']}" in text
    assert m("related") in text and m("follow") in text and m("other_languages") in text
    assert m("originally_published", source="Minsk Dialogue") in text
    for other in LANGUAGES:
        if other != lang:
            name = m.language(other)
            assert f"{name[0].upper()}{name[1:]}: {TITLES[other]}" in text
    assert m("everything_in", language=m.language(lang)) in text and m("all_commentaries") in text
    assert m("site_name") in text
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text), "an ISO date is left on the page"
    if lang != "en":
        assert_no_english_label(text)


async def test_a_summary_derived_from_the_body_is_shown_once(
    client: Client, auth: dict[str, str], categories: Any, week: dict[str, dict[str, Any]]
) -> None:
    text = visible_text((await client.get(path_of(week["en"]["url"]))).text)
    assert week["en"]["summary"] == FIRST["en"]
    assert text.count(FIRST["en"]) == 1
    # A summary written the same as the first paragraph is that paragraph too.
    same = await publish(client, auth, title="Same", summary=FIRST["en"], body_markdown=f"{FIRST['en']}\n\nMore.")
    text = visible_text((await client.get(path_of(same["url"]))).text)
    assert text.count(FIRST["en"]) == 1
    # A summary of its own is the page's lede, above the body.
    own = await publish(client, auth, title="Own", summary="A lede of its own.", body_markdown="The body.")
    page = (await client.get(path_of(own["url"]))).text
    assert "<strong>A lede of its own.</strong>" in page and page.index("A lede") < page.index("The body.")


# --- a digest's page, the embed, the index ------------------------------------------------


@pytest.mark.parametrize("lang", ["be", "ru"])
async def test_a_digest_page_speaks_its_language(client: Client, week: dict[str, dict[str, Any]], lang: str) -> None:
    r = await client.get("/digests/2026-10-26", params={"lang": lang})
    assert r.status_code == 200, r.text
    text = visible_text(r.text)
    m = Messages(lang)
    assert PERIOD_TEXT[lang] in text and PUBLISHED_TEXT[lang] in text
    assert m("follow") in text and m("this_week_in") in text and m("site_name") in text
    assert_no_english_label(text)


@pytest.mark.parametrize("lang", ["be", "ru"])
async def test_the_embed_speaks_the_language_asked_for(
    client: Client, week: dict[str, dict[str, Any]], lang: str
) -> None:
    text = visible_text((await client.get("/embed", params={"lang": lang})).text)
    assert TITLES[lang] in text and PUBLISHED_TEXT[lang] in text and f"↘ {_TRENDS[lang]['worsened']}" in text
    assert_no_english_label(text)
    card = visible_text((await client.get("/embed", params={"id": week[lang]["id"]})).text)
    assert PUBLISHED_TEXT[lang] in card
    assert_no_english_label(card)


@pytest.mark.parametrize("lang", ["be", "ru"])
async def test_an_empty_embed_says_so_in_its_language(client: Client, categories: Any, lang: str) -> None:
    """It names the filter that matched nothing, and what there is, in the language asked for."""
    text = visible_text((await client.get("/embed", params={"lang": lang})).text)
    m = Messages(lang)
    assert m("nothing_matches", filters=f"lang={lang}") in text
    assert m("categories_are", list="economy, foreign-policy, regional-security") in text
    assert_no_english_label(text)
    unfiltered = visible_text((await client.get("/embed")).text)
    assert Messages("en")("no_commentaries") in unfiltered


@pytest.mark.parametrize("lang", ["be", "ru"])
async def test_the_index_speaks_the_language_asked_for(
    client: Client, week: dict[str, dict[str, Any]], lang: str
) -> None:
    r = await client.get("/", params={"lang": lang})
    assert r.status_code == 200, r.text
    doc = lxml.html.fromstring(r.text)
    for pre in doc.iter("pre"):  # the snippets to copy are code, not labels
        pre.drop_tree()
    text = " ".join(doc.body.text_content().split())
    m = Messages(lang)
    assert m("latest") in text and m("by_language") in text and m("embed_heading") in text
    # Its latest commentaries are the language's own.
    latest = [a.text_content() for a in doc.xpath("//h2[text()=$t]/following-sibling::ul[1]//a", t=m("latest"))]
    assert sorted(latest) == sorted([TITLES[lang], f"{TITLES[lang]} (2)"])
    assert_no_english_label(text)


BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate",
}


@pytest.mark.parametrize(("lang", "fmt"), [("be", "rss"), ("ru", "atom"), ("en", "rss")])
async def test_a_feed_opened_in_a_browser_speaks_the_feeds_language(
    client: Client, week: dict[str, dict[str, Any]], lang: str, fmt: str
) -> None:
    m = Messages(lang)
    # Served as a page to a browser's navigation, and as the stylesheet a browser applies.
    served = (await client.get(f"/{lang}/feed.{fmt}", headers=BROWSER)).text
    stylesheet = etree.XSLT(etree.fromstring((await client.get("/feed.xsl")).content))
    applied = str(stylesheet(etree.fromstring((await client.get(f"/{lang}/feed.{fmt}")).content)))
    for page in (served, applied):
        text = visible_text(page)
        assert m("web_feed") in text and m("feed_copy_before") in text and m("feed_copy_after") in text
        assert PUBLISHED_TEXT[lang] in text
        title = lxml.html.fromstring(page).findtext(".//title")
        assert title is not None and title.endswith(m("feed_in_title", title="").strip())
        # The page's own words; the feed's title and subtitle are the feed's (feeds/).
        for key in FEED_PAGE_MESSAGES:
            if lang != "en":
                assert MESSAGES[key]["en"].replace("{title}", "").strip() not in text, key
        assert not re.search(r"\d{4}-\d{2}-\d{2}", text)


async def test_the_script_embed_writes_with_the_catalogues_words(client: Client) -> None:
    source = (await client.get("/embed.js")).text
    match = re.search(r"var WORDS = (\{.*?\});\n", source)
    assert match, "embed.js carries no words"
    words = json.loads(match.group(1))
    assert set(words) == set(LANGUAGES)
    for lang in LANGUAGES:
        assert words[lang]["messages"]["no_commentaries"] == MESSAGES["no_commentaries"][lang]
        assert words[lang]["trends"]["worsened"] == _TRENDS[lang]["worsened"]
        assert words[lang]["months"][10] == PERIOD_TEXT[lang].split(" ")[-2]  # November, as after a day
