"""No parameter a database cannot take reaches one, and a 5xx tells a client nothing inside.

Every parameter of every public route, in the query string or in the path, is checked by
type before routing (feedsvc.http.cost): a value holding NUL, another C0 control
character, or escapes that do not decode as UTF-8 (invalid, overlong, a lone surrogate) is
a 400 in the one error shape naming the parameter, with ``source`` ``query`` or ``path``.
On PostgreSQL a NUL in an id was a 500 quoting the driver; on SQLite a NUL in ``q`` was a
500 quoting FTS5.

When the database does fail, the answer is the error class's own message and the request
id; the driver's message goes to the log, under the same request id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.logs import JsonFormatter
from tests.conftest import PUBLIC_URL, assert_error, commentary

UNFIT = {
    "NUL": "%00",
    "a control character": "a%1Bb",
    "invalid UTF-8": "%FF%FE",
    "overlong UTF-8 (a NUL in two bytes)": "%C0%80",
    "a lone surrogate, UTF-8-encoded": "%ED%A0%80",
}
"""Escaped text no parameter may hold, by what is wrong with it."""

QUERY_ROUTES: dict[str, tuple[str, ...]] = {
    "/api/v1/commentaries": ("q", "tag", "author", "lang", "category", "cursor", "from", "to", "updated_since"),
    "/api/v1/commentaries/{id}": ("lang",),
    "/api/v1/changes": ("since",),
    "/api/v1/digests": ("lang", "cursor"),
    "/feed.rss": ("q", "tag", "author", "category", "lang"),
    "/feed.atom": ("tag", "author"),
    "/feed.json": ("q",),
    "/categories/economy/feed.rss": ("tag", "q"),
    "/en/feed.atom": ("author",),
    "/digest.rss": ("lang",),
    "/embed": ("category", "lang", "theme", "id"),
    "/embed.js": ("lang",),
    "/oembed": ("url",),
    "/": ("lang",),
}
"""Public GET routes and query parameters they read."""

PATH_ROUTES: list[tuple[str, str]] = [
    ("/api/v1/commentaries/{v}", "id"),
    ("/api/v1/commentaries/{v}/related", "id"),
    ("/api/v1/commentaries/{v}/translations", "id"),
    ("/api/v1/categories/{v}", "slug"),
    ("/api/v1/digests/{v}", "start"),
    ("/categories/{v}/feed.rss", "slug"),
    ("/categories/{v}/feed.json", "slug"),
    ("/{v}/feed.rss", "language"),
    ("/{v}/feed.atom", "language"),
    ("/{v}/digest.json", "language"),
    ("/commentaries/{v}", "id"),
    ("/{v}/2026/03/a-slug", "language"),
    ("/en/{v}/03/a-slug", "year"),
    ("/en/categories/{v}", "slug"),
    ("/en/tags/{v}", "tag"),
    ("/en/authors/{v}", "name"),
    ("/digests/{v}", "start"),
    ("/media/{v}", "file_path"),
    ("/no/such/deeper/{v}/route", "path"),  # any four segments are a commentary's page
]
"""Routes with a path parameter, with the parameter's name (``path`` where no route is)."""


@pytest.fixture
async def seeded(client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any) -> str:
    r = await client.post("/api/v1/commentaries", json=commentary(category="economy"), headers=auth)
    assert r.status_code == 201, r.text
    seed: str = r.json()["id"]
    return seed


def assert_refused(response: Any, name: str, source: str) -> None:
    body = assert_error(response, 400, name)
    assert {"key": name, "source": source} in [{"key": e["key"], "source": e["source"]} for e in body["extra"]], body


async def test_unfit_text_in_any_query_parameter_is_a_400_naming_it(
    client: AsyncTestClient[Litestar], seeded: str
) -> None:
    for route, params in QUERY_ROUTES.items():
        for param in params:
            for what, value in UNFIT.items():
                r = await client.get(f"{route.format(id=seeded)}?{param}={value}")
                assert r.status_code == 400, (route, param, what, r.status_code, r.text[:200])
                assert_refused(r, param, "query")


async def test_unfit_text_in_any_path_parameter_is_a_400_naming_it(
    client: AsyncTestClient[Litestar], seeded: str
) -> None:
    for template, name in PATH_ROUTES:
        for what, value in UNFIT.items():
            for method in ("GET", "HEAD"):
                r = await client.request(method, template.format(v=value))
                assert r.status_code == 400, (template, what, method, r.status_code, r.text[:200])
                if method == "GET":
                    assert_refused(r, name, "path")
    # Within a segment, among good ones, and only the bad segment's parameter is named.
    r = await client.get(f"/api/v1/commentaries/{seeded}%00/related")
    assert_refused(r, "id", "path")


async def test_every_offending_parameter_is_named_at_once(client: AsyncTestClient[Litestar], seeded: str) -> None:
    r = await client.get("/categories/%00/feed.rss?tag=%FF&q=border&author=a%01")
    body = assert_error(r, 400)
    assert sorted((e["key"], e["source"]) for e in body["extra"]) == [
        ("author", "query"), ("slug", "path"), ("tag", "query")
    ]
    # A parameter whose very name is unfit is named as well as it can be.
    body = assert_error(await client.get("/api/v1/commentaries?%00=1"), 400)
    assert body["extra"][0]["key"] == "\ufffd"


async def test_text_a_person_may_type_still_passes(client: AsyncTestClient[Litestar], seeded: str) -> None:
    """Tabs, line breaks, any script, U+FFFD itself: searched for, not refused."""
    for value in ("border%09talks", "border%0D%0Atalks", quote("граница"), quote("\ufffd"), quote("😀"), "a%25b"):
        for route in ("/api/v1/commentaries", "/feed.rss", "/embed"):
            r = await client.get(f"{route}?q={value}&tag={value}&author={value}")
            assert r.status_code == 200, (route, value, r.text[:200])
    assert (await client.get(f"/api/v1/commentaries/{seeded}/related")).status_code == 200
    assert (await client.get(f"/api/v1/commentaries/{quote('граница')}?lang=ru")).status_code == 404


async def test_an_oembed_url_is_checked_after_its_own_escapes_are_decoded(
    client: AsyncTestClient[Litestar], seeded: str
) -> None:
    """``url=`` is decoded twice: by the query string, then as a URL naming a commentary."""
    for inner in ("%2500", "%25FF", "x%253Flang%253D%2500"):
        r = await client.get(f"/oembed?url={quote(PUBLIC_URL, safe='')}%2Fapi%2Fv1%2Fcommentaries%2F{inner}")
        assert_refused(r, "url", "query")
    good = await client.get(f"/oembed?url={quote(f'{PUBLIC_URL}/commentaries/{seeded}', safe='')}")
    assert good.status_code == 200, good.text


# --- what a failing database says ------------------------------------------------------------


class Lines(logging.Handler):
    """Log lines as feedsvc writes them (JSON, with the request id of the request served)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logged() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("feedsvc")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def test_a_database_failure_is_a_500_with_a_request_id_and_nothing_inside(
    client: AsyncTestClient[Litestar], seeded: str, rows: Any, logged: Lines
) -> None:
    """A table gone from under the running service (as an operator's mistake would do it):
    the driver's message (a table name, the engine's words) stays in the log."""
    rows("ALTER TABLE commentary_tags RENAME TO commentary_tags_gone")
    try:
        r = await client.get("/api/v1/tags")
        body = assert_error(r, 500)
        request_id = r.headers["x-request-id"]
        assert body["extra"] == {"request_id": request_id}
        assert "commentary_tags" not in r.text and "relation" not in r.text and "no such table" not in r.text
        assert "Error" not in body["detail"] and "database error" not in body["detail"]
        failures = [line for line in logged.lines if "commentary_tags" in line]
        assert failures and all(f'"request_id":"{request_id}"' in line for line in failures), logged.lines
    finally:
        rows("ALTER TABLE commentary_tags_gone RENAME TO commentary_tags")
    assert (await client.get("/api/v1/tags")).status_code == 200
