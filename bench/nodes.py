"""One store against the other, and two nodes against one (issue 5), in one run.

    python -m bench.nodes                 # 100,000 commentaries, 10 s per wrk run
    python -m bench.nodes --size 1000 --duration 3    # a smoke test of the harness

The same generated database (bench.generate, cached in bench/out/) is served three ways:

1. one feedsvc node on the SQLite file;
2. one feedsvc node on PostgreSQL, holding a copy made by ``feedsvc migrate-data`` (into the
   schema ``bench_<size>`` of ``FEEDSVC_BENCH_POSTGRES_DSN``, default the local ``test``
   database; the copy is reused while it has as many change-log entries as the file);
3. two feedsvc nodes on that same PostgreSQL schema, each answering half the load.

For each: the list API over HTTP (sequential keep-alive requests, p50/p99, as bench.run
part B), and wrk (-t1 -c16 per node) on the cached /feed.rss and on a category + date-range
list query, the two nodes loaded at the same time by one wrk each. Before the two-node
numbers, a write through node A must show on node B at once (new ETag, new item). Every
node runs ``feedsvc serve --workers 1`` with the same public URL, as behind a balancer.
Nothing is pinned to a CPU: with PostgreSQL in the mix there is no fair split of two cores.
The report goes to stdout and bench/out/bench-nodes.md; the exit status is 1 when any
response was not the expected one.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import asyncpg

from bench.common import (
    API,
    HOST,
    OUT,
    ROOT,
    BenchError,
    QueryResult,
    Server,
    deep_page_path,
    expect,
    feedsvc_argv,
    free_port,
    log,
    request,
    time_query,
)
from bench.generate import database
from bench.run import WrkRun, api_queries, ensure_tools, fmt, wrk

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
CATEGORY_QUERY = {"category": "economy-and-energy", "from": "2019-01-01", "to": "2020-12-31"}


@dataclass
class Setup:
    name: str
    api: list[QueryResult] = field(default_factory=list)
    wrk: dict[str, WrkRun] = field(default_factory=dict)
    """Scenario -> the run (for two nodes: requests and req/s summed, latencies the worse node's)."""


def postgres_copy(db: Path, dsn: str, size: int) -> str:
    """The URL of a PostgreSQL schema holding what ``db`` holds, copied when missing or
    different. The coherence probe of an earlier run leaves two change-log entries after the
    copied ones (a create and a delete): those do not count as different."""
    import asyncio
    import sqlite3

    schema = f"bench_{size}"
    url = f"{dsn}{'&' if '?' in dsn else '?'}schema={schema}"
    conn = sqlite3.connect(db)
    try:
        want, last = conn.execute("SELECT count(*), max(seq) FROM changes").fetchone()
    finally:
        conn.close()

    async def have(drop: bool) -> int:
        pg = await asyncpg.connect(dsn)
        try:
            if drop:
                await pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                return 0
            if not await pg.fetchval("SELECT to_regclass($1)", f"{schema}.changes"):
                return 0
            return int(await pg.fetchval(f'SELECT count(*) FROM "{schema}".changes WHERE seq <= $1', last))
        finally:
            await pg.close()

    if asyncio.run(have(drop=False)) != want:
        asyncio.run(have(drop=True))
        log(f"copying {db.name} into PostgreSQL schema {schema} (feedsvc migrate-data)")
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "feedsvc", "migrate-data", "--from", f"sqlite:///{db}", "--to", url],
            cwd=ROOT, check=False, capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise BenchError(f"feedsvc migrate-data failed ({done.returncode}): {done.stderr[-2000:]}")
        log(f"copied {want:,} change-log entries in {time.perf_counter() - started:.0f} s")
    return url


def start_node(name: str, database_url: str, public_port: int, port: int | None = None) -> Server:
    """``feedsvc serve --workers 1`` on ``database_url``; every node claims the same public URL."""
    port = port or free_port()
    argv, env = feedsvc_argv(Path("unused"), port)
    env["FEEDSVC_DATABASE_URL"] = database_url
    env["FEEDSVC_PUBLIC_URL"] = f"http://{HOST}:{public_port}"
    server = Server(name, argv, port=port, env=env)
    server.wait_ready("/readyz")
    return server


def api_latency(server: Server, size: int, requests: int) -> list[QueryResult]:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
    try:
        results = [
            time_query(conn, size, name, f"{API}?{urlencode(params)}" if params else API, requests, 30.0)
            for name, params in api_queries(size)
        ]
        deep = max(2, min(100, size // 40))
        results.append(
            time_query(conn, size, f"page {deep} (cursor, limit=20)", deep_page_path(conn, deep), requests, 30.0)
        )
        return results
    finally:
        conn.close()


def load(servers: list[Server], path: str, duration: float) -> WrkRun:
    """wrk on ``path`` against every server at once; their runs combined."""
    expect(servers[0].port, path, 200)  # rendered and cached before the clock starts
    for server in servers[1:]:
        expect(server.port, path, 200)
    runs: list[WrkRun | BaseException] = [BenchError("no run")] * len(servers)

    def one(i: int) -> None:
        try:
            runs[i] = wrk(servers[i], path, duration)
        except BaseException as e:  # noqa: BLE001 - re-raised below, in the calling thread
            runs[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(servers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done: list[WrkRun] = []
    for run in runs:
        if isinstance(run, BaseException):
            raise run
        done.append(run)
    return WrkRun(
        requests=sum(r.requests for r in done),
        rps=sum(r.rps for r in done),
        p50_ms=max(r.p50_ms for r in done),
        p99_ms=max(r.p99_ms for r in done),
        cpu_us_per_request=sum(r.cpu_us_per_request * r.requests for r in done) / max(1, sum(r.requests for r in done)),
    )


def check_coherence(a: Server, b: Server) -> str:
    """A write acknowledged by node A is what node B serves on the next request."""
    token = os.environ["BENCH_TOKEN"]
    etag_before = request(b.port, "GET", "/feed.json")[1]["etag"]
    status, _, body = _post(a.port, token)
    if status != 201:
        raise BenchError(f"POST through node A answered {status}: {body[:300]!r}")
    created: str = json.loads(body)["id"]
    head, after = expect(b.port, "/feed.json", 200)
    if head["etag"] == etag_before or created not in after.decode():
        raise BenchError("node B still served the feed from before node A's write")
    status, _, _ = request(b.port, "GET", f"{API}/{created}")
    if status != 200:
        raise BenchError(f"node B answered {status} for the commentary node A just created")
    _delete(a.port, token, created)
    return created


def _post(port: int, token: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        body = json.dumps(
            {
                "title": "Coherence probe",
                "lang": "en",
                "category": "economy-and-energy",
                "authors": [{"name": "Bench"}],
                "published_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "body_markdown": "Written through node A, read through node B.",
            }
        )
        conn.request(
            "POST", API, body=body, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        )
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def _delete(port: int, token: str, id: str) -> None:
    _status, head, _ = request(port, "GET", f"{API}/{id}")
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("DELETE", f"{API}/{id}", headers={"Authorization": f"Bearer {token}", "If-Match": head["etag"]})
        r = conn.getresponse()
        r.read()
        if r.status != 204:
            raise BenchError(f"DELETE of the probe answered {r.status}")
    finally:
        conn.close()


def make_token(database_url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "feedsvc", "token", "create", "--name", "bench-nodes", "--scope", "write",
         "--database-url", database_url],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    return done.stdout.strip().splitlines()[-1]


def report(size: int, setups: list[Setup], args: argparse.Namespace, probe: str) -> list[str]:
    base = setups[0]
    lines = [
        (f"## feedsvc: SQLite vs PostgreSQL, one node vs two, {size:,} commentaries "
        f"({time.strftime('%Y-%m-%d %H:%M')})"),
        "",
        (f"Command: `python -m bench.nodes --size {size} --duration {args.duration:g} --requests {args.requests}`. "
        f"{os.cpu_count()} CPUs shared by the nodes, PostgreSQL and the load generators (nothing pinned)."),
        "",
        "### Throughput under wrk (-t1 -c16 per node)",
        "",
        "| setup | scenario | req/s | vs SQLite, 1 node | p50 / p99 ms | CPU µs/req (feedsvc) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for setup in setups:
        for scenario, run in setup.wrk.items():
            ratio = run.rps / base.wrk[scenario].rps if scenario in base.wrk else 0.0
            lines.append(
                f"| {setup.name} | {scenario} | {fmt(run.rps)} | {ratio:.2f} | {fmt(run.p50_ms)} / {fmt(run.p99_ms)} "
                f"| {fmt(run.cpu_us_per_request, 0)} |"
            )
    lines += [
        "",
        f"### List API latency, {args.requests} sequential keep-alive requests per query (one node idle otherwise)",
        "",
        "| query | " + " | ".join(f"{s.name} p50 / p99 ms" for s in setups if s.api) + " |",
        "|---|" + "---:|" * sum(1 for s in setups if s.api),
    ]
    with_api = [s for s in setups if s.api]
    for i, first in enumerate(with_api[0].api):
        cells = [f"{s.api[i].p50_ms:.2f} / {s.api[i].p99_ms:.2f}" if not s.api[i].error else "FAILED" for s in with_api]
        lines.append(f"| {first.name} | " + " | ".join(cells) + " |")
    lines += ["", (f"Coherence: commentary {probe}, written through node A, was in node B's next /feed.json "
              "(new ETag) and API answer."), ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.nodes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per list-API query")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    ensure_tools()
    db = database(args.size, log=log)
    pg_url = postgres_copy(db, os.environ.get("FEEDSVC_BENCH_POSTGRES_DSN", DEFAULT_DSN), args.size)
    os.environ["BENCH_TOKEN"] = make_token(pg_url)
    category_path = f"{API}?{urlencode(CATEGORY_QUERY)}"
    setups: list[Setup] = []
    failures: list[str] = []
    probe = ""
    try:
        for name, url in (("SQLite, 1 node", f"sqlite:///{db}"), ("PostgreSQL, 1 node", pg_url)):
            setup = Setup(name)
            setups.append(setup)
            log(f"{name}: list API, then wrk")
            port = free_port()
            node = start_node("node-a", url, port, port)
            try:
                setup.api = api_latency(node, args.size, args.requests)
                setup.wrk["cached /feed.rss"] = load([node], "/feed.rss", args.duration)
                setup.wrk["category + date range (API)"] = load([node], category_path, args.duration)
            finally:
                node.stop()
        setup = Setup("PostgreSQL, 2 nodes")
        setups.append(setup)
        log("PostgreSQL, 2 nodes: coherence, then wrk on both at once")
        port = free_port()
        a = start_node("node-a", pg_url, port, port)
        b = start_node("node-b", pg_url, port)
        try:
            probe = check_coherence(a, b)
            setup.wrk["cached /feed.rss"] = load([a, b], "/feed.rss", args.duration)
            setup.wrk["category + date range (API)"] = load([a, b], category_path, args.duration)
        finally:
            a.stop()
            b.stop()
    except BenchError as e:
        failures.append(str(e))
    failures += [f"{s.name}: {r.name}: {r.error}" for s in setups for r in s.api if r.error]
    lines = report(args.size, setups, args, probe) if not failures else ["**FAILED**", *failures]
    text = "\n".join(lines) + "\n"
    (OUT / "bench-nodes.md").write_text(text)
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
