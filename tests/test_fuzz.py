"""Property: no URL a client can send to a public GET route is answered with a 5xx.

Every GET operation in the app's own OpenAPI schema (so a new route or parameter is fuzzed
as soon as it exists) gets query strings and path segments built by hypothesis from the
parameters it declares, names no route reads, and values that are valid for the parameter,
hostile (NUL and other controls, overlong and invalid UTF-8, an encoded lone surrogate,
bidi controls, escapes of escapes, SQL and FTS syntax), arbitrary text of any code point
(surrogates included), or 10 KB long; each parameter may be repeated. The URL goes to the
app as a server would pass it on, on a seeded database, on each store.

An answer must be below 500, and a 400 or 414 must be in the one error shape. In CI each
operation gets ``FEEDSVC_TEST_FUZZ_EXAMPLES`` examples (default 150; operations without
parameters a quarter of it) with a fixed seed (``FEEDSVC_TEST_FUZZ_SEED``, default 18), about
45 s of CPU for both stores; the longer run is in docs/operating.md ("Fuzzing").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote, quote_from_bytes

import msgspec
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from feedsvc.config import load_settings
from feedsvc.http.app import create_app
from tests.conftest import (
    CATEGORIES,
    PUBLIC_URL,
    commentary,
    drop_schema,
    new_schema,
    postgres_dsn,
    run_blocking,
    with_schema,
)
from tests.test_request_cost import Answer, asgi_get

EXAMPLES = int(os.environ.get("FEEDSVC_TEST_FUZZ_EXAMPLES", "150"))
SEED = int(os.environ.get("FEEDSVC_TEST_FUZZ_SEED", "18"))


class Operation(NamedTuple):
    path: str
    query: tuple[str, ...]
    in_path: tuple[str, ...]


def operations() -> list[Operation]:
    """Every GET operation of the schema, with the query and path parameters it declares."""
    app = create_app(load_settings({}, database_url="sqlite:///never-opened.db", public_url=PUBLIC_URL))
    out = []
    for path, item in app.openapi_schema.to_schema()["paths"].items():
        if "get" in item:
            params = item["get"].get("parameters", [])
            out.append(Operation(
                path,
                tuple(p["name"] for p in params if p["in"] == "query"),
                tuple(p["name"] for p in params if p["in"] == "path"),
            ))
    return out


OPERATIONS = operations()

# --- the strategies: wire text, already percent-encoded ----------------------------------------

HOSTILE = [
    "%00", "a%00b", "%C0%80", "%C0%AF", "%ED%A0%80", "%ED%BF%BF", "%FF%FE", "%F8%88%80%80%80", "%1B", "%7F",
    "%0A", "%0D%0A", "%09", "%E2%80%AE", "%EF%BF%BE", "%25", "%2500", "%252F", "%2F", "..%2F..%2F", "%2e%2e",
    "'", "%27%20OR%201%3D1--", "%22", "NEAR(a%20b)", "*", "%3Cscript%3E", "-1", "0", "99999999999999999999",
    "1e400", "NaN", "%F0%9F%98%80", "%D0%B0", "", "%20",
]
"""Values that broke something somewhere, or could (percent-encoded as sent)."""

VALID = {
    "category": ["economy", "foreign-policy,economy"], "lang": ["en", "ru", "pt-BR"], "trend": ["worsened"],
    "from": ["2026-03-01", "2026-03-01T00:00:00Z"], "to": ["2026-03-31"], "updated_since": ["2026-01-01"],
    "limit": ["1", "5", "100"], "q": ["border", "sanct"], "tag": ["border"], "author": ["Anna Kovalenko"],
    "theme": ["dark"], "format": ["json", "xml"], "maxwidth": ["400"], "maxheight": ["300"], "start": ["2026-03-02"],
    "language": ["en", "ru"], "slug": ["economy", "regional-security"], "since": ["0"],
}
"""Values each parameter accepts (ids, cursors and URLs are added from the seeded data)."""


def encoded(text: str) -> str:
    """``text`` percent-encoded as UTF-8, lone surrogates as their three bytes (what a
    client that does not check sends)."""
    return quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe="")


ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40)
LONG = ["a" * 10_240, quote("я" * 5_000)]  # 10 KB as sent; 10 KB of UTF-8, 60 KB as sent


def values(name: str, seeded: dict[str, list[str]]) -> st.SearchStrategy[str]:
    good = [quote(v, safe=",") for v in VALID.get(name, []) + seeded.get(name, [])]
    return st.one_of(
        st.sampled_from(good or ["x"]),
        st.sampled_from(HOSTILE),
        ANY_TEXT.map(encoded),
        st.binary(max_size=30).map(lambda b: quote_from_bytes(b, safe="")),
        st.sampled_from(good or ["x"]).flatmap(lambda v: st.sampled_from(HOSTILE).map(lambda h: v + h)),
        st.sampled_from(LONG),
    )


def query_strings(op: Operation, seeded: dict[str, list[str]]) -> st.SearchStrategy[str]:
    names = [*op.query, "utm_source", "%71", "q%00", ""]
    by_name = {name: values(name if name in op.query else "", seeded) for name in names}  # built once
    pair = st.sampled_from(names).flatmap(lambda n: by_name[n].map(lambda v: f"{n}={v}"))
    repeated = st.tuples(pair, st.integers(1, 3)).map(lambda t: [t[0]] * t[1])
    return st.lists(st.one_of(pair.map(lambda p: [p]), repeated), max_size=6).map(
        lambda groups: "&".join(p for group in groups for p in group)
    )


def urls(op: Operation, seeded: dict[str, list[str]]) -> st.SearchStrategy[str]:
    path = st.just(op.path)
    for name in op.in_path:
        path = st.tuples(path, values(name, seeded)).map(
            lambda t, name=name: t[0].replace("{" + name + "}", t[1] or "x")
        )
    return st.tuples(path, query_strings(op, seeded)).map(lambda t: f"{t[0]}?{t[1]}" if t[1] else t[0])


# --- the app, seeded, on each store -------------------------------------------------------------


class Seeded(NamedTuple):
    client: TestClient[Any]
    values: dict[str, list[str]]

    def get(self, url: str) -> Answer:
        """GET ``url`` through the app's ASGI interface exactly as given (httpx refuses URLs
        over 64 KiB; servers pass them on)."""
        answer: Answer = self.client.blocking_portal.call(asgi_get, self.client.app, url)
        return answer


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    if request.param == "sqlite":
        url, cleanup = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'feedsvc.db'}", None
    else:
        dsn, schema = postgres_dsn(), new_schema()
        url, cleanup = with_schema(dsn, schema), (dsn, schema)
    off = {f"rate_limit_{k}": "0" for k in ("feeds", "read", "search", "write", "auth_failures")}
    app = create_app(msgspec.structs.replace(load_settings({}, database_url=url, public_url=PUBLIC_URL), **off))
    try:
        with TestClient(app, base_url="http://testserver.local", raise_server_exceptions=False) as client:
            secret = client.blocking_portal.call(app.state.service.create_token, "fuzz", ["write"])[0]
            auth = {"Authorization": f"Bearer {secret}"}
            for slug, body in CATEGORIES.items():
                assert client.put(f"/api/v1/categories/{slug}", json=body, headers=auth).status_code in (200, 201)
            ids = []
            for n in range(6):
                body = commentary(
                    title=f"Border commentary {n}", lang="ru" if n % 3 == 0 else "en", category=list(CATEGORIES)[n % 3],
                    tags=["border", f"t{n}"], published_at=f"2026-03-{n + 2:02d}T10:00:00Z",
                    period={"start": "2026-03-02", "end": "2026-03-08"} if n % 2 else None,
                )
                r = client.post("/api/v1/commentaries", json=body, headers=auth)
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            cursor = client.get("/api/v1/commentaries?limit=1").json()["next_cursor"]
            since = client.get("/api/v1/changes?limit=1").json().get("next_cursor") or "0"
            found = {
                "id": ids, "cursor": [cursor], "since": [since],
                "url": [f"{PUBLIC_URL}/commentaries/{ids[0]}", f"{PUBLIC_URL}/api/v1/commentaries/{ids[1]}"],
            }
            yield Seeded(client, found)
    finally:
        if cleanup is not None:
            run_blocking(drop_schema(*cleanup))


@pytest.mark.parametrize("op", OPERATIONS, ids=[op.path for op in OPERATIONS])
def test_no_url_gets_a_5xx(seeded: Seeded, op: Operation) -> None:
    examples = EXAMPLES if op.query or op.in_path else max(EXAMPLES // 4, 5)

    @seed(SEED)
    @settings(
        max_examples=examples, deadline=None, database=None, derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(url=urls(op, seeded.values))
    def property(url: str) -> None:
        r = seeded.get(url)
        # oEmbed's own contract: a format the provider does not implement is a 501.
        documented = op.path == "/oembed" and r.status_code == 501 and "format" in r.text
        assert r.status_code < 500 or documented, (url, r.status_code, r.text[:300])
        if r.status_code in (400, 414):
            body = r.json()
            assert set(body) == {"status_code", "detail", "extra"}, (url, body)

    property()


def test_every_public_get_route_is_fuzzed() -> None:
    """The operations come from the schema: the routes a reader uses are among them."""
    paths = {op.path for op in OPERATIONS}
    for expected in ("/api/v1/commentaries/{id}/related", "/categories/{slug}/feed.rss", "/{language}/feed.json",
                     "/oembed", "/embed", "/commentaries/{id}", "/api/v1/digests/{start}"):
        assert expected in paths
    assert Path(__file__).name == "test_fuzz.py"
