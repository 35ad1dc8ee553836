"""Shared fixtures: a real SQLite file per test, the real app, real HTTP in process."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.config import Settings, load_settings
from feedsvc.http.app import create_app
from feedsvc.service import Service

PUBLIC_URL = "https://feeds.example.org"

CATEGORIES = {
    "regional-security": {"names": {"en": "Regional security", "be": "Рэгіянальная бяспека", "ru": "Региональная безопасность"}},
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
def settings(db_path: Path) -> Settings:
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
def rows(db_path: Path) -> Iterator[Any]:
    """Read the real database file directly, to assert on what was (not) stored."""

    def query(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(db_path)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    yield query


def pytest_report_header() -> str:
    dsn = os.environ.get("FEEDSVC_TEST_POSTGRES_DSN")
    return f"postgres: {'FEEDSVC_TEST_POSTGRES_DSN set' if dsn else 'not configured (PostgreSQL tests skip)'}"
