"""Which ASGI server should run feedsvc in production? Measured, not guessed.

    python -m bench.servers                 # every installed server, 5 s per wrk run (< 3 min)
    python -m bench.servers --duration 10 --rounds 2
    python -m bench.servers --overhead      # cost of the observe middleware, on uvicorn (~2 min)

Each server runs the same app (``feedsvc.cli:app_from_env``, one worker, access logs off)
on the same 1k-commentary database (bench.generate) and answers, in turn, ``wrk -t1 -c16``
for ``--duration`` seconds after a one-second warm-up:

* the cached ``/feed.rss`` (50 items, identity coding): the request readers make most;
* the same feed with a matching ``If-None-Match``, answered 304: what polling readers get;
* ``/api/v1/commentaries`` (page 1, 20 items): a database query and JSON per request;
* ``/healthz``: next to no work in the app, so mostly the server's own cost per request.

On a machine with two or more CPUs the server is pinned to one CPU and wrk to another.
Reported per server and scenario: requests/s, p50 and p99 latency, and server CPU per
request (utime + stime of the server's process tree over the run, divided by the requests
wrk completed). With ``--rounds`` above 1, servers take turns round by round and the median
round is kept. The table goes to stdout and bench/out/servers.md, raw rounds to
bench/out/servers.json; the choice it led to is recorded in bench/servers.md.

``--overhead`` instead runs uvicorn (uvloop + httptools) three ways, rounds interleaved:
without feedsvc.http.observe (its middleware and store timing taken off, see
``app_without_observe``), with it and the access log off, and with it and the JSON access
log on (written to the server log file), on the cached feed and the 304.

``--bare-litestar PORT`` serves the framework's own floor instead, for bench.run: a Litestar
app with no middleware, no dependencies and no store that answers ``/healthz`` with the
bytes feedsvc's ``/healthz`` sends and ``/api/v1/commentaries`` with the bytes of the file
named by ``BENCH_API_BODY`` (feedsvc's page, fetched by bench.run), under the uvicorn
options ``feedsvc serve`` uses (uvloop, httptools, no uvicorn access log), on 127.0.0.1.

Servers not installed are skipped (granian and hypercorn are not feedsvc dependencies:
``pip install granian hypercorn`` to include them). Exit status 1 when any response was
not the expected one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import HOST, OUT, ROOT, BenchError, Server, expect, free_port, log
from bench.generate import database
from bench.run import WrkRun, ensure_tools, wrk

APP = "feedsvc.cli:app_from_env"
BIN = Path(sys.executable).parent


def _uvicorn(loop: str, http: str, app: str = APP) -> Callable[[int], list[str]]:
    def argv(port: int) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", "--factory", app, "--host", HOST, "--port", str(port),
            "--loop", loop, "--http", http, "--no-access-log", "--log-level", "warning",
        ]

    return argv


def app_without_observe() -> Any:
    """The app of ``app_from_env`` without the observe middleware and store timing."""
    from feedsvc.cli import app_from_env
    from feedsvc.http import observe

    app = app_from_env()
    app.asgi_handler = app.asgi_handler.__wrapped__  # type: ignore[attr-defined]
    store = app.state.service.store
    for name in observe.STORE_OPERATIONS:
        store.__dict__.pop(name, None)
    return app


HEALTHZ_BODY = b'{"status":"ok"}'
"""What feedsvc's ``/healthz`` answers (bench.run checks the bare app sends the same)."""


def bare_litestar_app() -> Any:
    """Litestar alone: two routes answering fixed bytes, nothing around them. What any
    Litestar app pays per request (routing, the request and response objects, the ASGI
    messages) and nothing feedsvc adds; bench.run's floor for ``/healthz`` and an API page."""
    from litestar import Litestar, Response, get

    api_body = Path(os.environ["BENCH_API_BODY"]).read_bytes()

    @get("/healthz")
    async def healthz() -> Response[bytes]:
        return Response(HEALTHZ_BODY, media_type="application/json")

    @get("/api/v1/commentaries")
    async def commentaries() -> Response[bytes]:
        return Response(api_body, media_type="application/json")

    # Annotations are strings here (from __future__): Litestar resolves them in this namespace.
    return Litestar([healthz, commentaries], openapi_config=None, signature_namespace={"Response": Response})


def serve_bare_litestar(port: int) -> None:
    """``bare_litestar_app`` under uvicorn with ``feedsvc serve``'s options (feedsvc.cli's
    ``cmd_serve``) but uvicorn's own httptools protocol: feedsvc's front is feedsvc's work."""
    import uvicorn

    uvicorn.run(
        "bench.servers:bare_litestar_app", factory=True, http="httptools", loop="auto", host=HOST, port=port,
        workers=1, log_config=None, log_level="warning", access_log=False,
    )


def _granian(port: int) -> list[str]:
    return [
        str(BIN / "granian"), "--interface", "asgi", "--factory", "--host", HOST, "--port", str(port),
        "--workers", "1", "--loop", "uvloop", "--no-ws", "--log-level", "warning", APP,
    ]


def _hypercorn(port: int) -> list[str]:
    return [
        str(BIN / "hypercorn"), "--worker-class", "uvloop", "--workers", "1", "--bind", f"{HOST}:{port}",
        "--log-level", "warning", f"{APP}()",
    ]


# name -> (argv for a port, the module that must be importable for it to run)
SERVERS: dict[str, tuple[Callable[[int], list[str]], str]] = {
    "uvicorn (uvloop + httptools)": (_uvicorn("uvloop", "httptools"), "uvicorn"),
    "uvicorn (asyncio + h11)": (_uvicorn("asyncio", "h11"), "uvicorn"),
    "granian (asgi, uvloop)": (_granian, "granian"),
    "hypercorn (uvloop)": (_hypercorn, "hypercorn"),
}

# name, path, whether the request carries the feed's current ETag, expected status
SCENARIOS: list[tuple[str, str, bool, int]] = [
    ("cached /feed.rss", "/feed.rss", False, 200),
    ("304 /feed.rss", "/feed.rss", True, 304),
    ("/api/v1/commentaries", "/api/v1/commentaries", False, 200),
    ("/healthz", "/healthz", False, 200),
]


@dataclass
class Result:
    server: str
    scenario: str
    runs: list[WrkRun] = field(default_factory=list)
    error: str = ""

    def median(self, key: str) -> float:
        return float(statistics.median(getattr(r, key) for r in self.runs))


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def server_env(db: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env.update({
        "FEEDSVC_DATABASE_URL": f"sqlite:///{db}",
        "FEEDSVC_PUBLIC_URL": f"http://{HOST}:{port}",
        "FEEDSVC_LOG_LEVEL": "WARNING",  # no access log: the servers are compared, not the log
        "FEEDSVC_MEDIA_DIR": str(ROOT / "data" / "media"),
    })
    # Rate limits off: one client at thousands of requests a second is the point here.
    env.update({f"FEEDSVC_RATE_LIMIT_{c}": "0" for c in ("FEEDS", "READ", "SEARCH", "WRITE", "AUTH_FAILURES")})
    return env


def measure(name: str, argv_for: Callable[[int], list[str]], db: Path, duration: float,
            cpus: tuple[set[int] | None, set[int] | None], results: dict[tuple[str, str], Result], *,
            env_extra: dict[str, str] | None = None, scenarios: list[tuple[str, str, bool, int]] = SCENARIOS) -> None:
    """One round of each scenario against one server started for it."""
    server_cpus, client_cpus = cpus
    port = free_port()
    slug = "-".join(re.findall(r"[a-z0-9]+", name.lower()))
    env = {**server_env(db, port), **(env_extra or {})}
    server = Server(f"server-{slug}", argv_for(port), port=port, env=env, cpus=server_cpus)
    try:
        server.wait_ready("/readyz", timeout=60)
        head, _ = expect(port, "/feed.rss", 200)
        etag = head.get("etag")
        if not etag:
            raise BenchError(f"{name}: no ETag on /feed.rss")
        for scenario, path, conditional, status in scenarios:
            result = results.setdefault((name, scenario), Result(name, scenario))
            headers = (f"If-None-Match: {etag}",) if conditional else ()
            try:
                expect(port, path, status, dict(h.split(": ", 1) for h in headers))
                wrk(server, path, 1.0, headers=headers, cpus=client_cpus)
                log(f"  {name}: {scenario}")
                result.runs.append(wrk(server, path, duration, headers=headers, cpus=client_cpus))
            except BenchError as e:
                result.error = str(e)
                log(f"FAILED {name} {scenario}: {e}")
        for line in server.errors_logged()[:5]:
            results[(name, scenarios[0][0])].error += f"\nlogged: {line}"
    finally:
        server.stop()


def table(results: dict[tuple[str, str], Result], names: list[str]) -> list[str]:
    lines = [
        "| server | scenario | req/s | p50 ms | p99 ms | server CPU µs/req |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for scenario, *_ in SCENARIOS:
        for name in names:
            r = results.get((name, scenario))
            if r is None:
                continue
            if r.error or not r.runs:
                lines.append(f"| {name} | {scenario} | FAILED | | | |")
                continue
            lines.append(
                f"| {name} | {scenario} | {r.median('rps'):,.0f} | {r.median('p50_ms'):.2f} | "
                f"{r.median('p99_ms'):.2f} | {r.median('cpu_us_per_request'):.0f} |"
            )
    return lines


OVERHEAD: dict[str, tuple[str, dict[str, str]]] = {
    "without observe": ("bench.servers:app_without_observe", {"FEEDSVC_LOG_LEVEL": "WARNING"}),
    "observe, access log off": (APP, {"FEEDSVC_ACCESS_LOG": "false"}),
    "observe, JSON access log": (APP, {"FEEDSVC_LOG_LEVEL": "INFO", "FEEDSVC_LOG_FORMAT": "json"}),
}


def middleware_cost(requests: int = 20_000, repeats: int = 7) -> dict[str, float]:
    """Microseconds per request that feedsvc.http.observe adds around an app that answers
    at once (in this process, best of ``repeats``): the part of the overhead no server or
    database noise blurs. The access log goes to /dev/null."""
    import asyncio
    import io
    import logging

    from feedsvc.http.observe import Metrics, observe
    from feedsvc.logs import configure_logging

    class Stats:
        hits = revalidated = renders = 0

    class Publisher:
        stats = Stats()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["path_template"] = "/feed.rss"
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/rss+xml")]}
        )
        await send({"type": "http.response.body", "body": b"x" * 18_000, "more_body": False})

    async def run(handler: Any) -> float:
        scope = {"type": "http", "method": "GET", "path": "/feed.rss", "query_string": b"",
                 "headers": [(b"host", b"x"), (b"accept", b"*/*")], "client": ("127.0.0.1", 5000)}

        async def receive() -> Any:
            return {"type": "http.request"}

        async def send(message: Any) -> None:
            pass

        started = time.perf_counter()
        for _ in range(requests):
            await handler(dict(scope), receive, send)
        return (time.perf_counter() - started) / requests * 1e6

    metrics = Metrics(store=None, publisher=Publisher())  # type: ignore[arg-type]
    handlers = {
        "bare app": app,
        "observe, access log off": observe(app, metrics, log_requests=False),
        "observe, JSON access log": observe(app, metrics, log_requests=True),
    }
    root = logging.getLogger()
    saved = list(root.handlers), root.level, sys.stderr
    configure_logging("json", "INFO")
    sys.stderr = io.TextIOWrapper(open(os.devnull, "wb"))  # noqa: SIM115 - closed below
    try:
        best = {name: min(asyncio.run(run(h)) for _ in range(repeats)) for name, h in handlers.items()}
    finally:
        sys.stderr.close()
        root.handlers[:], level, sys.stderr = saved[0], saved[1], saved[2]
        root.setLevel(level)
    return best


def overhead(db: Path, duration: float, rounds: int, cpus: tuple[set[int] | None, set[int] | None]) -> list[str]:
    """Rounds interleaved over the three set-ups; the median round of each, and the
    difference to the first in server CPU per request."""
    results: dict[tuple[str, str], Result] = {}
    for n in range(rounds):
        for name, (factory, extra) in OVERHEAD.items():
            log(f"overhead round {n + 1}/{rounds}: {name}")

            argv = _uvicorn("uvloop", "httptools", factory)
            try:
                measure(name, argv, db, duration, cpus, results, env_extra=extra, scenarios=SCENARIOS[:2])
            except BenchError as e:
                log(f"FAILED {name}: {e}")
                results.setdefault((name, SCENARIOS[0][0]), Result(name, SCENARIOS[0][0])).error = str(e)
    lines = [
        "| set-up | scenario | req/s | p50 ms | p99 ms | server CPU µs/req | CPU µs/req over the first |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario, *_ in SCENARIOS[:2]:
        base = results.get((next(iter(OVERHEAD)), scenario))
        for name in OVERHEAD:
            r = results.get((name, scenario))
            if r is None or r.error or not r.runs or base is None or not base.runs:
                lines.append(f"| {name} | {scenario} | FAILED | | | | |")
                continue
            extra_cpu = r.median("cpu_us_per_request") - base.median("cpu_us_per_request")
            lines.append(
                f"| {name} | {scenario} | {r.median('rps'):,.0f} | {r.median('p50_ms'):.2f} | "
                f"{r.median('p99_ms'):.2f} | {r.median('cpu_us_per_request'):.0f} | {extra_cpu:+.0f} |"
            )
    failures = [f"{r.server} / {r.scenario}: {r.error}" for r in results.values() if r.error]
    return lines + ([""] + ["**FAILED**:", *failures] if failures else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.servers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per server (default 1)")
    parser.add_argument("--size", type=int, default=1000, help="commentaries in the database (default 1000)")
    parser.add_argument("--only", action="append", metavar="NAME", help="servers whose name contains NAME")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server and wrk to separate CPUs")
    parser.add_argument("--overhead", action="store_true", help="measure the observe middleware instead (uvicorn)")
    parser.add_argument("--bare-litestar", type=int, metavar="PORT",
                        help="serve the bare Litestar app on PORT (for bench.run) instead")
    args = parser.parse_args(argv)
    if args.bare_litestar is not None:
        serve_bare_litestar(args.bare_litestar)
        return 0

    OUT.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    ensure_tools()
    available = sorted(os.sched_getaffinity(0))
    cpus: tuple[set[int] | None, set[int] | None] = (None, None)
    if len(available) >= 2 and not args.no_pin:
        cpus = ({available[0]}, {available[1]})
    db = database(args.size, log=log)
    if args.overhead:
        rounds = max(args.rounds, 3)
        lines = [
            (f"# observe middleware overhead: uvicorn (uvloop + httptools), {args.size} commentaries, "
             f"wrk -t1 -c16, {args.duration:g} s x {rounds} rounds, {time.strftime('%Y-%m-%d')}"),
            "",
            *overhead(db, args.duration, rounds, cpus),
            "",
            "In process, around an app that answers at once (best of 7 x 20,000 requests):",
            "",
            *[f"- {name}: {us:.1f} µs per request" for name, us in middleware_cost().items()],
            "",
            f"Load average at the end: {os.getloadavg()[0]:.2f}.",
        ]
        report = "\n".join(lines) + "\n"
        (OUT / "servers-overhead.md").write_text(report)
        print(report)
        return 1 if "FAILED" in report else 0

    names: list[str] = []
    skipped: list[str] = []
    for name, (_, module) in SERVERS.items():
        if args.only and not any(o.lower() in name.lower() for o in args.only):
            continue
        (names if installed(module) else skipped).append(name)
    results: dict[tuple[str, str], Result] = {}
    for r in range(args.rounds):
        for name in names:
            log(f"round {r + 1}/{args.rounds}: {name}")
            try:
                measure(name, SERVERS[name][0], db, args.duration, cpus, results)
            except BenchError as e:
                log(f"FAILED {name}: {e}")
                results.setdefault((name, SCENARIOS[0][0]), Result(name, SCENARIOS[0][0])).error = str(e)

    pinning = (f"server on CPU {sorted(cpus[0])}, wrk on CPU {sorted(cpus[1])}" if cpus[0] and cpus[1]
               else "no CPU pinning")
    lines = [
        (f"# ASGI servers: {args.size} commentaries, wrk -t1 -c16, {args.duration:g} s x {args.rounds} round(s), "
         f"{pinning}, {time.strftime('%Y-%m-%d')}"),
        "",
        *table(results, names),
        "",
    ]
    if skipped:
        lines.append(f"Not installed, skipped: {', '.join(skipped)}.")
    lines.append(f"Load average at the end: {os.getloadavg()[0]:.2f}.")
    failures = [f"{r.server} / {r.scenario}: {r.error}" for r in results.values() if r.error]
    if failures:
        lines += ["", "**FAILED** (the numbers above are not valid):", *[f"    {f.splitlines()[0]}" for f in failures]]
    report = "\n".join(lines) + "\n"
    (OUT / "servers.md").write_text(report)
    (OUT / "servers.json").write_text(json.dumps([asdict(r) for r in results.values()], indent=1))
    print(report)
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
