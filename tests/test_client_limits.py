"""Client limits and RFC 9112's refusals, at the connection, as a specification.

A real `feedsvc serve` process on loopback, held to small limits, is sent what a slow or
hostile client sends, over raw sockets: a silent connection, a head or a body trickled byte
by byte, a 256 KiB header line, 10,000 headers, a request without Host or with two, a bad
Host, an ``HTTP/2.0`` request line, a ``Transfer-Encoding`` chain, more connections than it
holds. Each must end in its answer (a JSON error in the one shape, ``connection: close``)
within its limit, while a normal client polling alongside is served throughout, about as
fast as when idle. ``HeadScanner``, which counts a head's bytes as they arrive, is checked
on its own against every way a head can be cut into reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from feedsvc.http.wire import MAX_REQUEST_LINE, ClientLimits, HeadScanner, refusal
from tests.conftest import CATEGORIES, commentary
from tests.test_lifecycle import spawned_server

pytestmark = pytest.mark.slow

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
KEEP_ALIVE_TIMEOUT = 1.0
MAX_CONNECTIONS = 40
EACH = 8
"""Slow clients of each kind beside a normal one."""
SLACK = 1.5
"""Seconds a cut may come after its limit on a loaded two-core machine."""


# --- the head, counted as it arrives ---------------------------------------------------------


def scan(head: bytes, limits: ClientLimits, cut: int) -> int:
    """The status the scanner refuses ``head`` with (0: none) when it arrives in reads of
    ``cut`` bytes."""
    scanner = HeadScanner(limits)
    for start in range(0, len(head), cut):
        found = scanner.feed(head[start : start + cut])
        if found is not None:
            return found.status
        if scanner.done:
            return 0
    return 0


def head(*lines: bytes) -> bytes:
    return b"GET /feed.rss HTTP/1.1\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


SMALL = ClientLimits(max_header_line=40, max_header_bytes=200, max_headers=5)

HEADS = [
    ("a plain head", head(b"Host: a", b"Accept: */*"), 0),
    ("a header line of exactly the limit", head(b"X: " + b"a" * 37), 0),
    ("one byte over the line limit", head(b"X: " + b"a" * 38), 431),
    ("as many headers as allowed", head(*[b"X: a"] * 5), 0),
    ("one header too many", head(*[b"X: a"] * 6), 431),
    ("headers just within the total", head(*[b"X: " + b"a" * 37] * 4 + [b"Y: " + b"b" * 27]), 0),
    ("headers over the total", head(*[b"X: " + b"a" * 37] * 5), 431),
    ("a request line over its bound", b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\n\r\n", 414),
    ("blank lines before the request line", b"\r\n\r\n" + head(b"Host: a"), 0),
    ("bare LF line ends", b"GET / HTTP/1.1\nHost: a\n\n", 0),
]


@pytest.mark.parametrize(("name", "data", "status"), HEADS, ids=[h[0] for h in HEADS])
def test_the_head_scanner_decides_the_same_however_the_bytes_arrive(name: str, data: bytes, status: int) -> None:
    for cut in (1, 2, 3, 7, len(data)):
        assert scan(data, SMALL, cut) == status, (name, cut)


def test_the_scanner_stops_at_the_end_of_the_head_and_never_reads_a_body() -> None:
    scanner = HeadScanner(SMALL)
    body = b"x" * 10_000  # one long "line" that would break every limit if it were read
    assert scanner.feed(head(b"Host: a", b"Content-Length: 10000") + body) is None
    assert scanner.done
    scanner.restart()
    assert scanner.feed(head(b"Host: a")) is None and scanner.done


@pytest.mark.parametrize(
    ("version", "headers", "status", "key"),
    [
        ("1.1", [(b"host", b"example.org")], None, None),
        ("1.1", [(b"host", b"[::1]:8000")], None, None),
        ("1.0", [], None, None),
        ("1.1", [], 400, "Host"),
        ("1.0", [(b"host", b"a"), (b"host", b"b")], 400, "Host"),
        ("1.1", [(b"host", b"a b")], 400, "Host"),
        ("1.1", [(b"host", b"a:abc")], 400, "Host"),
        ("1.1", [(b"host", b"a/b")], 400, "Host"),
        ("2.0", [(b"host", b"a")], 505, "request line"),
        ("1.1", [(b"host", b"a"), (b"transfer-encoding", b"chunked")], None, None),
        ("1.1", [(b"host", b"a"), (b"transfer-encoding", b"identity, chunked")], 501, "Transfer-Encoding"),
        ("1.1", [(b"host", b"a"), (b"transfer-encoding", b"gzip"), (b"transfer-encoding", b"chunked")], 501,
         "Transfer-Encoding"),
        ("1.1", [(b"host", b"a"), (b"transfer-encoding", b"chunked"), (b"content-length", b"5")], 400,
         "Content-Length"),
        ("1.0", [(b"transfer-encoding", b"chunked")], 400, "Transfer-Encoding"),
    ],
)
def test_what_rfc_9112_refuses(version: str, headers: list[tuple[bytes, bytes]], status: int | None, key: str) -> None:
    found = refusal(version, headers)
    assert (found.status, found.key) == (status, key) if found else status is None


# --- a real server ----------------------------------------------------------------------------


class Server(NamedTuple):
    port: int
    base: str
    token: str
    log: Path


@contextlib.contextmanager
def serving(tmp: Path, *, timeout: float) -> Iterator[Server]:
    """A real ``feedsvc serve`` process with every client timeout at ``timeout`` seconds and
    room for ``MAX_CONNECTIONS``, holding one commentary."""
    limits = {
        "FEEDSVC_ACCESS_LOG": "false",
        "FEEDSVC_HEADER_TIMEOUT": str(timeout),
        "FEEDSVC_BODY_TIMEOUT": str(timeout),
        "FEEDSVC_KEEP_ALIVE_TIMEOUT": str(timeout),
        "FEEDSVC_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    with spawned_server(tmp, limits, token_scope="admin") as spawned:
        auth = {"Authorization": f"Bearer {spawned.token}"}
        r = httpx.put(
            f"{spawned.base}/api/v1/categories/economy", json=CATEGORIES["economy"], headers=auth, timeout=10
        )
        assert r.status_code in (200, 201), r.text
        r = httpx.post(f"{spawned.base}/api/v1/commentaries", json=commentary(category="economy"), headers=auth,
                       timeout=10)
        assert r.status_code == 201, r.text
        yield Server(spawned.port, spawned.base, spawned.token, spawned.log)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Timeouts short enough to watch them cut."""
    with serving(tmp_path_factory.mktemp("limits"), timeout=HEADER_TIMEOUT) as running:
        yield running


@pytest.fixture(scope="module")
def patient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Timeouts far longer than a test: the connection limit alone decides who is closed,
    however slowly a loaded machine opens the connections."""
    with serving(tmp_path_factory.mktemp("patient"), timeout=60.0) as running:
        yield running


class Exchange(NamedTuple):
    status: int | None  # None: closed without an answer
    headers: dict[str, str]
    body: bytes
    seconds: float  # from connecting to the connection's close


async def exchange(port: int, *parts: bytes, pause: float = 0.0, wait: float = 10.0) -> Exchange:
    """Connect, send ``parts`` (``pause`` seconds apart) until the server answers, read
    until it closes."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = bytearray()

    async def read_all() -> None:
        try:
            while chunk := await reader.read(65536):
                received.extend(chunk)
        except ConnectionError:
            pass

    reading = asyncio.create_task(read_all())
    try:
        for n, part in enumerate(parts):
            if n and pause:
                await asyncio.sleep(pause)
            if received or reading.done():
                break  # answered (or cut) while sending
            try:
                writer.write(part)
                await writer.drain()
            except ConnectionError:
                break
        await asyncio.wait_for(reading, wait)
    finally:
        reading.cancel()
        writer.close()
    seconds = time.monotonic() - started
    if not received:
        return Exchange(None, {}, b"", seconds)
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return Exchange(int(lines[0].split()[1]), headers, body, seconds)


def refused(answer: Exchange, status: int, key: str) -> None:
    """A refusal in the one error shape, naming ``key``, and the connection closed."""
    assert answer.status == status, answer
    assert answer.headers["connection"] == "close" and answer.headers["content-type"] == "application/json"
    body = json.loads(answer.body)
    assert set(body) == {"status_code", "detail", "extra"} and body["status_code"] == status
    assert body["extra"][0]["key"] == key, body


def request(path: str = "/healthz", *headers: str, method: str = "GET", version: str = "HTTP/1.1") -> bytes:
    return f"{method} {path} {version}\r\n{''.join(h + chr(13) + chr(10) for h in headers)}\r\n".encode("latin-1")


HOST = "Host: 127.0.0.1"


async def test_heads_rfc_9112_refuses_are_refused(server: Server) -> None:
    port = server.port
    cases = [
        (request("/healthz"), 400, "Host"),
        (request("/feed.rss", HOST, "Host: other.example"), 400, "Host"),
        (request("/healthz", "Host: a b"), 400, "Host"),
        (request("/feed.rss", "Host: example.org:abc"), 400, "Host"),
        (request("/feed.rss", HOST, version="HTTP/2.0"), 505, "request line"),
        (request("/api/v1/commentaries", HOST, "Transfer-Encoding: identity, chunked", method="POST") + b"0\r\n\r\n",
         501, "Transfer-Encoding"),
        (request("/api/v1/commentaries", HOST, "Transfer-Encoding: chunked", "Content-Length: 5", method="POST"),
         400, "request"),
    ]
    for raw, status, key in cases:
        refused(await exchange(port, raw), status, key)
    # An HTTP/1.0 request needs no Host.
    assert (await exchange(port, request("/healthz", version="HTTP/1.0"))).status == 200


async def test_oversized_heads_are_refused_as_they_arrive(server: Server) -> None:
    port = server.port
    line = request("/healthz", HOST, "X-Big: " + "a" * 256 * 1024)
    refused(await exchange(port, line), 431, "header line")
    many = request("/healthz", HOST, *["X-A: b"] * 10_000)
    refused(await exchange(port, many), 431, "headers")
    total = request("/healthz", HOST, *[f"X-{n}: " + "a" * 8000 for n in range(5)])
    refused(await exchange(port, total), 431, "headers")
    refused(await exchange(port, request("/" + "a" * 20_000, HOST)), 414, "request line")
    # A 256 MiB header line is refused after its first read, not buffered whole.
    answer = await exchange(port, request("/healthz", HOST)[:-4] + b"\r\nX-Huge: ", *[b"a" * 65536] * 4096)
    refused(answer, 431, "header line")


async def test_slow_and_silent_clients_are_cut_at_their_limits(server: Server) -> None:
    port = server.port
    auth = f"Authorization: Bearer {server.token}"
    post = request("/api/v1/commentaries", HOST, auth, "Content-Type: application/json", "Content-Length: 100",
                   method="POST")
    silent, partial, trickled, body, trickled_body = await asyncio.gather(
        exchange(port),
        exchange(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        exchange(port, *(bytes([b]) for b in request("/healthz", HOST, "X-Slow: " + "s" * 40)), pause=0.1),
        exchange(port, post, b'{"title": "5 of 100'),
        exchange(port, post, *[b" "] * 100, pause=0.1),
    )
    assert silent.status is None and HEADER_TIMEOUT <= silent.seconds < HEADER_TIMEOUT + SLACK, silent
    for cut in (partial, trickled):
        refused(cut, 408, "request")
        assert HEADER_TIMEOUT <= cut.seconds < HEADER_TIMEOUT + SLACK, cut
    for cut in (body, trickled_body):
        refused(cut, 408, "request")
        assert BODY_TIMEOUT <= cut.seconds < BODY_TIMEOUT + SLACK, cut
    # A client that left mid-body is not a failure of the server's.
    assert '"level":"ERROR"' not in server.log.read_text()


async def test_an_idle_keep_alive_connection_is_closed_after_its_timeout(server: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request("/healthz", HOST))
        await writer.drain()
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        rest = await asyncio.wait_for(reader.read(), KEEP_ALIVE_TIMEOUT + SLACK + 1)
        assert KEEP_ALIVE_TIMEOUT - 0.1 <= time.monotonic() - started < KEEP_ALIVE_TIMEOUT + SLACK
        assert rest.endswith(b"}") or rest.endswith(b"\n") or rest  # the body of the 200, then the close
    finally:
        writer.close()


async def status_of(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return int(head.split()[1]), head


async def test_connections_past_the_limit_get_a_503_at_once_when_none_is_idle(patient_server: Server) -> None:
    server = patient_server
    """Connections each in the middle of a request hold their places: newcomers are refused."""
    held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(MAX_CONNECTIONS)]
    try:
        for _, writer in held:
            writer.write(b"GET /healthz HTTP/1.1\r\n")  # a head under way
            await writer.drain()
        await asyncio.sleep(0.2)
        started = time.monotonic()
        for _ in range(10):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(request("/api/v1/commentaries?limit=1", HOST))
            status, head = await status_of(reader)
            writer.close()
            assert status == 503 and b"retry-after: 1\r\n" in head and b"connection: close\r\n" in head, head
        assert time.monotonic() - started < 2.0
        # A probe is answered all the same: a busy process is not a dead one (feedsvc.http.shed).
        for path in ("/healthz", "/readyz"):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(request(path, HOST))
            status, head = await status_of(reader)
            writer.close()
            assert status == 200, head
        for reader, writer in held:  # the connections held are served as their heads complete
            writer.write(HOST.encode() + b"\r\n\r\n")
            await writer.drain()
            assert (await status_of(reader))[0] == 200
    finally:
        for _, writer in held:
            writer.close()


async def test_at_the_limit_an_idle_connection_makes_room_for_a_new_one(patient_server: Server) -> None:
    server = patient_server
    """As nginx does: connections waiting with nothing sent (silent since they connected, or
    kept alive after an answer) are closed to serve newcomers, so idle connections cannot
    lock clients out."""
    held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(MAX_CONNECTIONS)]
    newcomers: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        await asyncio.sleep(0.2)
        for _ in range(10):  # each stays open, kept alive: 10 connections past the limit in all
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            newcomers.append((reader, writer))
            writer.write(request("/healthz", HOST))
            assert (await status_of(reader))[0] == 200
        await asyncio.sleep(0.3)
        for reader, _ in held + newcomers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(), 0.01)
        closed = sum(1 for reader, _ in held + newcomers if reader.at_eof())
        assert closed == 10, closed
    finally:
        for _, writer in held + newcomers:
            writer.close()


async def latencies(base: str, seconds: float) -> list[float]:
    """A normal client polling the feed and the API for ``seconds``; the time of each answer."""
    out: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            for path in ("/feed.rss", "/api/v1/commentaries?limit=5"):
                started = time.monotonic()
                r = await http.get(path)
                assert r.status_code == 200, r.text
                out.append(time.monotonic() - started)
    return out


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def test_a_normal_client_is_served_while_slow_and_oversized_clients_are_cut(server: Server) -> None:
    port = server.port
    idle = await latencies(server.base, 1.5)

    post = request("/api/v1/commentaries", HOST, f"Authorization: Bearer {server.token}",
                   "Content-Type: application/json", "Content-Length: 100", method="POST")

    # Eight of each kind: with the normal client, within MAX_CONNECTIONS, so that no slow
    # connection is closed to make room before it is cut at its own limit.
    async def attackers() -> tuple[list[Exchange], ...]:
        trickles = [
            exchange(port, *(bytes([b]) for b in request("/healthz", HOST, "X: " + "t" * 60)), pause=0.05)
            for _ in range(EACH)
        ]
        bodies = [exchange(port, post, *[b" "] * 100, pause=0.05) for _ in range(EACH)]
        big = [exchange(port, request("/healthz", HOST)[:-4] + b"\r\nX: ", *[b"a" * 65536] * 64) for _ in range(EACH)]
        silent = [exchange(port) for _ in range(EACH)]
        done = await asyncio.gather(*trickles, *bodies, *big, *silent)  # all at once
        return done[:EACH], done[EACH : 2 * EACH], done[2 * EACH : 3 * EACH], done[3 * EACH :]

    loaded, (trickled, bodies, big, silent) = await asyncio.gather(latencies(server.base, 2.5), attackers())
    # Each cut at its own limit: a trickled head at the header timeout, a trickled body at the
    # body timeout (counted from its head), an oversized head as soon as it is too big.
    for cut in trickled:
        refused(cut, 408, "request")
        assert HEADER_TIMEOUT <= cut.seconds < HEADER_TIMEOUT + SLACK, cut
    for cut in bodies:
        refused(cut, 408, "request")
        assert BODY_TIMEOUT <= cut.seconds < BODY_TIMEOUT + SLACK, cut
    for cut in big:
        refused(cut, 431, "header line")
        assert cut.seconds < SLACK, cut
    for cut in silent:
        assert cut.status is None and HEADER_TIMEOUT <= cut.seconds < HEADER_TIMEOUT + SLACK, cut
    print(f"normal client p99: idle {p99(idle) * 1000:.1f} ms, under slow clients {p99(loaded) * 1000:.1f} ms")
    # Twice the idle p99, with a floor for a shared two-core machine's scheduling noise.
    assert p99(loaded) < max(2 * p99(idle), 0.05), (p99(idle), p99(loaded))
