"""Polite polling: per-client rate limits (issue 4, part 5; repeated auth failures, issue 7).

Real HTTP through the app. Each test builds an app with small limits of its own (the
defaults stay as they are for every other test). Requests from other addresses go through
httpx's ASGI transport, which sets the connection's address. The Redis tests use the
server at 127.0.0.1:6379 with a key prefix of their own, and skip when it is not there.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.config import Settings, load_settings
from feedsvc.errors import InvalidInputError
from feedsvc.http.app import create_app
from feedsvc.http.ratelimit import SWEEP_SECONDS, MemoryBuckets, Rate, parse_rate
from feedsvc.model import TokenInfo
from feedsvc.store import TokenRecord
from tests.conftest import assert_error, commentary


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    """Rate limiting does not depend on the store: SQLite only (see ``sqlite_settings``)."""
    return sqlite_settings

API = "/api/v1/commentaries"
REDIS_URL = "redis://127.0.0.1:6379/0"
HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-policy")


@asynccontextmanager
async def serve(settings: Settings, **limits: Any) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The app with ``limits`` replacing some settings, started and stopped."""
    app = create_app(msgspec.structs.replace(settings, **limits))
    async with AsyncTestClient(app, base_url="http://testserver.local") as client:
        yield client


@asynccontextmanager
async def from_address(client: AsyncTestClient[Litestar], host: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the (started) app whose connections come from ``host``."""
    transport = httpx.ASGITransport(app=client.app, client=(host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        yield c


def limits_of(response: httpx.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in HEADERS if name in response.headers}


def assert_429(response: httpx.Response, policy: str) -> int:
    """A 429 in the one error shape, with Retry-After and the bucket's headers; returns
    Retry-After."""
    body = assert_error(response, 429)
    assert body["extra"]["policy"] == policy
    retry = int(response.headers["retry-after"])
    assert retry >= 1 and body["extra"]["retry_after"] == retry
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["ratelimit-remaining"] == "0"
    assert set(HEADERS) <= set(response.headers)
    return retry


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_time(client: AsyncTestClient[Litestar]) -> FakeTime:
    """Install a hand-moved clock in the app's in-memory buckets."""
    clock = FakeTime()
    store = client.app.state["rate_limiter"].store
    assert isinstance(store, MemoryBuckets)
    store.clock = clock
    return clock


# --- rates and defaults -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("20/s,200", Rate(20, 1.0, 200)),
        ("10/min", Rate(10, 60.0, 10)),
        (" 3 / h , 5 ", Rate(3, 3600.0, 5)),
        ("0", None),
    ],
)
def test_rates_are_written_count_per_unit_and_burst(text: str, rate: Rate | None) -> None:
    assert parse_rate(text, "FEEDSVC_RATE_LIMIT_READ") == rate


@pytest.mark.parametrize("text", ["", "20", "20/day", "0/s", "20/s,0", "-1/s", "20/s,", "fast"])
def test_a_malformed_rate_stops_the_app_from_starting_and_names_the_setting(settings: Settings, text: str) -> None:
    with pytest.raises(InvalidInputError, match="FEEDSVC_RATE_LIMIT_SEARCH"):
        create_app(msgspec.structs.replace(settings, rate_limit_search=text))


def test_the_defaults_are_generous_and_order_the_classes_by_cost() -> None:
    s = load_settings({})
    feeds, read, search, write = (
        parse_rate(x, "") for x in (s.rate_limit_feeds, s.rate_limit_read, s.rate_limit_search, s.rate_limit_write)
    )
    assert feeds and read and search and write
    assert feeds.requests / feeds.period > read.requests / read.period > search.requests / search.period
    assert write.requests / write.period <= read.requests / read.period
    assert min(feeds.burst, read.burst, search.burst, write.burst) >= 200
    env = load_settings({"FEEDSVC_RATE_LIMIT_READ": "5/min,7", "FEEDSVC_REDIS_PREFIX": "x:"})
    assert env.rate_limit_read == "5/min,7" and env.redis_prefix == "x:"


async def test_every_response_of_a_limited_class_says_where_the_client_stands(client: Any) -> None:
    r = await client.get("/api/v1/categories")
    assert limits_of(r) == {
        "ratelimit-limit": "500",
        "ratelimit-remaining": "499",
        "ratelimit-reset": "1",
        "ratelimit-policy": '500;w=25;policy="read"',
    }
    assert (await client.get("/feed.json")).headers["ratelimit-policy"] == '1000;w=20;policy="feeds"'
    assert (await client.get(API, params={"q": "border"})).headers["ratelimit-policy"] == '500;w=100;policy="search"'


# --- limits -------------------------------------------------------------------------------


async def test_a_client_over_its_budget_gets_429_with_retry_after(settings: Settings) -> None:
    async with serve(settings, rate_limit_read="2/min,3") as client:
        seen = [limits_of(await client.get("/api/v1/tags")) for _ in range(3)]
        assert [s["ratelimit-remaining"] for s in seen] == ["2", "1", "0"]
        assert [s["ratelimit-reset"] for s in seen] == ["30", "60", "90"]
        assert {s["ratelimit-limit"] for s in seen} == {"3"}
        assert {s["ratelimit-policy"] for s in seen} == {'3;w=90;policy="read"'}
        refused = await client.get("/api/v1/tags")
        assert assert_429(refused, "read") == 30
        assert refused.headers["ratelimit-reset"] == "90"
        # Refused requests cost nothing: the wait does not grow.
        assert int((await client.head("/api/v1/authors")).headers["retry-after"]) == 30


async def test_the_budget_refills_at_the_rate(settings: Settings) -> None:
    async with serve(settings, rate_limit_read="2/min,3") as client:
        clock = fake_time(client)
        for _ in range(3):
            assert (await client.get("/api/v1/tags")).status_code == 200
        clock.now += 29
        assert int(assert_429(await client.get("/api/v1/tags"), "read")) == 1
        clock.now += 1
        r = await client.get("/api/v1/tags")
        assert r.status_code == 200 and r.headers["ratelimit-remaining"] == "0"
        clock.now += 90
        assert (await client.get("/api/v1/tags")).headers["ratelimit-remaining"] == "2"


async def test_clients_have_budgets_of_their_own(settings: Settings) -> None:
    async with (
        serve(settings, rate_limit_read="1/min,2") as client,
        from_address(client, "192.0.2.1") as one,
        from_address(client, "192.0.2.2") as two,
    ):
        for _ in range(2):
            assert (await one.get("/api/v1/tags")).status_code == 200
        assert_429(await one.get("/api/v1/tags"), "read")
        r = await two.get("/api/v1/tags")
        assert r.status_code == 200 and r.headers["ratelimit-remaining"] == "1"


async def test_an_ipv6_client_is_one_client_across_its_64(settings: Settings) -> None:
    async with (
        serve(settings, rate_limit_read="1/min,2") as client,
        from_address(client, "2001:db8:1:2::1") as a,
        from_address(client, "2001:db8:1:2:ffff::9") as same_64,
        from_address(client, "2001:db8:1:3::1") as other_64,
    ):
        assert (await a.get("/api/v1/tags")).status_code == 200
        assert (await same_64.get("/api/v1/tags")).status_code == 200
        assert_429(await a.get("/api/v1/tags"), "read")
        assert (await other_64.get("/api/v1/tags")).status_code == 200


async def test_a_token_seen_to_be_valid_has_its_own_budget_and_an_invented_one_does_not(settings: Settings) -> None:
    async with serve(settings, rate_limit_read="1/min,2") as client:
        service = client.app.state.service
        first, _ = await service.create_token("first", ["write"])
        second, _ = await service.create_token("second", ["write"])
        for token in (first, second):  # a write shows the token is valid
            put = await client.put(
                "/api/v1/categories/economy",
                json={"names": {"en": "Economy"}},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert put.status_code in (200, 201), put.text
        for _ in range(2):
            assert (await client.get("/api/v1/tags", headers={"Authorization": f"Bearer {first}"})).status_code == 200
        assert_429(await client.get("/api/v1/tags", headers={"Authorization": f"Bearer {first}"}), "read")
        # Same address, another token: another budget; and the address's own is untouched.
        assert (await client.get("/api/v1/tags", headers={"Authorization": f"Bearer {second}"})).status_code == 200
        assert (await client.get("/api/v1/tags")).headers["ratelimit-remaining"] == "1"
        assert (await client.get("/api/v1/tags")).status_code == 200
        assert_429(await client.get("/api/v1/tags"), "read")
        # Made-up token ids do not buy a fresh budget: they count as the address.
        for n in range(3):
            invented = {"Authorization": f"Bearer fsv_{n:012x}_whatever"}
            assert_429(await client.get("/api/v1/tags", headers=invented), "read")


async def test_feeds_pages_static_files_and_health_are_not_limited_by_the_api_budget(settings: Settings) -> None:
    async with serve(settings, rate_limit_read="1/min,1") as client:
        assert (await client.get("/api/v1/tags")).status_code == 200
        assert_429(await client.get("/api/v1/tags"), "read")
        for path in (
            "/feed.rss",
            "/feed.json",
            "/",
            "/icon.svg",
            "/feed.xsl",
            "/embed.js",
            "/embed",
            "/feeds.opml",
        ):
            r = await client.get(path)
            assert r.status_code == 200, (path, r.status_code)
            assert r.headers["ratelimit-policy"].endswith('policy="feeds"'), path
        # Probes are no client's budget at all: an orchestrator's must never be refused.
        for path in ("/healthz", "/readyz"):
            r = await client.get(path)
            assert r.status_code == 200 and "ratelimit-policy" not in r.headers, path


async def test_probes_are_answered_when_every_budget_is_spent(settings: Settings) -> None:
    async with serve(settings, rate_limit_feeds="1/min,1", rate_limit_read="1/min,1") as client:
        assert (await client.get("/feed.rss")).status_code == 200
        assert_429(await client.get("/feed.rss"), "feeds")
        for _ in range(20):
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200


async def test_a_304_costs_a_feeds_token_and_a_full_answer_costs_the_api_budget(settings: Settings) -> None:
    async with serve(settings, rate_limit_read="1/min,2", rate_limit_feeds="1/min,20") as client:
        first = await client.get("/api/v1/categories")
        etag = first.headers["etag"]
        assert first.headers["ratelimit-remaining"] == "1"
        for n in range(5):
            r = await client.get("/api/v1/categories", headers={"If-None-Match": etag})
            assert r.status_code == 304
            assert limits_of(r)["ratelimit-policy"].endswith('policy="feeds"')
            assert r.headers["ratelimit-remaining"] == str(19 - n)
        # The API budget is still there...
        # ...and a conditional request that gets a full answer is charged to it.
        r = await client.get("/api/v1/tags", headers={"If-None-Match": '"stale"'})
        assert r.status_code == 200
        assert r.headers["ratelimit-policy"].endswith('policy="read"') and r.headers["ratelimit-remaining"] == "0"
        # With the API budget spent, made-up validators do not get around it.
        assert_429(await client.get("/api/v1/tags", headers={"If-None-Match": '"stale"'}), "read")
        assert_429(await client.get("/api/v1/categories", headers={"If-None-Match": etag}), "read")


async def test_full_text_searches_have_a_smaller_budget_of_their_own(settings: Settings) -> None:
    async with serve(settings, rate_limit_search="1/min,2") as client:
        for _ in range(2):
            assert (await client.get(API, params={"q": "border"})).status_code == 200
        assert_429(await client.get(API, params={"q": "talks"}), "search")
        assert_429(await client.get("/feed.rss", params={"q": "talks"}), "search")
        # Without q (or with an empty one) the same endpoints are plain reads and feeds.
        assert (await client.get(API)).status_code == 200
        assert (await client.get(API, params={"q": ""})).status_code == 200
        assert (await client.get("/feed.rss")).status_code == 200


async def test_writes_have_a_budget_of_their_own(settings: Settings) -> None:
    async with serve(settings, rate_limit_write="1/min,2") as client:
        token, _ = await client.app.state.service.create_token("w", ["write"])
        auth = {"Authorization": f"Bearer {token}"}
        # The first write is the address's; once the token is known to be valid, it is the token's.
        for slug in ("economy", "foreign-policy", "regional-security"):
            assert (
                await client.put(f"/api/v1/categories/{slug}", json={"names": {"en": slug}}, headers=auth)
            ).status_code == 201
        assert_429(await client.post(API, json=commentary(category="economy"), headers=auth), "write")
        assert (await client.get(API)).status_code == 200
        # The address still has a write left.
        assert (await client.put("/api/v1/categories/other", json={"names": {"en": "x"}})).status_code == 401


async def test_a_class_set_to_0_is_not_limited(settings: Settings) -> None:
    async with serve(settings, rate_limit_read="0", rate_limit_feeds="1/min,1") as client:
        for _ in range(5):
            r = await client.get("/api/v1/tags")
            assert r.status_code == 200 and limits_of(r) == {}
        # Conditional API reads then cost nothing either.
        etag = (await client.get("/api/v1/tags")).headers["etag"]
        for _ in range(3):
            assert (await client.get("/api/v1/tags", headers={"If-None-Match": etag})).status_code == 304


# --- repeated authentication failures (issue 7) -------------------------------------------


async def test_repeated_authentication_failures_block_writes_from_that_address(settings: Settings) -> None:
    async with serve(settings, rate_limit_auth_failures="1/min,3") as client:
        service = client.app.state.service
        token, _ = await service.create_token("good", ["write"])
        async with from_address(client, "198.51.100.7") as attacker, from_address(client, "198.51.100.8") as other:
            bad = {"Authorization": "Bearer fsv_0123456789ab_guess"}
            for _ in range(3):
                assert_error(await attacker.post(API, json=commentary(), headers=bad), 401)
            body = assert_error(await attacker.post(API, json=commentary(), headers=bad), 429)
            assert "authentication" in body["detail"] and body["extra"]["policy"] == "auth"
            assert int((await attacker.post(API, json=commentary())).headers["retry-after"]) == 60
            # Even a valid token, and reads that carry credentials, wait from that address...
            good = {"Authorization": f"Bearer {token}"}
            assert_error(
                await attacker.put("/api/v1/categories/economy", json={"names": {"en": "E"}}, headers=good), 429
            )
            assert_error(await attacker.get(f"{API}/01JNZZZZZZZZZZZZZZZZZZZZZZ", headers=bad), 429)
            # ...while plain reads go on, and other addresses are not affected.
            assert (await attacker.get(API)).status_code == 200
            assert (
                await other.put("/api/v1/categories/economy", json={"names": {"en": "E"}}, headers=good)
            ).status_code == 201
            assert_error(await other.post(API, json=commentary(), headers=bad), 401)


async def test_403s_count_as_failures_too(settings: Settings) -> None:
    async with serve(settings, rate_limit_auth_failures="1/min,2") as client:
        service = client.app.state.service
        token, info = await service.create_token("writer", ["write"])
        record = await service.store.get_token(info.id)
        reader = TokenInfo(id="0000000000aa", name="reader", scopes=["read"], created_at=info.created_at)
        await service.store.add_token(TokenRecord(info=reader, salt=record.salt, digest=record.digest))
        headers = {"Authorization": f"Bearer fsv_0000000000aa_{token.split('_', 2)[2]}"}
        for _ in range(2):
            assert_error(await client.post(API, json=commentary(), headers=headers), 403)
        assert_error(await client.post(API, json=commentary(), headers=headers), 429)


# --- CORS ---------------------------------------------------------------------------------


async def test_scripts_on_other_origins_can_read_the_limits_and_the_429(settings: Settings) -> None:
    async with serve(settings, rate_limit_read="1/min,1") as client:
        origin = {"Origin": "https://partner.example"}
        ok = await client.get(API, headers=origin)
        exposed = {h.strip().lower() for h in ok.headers["access-control-expose-headers"].split(",")}
        assert {"retry-after", *HEADERS} <= exposed
        refused = await client.get(API, headers=origin)
        assert_429(refused, "read")
        assert refused.headers["access-control-allow-origin"] == "*"
        assert {"retry-after", *HEADERS} <= {
            h.strip().lower() for h in refused.headers["access-control-expose-headers"].split(",")
        }


# --- memory -------------------------------------------------------------------------------


async def test_the_in_memory_store_stays_bounded(settings: Settings) -> None:
    async with serve(settings) as client:
        limiter = client.app.state["rate_limiter"]
        clock = FakeTime()
        limiter.store = store = MemoryBuckets(max_buckets=20, clock=clock)
        for n in range(60):
            async with from_address(client, f"203.0.113.{n}") as c:
                assert (await c.get("/icon.svg")).status_code == 200
            assert len(store.tats) <= 20
        assert len(store.tats) == 20
        assert "feeds:a:203.0.113.59" in store.tats and "feeds:a:203.0.113.0" not in store.tats
        # Buckets that have refilled are forgotten at the next sweep.
        clock.now += SWEEP_SECONDS + 1
        assert (await client.get("/icon.svg")).status_code == 200
        assert list(store.tats) == ["feeds:a:testclient"]


# --- Redis --------------------------------------------------------------------------------


def redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


needs_redis = pytest.mark.skipif(not redis_available(), reason="no Redis server at 127.0.0.1:6379")


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are removed afterwards."""
    import redis.asyncio as aioredis

    prefix = f"feedsvc-test:{uuid.uuid4().hex}:"
    yield prefix
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@needs_redis
async def test_nodes_sharing_redis_share_one_budget(settings: Settings, tmp_path: Any, redis_prefix: str) -> None:
    limits = {"redis_url": REDIS_URL, "redis_prefix": redis_prefix, "rate_limit_read": "2/min,3"}
    other = msgspec.structs.replace(settings, database_url=f"sqlite:///{tmp_path / 'other.db'}")
    async with serve(settings, **limits) as node1, serve(other, **limits) as node2:
        remaining = []
        for node in (node1, node2, node1):
            r = await node.get("/api/v1/tags")
            assert r.status_code == 200
            remaining.append(r.headers["ratelimit-remaining"])
        assert remaining == ["2", "1", "0"]
        assert 29 <= assert_429(await node2.get("/api/v1/tags"), "read") <= 30
        assert 29 <= assert_429(await node1.get("/api/v1/tags"), "read") <= 30
        # Feeds and searches keep budgets of their own there too.
        assert (await node2.get("/feed.atom")).status_code == 200

    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        key = f"{redis_prefix}read:a:testclient"
        assert await client.exists(key)
        assert 0 < await client.pttl(key) <= 91_000  # gone once the bucket is full again
    finally:
        await client.aclose()


@needs_redis
async def test_redis_counts_auth_failures_and_late_charges_too(settings: Settings, redis_prefix: str) -> None:
    limits = {
        "redis_url": REDIS_URL,
        "redis_prefix": redis_prefix,
        "rate_limit_auth_failures": "1/min,2",
        "rate_limit_read": "1/min,2",
    }
    async with serve(settings, **limits) as client:
        bad = {"Authorization": "Bearer fsv_0123456789ab_guess"}
        for _ in range(2):
            assert_error(await client.post(API, json=commentary(), headers=bad), 401)
        assert_429(await client.post(API, json=commentary(), headers=bad), "auth")
        first = await client.get("/api/v1/tags")
        assert first.headers["ratelimit-remaining"] == "1"
        assert (await client.get("/api/v1/tags", headers={"If-None-Match": first.headers["etag"]})).status_code == 304
        r = await client.get("/api/v1/tags", headers={"If-None-Match": '"stale"'})
        assert r.status_code == 200 and r.headers["ratelimit-remaining"] == "0"
        assert_429(await client.get("/api/v1/tags"), "read")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_without_redis_the_limits_fail_open_and_say_so_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="feedsvc.ratelimit")
    limits = {"redis_url": f"redis://127.0.0.1:{closed_port()}/0", "rate_limit_read": "1/min,1"}
    async with serve(settings, **limits) as client:
        for _ in range(5):
            r = await client.get("/api/v1/tags")
            assert r.status_code == 200
            assert limits_of(r) == {}
        assert (await client.get("/feed.rss")).status_code == 200
    warnings = [rec for rec in caplog.records if rec.name == "feedsvc.ratelimit"]
    assert len(warnings) == 1 and "Redis is unavailable" in warnings[0].getMessage()
