"""The OpenAPI document is a contract: schemathesis generates requests for every operation
from /schema/openapi.json and checks the in-process app's answers against it (no 5xx, only
documented status codes and content types, bodies that match the documented schemas).

Bounded: a few examples per operation, deterministic, well under a minute.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from litestar import Litestar
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from feedsvc.config import Settings, load_settings
from feedsvc.http.app import create_app
from feedsvc.model import CategoryIn, NewCommentary
from feedsvc.service import Service
from feedsvc.store import open_store
from tests.conftest import CATEGORIES, PUBLIC_URL, commentary

pytestmark = pytest.mark.slow


def no_server_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """not_a_server_error, except oEmbed's documented 501 for formats other than json
    (the status oEmbed 1.0, section 2.3.5, prescribes)."""
    if response.status_code == 501 and case.operation.path == "/oembed" and case.query.get("format") != "json":
        return None
    result: bool | None = not_a_server_error(ctx, response, case)
    return result


CHECKS = [no_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


async def _prepare(settings: Settings) -> str:
    """Seed the database (categories, a commentary) and make a write token, through the
    service on its own connection, before the app under test opens the file."""
    store = open_store(settings.database_url)
    await store.open()
    try:
        service = Service(store, base_url=settings.base_url)
        for slug, body in CATEGORIES.items():
            await service.put_category(slug, CategoryIn(names=body["names"]))
        await service.publish(msgspec.convert(commentary(), NewCommentary))
        token, _ = await service.create_token("schemathesis", ["write"])
        return token
    finally:
        await store.close()


def _document() -> dict[str, Any]:
    """The OpenAPI document as the app builds it; building an app opens no database."""
    app = create_app(load_settings({}, database_url="sqlite:///unused.db", public_url=PUBLIC_URL))
    document: dict[str, Any] = app.openapi_schema.to_schema()
    return document


DOCUMENT = _document()
# schemathesis' lazy fixture loader does not work with this pytest; the document is built
# in process instead, and test_the_served_document_is_the_one_tested keeps the two equal.
schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture(scope="module")
def app_and_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Litestar, str]]:
    folder: Path = tmp_path_factory.mktemp("openapi")
    settings = load_settings(
        {}, database_url=f"sqlite:///{folder / 'feedsvc.db'}", public_url=PUBLIC_URL, media_dir=str(folder / "media"),
    )
    token = asyncio.run(_prepare(settings))
    app = create_app(settings)
    yield app, token
    # schemathesis keeps an ASGI app's lifespan running until the process exits; end it here
    # so the store closes while the test session is still watching for resource warnings.
    from schemathesis.python import asgi

    asgi.shutdown_lifespans()


def test_the_served_document_is_the_one_tested(app_and_token: tuple[Litestar, str]) -> None:
    from schemathesis.python import asgi

    with asgi.get_client(app_and_token[0]) as client:
        response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert response.json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_every_operation_keeps_its_contract(case: Any, app_and_token: tuple[Litestar, str]) -> None:
    app, token = app_and_token
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
