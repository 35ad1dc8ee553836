"""Scale runs: the list API at 10k, 100k and 1M commentaries on SQLite (and on PostgreSQL
with ``--postgres``, see bench.pgscale), the bulk commands, and the server's peak memory.

    python -m bench.scale                                   # 10k, 100k, 1M; import 50,000 records
    python -m bench.scale --postgres postgresql://postgres@127.0.0.1:5432/test   # and PostgreSQL
    python -m bench.scale --sizes 10000 --postgres URL --import-records 5000 --requests 100   # ~5 min

**List API** (per size): ``feedsvc serve --workers 1`` on the cached database
``bench/out/db-{n}.sqlite`` (built by bench.generate on first use; the 1M one takes long,
see bench/README.md), 127.0.0.1, as deployed (bench.common.feedsvc_argv). Sequential
keep-alive requests, 10 warm-up ones then ``--requests`` (default 200, capped at 30 s a
query), every query with ``limit=20``: page 1; category + date range; ``q`` for a word in
nearly every English record, for the rarest word of the vocabulary and for a made-up name in
about 1 % of them; a tag; and page 1,000 reached by following ``next_cursor`` from page 1 (a
lower page on databases too small for 1,000 pages), timed interleaved with page 1. p50/p99,
client time. The two pages hold different commentaries, and a response costs what its
commentaries cost, so the depth target is judged on the store's page query alone (keys
only, page 1 and page 1,000 alternately, in the bench process).

**Memory**: after the queries, the feeds (site, each category, each language, in RSS, Atom
and JSON Feed) are requested once; then the peak resident memory (VmHWM) and the current
one (VmRSS) of the server's process tree are read from /proc.

**Bulk commands** (bench.pgscale): ``feedsvc import`` of ``--import-records`` generated
records (cached as bench/out/import-{n}.jsonl) into a new SQLite database and, with
``--postgres``, a new schema; ``feedsvc migrate-data`` both ways at each PostgreSQL size.

Results: a Markdown table on stdout and in bench/out/scale.md, the raw numbers in
bench/out/scale.json; bench.results reads them back and judges issue 17's targets, for
bench.run's TARGETS table. Exit status 1 when a response was not the expected one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import shutil
import signal
import sqlite3
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import (
    API,
    HOST,
    OUT,
    BenchError,
    QueryResult,
    Server,
    _percentile,
    deep_page_path,
    feedsvc_argv,
    free_port,
    get,
    log,
    time_query,
)
from bench.generate import (
    CATEGORIES,
    COMMON_WORD,
    EN_WORDS,
    GENERATOR_VERSION,
    LANGUAGES,
    RARE_NAME,
    SEED,
    TAGS,
    database,
    write_jsonl,
)
from bench.pgscale import (
    explain_plans,
    fill_postgres,
    import_into,
    import_postgres,
    migrate_back,
    read_changes,
)
from bench.results import (
    LIMIT,
    TARGET_SIZE,
    BulkRun,
    DepthRun,
    MemoryRun,
    PgRun,
    ScaleResults,
    as_json,
    carry_over,
    deep_page_for,
    load_results,
    report,
)
from feedsvc.model import to_us
from feedsvc.query import Query
from feedsvc.store import open_store

SIZES = (10_000, 100_000, 1_000_000)
RARE_WORD = EN_WORDS[-1]
"""The least frequent word of the English vocabulary (bench.generate's Zipf-like text)."""


# --- the list API -------------------------------------------------------------------------


def scale_queries() -> list[tuple[str, dict[str, str]]]:
    limit = str(LIMIT)
    return [
        ("page 1", {"limit": limit}),
        ("category + date range", {"category": "economy-and-energy", "from": "2019-01-01", "to": "2020-12-31",
                                   "limit": limit}),
        (f"q: common word ({COMMON_WORD})", {"q": COMMON_WORD, "limit": limit}),
        (f"q: rare word ({RARE_WORD})", {"q": RARE_WORD, "limit": limit}),
        (f"q: rare name ({RARE_NAME})", {"q": RARE_NAME, "limit": limit}),
        (f"tag ({TAGS[20]})", {"tag": TAGS[20], "limit": limit}),
    ]


def start_server(db: Path | str) -> Server:
    port = free_port()
    argv, env = feedsvc_argv(db, port)
    server = Server("feedsvc-scale" if isinstance(db, Path) else "feedsvc-scale-pg", argv, port=port, env=env)
    server.wait_ready("/readyz", timeout=600)  # a migration of an old 1M database takes minutes
    return server


def api_at(size: int, requests: int, max_seconds: float) -> tuple[list[QueryResult], MemoryRun, DepthRun | None]:
    db = database(size, log=log)
    log(f"list API at {size:,} commentaries")
    server = start_server(db)
    try:
        conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
        results = [
            time_query(conn, size, name, f"{API}?{urlencode(params)}", requests, max_seconds)
            for name, params in scale_queries()
        ]
        deep = deep_page_for(size)
        depth = None
        try:
            pair, after = page_pair(conn, size, deep, requests, max_seconds)
            results += pair
            depth = DepthRun(size, deep, *sql_page_times(db, after, requests))
        except BenchError as e:
            results.append(QueryResult(size, f"page {deep} (cursor)", API, error=str(e)))
        feeds = request_feeds(conn)
        conn.close()
        pids = server.pids()
        memory = MemoryRun(size, _status_mb(pids, "VmHWM"), _status_mb(pids, "VmRSS"), feeds)
        log(f"  memory: peak {memory.peak_mb:.0f} MB, now {memory.rss_mb:.0f} MB")
        for line in server.errors_logged()[:20]:
            results.append(QueryResult(size, "server log", "", error=f"feedsvc logged: {line}"))
        return results, memory, depth
    finally:
        server.stop()


def page_pair(
    conn: http.client.HTTPConnection, size: int, deep: int, requests: int, max_seconds: float
) -> tuple[list[QueryResult], tuple[int, str]]:
    """Page 1 and page ``deep`` (cursors from page 1, limit=20), timed alternately so that
    the machine's load weighs on both alike; and the key page ``deep`` starts after."""
    log(f"  following next_cursor to page {deep}")
    before = deep_page_path(conn, deep - 1)
    status, body = get(conn, before)
    if status != 200:
        raise BenchError(f"GET {before} answered {status}: {body[:300]!r}")
    page = json.loads(body)
    last = page["items"][-1]
    after = (to_us(datetime.fromisoformat(last["published_at"])), str(last["id"]))
    paths = {
        "page 1 (beside the deep page)": f"{API}?limit={LIMIT}",
        f"page {deep} (cursor)": f"{API}?{urlencode({'limit': LIMIT, 'cursor': page['next_cursor']})}",
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    bodies: dict[str, bytes] = {}
    deadline = time.monotonic() + 2 * max_seconds
    for i in range(requests + 10):
        for name, path in paths.items():
            t = time.perf_counter()
            status, body = get(conn, path)
            elapsed = (time.perf_counter() - t) * 1000
            if status != 200:
                raise BenchError(f"GET {path} answered {status}: {body[:300]!r}")
            if i >= 10:
                times[name].append(elapsed)
            bodies[name] = body
        if time.monotonic() > deadline and i >= 30:
            break
    out = []
    for name, path in paths.items():
        took = times[name]
        items = len(json.loads(bodies[name])["items"])
        if items != LIMIT:
            raise BenchError(f"{name} has {items} items, expected {LIMIT}")
        out.append(QueryResult(size, name, path, statistics.median(took), _percentile(took, 99), items,
                               len(bodies[name]), len(took)))
    return out, after


def sql_page_times(db: Path, after: tuple[int, str], rounds: int) -> tuple[float, float]:
    """Median ms of the store's page query (keys only) for page 1 and for the page after
    ``after``, alternately, on a store of this process beside the running server."""

    async def measure() -> tuple[float, float]:
        # The SQLite engine's own page query, below the API: what the index walk costs.
        store: Any = open_store(str(db))
        await store.open()
        times: tuple[list[float], list[float]] = ([], [])
        try:
            async with store._read() as conn:
                for _ in range(rounds):
                    plans = ((Query(limit=LIMIT + 1), times[0]), (Query(limit=LIMIT + 1, after=after), times[1]))
                    for query, took in plans:
                        t = time.perf_counter()
                        await store._page_rows(conn, query, "c.id")
                        took.append((time.perf_counter() - t) * 1000)
        finally:
            await store.close()
        return statistics.median(times[0]), statistics.median(times[1])

    return asyncio.run(measure())


def request_feeds(conn: http.client.HTTPConnection) -> int:
    """Every feed once (they are cached by the server, so they count in its memory)."""
    paths = [f"/feed.{kind}" for kind in ("rss", "atom", "json")]
    paths += [f"/categories/{slug}/feed.{kind}" for slug in CATEGORIES for kind in ("rss", "atom", "json")]
    paths += [f"/{lang}/feed.{kind}" for lang in LANGUAGES for kind in ("rss", "atom", "json")]
    for path in paths:
        status, body = get(conn, path)
        if status != 200:
            raise BenchError(f"GET {path} answered {status}: {body[:300]!r}")
    return len(paths)


def _status_mb(pids: list[int], key: str) -> float:
    """A /proc/<pid>/status figure (VmHWM, VmRSS) summed over ``pids``, in MB."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
    return total / 1024


# --- feedsvc import -----------------------------------------------------------------------


def import_records(records: int) -> Path:
    """bench/out/import-{n}.jsonl: the categories and ``records`` generated commentaries."""
    path = OUT / f"import-{records}.jsonl"
    stamp = OUT / f"import-{records}.json"
    want = {"n": records, "seed": SEED, "generator": GENERATOR_VERSION}
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == want:
        return path
    log(f"writing {records:,} records to {path.name}")
    stamp.unlink(missing_ok=True)
    write_jsonl(path, records)
    stamp.write_text(json.dumps(want))
    return path


def stored_commentaries(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute("SELECT count(*) FROM commentaries").fetchone()[0])


def import_sqlite(records: int) -> BulkRun:
    """``feedsvc import`` of ``records`` generated records into an empty SQLite database."""
    jsonl = import_records(records)
    target = OUT / "import-target.sqlite"
    for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        leftover.unlink(missing_ok=True)
    try:
        run = import_into("feedsvc import into SQLite", records, f"sqlite:///{target}", jsonl)
        if not run.error and (stored := stored_commentaries(target)) != records:
            run.error = f"{stored} commentaries stored, expected {records}"
        return run
    finally:
        for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)


# --- PostgreSQL ---------------------------------------------------------------------------


def postgres_at(url: str, size: int, requests: int, max_seconds: float) -> tuple[PgRun, list[BulkRun]]:
    """The list API, the change log and the query plans on PostgreSQL at ``size``, and the
    data moves there and back (bench.pgscale)."""
    db = database(size, log=log)
    stored = stored_commentaries(db)
    source, filled = fill_postgres(url, size, db, stored)
    bulk = [filled] if filled is not None else []
    run = PgRun(size)
    if filled is not None and filled.error:
        run.error = f"not filled: {filled.error}"
        return run, bulk
    log(f"list API on PostgreSQL at {size:,} commentaries")
    server = start_server(source)
    after = None
    try:
        conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
        run.api = [
            time_query(conn, size, name, f"{API}?{urlencode(params)}", requests, max_seconds)
            for name, params in scale_queries()
        ]
        run.page = deep_page_for(size)
        try:
            pair, after = page_pair(conn, size, run.page, requests, max_seconds)
            run.api += pair
        except BenchError as e:
            run.api.append(QueryResult(size, f"page {run.page} (cursor)", API, error=str(e)))
        log("  reading the change log")
        run.changes_rows, run.changes_seconds = read_changes(conn, 200_000, max_seconds)
        conn.close()
        for line in server.errors_logged()[:20]:
            run.api.append(QueryResult(size, "server log", "", error=f"feedsvc logged: {line}"))
    except BenchError as e:
        run.error = str(e)
    finally:
        server.stop()
    log("  EXPLAIN ANALYZE of each query")
    run.plans, run.first_ms, run.deep_ms = explain_plans(source, scale_queries(), after, requests, LIMIT)
    bulk.append(migrate_back(source, stored))
    return run, bulk


# --- running and reporting ----------------------------------------------------------------


def run_scale(
    sizes: tuple[int, ...] | list[int] = SIZES, *, requests: int = 200, max_seconds: float = 30.0,
    import_count: int = 50_000, postgres: str | None = None, postgres_sizes: list[int] | None = None,
) -> ScaleResults:
    """Measure the list API and memory at each size, then import throughput (0 records:
    skipped); with ``postgres`` (a URL) the same on PostgreSQL at ``postgres_sizes`` (default:
    ``sizes``), with the data moves there and back. Writes bench/out/scale.json and scale.md."""
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = ScaleResults(sorted(sizes), LIMIT, load={"start": os.getloadavg()[0]})
    for size in results.sizes:
        api, memory, depth = api_at(size, requests, max_seconds)
        results.api += api
        results.memory.append(memory)
        if depth is not None:
            results.depth.append(depth)
        results.measured_at[str(size)] = _now()
    if import_count:
        results.bulk.append(import_sqlite(import_count))
        if postgres:
            results.bulk.append(import_postgres(postgres, import_count, import_records(import_count)))
        results.measured_at["import"] = _now()
    if postgres:
        for size in sorted(postgres_sizes or sizes):
            pg, bulk = postgres_at(postgres, size, requests, max_seconds)
            results.postgres.append(pg)
            results.bulk += bulk
            results.measured_at[f"postgres {size}"] = _now()
    results.load["end"] = os.getloadavg()[0]
    carry_over(results, load_results())
    results.seconds = time.monotonic() - started
    (OUT / "scale.json").write_text(json.dumps(as_json(results), indent=1))
    (OUT / "scale.md").write_text("\n".join(report(results)) + "\n")
    return results


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="database sizes (default %(default)s)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per query (default %(default)s)")
    parser.add_argument("--import-records", type=int, default=50_000,
                        help="records for the import runs, 0 to skip them (default %(default)s)")
    parser.add_argument("--postgres", metavar="URL",
                        help="also measure PostgreSQL at URL (schemas bench_N are created and kept there)")
    parser.add_argument("--postgres-sizes", metavar="N,N", help="sizes for PostgreSQL (default: --sizes)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    pg_sizes = [int(s) for s in args.postgres_sizes.split(",") if s.strip()] if args.postgres_sizes else None
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if shutil.disk_usage(OUT.parent).free < 25e9 and max(sizes, default=0) >= TARGET_SIZE:
        log("warning: the 1M database takes about 20 GB of disk")
    results = run_scale(sizes, requests=args.requests, import_count=args.import_records, postgres=args.postgres,
                        postgres_sizes=pg_sizes)
    print("\n".join(report(results)))
    log(f"done in {results.seconds:.0f} s; written to {OUT / 'scale.md'}")
    return 1 if results.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
