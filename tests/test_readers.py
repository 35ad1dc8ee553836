"""The feeds as real readers show them, subscribed as a new user would: through
``/feeds.opml`` of a server holding the sample data (``feedsvc demo``).

Readers: feedparser, the ``reader`` library, newsboat (Debian; skipped with a reason only
outside CI when it is not installed) and rss2email (mail through a sendmail that writes
files). The harness is tests/readers.py; each reader runs once per module. The weekly
digest's story runs on a server of its own whose clock the test moves, the readers polling
it again at each step as they would over a week.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import readers
from tests.conftest import CATEGORIES, FakeClock, commentary
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
        # every language has its subscription in the OPML, so every commentary is mailed
        mail = next((m for guid, m in by_id.items() if guid.endswith(f"/{c['id']}")), None)
        assert mail is not None, f"{c['title']!r} ({c['lang']}) was not mailed"
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


# --- one subscription per commentary --------------------------------------------------------


@pytest.mark.parametrize("reader", ["feedparser", "reader", "newsboat"])
def test_no_commentary_appears_twice_across_the_subscriptions(
    request: pytest.FixtureRequest,
    reader: str,
    published: dict[str, dict[str, Any]],
    subscriptions: list[readers.Subscription],
) -> None:
    entries = seen(request, reader)
    shown = Counter(c["id"] for _, c in commentaries_seen(entries, published))
    assert shown and max(shown.values()) == 1, [published[i]["title"] for i, n in shown.items() if n > 1]
    # Each subscription holds one language (translations are links, not items of their own).
    for url, feed_entries in entries.items():
        langs = {c["lang"] for _, c in commentaries_seen({url: feed_entries}, published)}
        assert len(langs) <= 1, f"{reader}: {url} mixes {langs}"
    assert len({s["group"] for s in subscriptions}) == len(
        {c["lang"] for _, c in commentaries_seen(entries, published)}
    )


def test_newsboat_keeps_every_item_under_the_subscription_that_carries_it(
    via_newsboat: dict[str, list[readers.Entry]],
    via_feedparser: dict[str, list[readers.Entry]],
    newsboat_dir: Path,
) -> None:
    """newsboat stores an item once across all feeds (by GUID): had two subscriptions
    overlapped, one of them would look short or empty there, and its unread count lower."""
    for url, entries in via_feedparser.items():
        assert {e["id"] for e in via_newsboat[url]} == {e["id"] for e in entries}, url
    assert readers.newsboat_unread(newsboat_dir) == sum(len(entries) for entries in via_feedparser.values())


# --- weekly digests, as readers poll for them -------------------------------------------------

WEEK = {"start": "2026-03-02", "end": "2026-03-08"}  # Monday to Sunday
MINSK = "Europe/Minsk"  # UTC+3: the digest is due at 09:00 there, 06:00 UTC on Monday 9 March


class Polls:
    """Every reader subscribed once through the OPML, then polling again on each call, as
    a subscriber's reader and mailer do; what each holds after a poll, digests only."""

    def __init__(self, server: LiveServer, workdir: Path) -> None:
        self.server = server
        self.workdir = workdir
        self.urls = [s["url"] for s in readers.subscriptions(server.url)]

    def digests(self) -> dict[str, dict[str, list[readers.Entry]]]:
        """Per reader, per subscription, the digest entries it holds."""
        held = {
            "feedparser": readers.read_feedparser(self.server.url, self.urls),
            "reader": readers.read_reader(self.server.url, self.workdir / "reader", self.urls),
            "newsboat": readers.read_newsboat(self.server.url, self.workdir / "newsboat"),
        }
        return {
            name: {url: [e for e in entries if ":digest/" in e["id"]] for url, entries in feeds.items()}
            for name, feeds in held.items()
        }

    def digest_mails(self) -> dict[str, list[readers.Mail]]:
        mails = readers.read_rss2email(self.server.url, self.workdir / "rss2email")
        return {feed: [m for m in ms if ":digest/" in m["id"]] for feed, ms in mails.items()}


def test_a_digest_reaches_every_reader_once_its_week_is_over_with_all_of_it(tmp_path: Path) -> None:
    if missing := readers.newsboat_missing():
        if readers.IN_CI:
            pytest.fail(f"{missing}; .ci/run installs it")
        pytest.skip(missing)
    clock = FakeClock(datetime(2026, 3, 4, 12, 0, tzinfo=UTC))  # Wednesday of WEEK
    with LiveServer(tmp_path / "server", clock=clock, timezone=MINSK, digest_hour=9) as server, \
            server.writer() as http:
        for slug, body in CATEGORIES.items():
            assert http.put(f"/api/v1/categories/{slug}", json=body).status_code in (200, 201)

        def publish(title: str, **fields: Any) -> dict[str, Any]:
            r = http.post("/api/v1/commentaries", json=commentary(title=title, period=WEEK, **fields))
            assert r.status_code == 201, r.text
            created: dict[str, Any] = r.json()
            return created

        week = [
            publish("Border talks resume", published_at="2026-03-02T10:00:00+03:00"),
            publish("Grain exports fall", published_at="2026-03-04T10:00:00+03:00", category="economy"),
            publish("Мяжа зноў адкрыта", lang="be", published_at="2026-03-03T10:00:00+03:00"),
        ]
        polls = Polls(server, tmp_path)
        assert f"{server.url}/digest.rss" in polls.urls and f"{server.url}/be/digest.rss" in polls.urls

        # Mid-week, and on Sunday evening with the week's last commentary: no digest yet.
        for now in (None, datetime(2026, 3, 8, 19, 0, tzinfo=UTC), datetime(2026, 3, 9, 5, 59, tzinfo=UTC)):
            if now is not None:
                clock.now = now
            if now == datetime(2026, 3, 8, 19, 0, tzinfo=UTC):  # 22:00 on Sunday in Minsk
                week.append(publish("Ferry line reopens", published_at="2026-03-08T21:30:00+03:00"))
            for name, feeds in polls.digests().items():
                assert not any(feeds.values()), f"{name} got a digest at {clock.now}"
            assert not any(polls.digest_mails().values()), f"a digest mailed at {clock.now}"

        clock.now = datetime(2026, 3, 9, 6, 0, tzinfo=UTC)  # due, with no write
        by_lang = {lang: [c for c in week if c["lang"] == lang] for lang in ("en", "be")}
        feed_of = {"en": f"{server.url}/digest.rss", "be": f"{server.url}/be/digest.rss"}
        for name, feeds in polls.digests().items():
            for lang, url in feed_of.items():
                [digest] = feeds[url]
                for c in by_lang[lang]:
                    assert c["title"] in (digest["content"] or ""), f"{name}: {c['title']!r} not in its digest"
                for c in week:
                    if c["lang"] != lang:
                        assert c["title"] not in (digest["content"] or ""), f"{name}: {url} mixes languages"
            assert sum(len(entries) for entries in feeds.values()) == 2, name
        # rss2email mails each language's digest once, whole, from the publication.
        mails = polls.digest_mails()
        for lang, url in feed_of.items():
            [mail] = mails[url]
            text = " ".join(mail["text"].split())
            for c in by_lang[lang]:
                assert c["title"] in text, f"the {lang} digest mail lacks {c['title']!r}: {text[:300]!r}"
            assert mail["sender"].split("<")[0].strip(' "').endswith(server.settings.title), mail["sender"]
        assert sum(len(ms) for ms in mails.values()) == 2
