"""Read-your-writes across nodes (issue 18, part 5): two real ``feedsvc serve`` processes
on one PostgreSQL schema, under read load; a commentary written through one node is in the
other node's feed on the read right after the ``201``, when that read carries the write's
``Feedsvc-Change`` back as ``Feedsvc-Min-Change`` (docs/scaling.md). With and without Redis
(the rate limiter's round trip to Redis changes the timing: the issue measured stale reads
only without it).

Each run also reads once without the header, right after the write, and counts how often
that read was stale: the race the header closes (reported, not asserted: it depends on
the machine). ``FEEDSVC_TEST_RYW_PAIRS`` pairs per run (100; the figures in
docs/benchmarks.md are from 1,000). Needs FEEDSVC_TEST_POSTGRES_DSN.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import commentary, with_schema
from tests.test_outage import API, GENEROUS, NO_RATE_LIMITS, database, nodes, redis_up

PAIRS = int(os.environ.get("FEEDSVC_TEST_RYW_PAIRS", "100"))
async def load(http: httpx.AsyncClient, base: str) -> None:
    """Readers polling the node's feeds as fast as they are answered."""
    while True:
        for path in ("/feed.rss", "/feed.atom", "/feed.json"):
            try:
                await http.get(base + path)
            except httpx.HTTPError:
                pass


@pytest.mark.parametrize("redis", [False, True], ids=["without-redis", "with-redis"])
async def test_a_read_on_any_node_sees_a_write_acknowledged_by_another(tmp_path: Path, redis: bool) -> None:
    if redis and not redis_up():
        pytest.skip("no Redis on 127.0.0.1:6379")
    settings = dict(NO_RATE_LIMITS)
    if redis:
        settings = {k: GENEROUS for k in settings} | {
            "FEEDSVC_REDIS_URL": "redis://127.0.0.1:6379/0", "FEEDSVC_REDIS_PREFIX": f"ryw-{uuid.uuid4().hex}:",
        }
    async with database(tmp_path) as (dsn, name, token):
        async with nodes(with_schema(dsn, name), tmp_path, 2, **settings) as (a, b), httpx.AsyncClient(
            timeout=30
        ) as http:
            auth = {"Authorization": f"Bearer {token}"}
            loaders = [asyncio.create_task(load(http, node.url)) for node in (a, a, b)]
            stale, stale_without_header = [], 0
            try:
                for n in range(PAIRS):
                    writer, reader = (b, a) if n % 2 == 0 else (a, b)
                    title = f"Pair {n} {uuid.uuid4().hex[:8]}"
                    r = await http.post(writer.url + API, json=commentary(title=title), headers=auth)
                    assert r.status_code == 201, r.text
                    change = r.headers["feedsvc-change"]
                    assert int(change) == r.json()["version"]
                    plain = await http.get(reader.url + "/feed.rss")
                    stale_without_header += title not in plain.text
                    seen = await http.get(reader.url + "/feed.rss", headers={"Feedsvc-Min-Change": change})
                    assert seen.status_code == 200
                    if title not in seen.text:
                        stale.append(n)
            finally:
                for task in loaders:
                    task.cancel()
                await asyncio.gather(*loaders, return_exceptions=True)
            print(  # noqa: T201 - the figures docs/benchmarks.md quotes
                f"{'with' if redis else 'without'} Redis: {len(stale)} stale of {PAIRS} reads with Feedsvc-Min-Change,"
                f" {stale_without_header} stale of {PAIRS} without"
            )
            assert stale == []
