"""What bench.scale measured, and what it means: the results (kept in bench/out/scale.json
between runs), the targets of issue 17 they meet or not, and the Markdown report.

bench.scale and bench.pgscale measure; this module only reads and judges, so that bench.run
can put the scale rows into its TARGETS table without measuring them again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import OUT, QueryResult

LIMIT = 20
"""Commentaries per list-API page in every scale query."""
TARGET_SIZE = 1_000_000
"""The size the issue's list-API and memory targets are stated at."""
DEEP_PAGE = 1000
BULK_RATE = 5000
"""Records a second every bulk command should reach (issue 17)."""
BULK_MEMORY_MB = 200
"""Peak memory a bulk command may take for 1,000,000 records."""


def deep_page_for(size: int, limit: int = 20) -> int:
    """Page 1,000, or the deepest page a small database surely has (about 97 % of the
    generated commentaries are public)."""
    return min(DEEP_PAGE, int(size * 0.9) // limit)


@dataclass
class BulkRun:
    """One bulk command (an import or a data move), timed around its process."""

    what: str
    records: int
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_mb: float = 0.0
    """Peak memory of the process and its workers (summed Pss: pages they share counted once)."""
    output: str = ""
    error: str = ""

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


@dataclass
class PgRun:
    """The list API and the change log on PostgreSQL at one size."""

    size: int
    api: list[QueryResult] = field(default_factory=list)
    first_ms: float = 0.0
    """The store's page query (keys only), page 1 and page ``page``: median ms."""
    deep_ms: float = 0.0
    page: int = 0
    changes_rows: int = 0
    changes_seconds: float = 0.0
    plans: dict[str, list[str]] = field(default_factory=dict)
    """EXPLAIN (ANALYZE, BUFFERS) of the store's query for each list-API request."""
    error: str = ""

    @property
    def changes_rate(self) -> float:
        return self.changes_rows / self.changes_seconds if self.changes_seconds else 0.0


@dataclass
class MemoryRun:
    size: int
    peak_mb: float
    """VmHWM summed over the server's process tree: the most it was ever resident."""
    rss_mb: float
    feeds: int
    """Feed documents requested before reading it."""


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
    bulk: list[BulkRun] = field(default_factory=list)
    """``feedsvc import`` and ``feedsvc migrate-data`` runs (bench.pgscale)."""
    postgres: list[PgRun] = field(default_factory=list)
    load: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    measured_at: dict[str, str] = field(default_factory=dict)
    """When each part was measured: a size ("1000000") or "import", ISO 8601. Parts not
    run again are carried over from the last bench/out/scale.json."""

    def failures(self) -> list[str]:
        out = [f"{r.size} {r.name}: {r.error}" for r in self.api if r.error]
        out += [f"{b.what}: {b.error}" for b in self.bulk if b.error]
        for pg in self.postgres:
            out += [f"PostgreSQL {r.size} {r.name}: {r.error}" for r in pg.api if r.error]
            out += [f"PostgreSQL {pg.size}: {pg.error}"] if pg.error else []
        return out


@dataclass
class TargetRow:
    """One line of a targets table: ``met`` is None when it could not be measured."""

    name: str
    target: str
    measured: str
    met: bool | None
    note: str = ""



BULK_KINDS = (
    "feedsvc import into SQLite",
    "feedsvc import into PostgreSQL",
    "migrate-data SQLite → PostgreSQL",
    "migrate-data PostgreSQL → SQLite",
)


def carry_over(results: ScaleResults, previous: ScaleResults | None) -> None:
    """Keep what the last run measured and this one did not (a size, a bulk command,
    PostgreSQL at a size), so a run at 10k alone does not forget the 1M numbers."""
    if previous is None or previous.limit != results.limit:
        return
    for size in previous.sizes:
        if size not in results.sizes:
            results.sizes.append(size)
            results.api += [r for r in previous.api if r.size == size]
            results.memory += [m for m in previous.memory if m.size == size]
            results.depth += [d for d in previous.depth if d.size == size]
            results.measured_at[str(size)] = previous.measured_at.get(str(size), "an earlier run")
    done = {b.what for b in results.bulk}
    for bulk in previous.bulk:
        if bulk.what not in done:
            results.bulk.append(bulk)
            results.measured_at.setdefault("import", previous.measured_at.get("import", "an earlier run"))
    pg_sizes = {p.size for p in results.postgres}
    for pg in previous.postgres:
        if pg.size not in pg_sizes:
            results.postgres.append(pg)
            key = f"postgres {pg.size}"
            results.measured_at[key] = previous.measured_at.get(key, "an earlier run")
    results.sizes.sort()
    results.api.sort(key=lambda r: r.size)
    results.memory.sort(key=lambda m: m.size)
    results.depth.sort(key=lambda d: d.size)
    results.postgres.sort(key=lambda p: p.size)


def as_json(results: ScaleResults) -> dict[str, Any]:
    data = asdict(results)
    data["targets"] = [asdict(t) for t in targets(results)]
    return data


def load_results(path: Path = OUT / "scale.json") -> ScaleResults | None:
    """The results of the last run, from bench/out/scale.json (None when there is none, or
    when it was written by a bench.scale from before issue 17)."""
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if "bulk" not in data:
        return None
    postgres = []
    for pg in data.get("postgres", []):
        pg["api"] = [QueryResult(**r) for r in pg["api"]]
        postgres.append(PgRun(**pg))
    return ScaleResults(
        sizes=data["sizes"], limit=data["limit"], api=[QueryResult(**r) for r in data["api"]],
        memory=[MemoryRun(**m) for m in data["memory"]], depth=[DepthRun(**d) for d in data.get("depth", [])],
        bulk=[BulkRun(**b) for b in data["bulk"]], postgres=postgres,
        load=data["load"], seconds=data["seconds"], measured_at=data.get("measured_at", {}),
    )


def wanted_targets() -> list[tuple[str, str]]:
    """Targets 3 and 4 of issue 17, as rows before anything was measured."""
    return [
        ("3. PostgreSQL: category + date range, p99", "≤ 10 ms at 1M"),
        ("3. PostgreSQL: q full-text search, p99 (common word, rare word, name)", "≤ 50 ms at 1M"),
        ("3. PostgreSQL: page 1,000 by cursors vs page 1", "no slower"),
        ("3. PostgreSQL: change log read", "≥ 10,000 rows/s"),
        *[(f"4. {kind}", f"≥ {BULK_RATE:,} records/s") for kind in BULK_KINDS],
        ("4. Bulk commands: peak memory", f"≤ {BULK_MEMORY_MB} MB for 1M records"),
    ]


def _pg_find(pg: PgRun, prefix: str) -> QueryResult | None:
    return next((r for r in pg.api if r.name.startswith(prefix) and not r.error), None)


def targets(results: ScaleResults) -> list[TargetRow]:
    """Targets 3 and 4 of issue 17: PostgreSQL at 1M (at the largest size measured, said in
    the note, when 1M was not), the bulk commands' rates and memory."""
    rows: list[TargetRow] = []
    pg = max((p for p in results.postgres if not p.error), key=lambda p: p.size, default=None)
    at = "" if pg is None or pg.size == TARGET_SIZE else f"measured at {pg.size:,}; the target is at 1M"
    wanted = dict(wanted_targets())

    def row(name: str, measured: str | None, met: bool | None, note: str = at) -> None:
        rows.append(TargetRow(name, wanted[name], measured or "not measured", met if measured else None, note))

    name = "3. PostgreSQL: category + date range, p99"
    cat = _pg_find(pg, "category + date range") if pg else None
    row(name, f"{cat.p99_ms:.1f} ms (p50 {cat.p50_ms:.1f})" if cat else None, cat.p99_ms <= 10 if cat else None)
    searches = [r for prefix in ("q: common", "q: rare word", "q: rare name") if pg and (r := _pg_find(pg, prefix))]
    row("3. PostgreSQL: q full-text search, p99 (common word, rare word, name)",
        " / ".join(f"{r.p99_ms:.1f} ms" for r in searches) if searches else None,
        max(r.p99_ms for r in searches) <= 50 if searches else None)
    deep = next((r for r in pg.api if r.name.endswith("(cursor)") and not r.error), None) if pg else None
    measured = None
    if pg and deep and pg.first_ms:
        measured = (f"the store's query {pg.deep_ms:.2f} vs {pg.first_ms:.2f} ms; HTTP p99 {deep.p99_ms:.1f} ms")
    row("3. PostgreSQL: page 1,000 by cursors vs page 1", measured,
        pg.deep_ms <= pg.first_ms * 1.1 + 0.02 if pg and measured else None)
    row("3. PostgreSQL: change log read", f"{pg.changes_rate:,.0f} rows/s ({pg.changes_rows:,} rows)"
        if pg and pg.changes_rows else None, pg.changes_rate >= 10_000 if pg and pg.changes_rows else None)
    for kind in BULK_KINDS:
        run = next((b for b in results.bulk if b.what == kind and not b.error), None)
        row(f"4. {kind}", f"{run.rate:,.0f}/s ({run.records:,} in {run.seconds:.1f} s, CPU {run.cpu_seconds:.1f} s)"
            if run else None, run.rate >= BULK_RATE if run else None, "")
    done = [b for b in results.bulk if not b.error]
    worst = max(done, key=lambda b: b.peak_mb, default=None)
    row("4. Bulk commands: peak memory",
        f"{worst.peak_mb:.0f} MB ({worst.what}, {worst.records:,} records)" if worst else None,
        worst.peak_mb <= BULK_MEMORY_MB if worst else None,
        "" if worst is None or worst.records >= TARGET_SIZE else "at fewer records than 1M",
    )
    return rows


def report(results: ScaleResults) -> list[str]:
    lines = [
        f"### Scale: list API (limit={results.limit}), import, memory",
        "",
        "| store | commentaries | query | p50 ms | p99 ms | items | response bytes | requests |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    api = [("SQLite", r) for r in results.api] + [("PostgreSQL", r) for p in results.postgres for r in p.api]
    for store, r in api:
        if r.error:
            lines.append(f"| {store} | {r.size:,} | {r.name} | **FAILED** | | | | |")
        else:
            lines.append(f"| {store} | {r.size:,} | {r.name} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.items} "
                         f"| {r.response_bytes:,} | {r.requests} |")
    lines += ["", "| commentaries | server peak resident (VmHWM) | resident now | feeds requested |",
              "|---:|---:|---:|---:|"]
    lines += [f"| {m.size:,} | {m.peak_mb:.0f} MB | {m.rss_mb:.0f} MB | {m.feeds} |" for m in results.memory]
    if results.bulk:
        lines += ["", "| bulk command | records | seconds | records/s | CPU s | peak memory | |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for b in results.bulk:
            lines.append(f"| {b.what} | {b.records:,} | {b.seconds:.1f} | **{b.rate:,.0f}** | {b.cpu_seconds:.1f} "
                         f"| {b.peak_mb:.0f} MB | {'**FAILED**: ' + b.error[:200] if b.error else b.output[:120]} |")
    for pg in results.postgres:
        if pg.changes_rows:
            lines += ["", f"PostgreSQL at {pg.size:,}: the change log read at {pg.changes_rate:,.0f} rows/s"
                          f" ({pg.changes_rows:,} rows, 1,000 a page); the page query {pg.first_ms:.2f} ms for page 1,"
                          f" {pg.deep_ms:.2f} ms for page {pg.page}."]
        if pg.error:
            lines.append(f"PostgreSQL at {pg.size:,}: **FAILED**: {pg.error.splitlines()[0]}")
        for name, plan in pg.plans.items():
            lines += ["", f"EXPLAIN (ANALYZE, BUFFERS) at {pg.size:,}, {name}:", "", "```", *plan, "```"]
    lines += ["", "| target | wanted | measured | met |", "|---|---|---|---|"]
    for t in targets(results):
        met = "n/a" if t.met is None else ("**yes**" if t.met else "**no**")
        note = f" ({t.note})" if t.note else ""
        lines.append(f"| {t.name} | {t.target} | {t.measured}{note} | {met} |")
    load = results.load
    lines += ["", (f"Load average {load.get('start', 0):.2f} at the start, {load.get('end', 0):.2f} at the end;"
                   f" {results.seconds:.0f} s in all.")]
    if results.measured_at:
        when = "; ".join(f"{k}: {v}" for k, v in results.measured_at.items())
        lines.append(f"Measured at (parts not run again are carried over from the last run): {when}.")
    for failure in results.failures():
        lines.append(f"**FAILED**: {failure.splitlines()[0]}")
    return lines
