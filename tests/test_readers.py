"""The feeds as real readers show them, subscribed as a new user would: through
``/feeds.opml`` of a server holding the sample data (``feedsvc demo``).

Readers: feedparser, the ``reader`` library, newsboat (Debian; skipped with a reason only
outside CI when it is not installed) and rss2email (mail through a sendmail that writes
files). The harness is tests/readers.py; each reader runs once per module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
def subscriptions(server: LiveServer) -> list[readers.Subscription]:
    return readers.subscriptions(server.url)


@pytest.fixture(scope="module")
def via_feedparser(server: LiveServer) -> dict[str, list[readers.Entry]]:
    return readers.read_feedparser(server.url)


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
