"""Shared fixtures: a real SQLite file per test, the real app, real HTTP in process."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc import logs
from feedsvc.config import Settings, load_settings
from feedsvc.http.app import create_app
from feedsvc.service import Service

PUBLIC_URL = "https://feeds.example.org"

CATEGORIES = {
    "regional-security": {
        "names": {"en": "Regional security", "be": "Рэгіянальная бяспека", "ru": "Региональная безопасность"}
    },
    "foreign-policy": {"names": {"en": "Foreign policy", "ru": "Внешняя политика"}},
    "economy": {"names": {"en": "Economy"}},
}


def commentary(**overrides: Any) -> dict[str, Any]:
    """A valid commentary request body; keyword arguments replace or add fields."""
    body: dict[str, Any] = {
        "title": "Border tensions ease after talks",
        "lang": "en",
        "category": "regional-security",
        "authors": [{"name": "Anna Kovalenko", "affiliation": "Senior Analyst, Vistula Centre"}],
        "published_at": "2026-03-07T10:00:00+03:00",
        "body_markdown": "First paragraph of the analysis.\n\nSecond paragraph.",
        "tags": ["border"],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "feedsvc.db"


@pytest.fixture
def settings(any_database_url: str) -> Settings:
    """The app's settings, on each store in turn (issue 5: one contract, two stores): a
    SQLite file, then a PostgreSQL schema of the test's own (skipped without a DSN)."""
    return load_settings({}, database_url=any_database_url, public_url=PUBLIC_URL)


@pytest.fixture
def sqlite_settings(db_path: Path) -> Settings:
    """Settings on a SQLite file only: for modules whose behaviour does not depend on the
    store (rate limits, headers, observability, embeds), which override ``settings`` with
    it. Everything that touches storage runs on both stores."""
    return load_settings({}, database_url=f"sqlite:///{db_path}", public_url=PUBLIC_URL)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Litestar]:
    yield create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app, base_url="http://testserver.local") as c:
        yield c


@pytest.fixture
def service(client: AsyncTestClient[Litestar]) -> Service:
    svc: Service = client.app.state.service
    return svc


@pytest.fixture
async def token(service: Service) -> str:
    secret, _ = await service.create_token("tests", ["write"])
    return secret


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def categories(client: AsyncTestClient[Litestar], auth: dict[str, str]) -> dict[str, Any]:
    for slug, body in CATEGORIES.items():
        r = await client.put(f"/api/v1/categories/{slug}", json=body, headers=auth)
        assert r.status_code in (200, 201), r.text
    return CATEGORIES


@pytest.fixture
def rows(settings: Settings) -> Any:
    """Read the real database directly (SQL with ``?`` placeholders, on either store), to
    assert on what was (not) stored."""
    return rows_for(settings.database_url)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """``main`` (and ``configure_logging``) set up the root logger of the process: undo it
    after the test, the access-log writer too. Modules that run the command line use it for
    every test."""
    root = logging.getLogger()
    handlers, level, writer = list(root.handlers), root.level, logs.access_writer
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logs.set_access_writer(writer)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``FEEDSVC_*`` setting of the environment the tests run in reaches the command
    line (the tests' own ``FEEDSVC_TEST_*`` stay)."""
    for key in list(os.environ):
        if key.startswith("FEEDSVC_") and not key.startswith("FEEDSVC_TEST_"):
            monkeypatch.delenv(key)


def pytest_report_header() -> str:
    dsn = os.environ.get("FEEDSVC_TEST_POSTGRES_DSN")
    return f"postgres: {'FEEDSVC_TEST_POSTGRES_DSN set' if dsn else 'not configured (PostgreSQL tests skip)'}"


# --- appended: a controllable clock ---------------------------------------------------------


class FakeClock:
    """A clock tests move by hand; installed as ``service.clock``."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


CLOCK_START = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(service: Service) -> FakeClock:
    """Freeze the service's clock at CLOCK_START (2026-03-20 12:00 UTC); move it with advance()."""
    fake = FakeClock(CLOCK_START)
    service.clock = fake
    return fake


# --- appended: helpers for asserting on error bodies and stored rows -------------------------


def names_field(body: dict[str, Any], field: str) -> bool:
    """Whether an error body points at ``field``: an ``extra`` entry keyed by it (or by one of
    its parts, like ``authors[0].name``), or whose message names it."""
    entries = body.get("extra")
    if not isinstance(entries, list):
        return False
    for entry in entries:
        key = entry.get("key") or ""
        if key == field or key.startswith((f"{field}[", f"{field}.")):
            return True
        if re.search(rf"(?<![\w-]){re.escape(field)}(?![\w-])", entry.get("message") or ""):
            return True
    return False


def assert_error(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """The response is a JSON error with the one error shape (and names ``field``)."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"status_code", "detail", "extra"}, body
    assert body["status_code"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    if field is not None:
        assert names_field(body, field), f"error does not name {field!r}: {body}"
    return body


def path_of(url: str) -> str:
    """The path and query of an absolute URL under PUBLIC_URL, for the in-process client."""
    assert url.startswith(PUBLIC_URL + "/"), url
    return url[len(PUBLIC_URL) :]


STORED_TABLES = ("commentaries", "changes", "commentary_tags", "commentary_authors")


@pytest.fixture
def stored_counts(rows: Any) -> Any:
    """A callable returning the row count of every table a write touches."""

    def counts() -> dict[str, int]:
        return {table: rows(f"SELECT count(*) FROM {table}")[0][0] for table in STORED_TABLES}

    return counts


# --- appended: truly concurrent requests ----------------------------------------------------


@pytest.fixture
async def concurrent_client(client: AsyncTestClient[Litestar]) -> AsyncIterator[Any]:
    """An httpx client that runs the (already started) app on the test's own event loop.

    Litestar's AsyncTestClient hands each request to a blocking portal, so requests gathered
    with asyncio.gather still run one after the other; this client lets them interleave.
    """
    import httpx

    transport = httpx.ASGITransport(app=client.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        yield c


# --- appended: PostgreSQL, for the tests that run on both stores (issue 5) -------------------
# Every PostgreSQL test gets a schema of its own (t_<uuid>), created by the store on open and
# dropped afterwards, so runs on one database never collide.

POSTGRES_DSN_VAR = "FEEDSVC_TEST_POSTGRES_DSN"
POSTGRES_SKIP_REASON = f"set {POSTGRES_DSN_VAR} to run PostgreSQL tests"


def postgres_dsn() -> str:
    """The PostgreSQL DSN for tests; skips the calling test when none is configured."""
    dsn = os.environ.get(POSTGRES_DSN_VAR)
    if not dsn:
        pytest.skip(POSTGRES_SKIP_REASON)
    return dsn


def new_schema() -> str:
    import uuid

    return f"t_{uuid.uuid4().hex}"


def with_schema(dsn: str, schema: str) -> str:
    """The DSN with ``schema=NAME`` added: PostgresStore works in (and creates) that schema."""
    return f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}"


async def drop_schema(dsn: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def run_blocking(coro: Any) -> Any:
    """Run a coroutine to completion from synchronous code inside a running event loop
    (a thread with a loop of its own), for the synchronous ``rows`` helpers."""
    import asyncio
    import threading

    result: list[Any] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as e:  # noqa: BLE001 - re-raised in the calling thread
            error.append(e)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def postgres_rows(dsn: str, schema: str) -> Any:
    """A ``rows`` twin for a PostgreSQL schema: the same SQL (``?`` placeholders), the same
    result shape (a list of tuples, bytea as bytes)."""
    import asyncpg

    async def fetch(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(dsn, server_settings={"search_path": f'"{schema}"'})
        try:
            numbers = iter(range(1, 1000))
            numbered = re.sub(r"\?", lambda _: f"${next(numbers)}", sql)
            return [tuple(r) for r in await conn.fetch(numbered, *params)]
        finally:
            await conn.close()

    def query(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        result: list[tuple[Any, ...]] = run_blocking(fetch(sql, params))
        return result

    return query


@pytest.fixture
async def pg_database_url() -> AsyncIterator[str]:
    """A PostgreSQL database URL on a fresh schema (skips without a DSN)."""
    dsn = postgres_dsn()
    schema = new_schema()
    try:
        yield with_schema(dsn, schema)
    finally:
        await drop_schema(dsn, schema)


@pytest.fixture(params=["sqlite", "postgres"])
async def any_database_url(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[str]:
    """The database URL of each store in turn: the SQLite file of ``db_path``, then a fresh
    PostgreSQL schema (skipped without a DSN)."""
    if request.param == "sqlite":
        yield f"sqlite:///{db_path}"
        return
    dsn = postgres_dsn()
    schema = new_schema()
    try:
        yield with_schema(dsn, schema)
    finally:
        await drop_schema(dsn, schema)


@pytest.fixture
def any_settings(any_database_url: str) -> Settings:
    """``settings`` on each store in turn. A test module (or this conftest) runs on both
    stores by overriding ``settings`` to return this and ``rows`` to return ``settings_rows``."""
    return load_settings({}, database_url=any_database_url, public_url=PUBLIC_URL)


@pytest.fixture
def settings_rows(settings: Settings) -> Any:
    """``rows`` for whichever database ``settings`` names: the SQLite file, or the schema
    of a PostgreSQL URL made by ``with_schema`` (so a module with settings of its own reads
    its own database)."""
    return rows_for(settings.database_url)


def rows_for(database_url: str) -> Any:
    """A ``rows`` callable on the database a URL names."""
    if database_url.startswith("sqlite:///"):
        path = database_url[len("sqlite:///") :]
        return lambda sql, *params: _sqlite_rows(Path(path), sql, params)
    dsn, _, schema = database_url.rpartition("schema=")
    return postgres_rows(dsn.rstrip("?&"), schema)


def _sqlite_rows(db_path: Path, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def page_path(item: dict[str, Any]) -> str:
    """Where a commentary's page is (docs/pages.md), spelt from its API fields: the language,
    the year and month written in ``published_at``, the slug."""
    published = str(item["published_at"])
    return f"/{item['lang']}/{published[:4]}/{published[5:7]}/{item['slug']}"


def page_url(item: dict[str, Any], base: str = PUBLIC_URL) -> str:
    return base + page_path(item)
