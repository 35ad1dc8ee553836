"""Feed polls answered below ASGI (feedsvc.http.front), as a specification.

The app runs in uvicorn with ``FrontProtocol``, as `feedsvc serve` runs it, on a real
socket. A poll of a current cached feed is answered by the protocol itself (the ASGI app
never sees it) with exactly the app's answer: the same status, the same headers in the same
order, the same bytes; counted in the metrics and the access log, rate-limited, and never
stale. Everything else reaches the app as before, and answers on a connection keep the
order of the requests.

The app's own answers come from the same requests with ``Sec-Fetch-Dest: empty``, which
sends a request the long way without changing its answer (tests/test_fastpath.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.config import Settings
from feedsvc.http.app import create_app
from feedsvc.http.uvicorn_front import FrontProtocol
from feedsvc.logs import configure_logging
from tests.conftest import PUBLIC_URL, commentary
from tests.test_observability import access_lines, logged, scrape, value

SLOW = {"Sec-Fetch-Dest": "empty"}
VOLATILE = {"x-request-id", "ratelimit-remaining", "ratelimit-reset", "date"}
PATHS = ["/feed.{fmt}", "/categories/regional-security/feed.{fmt}", "/en/feed.{fmt}"]


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    """The front does not depend on the store (the fast path's freshness tests run on both)."""
    return sqlite_settings


class Counted:
    """The app as uvicorn sees it, counting the HTTP requests that reached ASGI."""

    def __init__(self, app: Litestar) -> None:
        self.app = app  # find_front looks through wrappers by their ``app``
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


class Served:
    def __init__(self, port: int, counted: Counted) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.counted = counted

    @property
    def calls(self) -> int:
        return self.counted.calls


@contextlib.asynccontextmanager
async def served(app: Litestar) -> AsyncIterator[Served]:
    """``app`` in uvicorn with FrontProtocol on a free port; its lifespan is run by the test
    client that writes to it."""
    counted = Counted(app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(counted, http=FrontProtocol, lifespan="off", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield Served(sock.getsockname()[1], counted)
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def server(client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any) -> AsyncIterator[Served]:
    for n, lang in enumerate(["en", "en", "be"]):
        body = commentary(title=f"Commentary number {n}", lang=lang, published_at=f"2026-03-0{n + 1}T10:00:00+03:00")
        r = await client.post("/api/v1/commentaries", json=body, headers=auth)
        assert r.status_code == 201, r.text
    async with served(client.app) as s:
        yield s


@pytest.fixture
async def http(server: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url) as c:
        yield c


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers in order (those that change per request left out), body."""
    assert "x-request-id" in response.headers
    return (
        response.status_code,
        [(k, v) for k, v in response.headers.multi_items() if k not in VOLATILE],
        response.content,
    )


async def front_and_app(
    server: Served, http: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    before = server.calls
    front = await http.request(method, path, headers=headers)
    assert server.calls == before, f"{method} {path} {headers} reached the app"
    app = await http.request(method, path, headers={**headers, **SLOW})
    assert server.calls == before + 1
    return front, app


async def test_polls_get_the_apps_own_answers_without_reaching_it(server: Served, http: httpx.AsyncClient) -> None:
    for fmt in ("rss", "atom", "json"):
        for template in PATHS:
            path = template.format(fmt=fmt)
            assert (await http.get(path)).status_code == 200  # renders: the app's
            for encoding in ("identity", "gzip", "br"):
                headers = {"Accept-Encoding": encoding}
                front, app = await front_and_app(server, http, "GET", path, headers)
                assert front.status_code == 200
                assert comparable(front) == comparable(app), (path, encoding)
                front, app = await front_and_app(server, http, "HEAD", path, headers)
                assert front.content == b"" and front.headers["content-length"] == app.headers["content-length"]
                assert comparable(front) == comparable(app), (path, encoding, "HEAD")
                etag, modified = front.headers["etag"], front.headers["last-modified"]
                for conditional, status in (
                    ({"If-None-Match": etag}, 304),
                    ({"If-Modified-Since": modified}, 304),
                    ({"If-None-Match": '"nope"'}, 200),
                ):
                    front, app = await front_and_app(server, http, "GET", path, {**headers, **conditional})
                    assert front.status_code == status, (path, encoding, conditional)
                    assert comparable(front) == comparable(app), (path, encoding, conditional)


async def test_front_answers_carry_cors_headers_and_a_complete_vary(server: Served, http: httpx.AsyncClient) -> None:
    for path, vary in (
        ("/feed.rss", "Accept-Encoding, Sec-Fetch-Dest, Sec-Fetch-Mode, Accept"),
        ("/en/feed.json", "Accept-Encoding"),
    ):
        first = (await http.get(path)).headers["etag"]
        for headers in ({}, {"If-None-Match": first}):
            before = server.calls
            r = await http.get(path, headers=headers)
            assert server.calls == before, "answered by the front"
            assert r.headers["access-control-allow-origin"] == "*"
            assert "etag" in r.headers["access-control-expose-headers"].lower()
            assert r.headers["vary"] == vary


async def test_what_the_front_leaves_to_the_app(server: Served, http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    assert (await http.get("/feed.atom")).status_code == 200
    for method, path, headers in (
        ("GET", "/feed.atom?limit=2", {}),
        ("GET", "/feed.atom", {"Origin": "https://reader.example"}),
        ("GET", "/feed.atom", auth),
        ("GET", "/feed.atom", {"X-Forwarded-For": "203.0.113.9"}),  # uvicorn may rewrite the client
        ("GET", "/feed.atom", {"Content-Length": "0"}),
        ("GET", "/api/v1/commentaries", {}),
        ("OPTIONS", "/feed.atom", {}),
    ):
        before = server.calls
        r = await http.request(method, path, headers=headers)
        assert r.status_code < 400, (method, path, headers, r.text)
        assert server.calls == before + 1, (method, path, headers)
    r = await http.get("/feed.atom", headers={"Origin": "https://reader.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    # A validator sent twice: the app decides what the pair means.
    etag = r.headers["etag"]
    before = server.calls
    r = await http.get("/feed.atom", headers=[("If-None-Match", '"other"'), ("If-None-Match", etag)])
    assert r.status_code in (200, 304) and server.calls == before + 1


async def exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` at once on a new connection; everything read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(-1), 10)
    finally:
        writer.close()


def responses(data: bytes, methods: list[str]) -> list[tuple[int, dict[str, str], bytes]]:
    """Split what a connection received into its responses (``methods``: of the requests)."""
    out = []
    for method in methods:
        head, _, data = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines)
        length = 0 if method == "HEAD" else int(headers.get("content-length", 0))
        out.append((int(status_line.split()[1]), headers, data[:length]))
        data = data[length:]
    assert data == b"", "more bytes than responses"
    return out


def request(method: str, path: str, *extra: str) -> bytes:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: feeds.test", *extra, "", ""]).encode()


async def test_pipelined_requests_are_answered_in_their_order(server: Served, http: httpx.AsyncClient) -> None:
    rss = await http.get("/feed.rss")
    feed_json = await http.get("/feed.json")
    api = await http.get("/api/v1/commentaries")
    before = server.calls
    raw = b"".join([
        request("GET", "/api/v1/commentaries"),  # the app's, still being answered when...
        request("GET", "/feed.rss"),  # ...this one and the rest arrive in the same packet
        request("HEAD", "/feed.json"),
        request("GET", "/feed.json"),
        request("GET", "/api/v1/commentaries"),
        request("GET", "/feed.rss", "Connection: close"),
    ])
    methods = ["GET", "GET", "HEAD", "GET", "GET", "GET"]
    got = responses(await exchange(server.port, raw), methods)
    assert [status for status, _, _ in got] == [200] * 6
    assert [body for _, _, body in got] == [api.content, rss.content, b"", feed_json.content, api.content, rss.content]
    assert got[-1][1]["connection"] == "close"
    assert server.calls > before  # the API requests, and polls queued behind one of them


async def test_a_poll_alone_on_its_connection_is_answered_by_the_front(server: Served, http: httpx.AsyncClient) -> None:
    rss = await http.get("/feed.rss")
    before = server.calls
    raw = request("GET", "/feed.rss") + request("HEAD", "/feed.rss") + request("GET", "/feed.rss", "Connection: close")
    got = responses(await exchange(server.port, raw), ["GET", "HEAD", "GET"])
    assert [(status, body) for status, _, body in got] == [(200, rss.content), (200, b""), (200, rss.content)]
    assert "connection" not in got[0][1] and got[2][1]["connection"] == "close"  # and then closed
    assert server.calls == before
    # HTTP/1.0 (its own keep-alive rules) is the app's.
    got = responses(await exchange(server.port, b"GET /feed.rss HTTP/1.0\r\n\r\n"), ["GET"])
    assert got[0][0] == 200 and got[0][2] == rss.content
    assert server.calls == before + 1


async def test_a_write_shows_on_the_next_poll(
    server: Served, http: httpx.AsyncClient, client: AsyncTestClient[Litestar], auth: dict[str, str]
) -> None:
    first = await http.get("/feed.json")
    again = await http.get("/feed.json", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    r = await client.post(
        "/api/v1/commentaries",
        json=commentary(title="Fresh from the desk", published_at="2026-03-09T10:00:00Z"),
        headers=auth,
    )
    assert r.status_code == 201
    after = await http.get("/feed.json", headers={"If-None-Match": first.headers["etag"]})
    assert after.status_code == 200
    assert after.json()["items"][0]["title"] == "Fresh from the desk"


@pytest.mark.usefixtures("restore_logging")
async def test_metrics_and_access_log_count_front_answers(
    server: Served, http: httpx.AsyncClient, client: AsyncTestClient[Litestar], capsys: pytest.CaptureFixture[str]
) -> None:
    route = "/categories/{slug}/feed.json"
    path = "/categories/regional-security/feed.json"
    etag = (await http.get(path)).headers["etag"]
    before = server.calls
    configure_logging("json", "INFO")
    logged(capsys)
    assert (await http.get(path)).status_code == 200
    assert (await http.head(path)).status_code == 200
    assert (await http.get(path, headers={"If-None-Match": etag, "X-Request-ID": "poll-42"})).status_code == 304
    assert server.calls == before
    lines = access_lines(capsys)
    assert [(line["method"], line["route"], line["status"], line["client"]) for line in lines] == [
        ("GET", route, 200, "127.0.0.1"), ("HEAD", route, 200, "127.0.0.1"), ("GET", route, 304, "127.0.0.1"),
    ]
    assert lines[0]["bytes"] > 0 and lines[1]["bytes"] == 0 and lines[2]["request_id"] == "poll-42"
    samples = await scrape(client)
    assert value(samples, "feedsvc_http_requests_total", route=route, method="GET", status="200") == 2
    assert value(samples, "feedsvc_http_requests_total", route=route, method="HEAD", status="200") == 1
    assert value(samples, "feedsvc_http_requests_total", route=route, method="GET", status="304") == 1


async def limited_app(tmp_path: Path, **overrides: Any) -> Litestar:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'front.db'}", public_url=PUBLIC_URL, **overrides)
    return create_app(settings)


async def test_rate_limits_hold_for_front_answers(tmp_path: Path) -> None:
    app = await limited_app(tmp_path, rate_limit_feeds="1/min,4")
    async with AsyncTestClient(app), served(app) as server, httpx.AsyncClient(base_url=server.url) as http:
        answers = [await http.get("/feed.rss") for _ in range(6)]
        assert [r.status_code for r in answers] == [200, 200, 200, 200, 429, 429]
        assert [r.headers["ratelimit-remaining"] for r in answers] == ["3", "2", "1", "0", "0", "0"]
        assert answers[4].headers["retry-after"]
        assert server.calls == 3  # the first (it rendered) and the refusals: the app's


async def test_unknown_hosts_are_refused_by_the_app(tmp_path: Path) -> None:
    app = await limited_app(tmp_path, allowed_hosts=("feeds.example.org",))
    async with AsyncTestClient(app), served(app) as server, httpx.AsyncClient(base_url=server.url) as http:
        host = {"Host": "feeds.example.org"}
        assert (await http.get("/feed.rss", headers=host)).status_code == 200
        assert (await http.get("/feed.rss", headers=host)).status_code == 200
        assert server.calls == 1
        r = await http.get("/feed.rss", headers={"Host": "attacker.invalid"})
        assert r.status_code == 400 and r.json()["status_code"] == 400
        assert server.calls == 2


async def test_the_liveness_probe_is_answered_by_the_front_as_the_app_answers_it(
    server: Served, http: httpx.AsyncClient
) -> None:
    """``/healthz`` needs nothing but the process: answered as its bytes arrive, ahead of
    every request waiting for the app (feedsvc.http.shed), with the app's own answer."""
    for method in ("GET", "HEAD"):
        before = server.calls
        front = await http.request(method, "/healthz")
        assert server.calls == before, "answered by the front"
        # Credentials send a request the long way (and change nothing about this answer).
        app = await http.request(method, "/healthz", headers={"Authorization": "Bearer none"})
        assert server.calls == before + 1
        assert front.status_code == 200 and comparable(front) == comparable(app), method
    assert (await http.get("/readyz")).status_code == 200  # readiness asks the database: the app's
