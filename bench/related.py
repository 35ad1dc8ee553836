"""Related commentaries at scale: how long ``GET /api/v1/commentaries/{id}/related`` takes.

    python -m bench.related                                 # 100k DB from bench.generate
    python -m bench.related --size 1000 --requests 100      # a quick run
    python -m bench.related --postgres 'postgresql://…?schema=NAME'   # that store too

The SQLite database is bench.generate's cached ``bench/out/db-{n}.sqlite`` (built on first
use, and migrated by the first open after a schema step). A PostgreSQL database for
``--postgres`` is filled from it with ``feedsvc migrate-data --from sqlite:///… --to …``.

Measured on commentaries drawn at random (seeded: every run asks for the same ones) and on
the 50 newest (what feeds show), each asked for once:

1. ``store``: the store alone, in process: ``get_related(item, 5)``, wall time per call;
2. ``http``: ``GET /api/v1/commentaries/{id}/related`` against ``feedsvc serve`` (one
   worker, as in bench.run), sequential keep-alive requests after 10 warm-up ones, client
   time (SQLite only: the server is started on the bench database);
3. ``feed``: ``Service.related_links`` for the 50 newest (3 each): what re-checking a
   50-item JSON Feed view adds once the change sequence has moved.

A table of p50/p99/max in milliseconds goes to stdout and ``bench/out/related.md``, the
raw numbers to ``bench/out/related.json``. Exit status 1 when any answer was unexpected.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import HOST, OUT, BenchError, _percentile, cpu_seconds, get, log, start_feedsvc
from bench.generate import SEED, database
from feedsvc.query import Query
from feedsvc.service import RELATED_IN_FEEDS, Service
from feedsvc.store import Store, open_store

API = "/api/v1/commentaries"
NEWEST = 50


@dataclass
class Result:
    store: str
    what: str
    ids: str
    n: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_ms: float
    """CPU time per call, every thread of the measuring process (store) or of the server
    (HTTP): what the call costs, whatever else the machine is running."""


def summary(store: str, what: str, ids: str, times: list[float], cpu_seconds: float) -> Result:
    return Result(
        store, what, ids, len(times), statistics.median(times), _percentile(times, 99), max(times),
        cpu_seconds * 1000 / len(times),
    )


async def pick_ids(store: Store, n: int) -> tuple[list[str], list[str]]:
    """``n`` public commentaries drawn at random (seeded) and the NEWEST newest, by id."""
    now = datetime.now(UTC)
    ids = [c.id async for c in store.iter_all_commentaries() if c.status == "published" and c.published_at <= now]
    drawn = random.Random(SEED).sample(ids, min(n, len(ids)))
    newest = [c.id for c in await store.get_commentaries(Query(limit=NEWEST))]
    return drawn, newest


async def measure_store(url: str, name: str, n: int) -> tuple[list[Result], list[str], list[str]]:
    store = open_store(url)
    await store.open()
    try:
        drawn, newest = await pick_ids(store, n)
        drawn = [id for id in drawn if id not in set(newest)]
        results = []
        for label, ids in (("random", drawn), ("newest 50", newest)):
            items = [await store.get_commentary(id, public_only=True) for id in ids]
            for item in items[:10]:  # warm up
                await store.get_related([item], 5)
            times = []
            cpu = time.process_time()
            for item in items:
                t = time.perf_counter()
                await store.get_related([item], 5)
                times.append((time.perf_counter() - t) * 1000)
            results.append(summary(name, "store.get_related([item], 5)", label, times, time.process_time() - cpu))
        service = Service(store, base_url="http://127.0.0.1")
        items = [await store.get_commentary(id, public_only=True) for id in newest]
        times = []
        cpu = time.process_time()
        for _ in range(10):
            t = time.perf_counter()
            await service.related_links(items, RELATED_IN_FEEDS)
            times.append((time.perf_counter() - t) * 1000)
        what = f"Service.related_links: {len(items)} items x {RELATED_IN_FEEDS}"
        results.append(summary(name, what, "newest 50", times, time.process_time() - cpu))
        return results, drawn, newest
    finally:
        await store.close()


def measure_http(db: Path, ids_by_label: dict[str, list[str]]) -> list[Result]:
    server = start_feedsvc(db, None)
    results = []
    try:
        conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
        for label, ids in ids_by_label.items():
            for id in ids[:10]:
                get(conn, f"{API}/{id}/related")
            times = []
            cpu = cpu_seconds(server.pids())
            for id in ids:
                path = f"{API}/{id}/related"
                t = time.perf_counter()
                status, body = get(conn, path)
                times.append((time.perf_counter() - t) * 1000)
                if status != 200 or not isinstance(json.loads(body), list):
                    raise BenchError(f"GET {path} answered {status}: {body[:300]!r}")
            used = cpu_seconds(server.pids()) - cpu
            results.append(summary("sqlite", "GET …/{id}/related (HTTP)", label, times, used))
        conn.close()
        errors = server.errors_logged()
        if errors:
            raise BenchError(f"feedsvc logged: {errors[0]}")
    finally:
        server.stop()
    return results


def table(results: list[Result], size: int) -> list[str]:
    lines = [
        f"Related commentaries at {size:,} commentaries: wall time p50 / p99 / max and CPU per call, in ms",
        "",
        "| store | measurement | commentaries | n | p50 | p99 | max | CPU |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r.store} | {r.what} | {r.ids} | {r.n} "
        f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.max_ms:.2f} | {r.cpu_ms:.2f} |"
        for r in results
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.related", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="commentaries in the database (default 100000)")
    parser.add_argument("--requests", type=int, default=300, help="random commentaries asked for (default 300)")
    parser.add_argument("--postgres", metavar="URL", help="also measure the store on this PostgreSQL database")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP measurement")
    args = parser.parse_args(argv)
    db = database(args.size, log=log)
    results: list[Result] = []
    try:
        log(f"store: sqlite, {db.name}")
        found, drawn, newest = asyncio.run(measure_store(f"sqlite:///{db}", "sqlite", args.requests))
        results += found
        if args.postgres:
            log("store: postgresql")
            results += asyncio.run(measure_store(args.postgres, "postgresql", args.requests))[0]
        if not args.no_http:
            log("http: feedsvc serve")
            results += measure_http(db, {"random": drawn, "newest 50": newest})
    except BenchError as e:
        log(f"FAILED: {e}")
        return 1
    lines = table(results, args.size)
    print("\n".join(lines))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "related.md").write_text("\n".join(lines) + "\n")
    raw: dict[str, Any] = {"size": args.size, "results": [asdict(r) for r in results]}
    (OUT / "related.json").write_text(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
