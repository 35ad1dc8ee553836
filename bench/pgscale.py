"""The PostgreSQL half of bench.scale, and the bulk commands measured as a user runs them.

**PostgreSQL** (``python -m bench.scale --postgres URL``): for each size, the schema
``bench_{n}`` of the database at URL is filled from bench.generate's SQLite database by
``feedsvc migrate-data`` (timed: the SQLite-to-PostgreSQL rate) and kept for later runs
(``bench/out/pg-{n}.json`` stamps it); ``feedsvc serve`` on it then answers the list-API
queries of bench.scale (category + date range, ``q`` for a common word, a rare word and a
name, a tag, page 1,000 by cursors beside page 1), the change log is read through
``/api/v1/changes`` (1,000 rows a page, cursor after cursor) and the store's query of each
list-API request is run under ``EXPLAIN (ANALYZE, BUFFERS)`` in the bench process, the plans
going into the report. Then ``feedsvc migrate-data`` copies the schema back into a new
SQLite file (PostgreSQL to SQLite) and ``feedsvc import`` loads the generated records into
a new schema (the PostgreSQL import).

**Bulk commands** (``feedsvc import``, ``feedsvc migrate-data``) run as processes of their
own, timed around the process; CPU is the user + system time of the process and its
workers, memory the peak of their summed proportional set sizes (Pss: pages shared between
the processes counted once; sampled every 50 ms from /proc, so a spike shorter than that can
be missed).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import API, OUT, ROOT, BenchError, get, log, tree
from bench.results import BulkRun

PG_SCHEMA = "bench_{n}"
IMPORT_SCHEMA = "bench_import"


def with_schema(url: str, schema: str) -> str:
    """``url`` naming ``schema`` (feedsvc.store.postgres reads ``?schema=``)."""
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def drop_schema(url: str, schema: str) -> None:
    async def drop() -> None:
        import asyncpg

        conn = await asyncpg.connect(url.split("?")[0])
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def run_measured(what: str, records: int, argv: list[str], env: dict[str, str], expect_text: str) -> BulkRun:
    """Run a feedsvc command, timed around the process, its memory sampled."""
    run = BulkRun(what, records)
    log(f"{what}: {records:,} records")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        # Pss, not Rss: worker processes share the interpreter's and the libraries' pages,
        # which a sum of resident sets would count once per process.
        while not done.wait(0.05):
            total = 0
            for pid in tree(proc.pid):
                with contextlib.suppress(OSError):
                    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                        if line.startswith("Pss:"):
                            total += int(line.split()[1])
            peak[0] = max(peak[0], total / 1024)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=4 * 3600)
    finally:
        done.set()
        sampler.join()
    run.seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    run.cpu_seconds = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    run.peak_mb = peak[0]
    output = (stdout + stderr).strip()
    run.output = output.splitlines()[0] if output else ""
    if proc.returncode != 0 or expect_text not in stdout:
        run.error = f"exit {proc.returncode}: {output[-500:]}"
    log(f"  {run.rate:,.0f} records/s ({run.seconds:.1f} s, CPU {run.cpu_seconds:.1f} s, peak {run.peak_mb:.0f} MB)"
        + (f" FAILED: {run.error}" if run.error else ""))
    return run


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}


def migrate(what: str, records: int, source: str, target: str) -> BulkRun:
    argv = [sys.executable, "-m", "feedsvc", "migrate-data", "--from", source, "--to", target]
    return run_measured(what, records, argv, _env(), "verified:")


def import_into(what: str, records: int, url: str, jsonl: Path) -> BulkRun:
    env = {**_env(), "FEEDSVC_DATABASE_URL": url}
    argv = [sys.executable, "-m", "feedsvc", "import", str(jsonl)]
    return run_measured(what, records, argv, env, f"imported {records}, skipped 0, failed 0")


def fill_postgres(url: str, size: int, db: Path, stored: int) -> tuple[str, BulkRun | None]:
    """The schema of ``size`` commentaries at ``url`` (filled by ``feedsvc migrate-data`` from
    ``db``, which holds ``stored`` commentaries, unless an earlier run did) and the run that
    filled it, or None when it was kept."""
    from bench.generate import GENERATOR_VERSION, SEED

    schema = PG_SCHEMA.format(n=size)
    stamp = OUT / f"pg-{size}.json"
    want = {"n": size, "seed": SEED, "generator": GENERATOR_VERSION, "url": url}
    target = with_schema(url, schema)
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return target, None
    stamp.unlink(missing_ok=True)
    drop_schema(url, schema)
    run = migrate("migrate-data SQLite → PostgreSQL", stored, f"sqlite:///{db}", target)
    if not run.error:
        stamp.write_text(json.dumps(want))
    return target, run


def migrate_back(source: str, stored: int) -> BulkRun:
    """``feedsvc migrate-data`` from PostgreSQL into a new SQLite file (removed after)."""
    target = OUT / "migrate-back.sqlite"
    for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        leftover.unlink(missing_ok=True)
    try:
        return migrate("migrate-data PostgreSQL → SQLite", stored, source, f"sqlite:///{target}")
    finally:
        for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)


def import_postgres(url: str, records: int, jsonl: Path) -> BulkRun:
    """``feedsvc import`` of ``jsonl`` into a new, empty schema (dropped after)."""
    drop_schema(url, IMPORT_SCHEMA)
    try:
        return import_into("feedsvc import into PostgreSQL", records, with_schema(url, IMPORT_SCHEMA), jsonl)
    finally:
        drop_schema(url, IMPORT_SCHEMA)


def read_changes(conn: http.client.HTTPConnection, max_rows: int, max_seconds: float) -> tuple[int, float]:
    """Rows of ``/api/v1/changes`` read from the start, 1,000 a page, and the seconds it took."""
    rows = 0
    path = f"{API.rsplit('/', 1)[0]}/changes?limit=1000"
    started = time.perf_counter()
    while rows < max_rows and time.perf_counter() - started < max_seconds:
        status, body = get(conn, path)
        if status != 200:
            raise BenchError(f"GET {path} answered {status}: {body[:300]!r}")
        page = json.loads(body)
        rows += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor or not page["items"]:  # the end of the log (its cursor waits for more)
            break
        path = f"{API.rsplit('/', 1)[0]}/changes?{urlencode({'limit': 1000, 'since': cursor})}"
    return rows, time.perf_counter() - started


def query_of(params: dict[str, str]) -> Any:
    """The store's Query for list-API parameters, as the API builds it."""
    from feedsvc.query import Query

    args: dict[str, Any] = {("from_" if k == "from" else k): v for k, v in params.items()}
    if "category" in args:
        args["category"] = [args["category"]]
    if "limit" in args:
        args["limit"] = int(args["limit"])
    return Query.from_params(**args)


def explain_plans(url: str, queries: list[tuple[str, dict[str, str]]], after: tuple[int, str] | None,
                  rounds: int, limit: int) -> tuple[dict[str, list[str]], float, float]:
    """EXPLAIN (ANALYZE, BUFFERS) of the store's page query for each list-API request (of
    ``limit`` + 1 rows, as the service asks), and the median ms of the page query (keys
    only) for page 1 and for the page after ``after``, alternately."""
    import statistics

    import msgspec

    from feedsvc.query import Query
    from feedsvc.store import open_store

    async def run() -> tuple[dict[str, list[str]], float, float]:
        # The engine's own page query, below the API (private to the store: a benchmark's look).
        store: Any = open_store(url)
        await store.open()
        plans: dict[str, list[str]] = {}
        try:
            for name, params in queries:
                query = query_of(params)
                lines: list[str] = []

                async def explain(sql: str, values: Any = (), lines: list[str] = lines) -> list[Any]:
                    async with store._read() as conn:
                        found = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + store.dialect.sql(sql), *values)
                    lines += [r[0] for r in found]
                    return []

                await store._page(msgspec.structs.replace(query, limit=query.limit + 1), "c.doc", explain)
                plans[name] = lines
            if after is None:
                return plans, 0.0, 0.0
            times: tuple[list[float], list[float]] = ([], [])
            for _ in range(rounds):
                pages = ((Query(limit=limit + 1), times[0]), (Query(limit=limit + 1, after=after), times[1]))
                for query, took in pages:
                    t = time.perf_counter()
                    await store._page(query, "c.id")
                    took.append((time.perf_counter() - t) * 1000)
            return plans, statistics.median(times[0]), statistics.median(times[1])
        finally:
            await store.close()

    return asyncio.run(run())
