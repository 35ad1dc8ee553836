"""The feeds as real readers show them, subscribed as a new user would: through
``/feeds.opml`` of a server holding the sample data (``feedsvc demo``).

Readers: feedparser, the ``reader`` library, newsboat (Debian; skipped with a reason only
outside CI when it is not installed) and rss2email (mail through a sendmail that writes
files). The harness is tests/readers.py; each reader runs once per module.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import readers
from tests.live import DEMO_DATA, LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("readers-live"), media_dir=DEMO_DATA / "media")
    live.start()
    try:
        live.load_demo()
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def published(server: LiveServer) -> dict[str, dict[str, Any]]:
    """What was published, by id, as the API tells it: the truth the readers are held to."""
    out: dict[str, dict[str, Any]] = {}
    cursor = None
    with httpx.Client(base_url=server.url, timeout=30) as http:
        while True:
            page = http.get("/api/v1/commentaries", params={"limit": 100, **({"cursor": cursor} if cursor else {})})
            assert page.status_code == 200, page.text
            body = page.json()
            out.update((c["id"], c) for c in body["items"])
            cursor = body["next_cursor"]
            if not cursor:
                return out


@pytest.fixture(scope="module")
def subscriptions(server: LiveServer) -> list[readers.Subscription]:
    return readers.subscriptions(server.url)


@pytest.fixture(scope="module")
def via_feedparser(server: LiveServer) -> dict[str, list[readers.Entry]]:
    return readers.read_feedparser(server.url)


@pytest.fixture(scope="module")
def atom_urls(subscriptions: list[readers.Subscription]) -> list[str]:
    """The Atom twins of the OPML's (RSS) subscriptions: what a subscriber who picks Atom
    from the index page gets."""
    return [s["url"].removesuffix(".rss") + ".atom" for s in subscriptions if s["url"].endswith(".rss")]


@pytest.fixture(scope="module")
def atom_via_feedparser(server: LiveServer, atom_urls: list[str]) -> dict[str, list[readers.Entry]]:
    return readers.read_feedparser(server.url, atom_urls)


@pytest.fixture(scope="module")
def atom_via_reader(
    server: LiveServer, atom_urls: list[str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[readers.Entry]]:
    return readers.read_reader(server.url, tmp_path_factory.mktemp("reader-atom"), atom_urls)


@pytest.fixture(scope="module")
def via_reader(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[readers.Entry]]:
    return readers.read_reader(server.url, tmp_path_factory.mktemp("reader"))


@pytest.fixture(scope="module")
def newsboat_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("newsboat")


@pytest.fixture(scope="module")
def via_newsboat(server: LiveServer, newsboat_dir: Path) -> dict[str, list[readers.Entry]]:
    missing = readers.newsboat_missing()
    if missing:
        if readers.IN_CI:
            pytest.fail(f"{missing}; .ci/run installs it")
        pytest.skip(missing)
    return readers.read_newsboat(server.url, newsboat_dir)


@pytest.fixture(scope="module")
def mails(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[readers.Mail]]:
    return readers.read_rss2email(server.url, tmp_path_factory.mktemp("rss2email"))


def test_every_reader_subscribes_to_every_feed_of_the_opml(
    subscriptions: list[readers.Subscription],
    via_feedparser: dict[str, list[readers.Entry]],
    via_reader: dict[str, list[readers.Entry]],
    via_newsboat: dict[str, list[readers.Entry]],
    mails: dict[str, list[readers.Mail]],
) -> None:
    urls = {s["url"] for s in subscriptions}
    assert len(urls) == len(subscriptions) >= 2
    assert set(via_feedparser) == set(via_reader) == set(via_newsboat) == urls
    assert set(mails) <= urls
    for url in urls:
        assert via_feedparser[url], f"feedparser found no entries in {url}"
        assert [e["id"] for e in via_reader[url]] and {e["id"] for e in via_reader[url]} == {
            e["id"] for e in via_feedparser[url]
        }, url
    stored_by_newsboat = {e["id"] for entries in via_newsboat.values() for e in entries}
    assert stored_by_newsboat == {e["id"] for entries in via_feedparser.values() for e in entries}
    mailed = {m["id"] for ms in mails.values() for m in ms}
    assert mailed == stored_by_newsboat


# --- what every reader must show ----------------------------------------------------------

READERS = ["feedparser", "reader", "newsboat", "feedparser-atom", "reader-atom"]
_FIXTURES = {
    "feedparser": "via_feedparser", "reader": "via_reader", "newsboat": "via_newsboat",
    "feedparser-atom": "atom_via_feedparser", "reader-atom": "atom_via_reader",
}


def seen(request: pytest.FixtureRequest, name: str) -> dict[str, list[readers.Entry]]:
    entries: dict[str, list[readers.Entry]] = request.getfixturevalue(_FIXTURES[name])
    return entries


def commentaries_seen(
    entries: dict[str, list[readers.Entry]], published: dict[str, dict[str, Any]]
) -> Iterator[tuple[readers.Entry, dict[str, Any]]]:
    """Each entry that is a commentary, with the commentary as published (by GUID)."""
    for feed_entries in entries.values():
        for entry in feed_entries:
            match = re.search(r":commentary/([^/]+)$", entry["id"])
            if match:
                yield entry, published[match.group(1)]


def text_of(markup: str) -> str:
    """Text as a naive teaser maker takes it: tags stripped, entities decoded, nothing else."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text))


# The words a byline joins names with ("A, B and C"), in the sample data's languages.
_JOINERS = re.compile(r"(?:,|\band\b|(?<!\w)[іи](?!\w))")


@pytest.mark.parametrize("reader", READERS)
def test_every_co_author_is_visible(
    request: pytest.FixtureRequest, reader: str, published: dict[str, dict[str, Any]]
) -> None:
    checked = 0
    for entry, c in commentaries_seen(seen(request, reader), published):
        if len(c["authors"]) < 2:
            continue
        shown = " | ".join(entry["authors"])
        for author in c["authors"]:
            assert author["name"] in shown, f"{reader}: {c['title']!r} shows {shown!r}"
        checked += 1
    assert checked >= 5  # the sample data has many co-written commentaries


@pytest.mark.parametrize("reader", READERS)
def test_no_affiliation_becomes_an_author(
    request: pytest.FixtureRequest, reader: str, published: dict[str, dict[str, Any]]
) -> None:
    with_affiliations = 0
    for entry, c in commentaries_seen(seen(request, reader), published):
        names = [a["name"] for a in c["authors"]]
        for shown in entry["authors"]:
            rest = shown
            for name in sorted(names, key=len, reverse=True):
                rest = rest.replace(name, " ")
            # nothing but names and the words joining them
            assert not _JOINERS.sub(" ", rest).strip(), f"{reader}: author {shown!r} of {c['title']!r}"
        with_affiliations += any(a.get("affiliation") for a in c["authors"])
    assert with_affiliations >= 10


@pytest.mark.parametrize("reader", ["feedparser", "reader", "feedparser-atom", "reader-atom"])
def test_every_image_commentary_has_an_enclosure(
    request: pytest.FixtureRequest, reader: str, published: dict[str, dict[str, Any]]
) -> None:
    with_images = 0
    for entry, c in commentaries_seen(seen(request, reader), published):
        if not c.get("image"):
            assert not entry["enclosures"], f"{reader}: {c['title']!r} has no image"
            continue
        with_images += 1
        assert [(e["url"], (e["type"] or "").split("/")[0]) for e in entry["enclosures"]] == [
            (c["image"]["url"], "image")
        ], f"{reader}: {c['title']!r}"
    assert with_images >= 5


def test_newsboat_shows_every_image_as_a_link_in_the_article(
    via_newsboat: dict[str, list[readers.Entry]], published: dict[str, dict[str, Any]]
) -> None:
    """newsboat up to 2.2x records only audio and video enclosures (its is_valid_podcast_type),
    so an image is what the article shows: a link in the rendered content. Versions that
    record image enclosures must record ours."""
    with_images = 0
    for entry, c in commentaries_seen(via_newsboat, published):
        if c.get("image"):
            with_images += 1
            assert f'src="{c["image"]["url"]}"' in (entry["content"] or "")
            assert all(e["url"] == c["image"]["url"] for e in entry["enclosures"])
    assert with_images >= 5


@pytest.mark.parametrize("reader", ["feedparser", "reader", "feedparser-atom", "reader-atom"])
def test_no_entry_summary_is_a_caption(
    request: pytest.FixtureRequest, reader: str, published: dict[str, dict[str, Any]]
) -> None:
    with_captions = 0
    for entry, c in commentaries_seen(seen(request, reader), published):
        caption = (c.get("image") or {}).get("caption")
        summary = html.unescape(entry["summary"] or "")
        assert summary == c["summary"], f"{reader}: {c['title']!r} summary {summary!r}"
        if caption:
            with_captions += 1
            assert caption not in summary
    assert with_captions >= 5


@pytest.mark.parametrize("reader", READERS)
def test_teasers_cut_from_the_content_start_with_the_lede(
    request: pytest.FixtureRequest, reader: str, published: dict[str, dict[str, Any]]
) -> None:
    """Readers without a summary make a teaser from the start of the content: it is the
    lede, never the image's caption."""
    for entry, c in commentaries_seen(seen(request, reader), published):
        teaser = " ".join(text_of(entry["content"] or "").split())
        assert teaser.startswith(" ".join(c["summary"].split())), f"{reader}: {c['title']!r}: {teaser[:80]!r}"


def test_json_feed_teasers_start_with_the_lede(server: LiveServer, published: dict[str, dict[str, Any]]) -> None:
    feed = httpx.get(f"{server.url}/feed.json", timeout=30).json()
    assert feed["items"]
    for item in feed["items"]:
        c = published[item["id"].rsplit("/", 1)[1]]
        assert item["summary"] == c["summary"]
        assert " ".join(text_of(item["content_html"]).split()).startswith(" ".join(c["summary"].split()))
        if c.get("image"):
            assert [a["url"] for a in item["attachments"]] == [c["image"]["url"]]


@pytest.mark.parametrize("reader", ["feedparser", "newsboat"])
def test_digest_teasers_keep_words_apart(request: pytest.FixtureRequest, reader: str) -> None:
    digests = [e for entries in seen(request, reader).values() for e in entries if ":digest/" in e["id"]]
    assert digests
    for entry in digests:
        text = text_of(entry["content"] or "")
        # "…no trend: 1" then the first title: never glued into "1Autumn"
        assert not re.search(r"\d[^\W\d_]", text.split("\n")[0] + text), text[:120]


def test_rss2email_mails_an_image_commentary_with_its_lede_and_text(
    mails: dict[str, list[readers.Mail]], published: dict[str, dict[str, Any]]
) -> None:
    by_id = {m["id"]: m for ms in mails.values() for m in ms}
    with_images = 0
    for c in published.values():
        if not c.get("image"):
            continue
        mail = next((m for guid, m in by_id.items() if guid.endswith(f"/{c['id']}")), None)
        if mail is None:
            continue  # in no subscription of the OPML (e.g. a language without a feed there)
        with_images += 1
        body = words(mail["text"])
        assert body.startswith(words(c["summary"])), f"{c['title']!r}: {mail['text'][:200]!r}"
        plain = [p for p in re.findall(r"<p>(.*?)</p>", c["body_html"], re.DOTALL) if "<a " not in p]
        assert plain and words(text_of(plain[-1])) in body, c["title"]
        text = " ".join(mail["text"].split())
        for author in c["authors"]:  # with their affiliations, at the end
            assert author["name"] in text and (author.get("affiliation") or "") in text
    assert with_images >= 5


def test_readers_skip_atom_tombstones_harmlessly(tmp_path: Path) -> None:
    """A feed naming a deleted commentary (RFC 6721) reads as the feed without it."""
    live = LiveServer(tmp_path / "server", media_dir=DEMO_DATA / "media")
    live.start()
    try:
        live.load_demo()
        token, _ = live.run(live.service.create_token("readers", ["write"]))
        url = f"{live.url}/feed.atom"
        with httpx.Client(base_url=live.url, timeout=30) as http:
            before = http.get("/api/v1/commentaries", params={"limit": 100, "lang": "en"}).json()["items"]
            gone = before[0]["id"]
            r = http.delete(f"/api/v1/commentaries/{gone}", headers={"Authorization": f"Bearer {token}",
                                                                     "If-Match": "*"})
            assert r.status_code == 204, r.text
            assert b"at:deleted-entry" in http.get("/feed.atom").content
        for entries in (readers.read_feedparser(live.url, [url])[url],
                        readers.read_reader(live.url, tmp_path / "reader", [url])[url]):
            ids = [e["id"] for e in entries]
            assert ids and not [i for i in ids if i.endswith(f"/{gone}")] and len(ids) == len(set(ids))
    finally:
        live.stop()
