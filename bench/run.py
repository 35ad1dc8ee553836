"""feedsvc benchmarks, as ratios against baselines measured in the same run.

    python -m bench.run            # 100k feed DB, list API at 10k and 100k, 10 s per wrk run
    python -m bench.run --quick    # 1k DB, 2 s runs: a smoke test of the harness (about 3 min)

Part A, feedsvc as deployed: ``feedsvc serve`` (one worker, default settings, access log
on) against nginx with Debian's stock settings (sendfile, tcp_nopush, access log on with
buffer=64k), both serving the same bytes, the 50-item /feed.rss, /feed.atom and /feed.json;
and against a bare Litestar app (bench.servers) answering /healthz and an API page with the
same bytes. wrk (-t1 -c16) measures, rounds interleaved (feedsvc, baseline, feedsvc, ...),
the median round kept: each cached feed, plain and gzipped (nginx: gzip_static), a 304
answer to If-None-Match, the cached feed and the 304 with both access logs off, /healthz and
the API page, cold renders (every request a new view, see bench/cold.lua) next to nginx
serving the static file, and two workers against one. Server CPU per request comes from
/proc/<pid>/stat (utime + stime of the server's process tree). In the bench process: one
50-item RSS document through Django's feedgenerator (Rss201rev2Feed; Django is installed
into the venv when missing) against feedsvc's render of a view never rendered before whose
items were (feedsvc.feeds.fragments), and without any item known; the access log's CPU per
request (bench.access_log).

Part B, the list API over HTTP: sequential keep-alive requests against a running feedsvc,
p50/p99 per query, at each database size.

TARGETS: every target of issue 17 with the measured value and whether it is met: targets
1, 2 and 5 from this run, 3 and 4 (PostgreSQL at 1M, the bulk commands) from the last
``python -m bench.scale --postgres URL`` (bench/out/scale.json, read by bench.results).

Databases come from bench.generate (cached in bench/out/). Everything listens on 127.0.0.1
only; every load is bounded by count or time; servers are stopped (their whole process
group) on exit. The tables go to stdout and bench/out/bench-{full,quick}.md, raw numbers
to the matching .json. Exit status 1 when any response was not the expected one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import (
    API,
    BENCH,
    HOST,
    OUT,
    ROOT,
    STARTED,
    BenchError,
    QueryResult,
    Server,
    _percentile,
    cpu_seconds,
    deep_page_path,
    expect,
    free_port,
    log,
    pinned,
    rss_mb,
    start_feedsvc,
    time_query,
)
from bench.generate import COMMON_WORD, RARE_NAME, TAGS, database


def ensure_tools() -> None:
    """wrk and nginx from Debian, installed when missing."""
    if shutil.which("wrk") and (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        return
    log("installing nginx and wrk (apt-get)")
    if subprocess.run(["apt-get", "install", "-y", "nginx", "wrk"], check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(["apt-get", "install", "-y", "nginx", "wrk"], check=True)


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    {access_log}
    client_body_temp_path {dir}/tmp/client;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    types {{ application/rss+xml rss; application/atom+xml atom; application/feed+json json; }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types application/rss+xml application/atom+xml application/feed+json;
    # As Debian's /etc/nginx/nginx.conf has them: what an nginx out of the box does.
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;  # like uvicorn: never close a busy keep-alive connection
    server {{
        listen {host}:{port};
        root {dir}/www;
        location / {{ gzip_static on; }}
        location = /healthz {{ default_type application/json; return 200 '{{"status":"ok"}}'; }}
    }}
}}
"""
NGINX_ACCESS_LOG = "access_log {dir}/access.log combined buffer=64k;"
"""nginx's access log as a busy site keeps it: buffered, written when 64 KB are full."""


def start_nginx(files: dict[str, bytes], cpus: set[int] | None, *, access_log: bool = True,
                name: str = "nginx") -> Server:
    """nginx serving ``files`` (name -> bytes; ``NAME.gz`` goes to clients accepting gzip),
    Debian's stock settings, its access log on (buffered) or off."""
    directory = OUT / name
    shutil.rmtree(directory, ignore_errors=True)
    for sub in ("www", "tmp"):
        (directory / sub).mkdir(parents=True)
    for file_name, data in files.items():
        (directory / "www" / file_name).write_bytes(data)
    port = free_port()
    conf = directory / "nginx.conf"
    log_line = NGINX_ACCESS_LOG.format(dir=directory) if access_log else "access_log off;"
    conf.write_text(NGINX_CONF.format(dir=directory, host=HOST, port=port, access_log=log_line))
    argv = [nginx_binary(), "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")]
    server = Server(name, argv, port=port, cpus=cpus)
    server.wait_ready("/feed.rss")
    return server


def start_bare_litestar(api_body: bytes, cpus: set[int] | None) -> Server:
    """bench.servers' bare Litestar app (the framework's floor), in a process of its own."""
    body_file = OUT / "bare-litestar-api.json"
    body_file.write_bytes(api_body)
    port = free_port()
    env = {**os.environ, "BENCH_API_BODY": str(body_file)}
    argv = [sys.executable, "-m", "bench.servers", "--bare-litestar", str(port)]
    server = Server("bare-litestar", argv, port=port, env=env, cpus=cpus)
    server.wait_ready("/healthz", timeout=60)
    return server


# --- wrk ----------------------------------------------------------------------------------


@dataclass
class WrkRun:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float
    non_2xx_3xx: int = 0
    socket_errors: str = ""


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(text: str) -> tuple[int, float, float, float, int, str]:
    """(requests, requests/s, p50 ms, p99 ms, non-2xx/3xx count, socket errors) from wrk's report."""
    try:
        requests = int(re.search(r"^\s*(\d+) requests in", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
        rps = float(re.search(r"^Requests/sec:\s*([\d.]+)", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
        p50 = _ms(re.search(r"^\s*50%\s+(\S+)", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"^\s*99%\s+(\S+)", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    except AttributeError:
        raise BenchError(f"cannot read wrk's report:\n{text}") from None
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    sock = re.search(r"Socket errors:\s*(.*)", text)
    return requests, rps, p50, p99, int(bad.group(1)) if bad else 0, sock.group(1).strip() if sock else ""


def wrk(server: Server, path: str, duration: float, *, headers: tuple[str, ...] = (), script: str | None = None,
        script_args: tuple[str, ...] = (), cpus: set[int] | None = None) -> WrkRun:
    argv = ["wrk", "-t1", "-c16", f"-d{duration:g}s", "--latency", "--timeout", "10s"]
    for header in headers:
        argv += ["-H", header]
    if script:
        argv += ["-s", script]
    argv.append(f"http://{HOST}:{server.port}{path}")
    if script_args:
        argv += ["--", *script_args]
    pids = server.pids()
    before = cpu_seconds(pids)
    done = subprocess.run(pinned(argv, cpus), check=False, capture_output=True, text=True, timeout=duration + 60)
    after = cpu_seconds(pids)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    requests, rps, p50, p99, bad, sock = parse_wrk(done.stdout)
    run = WrkRun(requests, rps, p50, p99, (after - before) * 1e6 / max(requests, 1), bad, sock)
    if bad or sock:
        raise BenchError(
            f"{server.name} {path} {headers}: {bad} non-2xx/3xx responses, socket errors: {sock or 0}\n{done.stdout}"
        )
    return run


@dataclass
class Pair:
    """One scenario: the median round of feedsvc (as ``ours_name`` runs it) and of its baseline."""

    name: str
    feedsvc: list[WrkRun] = field(default_factory=list)
    baseline: list[WrkRun] = field(default_factory=list)
    baseline_name: str = "nginx"
    ours_name: str = "feedsvc"
    note: str = ""
    error: str = ""
    key: str = ""
    """What the TARGETS table knows it by: ``rss``, ``rss-gzip``, ..., ``304``, ``cold``."""


def median_run(runs: list[WrkRun]) -> dict[str, float]:
    return {
        key: statistics.median(getattr(r, key) for r in runs)
        for key in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request")
    }


# --- part A: feeds against nginx ----------------------------------------------------------


FORMATS = {"rss": 50, "atom": 50, "json": 50}
"""Feed formats measured, each a 50-item document."""
ITEM_MARKERS = {"rss": b"<item>", "atom": b"<entry", "json": b'"_commentary":'}


@dataclass
class FeedResults:
    size: int
    pairs: list[Pair]
    feed_bytes: dict[str, tuple[int, int]]
    """Per format: bytes plain and gzipped."""
    render_ms: dict[str, float]
    rss_mb: dict[str, float]
    logged_errors: list[str]
    access_log_us: dict[str, float] = field(default_factory=dict)
    """CPU per request of the access log in process (bench.access_log), by what it measures."""


SERVER_NAMES = {
    "feedsvc": "feedsvc",
    "nginx": "nginx",
    "feedsvc-nolog": "feedsvc, access log off",
    "nginx-nolog": "nginx, access log off",
    "litestar": "bare Litestar",
    "feedsvc-w1": "feedsvc, 1 worker, unpinned",
    "feedsvc-w2": "feedsvc, 2 workers, unpinned",
}
"""The servers of part A, by the key scenarios name them with."""


@dataclass
class Scenario:
    key: str
    name: str
    path: str
    ours: str
    baseline: str
    status: int = 200
    headers: Callable[[str], tuple[str, ...]] = lambda who: ()
    """Request headers for the server of this key (a 304 needs each server's own ETag)."""
    pinned: bool = True
    """False: servers and wrk share every CPU (the workers scenario)."""


def part_feeds(size: int, duration: float, rounds: int, cpus: tuple[set[int] | None, set[int] | None],
               *, quick: bool = False) -> FeedResults:
    server_cpus, client_cpus = cpus
    db = database(size, log=log)
    warm = 1.0 if duration < 5 else 2.0
    pairs: list[Pair] = []
    rss: dict[str, float] = {}
    logged: list[str] = []
    offset = 0
    sizes: dict[str, tuple[int, int]] = {}
    with contextlib.ExitStack() as stack:
        log(f"part A: feeds at {size} commentaries; starting feedsvc")
        fsv = start_feedsvc(db, server_cpus)
        stack.callback(fsv.stop)
        files: dict[str, bytes] = {}
        for fmt, expected_items in FORMATS.items():
            path = f"/feed.{fmt}"
            _, feed = expect(fsv.port, path, 200)
            head, feed_gz = expect(fsv.port, path, 200, {"Accept-Encoding": "gzip"})
            if head.get("content-encoding") != "gzip" or gzip.decompress(feed_gz) != feed:
                raise BenchError(f"feedsvc's gzip variant of {path} is not the gzipped feed")
            items = feed.count(ITEM_MARKERS[fmt])
            if items != expected_items:
                raise BenchError(f"{path} has {items} items, expected {expected_items}")
            files[f"feed.{fmt}"], files[f"feed.{fmt}.gz"] = feed, feed_gz
            sizes[fmt] = (len(feed), len(feed_gz))
        _, api_page = expect(fsv.port, API, 200)
        _, health = expect(fsv.port, "/healthz", 200)
        servers: dict[str, Server] = {"feedsvc": fsv}
        for key, access_log in (("nginx", True), ("nginx-nolog", False)):
            servers[key] = start_nginx(files, server_cpus, access_log=access_log, name=key)
            stack.callback(servers[key].stop)
        servers["feedsvc-nolog"] = start_feedsvc(db, server_cpus, access_log=False, name="feedsvc-nolog")
        stack.callback(servers["feedsvc-nolog"].stop)
        servers["litestar"] = start_bare_litestar(api_page, server_cpus)
        stack.callback(servers["litestar"].stop)
        for key in ("nginx", "nginx-nolog"):
            ngx = servers[key]
            for fmt in FORMATS:
                path = f"/feed.{fmt}"
                _, ngx_feed = expect(ngx.port, path, 200)
                ngx_gz_head, ngx_gz = expect(ngx.port, path, 200, {"Accept-Encoding": "gzip"})
                if (
                    ngx_feed != files[f"feed.{fmt}"]
                    or ngx_gz != files[f"feed.{fmt}.gz"]
                    or ngx_gz_head.get("content-encoding") != "gzip"
                ):
                    raise BenchError(f"nginx does not serve the bytes feedsvc serves at {path}")
        if expect(servers["litestar"].port, API, 200)[1] != api_page or expect(
            servers["litestar"].port, "/healthz", 200
        )[1] != health:
            raise BenchError("the bare Litestar app does not answer the bytes feedsvc answers")
        etag = {
            key: head_etag(server.port, "HEAD" if key.startswith("nginx") else "GET")
            for key, server in servers.items()
            if key != "litestar"
        }
        rss["feedsvc after start"] = rss_mb(fsv.pids())

        names = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}
        scenarios: list[Scenario] = []
        for fmt in FORMATS:
            scenarios.append(Scenario(fmt, f"cached {names[fmt]}, identity", f"/feed.{fmt}", "feedsvc", "nginx"))
            if fmt == "rss" or not quick:
                scenarios.append(Scenario(f"{fmt}-gzip", f"cached {names[fmt]}, gzip (nginx: gzip_static)",
                                          f"/feed.{fmt}", "feedsvc", "nginx",
                                          headers=lambda who: ("Accept-Encoding: gzip",)))

        def if_none_match(who: str) -> tuple[str, ...]:
            return (f"If-None-Match: {etag[who]}",)

        scenarios += [
            Scenario("304", "304 Not Modified (If-None-Match)", "/feed.rss", "feedsvc", "nginx", 304,
                     if_none_match),
            Scenario("rss-logs-off", "cached RSS, both access logs off", "/feed.rss", "feedsvc-nolog",
                     "nginx-nolog"),
            Scenario("304-logs-off", "304, both access logs off", "/feed.rss", "feedsvc-nolog", "nginx-nolog", 304,
                     if_none_match),
            # The floor under every response that goes through routing: feedsvc's middleware
            # and routing against Litestar's own, the same 15 bytes.
            Scenario("healthz", "GET /healthz", "/healthz", "feedsvc", "litestar"),
            # A list-API page (page 1, the default limit): feedsvc asks its store, the bare
            # app answers the same bytes from memory.
            Scenario("api", f"GET {API} (page 1)", API, "feedsvc", "litestar"),
        ]
        for sc in scenarios:
            pair = Pair(sc.name, key=sc.key, ours_name=SERVER_NAMES[sc.ours], baseline_name=SERVER_NAMES[sc.baseline])
            pairs.append(pair)
            pair_servers = {sc.ours: servers[sc.ours], sc.baseline: servers[sc.baseline]}
            try:
                for who, server in pair_servers.items():
                    headers = sc.headers(who)
                    expect(server.port, sc.path, sc.status, dict(h.split(": ", 1) for h in headers))
                    wrk(server, sc.path, warm, headers=headers, cpus=client_cpus)
                for r in range(rounds):
                    for who, server in pair_servers.items():
                        log(f"  {sc.name}: {SERVER_NAMES[who]} round {r + 1}/{rounds}")
                        run = wrk(server, sc.path, duration, headers=sc.headers(who), cpus=client_cpus)
                        (pair.feedsvc if who == sc.ours else pair.baseline).append(run)
            except BenchError as e:
                pair.error = str(e)
                log(f"FAILED {sc.name}: {e}")

        # Cold renders: feedsvc renders every request; nginx serves the static file meanwhile.
        ngx = servers["nginx"]
        cold = Pair("cold render: every request a new view", baseline_name="nginx static",
                    note="baseline: nginx serving the cached feed (it cannot render)", key="cold")
        pairs.append(cold)
        script = str(BENCH / "cold.lua")
        try:
            _, body = expect(fsv.port, "/feed.rss?to=2100-01-01T00:00:00.000000Z", 200)
            if body.count(b"<item>") != 50:
                raise BenchError(f"the cold-render view has {body.count(b'<item>')} items, expected 50")
            offset += 10_000_000
            wrk(fsv, "/", warm, script=script, script_args=(str(offset),), cpus=client_cpus)
            for r in range(rounds):
                log(f"  cold render: round {r + 1}/{rounds}")
                offset += 10_000_000  # each run's URLs are new (10 s of microseconds apart)
                cold.feedsvc.append(
                    wrk(fsv, "/", duration, script=script, script_args=(str(offset),), cpus=client_cpus)
                )
                cold.baseline.append(wrk(ngx, "/feed.rss", duration, cpus=client_cpus))
        except BenchError as e:
            cold.error = str(e)
            log(f"FAILED cold render: {e}")
        rss["feedsvc after cold renders"] = rss_mb(fsv.pids())
        for server in servers.values():
            for line in server.errors_logged()[:20]:
                log(f"{server.name} log: {line}")
                logged.append(f"{server.name} logged: {line}")
    pairs.append(workers_pair(db, duration, rounds, warm, logged, ALL_CPUS))
    log("  in-process render timing")
    render = asyncio.run(render_in_process(db, 1.0 if quick else 3.0))
    log("  access log CPU per request, in process")
    access_log_us = access_log_cost(20_000 if quick else 50_000, 3 if quick else 7)
    return FeedResults(size, pairs, sizes, render, rss, logged, access_log_us)


ACCESS_LOG_SERVING = "after: serving path (queue a tuple)"
"""bench.access_log's name for what the serving path pays per logged request."""


def access_log_cost(requests: int, repeats: int) -> dict[str, float]:
    from bench.access_log import measure

    return measure(requests, repeats)


ALL_CPUS = frozenset(os.sched_getaffinity(0))
"""The CPUs this process may use when it starts (main then pins itself beside wrk)."""


def workers_pair(db: Path, duration: float, rounds: int, warm: float, logged: list[str], cpus: frozenset[int]) -> Pair:
    """Cached /feed.rss from ``feedsvc serve --workers 2`` against ``--workers 1``, rounds
    interleaved. Nothing is pinned: the two workers need both CPUs, and wrk runs on the
    same two (this machine has no third), so it takes CPU the servers could have used."""
    pair = Pair("cached RSS, 2 workers vs 1 (servers and wrk on the same 2 CPUs)", key="workers",
                ours_name=SERVER_NAMES["feedsvc-w2"], baseline_name=SERVER_NAMES["feedsvc-w1"])
    if len(cpus) < 2:
        pair.error = "one CPU: nothing to scale to"
        return pair
    every = set(cpus)
    with contextlib.ExitStack() as stack:
        try:
            servers: dict[str, Server] = {}
            for key, workers in (("feedsvc-w2", 2), ("feedsvc-w1", 1)):
                servers[key] = start_feedsvc(db, every, workers=workers, name=key)
                stack.callback(servers[key].stop)
                expect(servers[key].port, "/feed.rss", 200)
                wrk(servers[key], "/feed.rss", warm, cpus=every)  # every worker renders its copy
            for r in range(rounds):
                for key, server in servers.items():
                    log(f"  workers: {SERVER_NAMES[key]} round {r + 1}/{rounds}")
                    run = wrk(server, "/feed.rss", duration, cpus=every)
                    (pair.feedsvc if key == "feedsvc-w2" else pair.baseline).append(run)
            for server in servers.values():
                logged += [f"{server.name} logged: {line}" for line in server.errors_logged()[:20]]
        except BenchError as e:
            pair.error = str(e)
            log(f"FAILED workers: {e}")
    return pair


def head_etag(port: int, method: str) -> str:
    head, _ = expect(port, "/feed.rss", 200, method=method)
    if "etag" not in head:
        raise BenchError(f"no ETag from {method} /feed.rss on :{port}")
    return head["etag"]


DJANGO = "django>=4.2,<6"
"""Only for the cold-render comparison: installed into this venv when missing (the
``bench`` extra of pyproject.toml names it too); never a feedsvc dependency."""


def ensure_django() -> None:
    import importlib.util

    if importlib.util.find_spec("django") is None:
        log(f"installing {DJANGO} into {sys.prefix} for the cold-render comparison")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", DJANGO], check=True)
        importlib.invalidate_caches()


def _timed_ms(fn: Callable[[], object], seconds: float, least: int = 5) -> list[float]:
    took: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(took) < least:
        t = time.perf_counter()
        fn()
        took.append((time.perf_counter() - t) * 1000)
    return took


async def render_in_process(db: Path, seconds: float = 3.0) -> dict[str, float]:
    """Milliseconds per 50-item RSS document in this process (medians):

    * Django's ``Rss201rev2Feed`` with the same 50 presented commentaries, the full HTML as
      ``description`` (the baseline of the cold-render target);
    * feedsvc's render of a view never rendered before whose items were (every document a
      new ``self_url``; feedsvc.feeds.fragments reuses the items), and of the same with no
      item known (``render_rss`` as it was before fragments);
    * the whole miss path of ``FeedPublisher.document`` for a new view (stamp, query,
      present, render), and the query alone with and without the cold-render ``to=``.
    """
    import msgspec

    from feedsvc.config import Settings
    from feedsvc.feeds.fragments import Fragments
    from feedsvc.feeds.publisher import FeedPublisher
    from feedsvc.query import Query
    from feedsvc.render.rss import render_rss
    from feedsvc.service import Service
    from feedsvc.store import open_store

    settings = Settings()
    store = open_store(f"sqlite:///{db}")
    await store.open()
    try:
        service = Service(store, base_url=f"http://{HOST}:8000")
        publisher = FeedPublisher(service, title=settings.title, description=settings.description,
                                  feed_limit=settings.feed_limit)
        base = Query(limit=settings.feed_limit)
        far = datetime(2100, 1, 1, tzinfo=UTC)
        miss: list[float] = []
        deadline = time.perf_counter() + seconds
        spec = publisher.site_spec(base)
        while time.perf_counter() < deadline or len(miss) < 5:
            spec = publisher.site_spec(msgspec.structs.replace(base, to_time=far + timedelta(microseconds=len(miss))))
            t = time.perf_counter()
            await publisher.document("rss", spec)
            miss.append((time.perf_counter() - t) * 1000)
        if publisher.stats.renders != len(miss):
            raise BenchError(f"{len(miss)} distinct views but {publisher.stats.renders} renders")
        out = {"miss path, new view (median)": statistics.median(miss), "miss path (p99)": _percentile(miss, 99)}
        # The cold-render URLs add `to`; the query for 51 items must cost what the plain feed's does.
        for label, query in (("query, plain feed", base), ("query, with to=", spec.query)):
            probe = msgspec.structs.replace(query, limit=query.limit + 1)
            took: list[float] = []
            for _ in range(30):
                t = time.perf_counter()
                await store.get_commentaries(probe)
                took.append((time.perf_counter() - t) * 1000)
            out[f"{label} (median)"] = statistics.median(took)

        items = await store.get_commentaries(msgspec.structs.replace(base, limit=base.limit + 1))
        presented = await service.present(items[: base.limit])
        view = await publisher._view("rss", publisher.site_spec(base), None, presented, len(items) > base.limit, 0)
        fragments = Fragments()
        fragments.render("rss", view, presented)  # the items, rendered once
        views = iter(range(10**9))

        def new_view() -> bytes:
            fresh = msgspec.structs.replace(view, self_url=f"{view.self_url}?to=2100-01-01T00:00:00.{next(views):06d}Z")
            body: bytes = fragments.render("rss", fresh, presented)
            return body

        if new_view().count(b"<item>") != 50:
            raise BenchError("the in-process render does not have 50 items")
        out["feedsvc: new view, items known (median)"] = statistics.median(_timed_ms(new_view, seconds))
        out["feedsvc: nothing known, render_rss (median)"] = statistics.median(
            _timed_ms(lambda: render_rss(view, presented), seconds)
        )
        out["Django Rss201rev2Feed (median)"] = statistics.median(_timed_ms(django_rss(presented, settings), seconds))
        return out
    finally:
        await store.close()


def django_rss(items: list[Any], settings: Any) -> Callable[[], bytes]:
    """A function rendering ``items`` (presented commentaries) through Django's syndication
    feed generator, with what an RSS 2.0 reader needs and the full HTML as description."""
    import django
    from django.conf import settings as django_settings

    if not django_settings.configured:
        django_settings.configure(USE_I18N=False, USE_TZ=True)
        django.setup()
    from django.utils import feedgenerator

    base = f"http://{HOST}:8000"

    def render() -> bytes:
        feed = feedgenerator.Rss201rev2Feed(
            title=settings.title, link=f"{base}/", description=settings.description, language=None,
            feed_url=f"{base}/feed.rss",
        )
        for c in items:
            feed.add_item(
                title=c.title, link=c.url, description=c.body_html, unique_id=c.id, unique_id_is_permalink=False,
                pubdate=c.published_at, updateddate=c.updated_at, author_name=", ".join(a.name for a in c.authors),
                categories=[c.category, *c.tags],
            )
        text: str = feed.writeString("utf-8")
        return text.encode()

    if render().count(b"<item>") != len(items):
        raise BenchError("Django's feed does not have every item")
    return render


def api_queries(size: int) -> list[tuple[str, dict[str, str]]]:
    return [
        ("page 1, no filter", {}),
        ("category + date range", {"category": "economy-and-energy", "from": "2019-01-01", "to": "2020-12-31"}),
        ("tag", {"tag": TAGS[20]}),
        ("lang=be", {"lang": "be"}),
        (f"q: common word ({COMMON_WORD})", {"q": COMMON_WORD}),
        (f"q: rare name ({RARE_NAME})", {"q": RARE_NAME}),
        ("updated_since", {"updated_since": "2025-01-01"}),
    ]


def part_api(sizes: list[int], requests: int, max_seconds: float, cpus: set[int] | None) -> list[QueryResult]:
    results: list[QueryResult] = []
    for size in sizes:
        db = database(size, log=log)
        log(f"part B: list API at {size} commentaries")
        server = start_feedsvc(db, cpus)
        try:
            conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
            for name, params in api_queries(size):
                path = f"{API}?{urlencode(params)}" if params else API
                results.append(time_query(conn, size, name, path, requests, max_seconds))
            deep = max(2, min(100, size // 20 // 2))
            try:
                path = deep_page_path(conn, deep)
                results.append(time_query(conn, size, f"page {deep} (cursor, limit=20)", path, requests, max_seconds))
            except BenchError as e:
                results.append(QueryResult(size, f"page {deep} (cursor, limit=20)", API, error=str(e)))
            conn.close()
            for line in server.errors_logged()[:20]:
                log(f"feedsvc log: {line}")
                results.append(QueryResult(size, "server log", "", error=f"feedsvc logged: {line}"))
        finally:
            server.stop()
    return results


# --- report -------------------------------------------------------------------------------


def fmt(value: float, digits: int = 2) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def feeds_table(res: FeedResults) -> list[str]:
    lines = [
        f"### A. Feeds: feedsvc against its baselines, one worker each, {res.size:,} commentaries",
        "",
        (
            "50-item feeds: "
            + ", ".join(f"/feed.{fmt} {plain:,} bytes ({gz:,} gzipped)" for fmt, (plain, gz) in res.feed_bytes.items())
            + ". wrk -t1 -c16, median of the rounds. feedsvc as `feedsvc serve` runs it (access log on),"
            " nginx with Debian's stock `sendfile on; tcp_nopush on;` and its access log on (`buffer=64k`),"
            " unless the row says otherwise. Ratios are feedsvc / baseline "
            "(throughput: higher is better for feedsvc; p99 and CPU: lower is better)."
        ),
        "",
        (
            "| scenario | baseline | feedsvc req/s | baseline req/s | **throughput ratio** | feedsvc p50 / p99 ms "
            "| baseline p50 / p99 ms | p99 ratio | feedsvc CPU µs/req | baseline CPU µs/req | CPU ratio |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for pair in res.pairs:
        if pair.error or not pair.feedsvc or not pair.baseline:
            lines.append(f"| {pair.name} | {pair.baseline_name} | **FAILED** | | | | | | | | |")
            notes.append(f"- {pair.name}: {pair.error.splitlines()[0] if pair.error else 'no runs'}")
            continue
        a, b = median_run(pair.feedsvc), median_run(pair.baseline)
        lines.append(
            f"| {pair.name} | {pair.baseline_name} | {fmt(a['rps'])} | {fmt(b['rps'])} | **{a['rps'] / b['rps']:.3f}** "
            f"| {fmt(a['p50_ms'])} / {fmt(a['p99_ms'])} | {fmt(b['p50_ms'])} / {fmt(b['p99_ms'])} "
            f"| {a['p99_ms'] / b['p99_ms']:.1f} | {fmt(a['cpu_us_per_request'], 0)} "
            f"| {fmt(b['cpu_us_per_request'], 0)} "
            f"| {a['cpu_us_per_request'] / max(b['cpu_us_per_request'], 1e-9):.1f} |"
        )
        if pair.note:
            notes.append(f"- {pair.name}: {pair.note}.")
        rounds = ", ".join(fmt(r.rps) for r in pair.feedsvc)
        base_rounds = ", ".join(fmt(r.rps) for r in pair.baseline)
        notes.append(
            f"- {pair.name}: rounds req/s {pair.ours_name} [{rounds}], {pair.baseline_name} [{base_rounds}]."
        )
    lines += ["", *notes, ""]
    if res.render_ms:
        parts = "; ".join(f"{k}: {v:.2f} ms" for k, v in res.render_ms.items())
        lines.append(f"In-process, one 50-item RSS document (same 50 commentaries, full content): {parts}.")
    if res.rss_mb:
        lines.append("feedsvc resident memory: " + "; ".join(f"{k}: {v:.0f} MB" for k, v in res.rss_mb.items()) + ".")
    if res.access_log_us:
        lines.append("Access log, CPU per request in process (`bench.access_log`): "
                     + "; ".join(f"{k}: {v:.2f} µs" for k, v in res.access_log_us.items()) + ".")
    return lines


# --- targets (issue 17) -------------------------------------------------------------------


def feed_targets(res: FeedResults | None) -> list[Any]:
    """Targets 1, 2 and 5 of issue 17 from this run, as bench.scale.TargetRow: feedsvc as
    deployed against stock nginx, the floor against bare Litestar, a new view's CPU, and
    two workers against one."""
    from bench.results import TargetRow

    rows: list[TargetRow] = []
    pairs = {p.key: p for p in (res.pairs if res else [])}

    def measured(key: str) -> tuple[dict[str, float], dict[str, float]] | None:
        pair = pairs.get(key)
        if pair is None or pair.error or not pair.feedsvc or not pair.baseline:
            return None
        return median_run(pair.feedsvc), median_run(pair.baseline)

    def ratio_row(key: str, name: str, target: str, least: float, baseline: str) -> None:
        if key not in pairs:
            return
        m = measured(key)
        if m is None:
            rows.append(TargetRow(name, target, "not measured (FAILED)", None))
            return
        a, b = m
        ratio = a["rps"] / b["rps"]
        rows.append(TargetRow(
            name, target,
            f"{ratio:.2f}× ({a['rps']:,.0f} vs {b['rps']:,.0f} req/s; p99 {a['p99_ms']:.2f} vs {b['p99_ms']:.2f} ms;"
            f" CPU {a['cpu_us_per_request']:.0f} vs {b['cpu_us_per_request']:.0f} µs/req)",
            ratio >= least, f"baseline: {baseline}",
        ))

    names = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}
    for fmt_key, label in names.items():
        ratio_row(fmt_key, f"1. Cached {label}, as deployed: throughput vs nginx", "≥ 0.5×", 0.5, "nginx stock, log on")
    for fmt_key, label in names.items():
        ratio_row(f"{fmt_key}-gzip", f"1. Cached {label} gzip, as deployed: throughput vs nginx", "≥ 0.5×", 0.5,
                  "nginx stock gzip_static, log on")
    ratio_row("304", "1. 304 Not Modified, as deployed: throughput vs nginx", "≥ 0.5×", 0.5, "nginx stock, log on")
    log_us = res.access_log_us.get(ACCESS_LOG_SERVING) if res else None
    rows.append(TargetRow(
        "1. Access log: CPU per request on the serving path", "≤ 3 µs",
        f"{log_us:.2f} µs (in process, `bench.access_log`)" if log_us is not None else "not measured",
        log_us <= 3 if log_us is not None else None,
    ))
    ratio_row("healthz", "2. GET /healthz: throughput vs bare Litestar", "within 2× (≥ 0.5×)", 0.5,
              "bare Litestar, same bytes, same uvicorn options")
    ratio_row("api", "2. API page (page 1): throughput vs bare Litestar", "within 2× (≥ 0.5×)", 0.5,
              "bare Litestar answering the same bytes")
    m = measured("cold")
    cpu = m[0]["cpu_us_per_request"] / 1000 if m else None
    rows.append(TargetRow(
        "2. New view of known items: server CPU per request", "≤ 1.5 ms",
        f"{cpu:.2f} ms ({m[0]['rps']:,.0f} req/s, every request a new view)" if m and cpu is not None
        else "not measured",
        cpu <= 1.5 if cpu is not None else None,
    ))
    m = measured("workers")
    if "workers" in pairs:
        ratio = m[0]["rps"] / m[1]["rps"] if m else None
        rows.append(TargetRow(
            "5. FEEDSVC_WORKERS=2 vs 1, cached RSS (wrk on the same 2 CPUs)", "scales: > 1×",
            f"{ratio:.2f}× ({m[0]['rps']:,.0f} vs {m[1]['rps']:,.0f} req/s)" if m and ratio else "not measured",
            ratio > 1 if ratio is not None else None, "the curve to 8 and 32 cores: docs/scaling.md",
        ))
    return rows


def scale_targets() -> tuple[list[Any], str]:
    """Targets 3 and 4 of issue 17 from the last bench.scale run, and where they come from."""
    from bench.results import TargetRow, load_results, targets, wanted_targets

    path = OUT / "scale.json"
    results = load_results(path)
    if results is None:
        return [TargetRow(name, target, "not measured", None) for name, target in wanted_targets()], (
            "not measured yet: run `python -m bench.scale --postgres URL` (1M rows: see bench/README.md),"
            " then `make bench` again"
        )
    when = datetime.fromtimestamp(path.stat().st_mtime).astimezone()
    sizes = ", ".join(f"{n:,}" for n in results.sizes)
    return targets(results), (
        f"from bench/out/scale.json, `python -m bench.scale` of {when:%Y-%m-%d %H:%M} at {sizes} rows"
    )


def targets_table(rows: list[Any], scale_rows: list[Any], scale_source: str) -> list[str]:
    lines = [
        "### TARGETS (issue 17)",
        "",
        "| target | wanted | measured | met |",
        "|---|---|---|---|",
    ]
    for t in [*rows, *scale_rows]:
        met = "n/a" if t.met is None else ("met" if t.met else "**NOT MET**")
        note = f" ({t.note})" if getattr(t, "note", "") else ""
        lines.append(f"| {t.name} | {t.target} | {t.measured}{note} | {met} |")
    lines += ["", f"Rows 1, 2 and 5: this run. Rows 3 and 4: {scale_source}."]
    return lines


def api_table(results: list[QueryResult], requests: int) -> list[str]:
    lines = [
        (
            f"### B. List API over HTTP: {requests} sequential keep-alive requests per query after 10 warm-up"
            " ones (fewer when a query hits its time cap), one feedsvc worker"
        ),
        "",
        "| commentaries | query | p50 ms | p99 ms | items | response bytes | requests |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.size:,} | {r.name} | **FAILED** | | | | |")
        else:
            lines.append(
                f"| {r.size:,} | {r.name} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.items} | {r.response_bytes:,}"
                f" | {r.requests} |"
            )
    lines.append("")
    lines += [
        f"- `{r.name}`: `{r.path if len(r.path) < 120 else r.path[:117] + '...'}`"
        for r in results
        if r.size == results[0].size
    ]
    return lines


def environment(args: argparse.Namespace, cpus: tuple[set[int] | None, set[int] | None]) -> list[str]:
    def out(argv: list[str]) -> str:
        with contextlib.suppress(OSError):
            done = subprocess.run(argv, check=False, capture_output=True, text=True, cwd=ROOT)
            return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else ""
        return "?"

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    commit = out(["git", "rev-parse", "--short", "HEAD"])
    dirty = " (+ uncommitted changes)" if out(["git", "status", "--porcelain"]) else ""
    server_cpus, client_cpus = cpus
    pinning = (
        f"servers on CPU {sorted(server_cpus)}, wrk and the API client on CPU {sorted(client_cpus)}"
        if server_cpus and client_cpus else "no CPU pinning"
    )
    return [
        f"## feedsvc benchmark ({'quick' if args.quick else 'full'}), {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        "",
        (
            f"Command: `python -m bench.run{' --quick' if args.quick else ''} --duration {args.duration:g}"
            f" --rounds {args.rounds}`. Commit {commit}{dirty}. {model}, {os.cpu_count()} CPUs ({pinning}),"
            f" load average before start {os.getloadavg()[0]:.2f}. Python {platform.python_version()},"
            f" {out([nginx_binary(), '-v'])}, {out(['wrk', '-v']).split(' Copyright')[0]}."
        ),
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k commentaries, 2 s runs, 2 rounds")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10, quick 2)")
    parser.add_argument("--rounds", type=int, help="rounds per server and scenario (default 3, quick 2)")
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per list-API query")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and wrk to separate CPUs")
    args = parser.parse_args(argv)
    args.duration = args.duration or (2.0 if args.quick else 10.0)
    args.rounds = max(2, args.rounds or (2 if args.quick else 3))
    feed_size, api_sizes = (1_000, [1_000]) if args.quick else (100_000, [10_000, 100_000])

    OUT.mkdir(parents=True, exist_ok=True)
    # SIGTERM unwinds like Ctrl-C, through the finally blocks that stop the servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    ensure_tools()
    ensure_django()
    available = sorted(os.sched_getaffinity(0))
    cpus: tuple[set[int] | None, set[int] | None] = (None, None)
    if len(available) >= 2 and not args.no_pin:
        cpus = ({available[0]}, {available[1]})
        os.sched_setaffinity(0, cpus[1])  # this process (the list-API client) beside wrk
    header = environment(args, cpus)
    for size in {feed_size, *api_sizes}:
        database(size, log=log)

    feeds = part_feeds(feed_size, args.duration, args.rounds, cpus, quick=args.quick)
    api = part_api(api_sizes, args.requests, 10.0 if args.quick else 30.0, cpus[0])
    scale_rows, scale_source = scale_targets()

    lines = [*header, *targets_table(feed_targets(feeds), scale_rows, scale_source), "", *feeds_table(feeds), "",
             *api_table(api, args.requests), ""]
    lines.append(f"Load average at the end: {os.getloadavg()[0]:.2f} (other work on this machine skews every number).")
    failures = [p.error for p in feeds.pairs if p.error] + feeds.logged_errors + [r.error for r in api if r.error]
    if failures:
        lines += ["**FAILED**: some responses were not the expected ones; the numbers above are not valid:", ""]
        lines += [f"    {f.splitlines()[0]}" for f in failures]
    report = "\n".join(lines) + "\n"
    mode = "quick" if args.quick else "full"
    (OUT / f"bench-{mode}.md").write_text(report)
    raw = {"feeds": asdict(feeds), "api": [asdict(r) for r in api], "args": vars(args)}
    (OUT / f"bench-{mode}.json").write_text(json.dumps(raw, indent=1, default=str))
    print(report)
    log(f"done in {time.monotonic() - STARTED:.0f} s; written to {OUT / f'bench-{mode}.md'}")
    if failures:
        for f in failures:
            print(f"bench: FAILED: {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
