"""The issue-19 figures: what the costliest URLs cost the server, in process.

    .venv/bin/python -m bench.cost                 # 20,000 made-up language paths
    .venv/bin/python -m bench.cost --paths 40000

Prints the CPU seconds of one GET whose query string is 64 KB of distinct category
slugs (to the list API and to a feed), and the process's resident memory before and
after GETs of that many made-up language feeds (``/zz-00000001/feed.rss``, ...), with the
statuses they got. The app runs on a fresh SQLite file with rate limits off, in this
process (its CPU is the process's), through its ASGI interface: httpx refuses URLs over
64 KiB, servers do not.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from collections import Counter
from typing import Any

from litestar import Litestar

from feedsvc.config import load_settings
from feedsvc.http.app import create_app

NO_LIMITS = {f"FEEDSVC_RATE_LIMIT_{k}": "0" for k in ("FEEDS", "READ", "SEARCH", "WRITE", "AUTH_FAILURES")}


def rss_mib() -> float:
    """Resident memory of this process now, in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def distinct_slugs(total: int) -> tuple[str, int]:
    """Short distinct slugs, comma-separated, ``total`` characters at most, and how many."""
    out: list[str] = []
    size = 0
    while True:
        slug = format(len(out), "x")
        if size + len(slug) + 1 > total:
            return ",".join(out), len(out)
        out.append(slug)
        size += len(slug) + 1


async def get(app: Litestar, path: str, query: bytes = b"") -> int:
    """The status of a GET through the app's ASGI interface."""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
        "headers": [(b"host", b"localhost")], "client": ("127.0.0.1", 40000), "server": ("localhost", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return status


async def main(paths: int, kind: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(NO_LIMITS, database_url=f"sqlite:///{tmp}/bench.db", public_url="https://feeds.example.org")
        app = create_app(settings)
        async with app.lifespan():
            slugs, count = distinct_slugs(64 * 1024 - len("category="))
            for path in ("/api/v1/commentaries", "/feed.rss"):
                started = time.process_time()
                status = await get(app, path, f"category={slugs}".encode())
                print(f"GET {path}?category=<{count} distinct slugs, 64 KB>: {status}, "
                      f"{time.process_time() - started:.3f} s of CPU")
            await get(app, "/feed.rss")
            gc.collect()
            before = rss_mib()
            statuses: Counter[int] = Counter()
            started = time.process_time()
            for n in range(paths):
                statuses[await get(app, f"/zz-{n:08d}/{kind}.rss")] += 1
            cpu = time.process_time() - started
            gc.collect()
            print(
                f"{paths} made-up language {'feeds' if kind == 'feed' else 'digest feeds'}: {dict(statuses)}; "
                f"resident memory {before:.0f} -> "
                f"{rss_mib():.0f} MiB; {cpu / paths * 1000:.2f} ms of CPU each"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", type=int, default=20_000, help="made-up language feeds to ask for")
    parser.add_argument("--kind", choices=("feed", "digest"), default="feed", help="language feeds or digest feeds")
    args = parser.parse_args()
    asyncio.run(main(args.paths, args.kind))
