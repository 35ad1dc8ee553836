"""Server CPU per page for people, from the page cache and cold (issue 21's targets: under
5 ms cached, under 20 ms cold).

    .venv/bin/python -m bench.pages                  # 100k generated commentaries (bench/out/db-100000.sqlite)
    .venv/bin/python -m bench.pages --n 1000 --rounds 20
    .venv/bin/python -m bench.pages --demo           # the sample data of `make run`

The app runs in this process on the database, rate limits off, and every request goes
through its whole ASGI stack (middleware, routing, the handler), so the CPU time of this
process around one request is the server's CPU for it. "Cold" empties the page cache before
each request (the store's own caches stay as a running server has them: the languages and
categories kept per change number, as the feeds keep them; the last row shows a page that
reloads those too, as the first render after a write does); "cached" asks for a page
already rendered. Each figure is the median over ``--rounds`` requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from litestar import Litestar

from bench.generate import database
from feedsvc.config import load_settings
from feedsvc.http.app import create_app

NO_LIMITS = {f"FEEDSVC_RATE_LIMIT_{k}": "0" for k in ("FEEDS", "READ", "SEARCH", "WRITE", "AUTH_FAILURES")}
BASE = "https://feeds.example.org"
TARGETS = {"cached": 5.0, "cold": 20.0}


async def get(app: Litestar, url: str) -> tuple[int, bytes]:
    """Status and body of a GET through the app's ASGI interface."""
    parts = urlsplit(url)
    status, body = 0, bytearray()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": parts.path, "raw_path": parts.path.encode(), "query_string": parts.query.encode(), "root_path": "",
        "headers": [(b"host", b"feeds.example.org"), (b"accept", b"text/html")],
        "client": ("127.0.0.1", 40000), "server": ("localhost", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return status, bytes(body)


async def api(app: Litestar, path: str) -> Any:
    status, body = await get(app, path)
    assert status == 200, (path, status, body[:300])
    return json.loads(body)


async def page_paths(app: Litestar) -> dict[str, str]:
    """One address of every page type, found through the API."""
    items = (await api(app, "/api/v1/commentaries?limit=50&lang=en"))["items"]
    item = next((c for c in items if c["tags"] and c["authors"]), items[0])
    published = item["published_at"]
    digests = (await api(app, "/api/v1/digests?lang=en&limit=1"))["items"]
    word = max(item["title"].split(), key=len).strip("«»:,.?!—")
    paths = {
        "home": "/",
        "commentary": item["url"].removeprefix(BASE),
        "language": "/en/",
        "archive": f"/en/{published[:4]}/{published[5:7]}/",
        "category": f"/en/categories/{item['category']}",
        "tag": f"/en/tags/{quote(item['tags'][0].lower(), safe='')}" if item["tags"] else "/en/",
        "search": f"/en/search?q={quote(word)}",
    }
    if digests:
        paths["digest"] = digests[0]["url"].removeprefix(BASE)
    return paths


async def measure(app: Litestar, path: str, rounds: int) -> dict[str, float]:
    cache = app.state["pages"]
    cold, cached = [], []
    for _ in range(rounds):
        cache._pages.clear()
        started = time.process_time()
        status, body = await get(app, path)
        cold.append(time.process_time() - started)
        assert status == 200, (path, status, body[:300])
    for _ in range(rounds):
        started = time.process_time()
        status, _ = await get(app, path)
        cached.append(time.process_time() - started)
        assert status == 200
    return {"cold": statistics.median(cold) * 1000, "cached": statistics.median(cached) * 1000, "bytes": len(body)}


def demo_database(tmp: Path) -> Path:
    db = tmp / "demo.db"
    env = {"FEEDSVC_DATABASE_URL": f"sqlite:///{db}", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-m", "feedsvc", "demo", "--data", "data"], env=env, check=True,
                   capture_output=True)
    return db


async def main(n: int, rounds: int, demo: bool) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        if demo:
            db, label = demo_database(Path(tmp)), "the demo data"
        else:
            # A copy: reading may make due scheduled commentaries public, a write.
            source = database(n, log=lambda m: print(m, file=sys.stderr))
            db, label = Path(tmp) / source.name, f"{n:,} generated commentaries"
            shutil.copy(source, db)
        settings = load_settings(NO_LIMITS, database_url=f"sqlite:///{db}", public_url=BASE, access_log="false")
        app = create_app(settings)
        async with app.lifespan():
            paths = await page_paths(app)
            for path in paths.values():  # the store's own caches as a running server has them
                await get(app, path)
            print(f"Server CPU per page, {label}, median of {rounds} requests (ms):\n")
            print("| page | path | cold | cached | bytes |\n| --- | --- | ---: | ---: | ---: |")
            worst = {"cold": 0.0, "cached": 0.0}
            for kind, path in paths.items():
                m = await measure(app, path, rounds)
                worst = {k: max(worst[k], m[k]) for k in worst}
                print(f"| {kind} | `{path[:60]}` | {m['cold']:.2f} | {m['cached']:.3f} | {m['bytes']:,} |")
            # After a write the first render (of any page or feed) also reloads the languages and
            # categories the publisher keeps per change number: once, shared by all of them.
            publisher = app.state["publisher"]
            after_write = []
            for _ in range(rounds):
                publisher._languages, publisher._categories = (-1, frozenset()), (-1, {})
                app.state["pages"]._pages.clear()
                started = time.process_time()
                await get(app, paths["commentary"])
                after_write.append(time.process_time() - started)
            print(f"| commentary, first page after a write | | {statistics.median(after_write) * 1000:.2f} | | |")
            print()
            met = True
            for k, target in TARGETS.items():
                ok = worst[k] < target
                met &= ok
                print(f"{k}: slowest page {worst[k]:.2f} ms, target < {target:.0f} ms: {'met' if ok else 'NOT MET'}")
    return 0 if met else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="generated commentaries (bench/generate.py)")
    parser.add_argument("--rounds", type=int, default=15, help="requests per figure")
    parser.add_argument("--demo", action="store_true", help="the sample data instead of generated data")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.n, args.rounds, args.demo)))
