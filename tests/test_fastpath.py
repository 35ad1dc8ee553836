"""Feed polls answered before routing (feedsvc.http.fastpath), as a specification.

A current cached feed at a path without a query string is answered by the fast path: the
same status, headers and bytes as the feed handlers send, counted in the metrics and the
access log like any request, and never stale: a write acknowledged by this app, by a
second store on the same database, or by another process shows on the very next request
(on PostgreSQL, as soon as the write's notification arrives: see feedsvc.store.watch).

The reference answers come from the handlers themselves: ``Sec-Fetch-Dest: empty`` (what
a script in a browser sends) sends a request the long way without changing its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.config import Settings
from feedsvc.http.app import create_app
from feedsvc.logs import configure_logging
from feedsvc.model import CategoryIn, NewCommentary
from feedsvc.service import Service
from feedsvc.store import open_store
from tests.conftest import PUBLIC_URL, FakeClock, commentary
from tests.test_observability import access_lines, logged, scrape, value

ROOT = Path(__file__).parent.parent
SLOW = {"Sec-Fetch-Dest": "empty"}
VOLATILE = {"x-request-id", "ratelimit-remaining", "ratelimit-reset", "date"}
PATHS = ["/feed.{fmt}", "/categories/regional-security/feed.{fmt}", "/en/feed.{fmt}"]
ENCODINGS = [None, "gzip", "br", "gzip, deflate, br;q=0"]


@pytest.fixture
def settings(any_settings: Settings) -> Settings:
    """Every test here runs on SQLite and on PostgreSQL."""
    return any_settings


@pytest.fixture
async def published(client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any) -> list[str]:
    ids = []
    for n, lang in enumerate(["en", "en", "be"]):
        body = commentary(title=f"Commentary number {n}", lang=lang, published_at=f"2026-03-0{n + 1}T10:00:00+03:00")
        r = await client.post("/api/v1/commentaries", json=body, headers=auth)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    await until_listening(client)
    return ids


async def until_listening(client: AsyncTestClient[Litestar]) -> None:
    """Wait until the app's store can know its state without asking. On PostgreSQL its
    LISTEN connection is made in the background on first use (moments, or much longer on a
    loaded machine); until then every poll goes the long way, by design, and a test that
    expects a fast answer would race it."""
    store = client.app.state.publisher.service.store
    deadline = time.monotonic() + 10
    while store.known_state() is None:
        assert time.monotonic() < deadline, "the store never came to know its state"
        await store.get_state()
        await asyncio.sleep(0.01)


def early_hits(client: AsyncTestClient[Litestar]) -> int:
    return int(client.app.state.publisher.stats.early)


def comparable(response: Any) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in response.headers.items() if k not in VOLATILE}
    assert "x-request-id" in response.headers
    return response.status_code, headers, response.content


async def fast_and_slow(
    client: AsyncTestClient[Litestar], method: str, path: str, headers: dict[str, str]
) -> tuple[Any, Any]:
    before = early_hits(client)
    fast = await client.request(method, path, headers=headers)
    assert early_hits(client) == before + 1, f"{method} {path} {headers} was not answered before routing"
    slow = await client.request(method, path, headers={**headers, **SLOW})
    assert early_hits(client) == before + 1, "Sec-Fetch-Dest must send the request the long way"
    return fast, slow


async def test_fast_answers_are_the_handlers_answers(client: AsyncTestClient[Litestar], published: list[str]) -> None:
    for fmt in ("rss", "atom", "json"):
        for template in PATHS:
            path = template.format(fmt=fmt)
            first = await client.get(path)  # the first request renders and remembers the path
            assert first.status_code == 200, first.text
            for encoding in ENCODINGS:
                headers = {"Accept-Encoding": encoding} if encoding else {"Accept-Encoding": "identity"}
                fast, slow = await fast_and_slow(client, "GET", path, headers)
                assert fast.status_code == 200
                assert comparable(fast) == comparable(slow), (path, encoding)
                fast, slow = await fast_and_slow(client, "HEAD", path, headers)
                assert fast.content == b"" and fast.headers["content-length"] == slow.headers["content-length"]
                assert comparable(fast) == comparable(slow), (path, encoding, "HEAD")
                etag, modified = fast.headers["etag"], fast.headers["last-modified"]
                for conditional, status in (
                    ({"If-None-Match": etag}, 304),
                    ({"If-None-Match": f'"nope", W/{etag}'}, 304),
                    ({"If-Modified-Since": modified}, 304),
                    ({"If-None-Match": '"nope"'}, 200),
                    ({"If-None-Match": '"nope"', "If-Modified-Since": modified}, 200),
                    ({"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}, 200),
                ):
                    fast, slow = await fast_and_slow(client, "GET", path, {**headers, **conditional})
                    assert fast.status_code == status, (path, encoding, conditional)
                    assert comparable(fast) == comparable(slow), (path, encoding, conditional)


async def test_conditional_requests_answer_304_before_routing(
    client: AsyncTestClient[Litestar], published: list[str]
) -> None:
    r = await client.get("/feed.rss", headers={"Accept-Encoding": "gzip"})
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    for headers in (
        {"If-None-Match": etag},
        {"If-None-Match": etag.replace("-gzip", "")},
        {"If-Modified-Since": modified},
    ):
        fast, slow = await fast_and_slow(client, "GET", "/feed.rss", {"Accept-Encoding": "gzip", **headers})
        assert fast.status_code == slow.status_code == 304
        assert fast.content == b""
        assert "content-type" not in fast.headers and "content-encoding" not in fast.headers
    fast, _ = await fast_and_slow(client, "GET", "/feed.rss", {"If-None-Match": '"other"'})
    assert fast.status_code == 200


async def test_requests_that_need_more_go_the_long_way(client: AsyncTestClient[Litestar], published: list[str]) -> None:
    assert (await client.get("/feed.atom")).status_code == 200
    before = early_hits(client)
    for headers in (
        {"Origin": "https://reader.example"},  # CORS headers
        {"Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Accept": "text/html"},  # the HTML page
    ):
        r = await client.get("/feed.atom", headers=headers)
        assert r.status_code == 200
    r = await client.get("/feed.atom?limit=2")
    assert r.status_code == 200 and r.text.count("<entry") == 2
    assert early_hits(client) == before
    r = await client.get("/feed.atom", headers={"Origin": "https://reader.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert (await client.get("/feed.atom")).status_code == 200
    assert early_hits(client) == before + 1


@pytest.mark.usefixtures("restore_logging")
async def test_metrics_and_access_log_count_fast_answers(
    client: AsyncTestClient[Litestar], published: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    etag = (await client.get("/categories/regional-security/feed.json")).headers["etag"]
    before = early_hits(client)
    configure_logging("json", "INFO")
    logged(capsys)
    assert (await client.get("/categories/regional-security/feed.json")).status_code == 200
    assert (await client.head("/categories/regional-security/feed.json")).status_code == 200
    r = await client.get("/categories/regional-security/feed.json", headers={"If-None-Match": etag})
    assert r.status_code == 304
    assert early_hits(client) == before + 3
    lines = access_lines(capsys)
    assert [(line["method"], line["route"], line["status"]) for line in lines] == [
        ("GET", "/categories/{slug}/feed.json", 200),
        ("HEAD", "/categories/{slug}/feed.json", 200),
        ("GET", "/categories/{slug}/feed.json", 304),
    ]
    assert lines[0]["bytes"] > 0 and lines[1]["bytes"] == 0
    assert len({line["request_id"] for line in lines}) == 3
    samples = await scrape(client)
    route = "/categories/{slug}/feed.json"
    assert value(samples, "feedsvc_http_requests_total", route=route, method="GET", status="200") == 2
    assert value(samples, "feedsvc_http_requests_total", route=route, method="HEAD", status="200") == 1
    assert value(samples, "feedsvc_http_requests_total", route=route, method="GET", status="304") == 1
    assert value(samples, "feedsvc_http_not_modified_total") == 1
    assert value(samples, "feedsvc_feed_cache_early_hits_total") == before + 3


async def test_rate_limits_apply_to_fast_answers(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'rl.db'}", public_url=PUBLIC_URL, rate_limit_feeds="1/min,3"
    )
    async with AsyncTestClient(create_app(settings), base_url="http://testserver.local") as client:
        statuses = [(await client.get("/feed.rss")).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        assert early_hits(client) == 2


async def test_unknown_hosts_are_refused_before_the_fast_path(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'h.db'}", public_url=PUBLIC_URL, allowed_hosts=("feeds.example.org",)
    )
    async with AsyncTestClient(create_app(settings), base_url="http://feeds.example.org") as client:
        assert (await client.get("/feed.rss")).status_code == 200
        assert (await client.get("/feed.rss")).status_code == 200
        r = await client.get("/feed.rss", headers={"Host": "attacker.invalid"})
        assert r.status_code == 400
        assert early_hits(client) == 1


# --- freshness ----------------------------------------------------------------------------


async def titles(client: AsyncTestClient[Litestar], path: str = "/feed.json") -> list[str]:
    r = await client.get(path)
    assert r.status_code == 200
    return [item["title"] for item in r.json()["items"]]


async def test_a_write_through_the_api_shows_on_the_next_request(
    client: AsyncTestClient[Litestar], auth: dict[str, str], published: list[str]
) -> None:
    assert "Fresh from the API" not in await titles(client)
    await titles(client)
    hits = early_hits(client)
    r = await client.post("/api/v1/commentaries", json=commentary(title="Fresh from the API"), headers=auth)
    assert r.status_code == 201
    assert "Fresh from the API" in await titles(client)
    assert early_hits(client) == hits
    assert "Fresh from the API" in await titles(client)
    assert early_hits(client) == hits + 1


@pytest.fixture
async def other_store(settings: Settings, client: AsyncTestClient[Litestar]) -> AsyncIterator[Service]:
    """A second store on the same database: another worker process, or another node."""
    store = open_store(settings.database_url)
    await store.open()
    try:
        yield Service(store, base_url=PUBLIC_URL)
    finally:
        await store.close()


async def test_a_write_through_another_store_shows_on_the_next_request(
    client: AsyncTestClient[Litestar], published: list[str], other_store: Service, settings: Settings
) -> None:
    for round in range(3):
        await titles(client)
        hits = early_hits(client)
        await titles(client)
        assert early_hits(client) == hits + 1  # cached, and answered early
        title = f"Written by another node, round {round}"
        await other_store.publish(msgspec.convert(commentary(title=title), NewCommentary))
        if settings.database_url.startswith("postgresql"):
            await until_shown(client, title)
        assert title in await titles(client)


async def test_a_write_by_another_process_shows_on_the_next_request(
    client: AsyncTestClient[Litestar], published: list[str], settings: Settings, tmp_path: Path
) -> None:
    if settings.database_url.startswith("postgresql"):
        pytest.skip("covered by the other-store test: a process of its own changes nothing for PostgreSQL")
    await titles(client)
    await titles(client)
    records = tmp_path / "one.jsonl"
    records.write_text(json.dumps(commentary(title="Imported by another process")) + "\n")
    env = {**os.environ, "FEEDSVC_DATABASE_URL": settings.database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "feedsvc", "import", str(records), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    assert "Imported by another process" in await titles(client)


async def test_a_scheduled_commentary_shows_when_due(
    client: AsyncTestClient[Litestar], auth: dict[str, str], published: list[str], clock: FakeClock
) -> None:
    due = clock.advance(hours=1)
    clock.advance(hours=-1)
    body = commentary(title="Scheduled for later", published_at=due.isoformat())
    r = await client.post("/api/v1/commentaries", json=body, headers=auth)
    assert r.status_code == 201, r.text
    assert "Scheduled for later" not in await titles(client)
    hits = early_hits(client)
    assert "Scheduled for later" not in await titles(client)
    assert early_hits(client) == hits + 1
    clock.advance(hours=2)
    assert "Scheduled for later" in await titles(client)


async def test_a_store_knows_its_state_until_anyone_commits(tmp_path: Path) -> None:
    """SqliteStore.known_state: the state last read while no connection, of this process or
    another, has committed since; None afterwards, until the state is read again."""
    path = str(tmp_path / "watch.db")
    first, second = open_store(f"sqlite:///{path}"), open_store(f"sqlite:///{path}")
    await first.open()
    await second.open()
    try:
        assert first.known_state() is None  # nothing read yet
        state = await first.get_state()
        assert first.known_state() == state
        assert first.known_state() == state  # and again: reading it changes nothing
        await Service(second, base_url=PUBLIC_URL).put_category("economy", CategoryIn(names={"en": "Economy"}))
        assert first.known_state() is None
        newer = await first.get_state()
        assert newer.seq == state.seq + 1 and first.known_state() == newer
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as plain:  # any writer at all
            plain.execute("CREATE TABLE scratch (x)")
        assert first.known_state() is None
        assert await first.get_state() == newer and first.known_state() == newer
    finally:
        await second.close()
        await first.close()
    assert first.known_state() is None  # closed: nothing is known


# What another process sees of the WAL index's "in use" lock (a shared fcntl() lock on byte
# 128 of the -shm file, SQLite's DMS slot): "held" while any process has the index open.
_PROBE_DMS_LOCK = """
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
query = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 128, 1, 0)
answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
print("free" if struct.unpack("hhqqi", answer)[0] == fcntl.F_UNLCK else "held")
"""


def dms_lock(path: str) -> str:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE_DMS_LOCK, f"{path}-shm"], capture_output=True, text=True, check=True
    )
    return probe.stdout.strip()


async def test_watching_the_wal_index_keeps_sqlite_s_own_locks_on_it(tmp_path: Path) -> None:
    """Closing any descriptor of a file drops every fcntl() lock the process holds on it.
    Had the watch (feedsvc.store.watch) closed one of the -shm file, the next process to
    open the database would think the WAL index unused and rebuild it under this one: a
    crash (SIGBUS) or a corrupt database."""
    path = str(tmp_path / "locks.db")
    first, second = open_store(f"sqlite:///{path}"), open_store(f"sqlite:///{path}")
    await first.open()
    try:
        await first.get_state()
        assert dms_lock(path) == "held"
        await second.open()  # a second watch of the same file, in the same process
        await second.get_state()
        await second.close()
        assert dms_lock(path) == "held"
        state = await first.get_state()
        assert first.known_state() == state  # still watched through the shared mapping
    finally:
        await first.close()


async def test_without_its_listener_a_node_reads_the_state_every_time(
    client: AsyncTestClient[Litestar], published: list[str], other_store: Service, settings: Settings
) -> None:
    """PostgreSQL: when the LISTEN connection dies, nothing is taken as known (every request
    reads the change number, as before) until it is back; feeds stay exact throughout."""
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite has no listener connection")
    await titles(client)
    await titles(client)
    channel = await other_store.store._fetchrow("SELECT 'feedsvc_changes_' || 'changes'::regclass::oid::text")  # type: ignore[attr-defined]
    killed = await other_store.store._fetchrow(  # type: ignore[attr-defined]
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1", f'LISTEN "{channel[0]}"'
    )
    assert killed[0] >= 1
    deadline = time.monotonic() + 10
    hits = early_hits(client)
    while True:  # the node notices the loss (the connection's end arrives like a notification)
        await titles(client)
        if early_hits(client) == hits:
            break
        hits = early_hits(client)
        assert time.monotonic() < deadline, "the lost listener went unnoticed"
        await asyncio.sleep(0.01)
    for n in range(3):
        title = f"Written while the listener was away, {n}"
        await other_store.publish(msgspec.convert(commentary(title=title), NewCommentary))
        await until_shown(client, title)
    hits = early_hits(client)
    deadline = time.monotonic() + 10
    while early_hits(client) == hits:  # back: the listener reconnects by itself
        assert time.monotonic() < deadline, "the listener did not come back"
        await titles(client)
        await asyncio.sleep(0.05)


async def until_shown(client: AsyncTestClient[Litestar], title: str) -> None:
    """On PostgreSQL another node's write shows once its notification arrived (one hop after
    the commit, while the acknowledgement still travels): at once, or within moments."""
    deadline = time.monotonic() + 5
    while title not in await titles(client):
        assert time.monotonic() < deadline, "the change notification never arrived"
        await asyncio.sleep(0.005)



async def test_a_node_s_own_writes_are_counted_once(settings: Settings) -> None:
    """PostgreSQL: a store's own write makes it forget its state when the write ends, before
    it is acknowledged; the notification that write sends comes back later and changes
    nothing. Counted a second time, that echo (arriving after the state was read again,
    as it does when the node is busy) sent the next poll the slow way.

    The writes run on an event loop of their own (a thread) while this one is held up,
    as on a loaded machine: their echo reaches this loop's listener only once the state
    is being read again."""
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("SQLite has no notifications")
    store = open_store(settings.database_url)
    await store.open()
    writer = asyncio.new_event_loop()
    thread = threading.Thread(target=writer.run_forever, daemon=True)
    thread.start()
    try:
        service = Service(store, base_url=PUBLIC_URL)
        deadline = time.monotonic() + 10
        while store.known_state() is None:  # the listener connects in the background
            assert time.monotonic() < deadline, "the change listener never connected"
            await store.get_state()
            await asyncio.sleep(0.01)
        for n in range(3):
            write = service.put_category(f"topic-{n}", CategoryIn(names={"en": f"Topic {n}"}))
            asyncio.run_coroutine_threadsafe(write, writer).result(timeout=30)  # holds this loop
            assert store.known_state() is None  # forgotten at once, before the acknowledgement
            state = await store.get_state()
            for _ in range(3):  # round trips, while the echo is delivered
                await store.get_categories()
            assert store.known_state() == state, f"write {n}: its own notification made the node forget"
    finally:
        await store.close()  # ends the writer loop's pool too
        writer.call_soon_threadsafe(writer.stop)
        thread.join(timeout=10)
        writer.close()
