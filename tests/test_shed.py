"""Shedding, not collapse (feedsvc.http.shed), as a specification.

The app runs in uvicorn with ``FrontProtocol``, as `feedsvc serve` runs it, on a real
socket, allowed two requests at work and two waiting. The work of a request is held at a
gate (the service call behind ``GET /api/v1/commentaries`` or ``POST``, waiting for the test
to open it) so that the test decides what is in flight. Then:

* past the places and the line, a request is answered 503 with ``Retry-After`` at once, by
  the protocol, without reaching the app; probes and polls of cached feeds are answered all
  the same, and everything held is served once the gate opens;
* a request whose client has gone while it waited is never started;
* a read whose client goes while it runs is cancelled, and its place is free again;
* a write whose client goes is never cut short: it runs whole (and is stored) once started,
  and never starts if the client went while it waited.

The load itself (10,000 connections) is tests/test_overload.py's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.config import Settings
from feedsvc.http.shed import MAX_RETRY_AFTER, Shed
from feedsvc.service import Service
from tests.conftest import commentary
from tests.test_front import Served, served

API = "/api/v1/commentaries"


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    return msgspec.structs.replace(sqlite_settings, max_in_flight=2, max_queued=2)


class Gate:
    """Holds every call of one service method until ``open``; counts calls, finished ones
    and cancelled ones."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.opened = asyncio.Event()
        self.started = 0
        self.finished = 0
        self.cancelled = 0
        original: Callable[..., Awaitable[Any]] = getattr(Service, name)

        async def held(service: Service, *args: Any, **kwargs: Any) -> Any:
            self.started += 1
            try:
                await self.opened.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
            result = await original(service, *args, **kwargs)
            self.finished += 1
            return result

        monkeypatch.setattr(Service, name, held)

    async def started_at_least(self, n: int) -> None:
        for _ in range(500):
            if self.started >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{self.started} calls started, not {n}")


@pytest.fixture
def gates(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Gate]]:
    """Gates on service methods, all opened when the test ends, failed or not: a request
    held at a closed gate would keep the server from stopping."""
    made: list[Gate] = []

    def gate(name: str) -> Gate:
        made.append(Gate(monkeypatch, name))
        return made[-1]

    yield gate
    for g in made:
        g.opened.set()


@pytest.fixture
async def server(client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any) -> AsyncIterator[Served]:
    r = await client.post(API, json=commentary(), headers=auth)
    assert r.status_code == 201, r.text
    assert (await client.get("/feed.rss")).status_code == 200  # cached from now on
    async with served(client.app) as s:
        yield s


def shed_of(client: AsyncTestClient[Litestar]) -> Shed:
    shed = client.app.state["shed"]
    assert isinstance(shed, Shed)
    return shed


class Connection:
    """One raw HTTP/1.1 connection: send a request, read one answer, or close."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, method: str, path: str, body: bytes = b"", *headers: str) -> None:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
        if body:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()

    async def answer(self, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
        body = await asyncio.wait_for(self.reader.readexactly(int(headers.get("content-length", 0))), timeout)
        return int(lines[0].split()[1]), headers, body

    async def close(self) -> None:
        self.writer.close()
        await asyncio.sleep(0.05)  # the server sees the close


async def test_past_the_places_and_the_line_requests_get_503_at_once_and_probes_go_on(
    server: Served, client: AsyncTestClient[Litestar], gates: Callable[[str], Gate]
) -> None:
    gate = gates("list_commentaries")
    held = [await Connection.open(server.port) for _ in range(4)]
    for conn in held:
        await conn.send("GET", API)
    await gate.started_at_least(2)
    await asyncio.sleep(0.1)
    assert (gate.started, shed_of(client).in_flight, shed_of(client).queued) == (2, 2, 2)

    calls = server.calls
    extra = await Connection.open(server.port)
    for _ in range(3):  # on one connection, kept alive: a 503 costs no new connection
        await extra.send("GET", API)
        status, headers, body = await extra.answer(timeout=1.0)
        assert status == 503 and 1 <= int(headers["retry-after"]) <= MAX_RETRY_AFTER, headers
        assert headers["cache-control"] == "no-store" and "connection" not in headers
        error = json.loads(body)
        assert error["status_code"] == 503 and error["extra"]["retry_after"] == int(headers["retry-after"])
    assert server.calls == calls, "a shed request reached the app"
    # Probes and cached polls are never held: answered while every place is taken.
    for path in ("/healthz", "/readyz", "/feed.rss"):
        await extra.send("GET", path)
        assert (await extra.answer(timeout=2.0))[0] == 200, path

    gate.opened.set()
    for conn in held:
        assert (await conn.answer())[0] == 200
        await conn.close()
    await extra.close()
    # The two held in line may be answered from the list-API page cache the first two
    # filled, never reaching the service: every call that started finished, none is left.
    assert gate.started == gate.finished >= 2 and shed_of(client).in_flight == 0


async def test_a_request_whose_client_went_while_it_waited_is_never_started(
    server: Served, client: AsyncTestClient[Litestar], gates: Callable[[str], Gate]
) -> None:
    gate = gates("list_commentaries")
    running = [await Connection.open(server.port) for _ in range(2)]
    for conn in running:
        await conn.send("GET", API)
    await gate.started_at_least(2)
    waiting = [await Connection.open(server.port) for _ in range(2)]
    for conn in waiting:
        await conn.send("GET", API)
    await asyncio.sleep(0.1)
    assert shed_of(client).queued == 2
    for conn in waiting:
        await conn.close()
    assert shed_of(client).queued == 0 and shed_of(client).dropped == 2

    gate.opened.set()
    for conn in running:
        assert (await conn.answer())[0] == 200
        await conn.close()
    assert gate.started == 2 and gate.finished == 2


async def test_a_read_whose_client_goes_is_cancelled_and_frees_its_place(
    server: Served, client: AsyncTestClient[Litestar], gates: Callable[[str], Gate]
) -> None:
    gate = gates("list_commentaries")
    gone = await Connection.open(server.port)
    await gone.send("GET", API)
    await gate.started_at_least(1)
    await gone.close()
    for _ in range(100):
        if gate.cancelled:
            break
        await asyncio.sleep(0.01)
    assert gate.cancelled == 1 and shed_of(client).in_flight == 0 and shed_of(client).dropped == 1
    gate.opened.set()
    after = await Connection.open(server.port)
    await after.send("GET", API)
    assert (await after.answer())[0] == 200
    await after.close()


async def test_a_write_runs_whole_or_not_at_all_when_its_client_goes(
    server: Served, client: AsyncTestClient[Litestar], auth: dict[str, str], gates: Callable[[str], Gate]
) -> None:
    gate = gates("publish")
    token = auth["Authorization"]

    async def post(title: str) -> Connection:
        conn = await Connection.open(server.port)
        await conn.send("POST", API, json.dumps(commentary(title=title)).encode(), f"Authorization: {token}")
        return conn

    started = [await post("Started then abandoned"), await post("Started and awaited")]
    await gate.started_at_least(2)
    queued = await post("Queued then abandoned")
    await asyncio.sleep(0.1)
    assert shed_of(client).queued == 1
    await started[0].close()
    await queued.close()
    await asyncio.sleep(0.1)
    assert gate.cancelled == 0, "a write was cut short"
    gate.opened.set()
    assert (await started[1].answer())[0] == 201
    await started[1].close()
    for _ in range(100):
        if gate.finished == 2:
            break
        await asyncio.sleep(0.01)
    titles = {item["title"] for item in (await client.get(API, params={"limit": 50})).json()["items"]}
    assert {"Started then abandoned", "Started and awaited"} <= titles
    assert "Queued then abandoned" not in titles
    assert gate.started == 2 and gate.finished == 2
