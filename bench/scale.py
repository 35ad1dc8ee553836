"""Scale runs (issue 6): the list API at 10k, 100k and 1M commentaries, ``feedsvc import``
throughput, and the server's peak memory.

    python -m bench.scale                                   # 10k, 100k, 1M; import 50,000 records
    python -m bench.scale --sizes 10000,100000              # skip the 1M database
    python -m bench.scale --sizes 10000 --import-records 5000 --requests 50   # smoke test, ~2 min

**List API** (per size): ``feedsvc serve --workers 1`` on the cached database
``bench/out/db-{n}.sqlite`` (built by bench.generate on first use; the 1M one takes long,
see bench/README.md), 127.0.0.1, rate limits off (as bench.run). Sequential keep-alive
requests, 10 warm-up ones then ``--requests`` (default 200, capped at 30 s a query), every
query with ``limit=20``: page 1; category + date range; ``q`` for a word in nearly every
English record and for a made-up name in about 1 % of them; a tag; and page 1,000 reached
by following ``next_cursor`` from page 1 (a lower page on databases too small for 1,000
pages), timed interleaved with page 1, request for request. p50/p99, client time. The two
pages hold different commentaries, and a response costs what its commentaries cost, so the
depth target is judged on the store's page query alone (keys only, page 1 and page 1,000
alternately, in the bench process); the HTTP times are shown beside it, also per 100 KB.

**Memory**: after the queries, the feeds (site, each category, each language, in RSS, Atom
and JSON Feed) are requested once; then the peak resident memory (VmHWM) and the current
one (VmRSS) of the server's process tree are read from /proc.

**Import**: ``feedsvc import`` of ``--import-records`` generated records (JSON Lines from
bench.generate, cached as bench/out/import-{n}.jsonl) into a new, empty SQLite database, the
real command line in a process of its own, timed around the process: records/s from the wall
time, plus the CPU time of the process and its workers.

Results: a Markdown table on stdout and in bench/out/scale.md, the raw numbers in
bench/out/scale.json. For bench.run's TARGETS table: ``run_scale(...)`` returns
``ScaleResults``; ``targets(results)`` turns it into ``TargetRow``s (what, target,
measured, met); ``load_results()`` reads the last bench/out/scale.json back, so a report can
include the scale targets without running them again (``None`` when there is none). Exit
status 1 when a response was not the expected one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import (
    API,
    HOST,
    OUT,
    ROOT,
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
    GENERATOR_VERSION,
    LANGUAGES,
    RARE_NAME,
    SEED,
    TAGS,
    database,
    write_jsonl,
)
from feedsvc.model import to_us
from feedsvc.query import Query
from feedsvc.store import open_store

SIZES = (10_000, 100_000, 1_000_000)
LIMIT = 20
DEEP_PAGE = 1000
TARGET_SIZE = 1_000_000
"""The size the issue's list-API and memory targets are stated at."""


@dataclass
class MemoryRun:
    size: int
    peak_mb: float
    """VmHWM summed over the server's process tree: the most it was ever resident."""
    rss_mb: float
    feeds: int
    """Feed documents requested before reading it."""


@dataclass
class ImportRun:
    records: int
    seconds: float
    cpu_seconds: float
    """User + system time of the import process and its worker processes."""
    output: str
    error: str = ""

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


@dataclass
class DepthRun:
    """The store's query for page 1 and for page ``page``, keys only (what depends on how
    deep the page is; an HTTP response also costs in proportion to its bytes, and the two
    pages hold different commentaries): median milliseconds, in the bench process."""

    size: int
    page: int
    first_ms: float
    deep_ms: float


@dataclass
class ScaleResults:
    sizes: list[int]
    limit: int
    api: list[QueryResult] = field(default_factory=list)
    memory: list[MemoryRun] = field(default_factory=list)
    depth: list[DepthRun] = field(default_factory=list)
    imports: ImportRun | None = None
    load: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    measured_at: dict[str, str] = field(default_factory=dict)
    """When each part was measured: a size ("1000000") or "import", ISO 8601. Parts not
    run again are carried over from the last bench/out/scale.json."""

    def failures(self) -> list[str]:
        out = [f"{r.size} {r.name}: {r.error}" for r in self.api if r.error]
        if self.imports is not None and self.imports.error:
            out.append(f"import: {self.imports.error}")
        return out


@dataclass
class TargetRow:
    """One line of a targets table: ``met`` is None when it could not be measured."""

    name: str
    target: str
    measured: str
    met: bool | None
    note: str = ""


# --- the list API -------------------------------------------------------------------------


def scale_queries() -> list[tuple[str, dict[str, str]]]:
    limit = str(LIMIT)
    return [
        ("page 1", {"limit": limit}),
        ("category + date range", {"category": "economy-and-energy", "from": "2019-01-01", "to": "2020-12-31",
                                   "limit": limit}),
        (f"q: common word ({COMMON_WORD})", {"q": COMMON_WORD, "limit": limit}),
        (f"q: rare name ({RARE_NAME})", {"q": RARE_NAME, "limit": limit}),
        (f"tag ({TAGS[20]})", {"tag": TAGS[20], "limit": limit}),
    ]


def deep_page_for(size: int) -> int:
    """Page 1,000, or the deepest page a small database surely has (about 97 % of the
    generated commentaries are public)."""
    return min(DEEP_PAGE, int(size * 0.9) // LIMIT)


def start_server(db: Path) -> Server:
    port = free_port()
    argv, env = feedsvc_argv(db, port)
    server = Server("feedsvc-scale", argv, port=port, env=env)
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


def import_throughput(records: int) -> ImportRun:
    """``feedsvc import`` of ``records`` generated records into an empty database."""
    jsonl = import_records(records)
    target = OUT / "import-target.sqlite"
    for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        leftover.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env["FEEDSVC_DATABASE_URL"] = f"sqlite:///{target}"
    log(f"feedsvc import of {records:,} records")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "feedsvc", "import", str(jsonl)], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=3600, check=False,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    output = (done.stdout + done.stderr).strip()
    run = ImportRun(records, seconds, cpu, output.splitlines()[0] if output else "")
    if done.returncode != 0 or f"imported {records}, skipped 0, failed 0" not in done.stdout:
        run.error = f"exit {done.returncode}: {output[:500]}"
    else:
        with contextlib.closing(sqlite3.connect(f"file:{target}?mode=ro", uri=True)) as db:
            stored = db.execute("SELECT count(*) FROM commentaries").fetchone()[0]
        if stored != records:
            run.error = f"{stored} commentaries stored, expected {records}"
    for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        leftover.unlink(missing_ok=True)
    log(f"  {run.rate:,.0f} records/s ({seconds:.1f} s, CPU {cpu:.1f} s)")
    return run


# --- running and reporting ----------------------------------------------------------------


def run_scale(
    sizes: tuple[int, ...] | list[int] = SIZES, *, requests: int = 200, max_seconds: float = 30.0,
    import_count: int = 50_000,
) -> ScaleResults:
    """Measure the list API and memory at each size, then import throughput (0 records:
    skipped). Writes bench/out/scale.json and scale.md."""
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
        results.imports = import_throughput(import_count)
        results.measured_at["import"] = _now()
    results.load["end"] = os.getloadavg()[0]
    _carry_over(results, load_results())
    results.seconds = time.monotonic() - started
    (OUT / "scale.json").write_text(json.dumps(_as_json(results), indent=1))
    (OUT / "scale.md").write_text("\n".join(report(results)) + "\n")
    return results


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _carry_over(results: ScaleResults, previous: ScaleResults | None) -> None:
    """Keep the sizes (and the import) of the last run that this one did not measure, so
    a run at 10k alone does not forget the 1M numbers."""
    if previous is None or previous.limit != results.limit:
        return
    for size in previous.sizes:
        if size not in results.sizes:
            results.sizes.append(size)
            results.api += [r for r in previous.api if r.size == size]
            results.memory += [m for m in previous.memory if m.size == size]
            results.depth += [d for d in previous.depth if d.size == size]
            results.measured_at[str(size)] = previous.measured_at.get(str(size), "an earlier run")
    if results.imports is None and previous.imports is not None:
        results.imports = previous.imports
        results.measured_at["import"] = previous.measured_at.get("import", "an earlier run")
    results.sizes.sort()
    results.api.sort(key=lambda r: r.size)
    results.memory.sort(key=lambda m: m.size)
    results.depth.sort(key=lambda d: d.size)


def _as_json(results: ScaleResults) -> dict[str, Any]:
    data = asdict(results)
    if results.imports is not None:
        data["imports"]["rate"] = results.imports.rate
    data["targets"] = [asdict(t) for t in targets(results)]
    return data


def load_results(path: Path = OUT / "scale.json") -> ScaleResults | None:
    """The results of the last run, from bench/out/scale.json (None when there is none)."""
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    imports = data.get("imports")
    if imports is not None:
        imports.pop("rate", None)
    return ScaleResults(
        sizes=data["sizes"], limit=data["limit"], api=[QueryResult(**r) for r in data["api"]],
        memory=[MemoryRun(**m) for m in data["memory"]], imports=ImportRun(**imports) if imports else None,
        depth=[DepthRun(**d) for d in data.get("depth", [])],
        load=data["load"], seconds=data["seconds"], measured_at=data.get("measured_at", {}),
    )


def _find(results: ScaleResults, size: int, prefix: str) -> QueryResult | None:
    return next((r for r in results.api if r.size == size and r.name.startswith(prefix) and not r.error), None)


def targets(results: ScaleResults) -> list[TargetRow]:
    """The issue's scale targets, measured at 1M commentaries (at the largest size run,
    said in the note, when 1M was not)."""
    size = TARGET_SIZE if TARGET_SIZE in results.sizes else max(results.sizes, default=0)
    at = "" if size == TARGET_SIZE else f" (measured at {size:,} only; the target is at 1M)"
    rows: list[TargetRow] = []

    cat = _find(results, size, "category + date range")
    rows.append(TargetRow(
        "List API: category + date range, p99", "≤ 10 ms at 1M",
        f"{cat.p99_ms:.1f} ms" if cat else "not measured", cat.p99_ms <= 10 if cat else None, at.strip(),
    ))

    searches = [r for r in (_find(results, size, "q: common"), _find(results, size, "q: rare")) if r]
    worst = max(searches, key=lambda r: r.p99_ms) if searches else None
    rows.append(
        TargetRow(
            "List API: q full-text search, p99",
            "≤ 50 ms at 1M",
            " / ".join(f"{r.p99_ms:.1f} ms" for r in searches) + " (common word / rare name)"
            if searches
            else "not measured",
            worst.p99_ms <= 50 if worst else None,
            at.strip(),
        )
    )

    first = _find(results, size, "page 1 (beside")
    deep = next((r for r in results.api if r.size == size and r.name.endswith("(cursor)") and not r.error), None)
    depth = next((d for d in results.depth if d.size == size), None)
    if first and deep and depth:
        # Depth shows in the store's query only: the rest of a response costs what its
        # commentaries cost (bytes to decode, rewrite and send), and the two pages hold
        # different ones. So the query decides; HTTP times are given per 100 KB beside it.
        per = [r.p50_ms / (r.response_bytes / 100_000) for r in (first, deep)]
        met = depth.deep_ms <= depth.first_ms * 1.1 + 0.02
        measured = (
            f"HTTP p50 {deep.p50_ms:.2f} ms for {deep.response_bytes / 1000:.0f} KB vs page 1 {first.p50_ms:.2f} ms"
            f" for {first.response_bytes / 1000:.0f} KB ({per[1]:.2f} vs {per[0]:.2f} ms per 100 KB);"
            f" p99 {deep.p99_ms:.2f} vs {first.p99_ms:.2f} ms; the store's query {depth.deep_ms:.3f} vs"
            f" {depth.first_ms:.3f} ms"
        )
    else:
        met, measured = None, "not measured"
    rows.append(TargetRow(
        f"List API: page {deep_page_for(size)} via cursors vs page 1", "no slower (the store's query within 10 %)",
        measured, met, at.strip(),
    ))

    imp = results.imports
    rows.append(TargetRow(
        "feedsvc import throughput", "≥ 5,000 commentaries/s",
        f"{imp.rate:,.0f}/s ({imp.records:,} records in {imp.seconds:.1f} s, CPU {imp.cpu_seconds:.1f} s)"
        if imp and not imp.error else "not measured",
        imp.rate >= 5000 if imp and not imp.error else None,
    ))

    mem = next((m for m in results.memory if m.size == size), None)
    rows.append(TargetRow(
        "Server memory (peak resident, VmHWM) after queries and feeds", "≤ 150 MB at 1M",
        f"{mem.peak_mb:.0f} MB (now {mem.rss_mb:.0f} MB)" if mem else "not measured",
        mem.peak_mb <= 150 if mem else None, at.strip(),
    ))
    return rows


def report(results: ScaleResults) -> list[str]:
    lines = [
        f"### Scale: list API (limit={results.limit}), import, memory",
        "",
        "| commentaries | query | p50 ms | p99 ms | items | response bytes | requests |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results.api:
        if r.error:
            lines.append(f"| {r.size:,} | {r.name} | **FAILED** | | | | |")
        else:
            lines.append(f"| {r.size:,} | {r.name} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.items} "
                         f"| {r.response_bytes:,} | {r.requests} |")
    lines += ["", "| commentaries | server peak resident (VmHWM) | resident now | feeds requested |",
              "|---:|---:|---:|---:|"]
    lines += [f"| {m.size:,} | {m.peak_mb:.0f} MB | {m.rss_mb:.0f} MB | {m.feeds} |" for m in results.memory]
    if results.imports is not None:
        imp = results.imports
        lines += ["", (f"`feedsvc import` of {imp.records:,} generated records into an empty database: "
                       + (f"**FAILED**: {imp.error}" if imp.error else
                          f"{imp.seconds:.1f} s, **{imp.rate:,.0f} records/s**, CPU {imp.cpu_seconds:.1f} s"
                          f" (process and workers); it printed `{imp.output}`."))]
    lines += ["", "| target | wanted | measured | met |", "|---|---|---|---|"]
    for t in targets(results):
        met = "n/a" if t.met is None else ("**yes**" if t.met else "**no**")
        note = f" {t.note}" if t.note else ""
        lines.append(f"| {t.name} | {t.target} | {t.measured}{note} | {met} |")
    load = results.load
    lines += ["", (f"Load average {load.get('start', 0):.2f} at the start, {load.get('end', 0):.2f} at the end;"
                   f" {results.seconds:.0f} s in all.")]
    if results.measured_at:
        when = "; ".join(f"{k if k == 'import' else f'{int(k):,}'}: {v}" for k, v in results.measured_at.items())
        lines.append(f"Measured at (parts not run again are carried over from the last run): {when}.")
    for failure in results.failures():
        lines.append(f"**FAILED**: {failure.splitlines()[0]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="database sizes (default %(default)s)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per query (default %(default)s)")
    parser.add_argument("--import-records", type=int, default=50_000,
                        help="records for the import run, 0 to skip it (default %(default)s)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if shutil.disk_usage(OUT.parent).free < 25e9 and max(sizes, default=0) >= TARGET_SIZE:
        log("warning: the 1M database takes about 20 GB of disk")
    results = run_scale(sizes, requests=args.requests, import_count=args.import_records)
    print("\n".join(report(results)))
    log(f"done in {results.seconds:.0f} s; written to {OUT / 'scale.md'}")
    return 1 if results.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
