"""Overload: thousands of keep-alive connections asking the JSON API at once (issue 18, part 3).

Two things in one module:

* ``client``: a load generator that holds N keep-alive connections from one process (uvloop,
  one small protocol object per connection, no streams), each asking for one path again as
  soon as it has its answer, or ``Retry-After`` seconds after a ``503``, as a polite client
  does. It counts every answer by status and times it, and counts what a load test must
  never see: a request left without an answer past ``--timeout`` and a connection closed
  under a request. tests/test_overload.py runs it as ``python -m bench.overload client``
  (its own process, so the test's probes are not timed through the load's event loop).
* the benchmark (``python -m bench.overload``): `feedsvc serve` on the demo data, its peak
  goodput at a modest concurrency, then 2,000, 5,000 and 10,000 connections, with a
  ``/healthz`` probe every 100 ms alongside and the server's memory before and after. The
  report goes to stdout and bench/out/overload.md.

Goodput is answers ``200`` per second; peak is the goodput at ``--peak-connections``
(32), where the server is busy but nothing waits long.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

API_PATH = "/api/v1/commentaries?limit=5"
RAMP_BATCH = 500
"""Connections opened at once while ramping up (the listen backlog is uvicorn's 2048)."""


def raise_open_files() -> int:
    """Let this process hold as many sockets as the hard limit allows; returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class Result:
    """What the load saw within its measured window (after every connection was open)."""

    connections: int
    opened: int = 0
    """Connections open when the window started."""
    connect_errors: int = 0
    ramp_seconds: float = 0.0
    seconds: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    unanswered: int = 0
    """Requests with no answer within the client's timeout."""
    cut: int = 0
    """Connections the server closed under a request, with no answer."""
    closed_by_server: int = 0
    """Connections the server closed after an answer saying so (``connection: close``)."""
    ok_p50_ms: float = 0.0
    ok_p99_ms: float = 0.0
    shed_p50_ms: float = 0.0
    shed_p99_ms: float = 0.0
    shed_max_ms: float = 0.0

    @property
    def goodput(self) -> float:
        return self.statuses.get("200", 0) / self.seconds if self.seconds else 0.0


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000


class _Run:
    def __init__(self, host: str, request: bytes, timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.host = host
        self.request = request
        self.hello = request.replace(request.split(b" ")[1], b"/healthz", 1)
        self.timeout = timeout
        self.measuring = False
        self.stopping = False
        self.statuses: Counter[int] = Counter()
        self.ok: list[float] = []
        self.shed: list[float] = []
        self.unanswered = 0
        self.cut = 0
        self.closed_by_server = 0
        self.open: set[_Conn] = set()
        self.port = 0


class _Conn(asyncio.Protocol):
    """One keep-alive connection asking the same request again and again."""

    __slots__ = ("run", "transport", "buf", "sent_at", "timer", "waiting", "resting", "answered")

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.sent_at = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.waiting = False
        self.resting = False  # waiting out a Retry-After
        self.answered: asyncio.Future[None] = run.loop.create_future()  # the first answer came

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport
        self.run.open.add(self)
        self.send()

    def send(self) -> None:
        run, transport = self.run, self.transport
        self.resting = False
        if run.stopping:
            return
        if transport is None or transport.is_closing():
            # Closed while resting (the server's keep-alive timeout): a client connects
            # again when it has something to ask, as an HTTP client's pool does.
            run.loop.create_task(_connect(run))
            return
        self.buf.clear()
        self.waiting = True
        self.sent_at = time.monotonic()
        self.timer = run.loop.call_later(run.timeout, self.timed_out)
        # A connection's first request is /healthz: the server has accepted it once that is
        # answered, and the ramp up measures connections, not the API.
        transport.write(run.request if self.answered.done() else run.hello)

    def timed_out(self) -> None:
        self.timer = None
        if self.waiting and not self.run.stopping:
            if self.run.measuring:
                self.run.unanswered += 1
            self.waiting = False
            if self.transport is not None:
                self.transport.close()  # and connect again (connection_lost)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        length = 0
        retry = 1.0
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name == b"content-length":
                length = int(value)
            elif name == b"retry-after":
                retry = float(value)
            elif name == b"connection":
                close = b"close" in value
        if len(buf) < end + 4 + length:
            return
        status = int(head[9:12])
        elapsed = time.monotonic() - self.sent_at
        run = self.run
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.waiting = False
        if not self.answered.done():
            self.answered.set_result(None)
            self.send()
            return
        if run.measuring:
            run.statuses[status] += 1
            if status == 200:
                run.ok.append(elapsed)
            elif status == 503:
                run.shed.append(elapsed)
            if close:
                run.closed_by_server += 1
        if close:
            assert self.transport is not None
            self.transport.close()
        elif status == 503:
            self.resting = True
            run.loop.call_later(retry, self.send)
        else:
            self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        run = self.run
        run.open.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        if run.stopping:
            return
        if self.waiting and run.measuring:
            run.cut += 1
        if not self.resting:  # else ``send`` connects again when the rest is over
            run.loop.create_task(_connect(run))


async def _connect(run: _Run, *, answered: bool = False) -> bool:
    """Open a connection (it sends its first request at once); with ``answered``, return
    only once it has its first answer: the server has accepted it and read from it."""
    try:
        _, conn = await run.loop.create_connection(lambda: _Conn(run), run.host, run.port)
        if answered:
            await asyncio.wait_for(asyncio.shield(conn.answered), run.timeout)
    except (OSError, TimeoutError):
        return False
    return True


async def load(
    port: int, *, connections: int, seconds: float, path: str = API_PATH, host: str = "127.0.0.1",
    timeout: float = 10.0,
) -> Result:
    """``connections`` keep-alive connections asking for ``path`` for ``seconds`` once all
    are open; see the module docstring."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bench.overload\r\n\r\n".encode()
    run = _Run(host, request, timeout)
    run.port = port
    result = Result(connections)
    started = time.monotonic()
    # In steps, each one answered before the next: the listen backlog (2048) is not the
    # subject, and a connection the server has not yet accepted is not yet a load on it.
    for first in range(0, connections, RAMP_BATCH):
        done = await asyncio.gather(
            *(_connect(run, answered=True) for _ in range(min(RAMP_BATCH, connections - first)))
        )
        result.connect_errors += done.count(False)
    result.ramp_seconds = time.monotonic() - started
    result.opened = len(run.open)
    print(json.dumps({"measuring": result.opened}), flush=True)  # for ``client_process``'s caller
    run.measuring = True
    window = time.monotonic()
    await asyncio.sleep(seconds)
    run.measuring = False
    result.seconds = time.monotonic() - window
    run.stopping = True
    for conn in list(run.open):
        if conn.transport is not None:
            conn.transport.abort()
    await asyncio.sleep(0.1)
    result.statuses = {str(k): v for k, v in sorted(run.statuses.items())}
    result.unanswered, result.cut, result.closed_by_server = run.unanswered, run.cut, run.closed_by_server
    result.ok_p50_ms, result.ok_p99_ms = _pct(run.ok, 50), _pct(run.ok, 99)
    result.shed_p50_ms, result.shed_p99_ms = _pct(run.shed, 50), _pct(run.shed, 99)
    result.shed_max_ms = max(run.shed, default=0.0) * 1000
    return result


def run_client(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.overload client")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--connections", type=int, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--path", default=API_PATH)
    p.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args(argv)
    raise_open_files()
    import uvloop

    result = uvloop.run(
        load(args.port, connections=args.connections, seconds=args.seconds, path=args.path, timeout=args.timeout)
    )
    print(json.dumps({**asdict(result), "goodput": result.goodput}), flush=True)
    return 0


def client_process(
    port: int, connections: int, seconds: float, *, timeout: float = 10.0, measuring: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """``run_client`` in a process of its own (the caller's threads stay free to time
    probes); its result as a dict, ``goodput`` included. ``measuring`` is called when every
    connection is open and the measured window starts."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.overload", "client", "--port", str(port), "--connections", str(connections),
         "--seconds", str(seconds), "--timeout", str(timeout)],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith('{"measuring"') and measuring is not None:
                measuring()
        _, stderr = proc.communicate(timeout=seconds + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"the load client failed: {stderr}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


class Prober:
    """``GET /healthz`` on a new connection every ``interval`` seconds, from a thread, as an
    orchestrator probes: each answer's status and time from connecting to the last byte."""

    def __init__(self, port: int, interval: float = 0.1, timeout: float = 5.0) -> None:
        self.port = port
        self.interval = interval
        self.timeout = timeout
        self.samples: list[tuple[int, float]] = []  # (status, seconds); status 0: no answer
        self.connects: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe, name="prober", daemon=True)

    def __enter__(self) -> Prober:
        return self

    def start(self) -> None:
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.timeout + 1)

    def _probe(self) -> None:
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        while not self._stop.is_set():
            started = time.monotonic()
            status = 0
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout) as s:
                    self.connects.append(time.monotonic() - started)
                    s.sendall(request)
                    data = b""
                    while chunk := s.recv(4096):
                        data += chunk
                status = int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else 0
            except OSError:
                pass
            self.samples.append((status, time.monotonic() - started))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    @property
    def worst_ms(self) -> float:
        return max((s for _, s in self.samples), default=0.0) * 1000

    @property
    def failed(self) -> int:
        return sum(1 for status, _ in self.samples if status != 200)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# --- the benchmark ------------------------------------------------------------------------


def bench(argv: list[str]) -> int:
    from bench.common import OUT, ROOT, Server, free_port, log

    p = argparse.ArgumentParser(prog="python -m bench.overload")
    p.add_argument("--levels", default="2000,5000,10000", help="connections per run, comma-separated")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--peak-connections", type=int, default=32)
    p.add_argument("--max-in-flight", type=int, help="FEEDSVC_MAX_IN_FLIGHT for the server (default: its own)")
    p.add_argument("--max-queued", type=int, help="FEEDSVC_MAX_QUEUED for the server (default: its own)")
    args = p.parse_args(argv)
    levels = [int(n) for n in args.levels.split(",")]
    limit = raise_open_files()
    if limit < max(levels) + 100:
        log(f"the open-files limit is {limit}: runs above {limit - 100} connections will not open them all")
    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / "overload"
    data.mkdir(exist_ok=True)
    db = data / "feedsvc.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env.update({
        "FEEDSVC_DATABASE_URL": f"sqlite:///{db}", "FEEDSVC_ACCESS_LOG": "false", "FEEDSVC_LOG_LEVEL": "WARNING",
        # The subject is the in-flight bound: every connection is held (none past the limit).
        "FEEDSVC_MAX_CONNECTIONS": str(max(levels) + 1000),
        "PYTHONMALLOC": "malloc",  # as docs/operating.md recommends for crowds of connections
        **{f"FEEDSVC_RATE_LIMIT_{c}": "0" for c in ("FEEDS", "READ", "SEARCH", "WRITE", "AUTH_FAILURES")},
    })
    if args.max_in_flight:
        env["FEEDSVC_MAX_IN_FLIGHT"] = str(args.max_in_flight)
    if args.max_queued is not None:
        env["FEEDSVC_MAX_QUEUED"] = str(args.max_queued)
    if not db.exists():
        subprocess.run([sys.executable, "-m", "feedsvc", "demo", "--data", str(ROOT / "data")], env=env, cwd=ROOT,
                       check=True, capture_output=True, timeout=300)
    port = free_port()
    server = Server("feedsvc-overload", [sys.executable, "-m", "feedsvc", "serve", "--port", str(port)],
                    port=port, env=env)
    rows: list[str] = []
    try:
        server.wait_ready("/readyz")
        log(f"peak: {args.peak_connections} connections, {args.seconds:.0f} s")
        first = client_process(port, args.peak_connections, args.seconds)
        results = []
        for n in levels:
            before = rss_mb(server.proc.pid)
            log(f"{n} connections, {args.seconds:.0f} s")
            with Prober(port) as prober:
                result = client_process(port, n, args.seconds, measuring=prober.start)
            time.sleep(3.0)  # the connections closed; the server lets their memory go
            after = rss_mb(server.proc.pid)
            results.append((result, prober, before, after))
        # Once more at the end: on a shared machine the CPU left to the server comes and goes,
        # and the mean of before and after is the peak under the runs' conditions.
        log(f"peak again: {args.peak_connections} connections, {args.seconds:.0f} s")
        again = client_process(port, args.peak_connections, args.seconds)
        peak = (first["goodput"] + again["goodput"]) / 2
        rows.append(_row({**first, "goodput": peak}, peak, None, None, None))
        rows += [_row(result, peak, prober, before, after) for result, prober, before, after in results]
        peaks = f"{first['goodput']:.0f}/s before the runs, {again['goodput']:.0f}/s after"
    finally:
        server.stop()
    report = "\n".join([
        "# Overload: the JSON API under many keep-alive connections",
        "",
        f"`{API_PATH}` on the demo data, one `feedsvc serve` process (SQLite), "
        f"{args.seconds:.0f} s per run after every connection is open; clients wait `Retry-After` after a 503. "
        f"Goodput: answers 200 per second; peak at {args.peak_connections} connections, the mean of {peaks}. "
        "`/healthz` probed on a new connection every 100 ms during each run.",
        "",
        "| connections | opened in s | goodput/s | of peak | 200 p99 ms | 503s | 503 p50/p99 ms | unanswered "
        "| cut | /healthz ≤100 ms, worst ms (failed) | RSS before → after MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ])
    print(report)
    (OUT / "overload.md").write_text(report + "\n")
    return 0


def _row(r: dict[str, Any], peak: float, prober: Prober | None, before: float | None, after: float | None) -> str:
    if prober and prober.samples:
        fast = sum(1 for _, s in prober.samples if s < 0.1) / len(prober.samples)
        probes = f"{fast:.0%}, {prober.worst_ms:.0f} ({prober.failed} of {len(prober.samples)})"
    else:
        probes = "-"
    memory = f"{before:.0f} → {after:.0f}" if before is not None and after is not None else "-"
    return (
        f"| {r['connections']} | {r['ramp_seconds']:.1f} | {r['goodput']:.0f} | {r['goodput'] / peak:.0%} "
        f"| {r['ok_p99_ms']:.0f} | {r['statuses'].get('503', 0)} | {r['shed_p50_ms']:.0f}/{r['shed_p99_ms']:.0f} "
        f"| {r['unanswered']} | {r['cut']} | {probes} | {memory} |"
    )


def main() -> int:
    if sys.argv[1:2] == ["client"]:
        return run_client(sys.argv[2:])
    return bench(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
