"""Property: schemathesis finds no operation of the OpenAPI document answering a 5xx, on
either store (issue 18).

tests/test_openapi.py holds the app to its documented contract with a few examples per
operation; this run is the fuzzing one: ``FEEDSVC_TEST_SCHEMATHESIS_EXAMPLES`` examples
(200) per operation, reads and writes, generated both inside the declared types and bounds
and outside them, with the fixed seed ``FEEDSVC_TEST_SCHEMATHESIS_SEED`` (18), on a seeded
SQLite file and a seeded PostgreSQL schema. On top of what schemathesis makes, query and
path values may be replaced by NUL and other controls, 10 KB values, and repeated
parameters. Byte-level values that no HTTP client library sends as text (overlong UTF-8,
encoded lone surrogates, invalid UTF-8) are tests/test_fuzz.py's, which builds raw URLs.

Only the answer's class is checked (below 500, oEmbed's documented 501 aside). The longer,
nightly-style run is in docs/operating.md ("Fuzzing").
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from litestar import Litestar
from schemathesis import GenerationMode

from feedsvc.config import load_settings
from feedsvc.http.app import create_app
from tests.conftest import PUBLIC_URL, drop_schema, new_schema, postgres_dsn, run_blocking, with_schema
from tests.test_openapi import DOCUMENT, _prepare, no_server_error

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FEEDSVC_TEST_SCHEMATHESIS_EXAMPLES", "200"))
SEED = int(os.environ.get("FEEDSVC_TEST_SCHEMATHESIS_SEED", "18"))
HOSTILE = ["\x00", "a\x00b", "\x1b[0m", "\x7f", "\r\n", "\u202e", "\ufffe", "x" * 10_240, "я" * 5_000, "'--", "%00"]
NO_RATE_LIMITS = {f"rate_limit_{k}": "0" for k in ("feeds", "read", "search", "write", "auth_failures")}

schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES, allow_x00=True
)


def _hostile(values: dict[str, Any] | None, *, repeat: bool) -> st.SearchStrategy[dict[str, Any] | None]:
    """``values`` as generated, or with one of them hostile, or (query only) sent twice."""
    if not values:
        return st.just(values)
    names = sorted(values)
    replaced = st.tuples(st.sampled_from(names), st.sampled_from(HOSTILE)).map(lambda t: {**values, t[0]: t[1]})
    options = [st.just(values), replaced]
    if repeat:
        options.append(st.sampled_from(names).map(lambda n: {**values, n: [values[n], values[n]]}))
    return st.one_of(*options)


@schema.hook
def flatmap_query(context: Any, query: dict[str, Any] | None) -> st.SearchStrategy[dict[str, Any] | None]:
    return _hostile(query, repeat=True)


@schema.hook
def flatmap_path_parameters(context: Any, path: dict[str, Any] | None) -> st.SearchStrategy[dict[str, Any] | None]:
    return _hostile(path, repeat=False)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def app_and_token(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Litestar, str]]:
    folder: Path = tmp_path_factory.mktemp("schemathesis")
    if request.param == "sqlite":
        url, cleanup = f"sqlite:///{folder / 'feedsvc.db'}", None
    else:
        dsn, name = postgres_dsn(), new_schema()
        url, cleanup = with_schema(dsn, name), (dsn, name)
    settings_ = msgspec.structs.replace(
        load_settings({}, database_url=url, public_url=PUBLIC_URL, media_dir=str(folder / "media")), **NO_RATE_LIMITS
    )
    try:
        token = asyncio.run(_prepare(settings_))
        yield create_app(settings_), token
    finally:
        from schemathesis.python import asgi

        asgi.shutdown_lifespans()
        if cleanup is not None:
            run_blocking(drop_schema(*cleanup))


@schema.parametrize()
@seed(SEED)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_a_server_error(case: Any, app_and_token: tuple[Litestar, str]) -> None:
    app, token = app_and_token
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {token}"}, checks=[no_server_error])
