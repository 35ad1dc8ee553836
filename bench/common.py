"""What the benchmark scripts share: where things are, logging, servers in their own
process group, CPU and memory of a process tree, plain HTTP requests and the timed list-API
query. bench.run, bench.scale, bench.nodes, bench.servers and bench.related import it;
it imports none of them, so the scripts do not import each other in a loop.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A response that was not what the benchmark expects: the numbers would be wrong."""


# --- processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pinned(argv: list[str], cpus: set[int] | None) -> list[str]:
    """``argv`` run on ``cpus`` only (through taskset, which execs it: same pid)."""
    if not cpus or not shutil.which("taskset"):
        return argv
    return ["taskset", "-c", ",".join(map(str, sorted(cpus))), *argv]


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    return total / CLK_TCK


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


class Server:
    """A server in its own process group, stopped with the whole group."""

    def __init__(self, name: str, argv: list[str], *, port: int, env: dict[str, str] | None = None,
                 cpus: set[int] | None = None) -> None:
        self.name = name
        self.port = port
        self.log_path = OUT / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            pinned(argv, cpus), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def pids(self) -> list[int]:
        return tree(self.proc.pid)

    def wait_ready(self, path: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if request(self.port, "GET", path)[0] == 200:
                    return
            time.sleep(0.2)
        raise BenchError(f"{self.name} not ready after {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()

    def errors_logged(self) -> list[str]:
        """Lines of the server's log that report an error. Read line by line: with the
        access log on, the log holds a line per request (millions in a full run)."""
        bad = re.compile(r"Traceback|\bERROR\b|\[error\]|\[crit\]|\[emerg\]")
        with open(self.log_path, encoding="utf-8", errors="replace") as log_file:
            return [line.rstrip("\n") for line in log_file if bad.search(line)]


AS_DEPLOYED_RATE = "1000000/s,1000000"
"""The rate limits of a feedsvc measured as deployed: the limiter takes a token on every
request as with the defaults, but one client at thousands of requests a second (the point
of a benchmark) is never refused."""


def feedsvc_argv(
    db: Path | str, port: int, *, access_log: bool = True, workers: int = 1
) -> tuple[list[str], dict[str, str]]:
    """``feedsvc serve`` with ``workers`` worker processes on ``db`` (a SQLite file, or a
    ``postgresql://`` URL), as deployed: default settings, the access log on (to the
    server's log file, stderr as with ``feedsvc serve 2>>feedsvc.log``), rate limits that
    count every request but refuse none. ``access_log=False`` turns the log off (the
    comparison rows with both servers' logs off)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    url = db if isinstance(db, str) else f"sqlite:///{db}"
    env.update({
        "FEEDSVC_DATABASE_URL": url,
        "FEEDSVC_PUBLIC_URL": f"http://{HOST}:{port}",
        "FEEDSVC_MEDIA_DIR": str(ROOT / "data" / "media"),
    })
    env.update({f"FEEDSVC_RATE_LIMIT_{c}": AS_DEPLOYED_RATE for c in ("FEEDS", "READ", "SEARCH", "WRITE")})
    if not access_log:
        env["FEEDSVC_ACCESS_LOG"] = "false"
    argv = [sys.executable, "-m", "feedsvc", "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    return argv, env


def start_feedsvc(db: Path | str, cpus: set[int] | None, *, access_log: bool = True, workers: int = 1,
                  name: str = "feedsvc") -> Server:
    port = free_port()
    argv, env = feedsvc_argv(db, port, access_log=access_log, workers=workers)
    server = Server(name, argv, port=port, env=env, cpus=cpus)
    server.wait_ready("/readyz")
    return server


# --- HTTP ---------------------------------------------------------------------------------


def request(
    port: int, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def expect(
    port: int, path: str, status: int, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[dict[str, str], bytes]:
    got, head, body = request(port, method, path, headers)
    if got != status:
        raise BenchError(
            f"{method} {path} {headers or ''} on :{port} answered {got}, expected {status}: {body[:300]!r}"
        )
    return head, body


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


# --- the list API -------------------------------------------------------------------------


@dataclass
class QueryResult:
    size: int
    name: str
    path: str
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    items: int = 0
    response_bytes: int = 0
    requests: int = 0
    error: str = ""


API = "/api/v1/commentaries"


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def deep_page_path(conn: http.client.HTTPConnection, page: int) -> str:
    """The URL of page ``page`` of the unfiltered list (limit=20), reached by following
    next_cursor from page 1."""
    path = f"{API}?limit=20"
    for n in range(1, page):
        status, body = get(conn, path)
        if status != 200:
            raise BenchError(f"GET {path} answered {status}: {body[:300]!r}")
        cursor = json.loads(body)["next_cursor"]
        if not cursor:
            raise BenchError(f"page {n} has no next_cursor")
        path = f"{API}?{urlencode({'limit': 20, 'cursor': cursor})}"
    return path


def time_query(
    conn: http.client.HTTPConnection, size: int, name: str, path: str, requests: int, max_seconds: float
) -> QueryResult:
    """``requests`` sequential GETs after 10 warm-up ones, or as many as fit in ``max_seconds``."""
    result = QueryResult(size, name, path)
    times: list[float] = []
    body = b""
    deadline = time.monotonic() + max_seconds
    try:
        for i in range(requests + 10):  # the first 10 warm up
            t = time.perf_counter()
            status, body = get(conn, path)
            elapsed = (time.perf_counter() - t) * 1000
            if status != 200:
                raise BenchError(f"GET {path} answered {status}: {body[:300]!r}")
            if i >= 10:
                times.append(elapsed)
            if time.monotonic() > deadline and len(times) >= 20:
                log(f"  {name}: stopped after {len(times)} requests ({max_seconds:g} s cap)")
                break
    except BenchError as e:
        result.error = str(e)
        log(f"FAILED {name}: {e}")
        return result
    result.requests = len(times)
    result.p50_ms = statistics.median(times)
    result.p99_ms = _percentile(times, 99)
    result.items = len(json.loads(body)["items"])
    result.response_bytes = len(body)
    if result.items == 0:
        log(f"warning: {name} ({path}) returned no items")
    return result
