"""Any content the API accepts yields valid feeds: arbitrary Unicode through the write API,
then every format parsed strictly (lxml, feedparser without bozo, the JSON Feed schema)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import TestClient

from feedsvc.config import load_settings
from feedsvc.http.app import create_app
from feedsvc.service import Service
from feedsvc.store.sqlite import SqliteStore
from tests.conftest import PUBLIC_URL
from tests.feeds_check import check_feed

# Any Unicode text, including what XML forbids (C0 controls, U+FFFE) and what needs escaping.
NASTY = st.sampled_from(
    ["]]>", "&amp;", "&", "<", ">", '"', "'", "<![CDATA[", "\x00", "\x0b", "\ufffe", "\u202e", "😀", "\r\n"]
)
TEXT = st.lists(st.one_of(st.text(), NASTY), max_size=6).map("".join)
LINE = TEXT.filter(lambda s: s.strip() != "")
HTML = st.lists(
    st.one_of(
        TEXT,
        st.sampled_from(
            [
                "<p>",
                "</p>",
                "<a href='/x?a=1&b=2'>",
                "</a>",
                "<script>",
                "<img src=x onerror=1>",
                "<b>",
                "<!--",
                "<table><td>",
            ]
        ),
    ),
    max_size=10,
).map("".join)


async def make_token(db: Path) -> str:
    store = SqliteStore(str(db))
    await store.open()
    try:
        token, _ = await Service(store, base_url=PUBLIC_URL).create_token("props", ["write"])
    finally:
        await store.close()
    return token


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient[Litestar], dict[str, str]]]:
    db = Path(tmp_path_factory.mktemp("props")) / "feedsvc.db"
    token = asyncio.run(make_token(db))
    app = create_app(load_settings({}, database_url=f"sqlite:///{db}", public_url=PUBLIC_URL))
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {token}"}
        assert client.put("/api/v1/categories/misc", json={"names": {"en": "Misc"}}, headers=auth).status_code == 201
        yield client, auth


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    title=LINE.map(lambda s: s[:300]),
    summary=st.one_of(st.none(), TEXT.map(lambda s: s[:1000])),
    body=HTML,
    author=LINE.map(lambda s: s[:200]),
    affiliation=st.one_of(st.none(), TEXT.map(lambda s: s[:500])),
    tags=st.lists(LINE.map(lambda s: s[:64]), max_size=5),
    caption=st.one_of(st.none(), TEXT.map(lambda s: s[:500])),
    lang=st.sampled_from(["en", "be", "ru", "ar", "zh-Hant"]),
)
def test_any_accepted_commentary_keeps_every_feed_valid(
    live: tuple[TestClient[Litestar], dict[str, str]],
    title: str, summary: str | None, body: str, author: str, affiliation: str | None,
    tags: list[str], caption: str | None, lang: str,
) -> None:
    client, auth = live
    payload: dict[str, Any] = {
        "title": title, "lang": lang, "category": "misc", "body_html": body,
        "authors": [{"name": author, "affiliation": affiliation}], "tags": tags,
        "image": {"url": "/media/x.png", "caption": caption, "credit": caption},
        "source": {"name": author}, "published_at": "2026-01-01T00:00:00+05:45",
    }
    if summary is not None:
        payload["summary"] = summary
    r = client.post("/api/v1/commentaries", json=payload, headers=auth)
    if r.status_code == 400:
        # Only text that is blank once cleaned may be refused, with a JSON error naming it.
        error = r.json()
        assert set(error) == {"status_code", "detail", "extra"} and "blank" in error["detail"]
        return
    assert r.status_code == 201, r.text
    for fmt in ("rss", "atom", "json"):
        feed = client.get(f"/feed.{fmt}?limit=3")
        assert feed.status_code == 200
        check_feed(fmt, feed.content)
