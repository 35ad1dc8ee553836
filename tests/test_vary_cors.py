"""What a shared cache may reuse: ``Vary`` and CORS, as a specification.

A cache keys a stored answer by its URL and the request headers its ``Vary`` names. So
every request header that changes an answer (its type, coding, body or caching) is named in
``Vary``, on the 200 and on the 304 alike; and the CORS headers are on every answer to a
GET or HEAD whether or not the request has ``Origin`` (``Access-Control-Allow-Origin: *``,
so there is nothing to vary on). Otherwise one request primes a cache to serve others
what they did not ask for: a feed reader the HTML page, a partner's ``embed.js`` an answer
its browser refuses.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import commentary

API = "/api/v1/commentaries"
# A browser navigating to a feed: the one request that gets the HTML page.
NAVIGATION = {
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Mode": "navigate",
    "Accept": "text/html,*/*;q=0.8",
    "Accept-Encoding": "gzip",
}
# (path, the request each header's other values are tried against, {header: other values})
NEGOTIATED: list[tuple[str, dict[str, str], dict[str, list[str | None]]]] = [
    (
        path,
        NAVIGATION,
        {
            "Accept-Encoding": ["identity", "br", None],
            "Sec-Fetch-Dest": ["empty", None],
            "Sec-Fetch-Mode": ["cors", "no-cors", None],
            "Accept": ["application/rss+xml", None],
        },
    )
    for path in (
        "/feed.rss",
        "/feed.atom",
        "/categories/economy/feed.rss",
        "/en/feed.atom",
        "/digest.rss",
        "/en/digest.atom",
    )
] + [(path, NAVIGATION, {"Accept-Encoding": ["identity", "br", None]}) for path in ("/feed.json", "/en/digest.json")]
# Answers that matter to a cache; the rest (dates, request ids, rate limits) change anyway.
COMPARED = ("content-type", "content-encoding", "cache-control", "etag")


def vary_of(response: Any) -> set[str]:
    return {name.strip().lower() for name in response.headers.get("vary", "").split(",") if name.strip()}


def answer(response: Any) -> tuple[Any, ...]:
    return (response.status_code, *(response.headers.get(name) for name in COMPARED), response.content)


def with_header(headers: dict[str, str], name: str, value: str | None) -> dict[str, str]:
    out = {k: v for k, v in headers.items() if k != name}
    if value is not None:
        out[name] = value
    return out


@pytest.fixture
async def published(client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any) -> dict[str, Any]:
    r = await client.post(API, json=commentary(), headers=auth)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_every_header_that_changes_a_feed_is_named_in_vary_on_200_and_304(
    client: AsyncTestClient[Litestar], published: dict[str, Any], subtests: Any
) -> None:
    for path, base, others in NEGOTIATED:
        reference = await client.get(path, headers=base)
        assert reference.status_code == 200, (path, reference.text)
        for name, values in others.items():
            changed = False
            for value in values:
                with subtests.test(f"{path} {name}: {value}"):
                    other = await client.get(path, headers=with_header(base, name, value))
                    assert other.status_code == 200, other.text
                    if answer(other) != answer(reference):
                        changed = True
                        for r in (reference, other):
                            assert name.lower() in vary_of(r), (path, name, value, r.headers.get("vary"))
                    # The 304 to a poll with the answer's ETag says the same.
                    again = await client.get(
                        path, headers={**with_header(base, name, value), "If-None-Match": other.headers["etag"]}
                    )
                    assert again.status_code == 304
                    assert vary_of(again) == vary_of(other)
            assert changed, f"{path}: {name} changes nothing; the table is wrong"


async def test_a_commentary_a_token_may_see_as_a_draft_varies_on_authorization(
    client: AsyncTestClient[Litestar], published: dict[str, Any], auth: dict[str, str]
) -> None:
    path = f"{API}/{published['id']}"
    public, private = await client.get(path), await client.get(path, headers=auth)
    assert public.headers["cache-control"] != private.headers["cache-control"]  # the answer depends on it
    for r in (public, private):
        assert "authorization" in vary_of(r)
    again = await client.get(path, headers={"If-None-Match": public.headers["etag"]})
    assert again.status_code == 304 and "authorization" in vary_of(again)


async def test_every_read_carries_the_same_cors_headers_with_or_without_origin(
    client: AsyncTestClient[Litestar], published: dict[str, Any], subtests: Any
) -> None:
    item = f"{API}/{published['id']}"
    reads = [
        API, item, f"{item}?lang=en", "/api/v1/categories", "/api/v1/changes", "/api/v1/digests", "/feed.rss",
        "/feed.json", "/en/feed.atom", "/embed.js", "/embed", f"/oembed?url={published['url']}", "/", "/healthz",
        "/schema/openapi.json", f"{API}/01NOSUCHCOMMENTARY0000000", "/no/such/page",
    ]
    for path in reads:
        for method in ("GET", "HEAD"):
            with subtests.test(f"{method} {path}"):
                plain = await client.request(method, path)
                assert plain.status_code < 500
                assert plain.headers.get("access-control-allow-origin") == "*", dict(plain.headers)
                assert "etag" in plain.headers.get("access-control-expose-headers", "").lower()
                assert "access-control-allow-credentials" not in plain.headers
                # A partner's browser, cookies and all, gets the same CORS headers and Vary.
                cross = await client.request(
                    method, path, headers={"Origin": "https://partner.example", "Cookie": "a=b"}
                )
                for name in ("access-control-allow-origin", "access-control-expose-headers", "vary"):
                    assert cross.headers.get(name) == plain.headers.get(name), (name, dict(cross.headers))
                assert "origin" not in vary_of(plain)


async def test_conditional_and_fast_path_answers_carry_cors_headers(
    client: AsyncTestClient[Litestar], published: dict[str, Any]
) -> None:
    first = await client.get("/feed.atom")
    early = client.app.state.publisher.stats.early
    poll = await client.get("/feed.atom")
    not_modified = await client.get("/feed.atom", headers={"If-None-Match": first.headers["etag"]})
    assert client.app.state.publisher.stats.early == early + 2  # both answered before routing
    for r in (first, poll, not_modified):
        assert r.headers["access-control-allow-origin"] == "*"
    assert not_modified.status_code == 304
    api = await client.get(API)
    api_304 = await client.get(API, headers={"If-None-Match": api.headers["etag"]})
    assert api_304.status_code == 304 and api_304.headers["access-control-allow-origin"] == "*"


async def test_writes_get_no_cors_headers_and_preflights_still_work(
    client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any
) -> None:
    r = await client.post(API, json=commentary(), headers={**auth, "Origin": "https://partner.example"})
    assert r.status_code == 201 and not any(k.startswith("access-control-") for k in r.headers)
    granted = await client.options(
        API, headers={"Origin": "https://partner.example", "Access-Control-Request-Method": "GET"}
    )
    assert granted.status_code == 204 and granted.headers["access-control-allow-origin"] == "*"
    refused = await client.options(
        API, headers={"Origin": "https://partner.example", "Access-Control-Request-Method": "POST"}
    )
    assert "POST" not in refused.headers.get("access-control-allow-methods", "")
