"""Issue 7, part 6, in its short bounded form (the long form is ``make bench``).

A real uvicorn server on 127.0.0.1, run in a thread of this process so that the test can
count renders: every feed document is made by ``Fragments.render``, wrapped to count
documents per view.

* ``wrk -t4 -c64 -d5s`` over nine feed views on a cold cache: no 5xx (no non-2xx/3xx at
  all), no socket errors, and exactly one render per view; then a write in one category
  and language, and two more seconds: at most one more render per view, none for the views
  the write does not touch.
* 50 slowloris connections trickling header lines for 3 s: requests on fresh connections
  still complete within SLOW_CLIENT_BOUND_S. uvicorn has no timeout for incomplete request
  headers (its ``timeout_keep_alive``, 5 s, only applies between requests), so such
  connections stay open for as long as the client trickles; what bounds them is the
  process's file descriptors, or a proxy in front (docs/security.md, "Load and slow clients").

wrk missing: skipped with the reason, except under CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import httpx
import msgspec
import pytest
import uvicorn

from feedsvc.config import Settings, load_settings
from feedsvc.feeds.fragments import Fragments
from feedsvc.http.app import create_app
from feedsvc.model import CategoryIn, NewCommentary
from feedsvc.service import Service
from feedsvc.store import open_store
from tests.conftest import CATEGORIES, PUBLIC_URL, commentary

pytestmark = pytest.mark.slow

ENV = {
    **{f"FEEDSVC_RATE_LIMIT_{k}": "0" for k in ("FEEDS", "READ", "SEARCH", "WRITE", "AUTH_FAILURES")},
    "FEEDSVC_ACCESS_LOG": "false",
    "FEEDSVC_LOG_LEVEL": "WARNING",
}
VIEWS = {
    "/feed.rss": True, "/feed.atom": True, "/feed.json": True,
    "/categories/regional-security/feed.rss": True, "/categories/foreign-policy/feed.atom": False,
    "/en/feed.json": True, "/be/feed.rss": False, "/feed.atom?tag=border": True, "/feed.json?limit=5": True,
}
"""Each view, and whether the write of the second phase (regional-security, en, tagged
border) changes it."""
SLOW_CLIENTS = 50
SLOW_CLIENT_BOUND_S = 1.0
"""Longest a normal request may take while the slow clients hold their connections."""


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("wrk is not installed; CI must provide it (apt-get install wrk)")
        pytest.skip("wrk is not installed (apt-get install wrk)")
    return path


async def seed(settings: Settings) -> str:
    """Categories, 60 commentaries over three categories and two languages, a token."""
    store = open_store(settings.database_url)
    await store.open()
    try:
        service = Service(store, base_url=settings.base_url)
        for slug, body in CATEGORIES.items():
            await service.put_category(slug, CategoryIn(names=body["names"]))
        slugs = list(CATEGORIES)
        for i in range(60):
            new = commentary(
                title=f"Commentary {i}",
                category=slugs[i % 3],
                lang="en" if i % 2 else "be",
                published_at=f"2026-02-{1 + i % 28:02d}T{i % 24:02d}:00:00+03:00",
                tags=["border"] if i % 4 else ["sanctions"],
                body_markdown=f"Paragraph one of {i}.\n\n" + "Analysis. " * 200,
            )
            await service.publish(msgspec.convert(new, NewCommentary))
        token, _ = await service.create_token("load", ["write"])
        return token
    finally:
        await store.close()


class ThreadedServer:
    """uvicorn serving ``app`` on 127.0.0.1 from a thread (signal handlers stay with the
    main thread), with the settings ``feedsvc serve`` gives it."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, lifespan="on", ws="none", log_config=None, log_level="warning",
            access_log=False, timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        assert not self.thread.is_alive()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ThreadedServer, Any, Counter[str], str]]:
    settings = load_settings(ENV, database_url=f"sqlite:///{tmp_path / 'load.db'}", public_url=PUBLIC_URL,
                             media_dir=str(tmp_path))
    token = asyncio.run(seed(settings))
    renders: Counter[str] = Counter()
    lock = threading.Lock()
    render = Fragments.render

    def counted(self: Fragments, fmt: Any, view: Any, items: Any, related: Any = None) -> bytes:
        with lock:
            renders[view.self_url] += 1
        return render(self, fmt, view, items, related)

    monkeypatch.setattr(Fragments, "render", counted)
    app = create_app(settings)
    with ThreadedServer(app) as server:
        yield server, app, renders, token


def run_wrk(wrk: str, base: str, script: Path, seconds: int) -> dict[str, Any]:
    done = subprocess.run(
        [wrk, "-t4", "-c64", f"-d{seconds}s", "--timeout", "5s", "-s", str(script), base],
        capture_output=True, text=True, timeout=seconds + 30, check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "socket_errors": tuple(int(g) for g in socket_errors.groups()) if socket_errors else (0, 0, 0, 0),
        "non_2xx_3xx": int(bad.group(1)) if bad else 0,
        "output": out,
    }


def test_many_connections_on_a_cold_cache_no_5xx_and_one_render_per_view_per_change(
    served: tuple[ThreadedServer, Any, Counter[str], str], tmp_path: Path
) -> None:
    wrk = wrk_path()
    server, app, renders, token = served
    script = tmp_path / "views.lua"
    paths = ", ".join(f'"{p}"' for p in VIEWS)
    script.write_text(
        f"local paths = {{{paths}}}\nlocal n = 0\n"
        "request = function()\n  n = n + 1\n  return wrk.format('GET', paths[(n % #paths) + 1])\nend\n"
    )
    assert sum(renders.values()) == 0, "the cache is not cold"

    cold = run_wrk(wrk, server.base, script, 5)
    assert cold["requests"] > 1000, cold["output"]
    assert cold["non_2xx_3xx"] == 0, cold["output"]
    assert cold["socket_errors"] == (0, 0, 0, 0), cold["output"]
    assert set(renders) == {PUBLIC_URL + path for path in VIEWS}, dict(renders)
    assert set(renders.values()) == {1}, dict(renders)
    assert app.state.publisher.stats.renders == len(VIEWS)

    # One change: a commentary in regional-security, in English, tagged border, the newest.
    before = Counter(renders)
    r = httpx.post(f"{server.base}/api/v1/commentaries", json=commentary(title="The change", tags=["border"]),
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    warm = run_wrk(wrk, server.base, script, 2)
    assert warm["non_2xx_3xx"] == 0 and warm["socket_errors"] == (0, 0, 0, 0), warm["output"]
    after = renders - before
    assert {path: after[PUBLIC_URL + path] for path in VIEWS} == {path: int(touched) for path, touched in VIEWS.items()}
    print(
        f"\nload: cold {cold['requests']} requests in 5 s ({cold['rps']:.0f}/s), "
        f"{len(VIEWS)} views rendered once each; "
        f"after one write {warm['requests']} requests in 2 s, {sum(after.values())} renders "
        f"(the {sum(VIEWS.values())} views it touched)"
    )


def test_slow_clients_do_not_stall_others(served: tuple[ThreadedServer, Any, Counter[str], str]) -> None:
    server = served[0]
    slow: list[socket.socket] = []
    try:
        for _ in range(SLOW_CLIENTS):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"GET /feed.atom HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(s)
        latencies: list[float] = []
        end = time.monotonic() + 3
        line = 0
        while time.monotonic() < end:
            line += 1
            for s in slow:
                s.sendall(b"X-Slow-%d: x\r\n" % line)
            for path in ("/healthz", "/feed.atom", "/api/v1/commentaries?limit=5"):
                started = time.monotonic()
                r = httpx.get(server.base + path, timeout=SLOW_CLIENT_BOUND_S * 5)
                latencies.append(time.monotonic() - started)
                assert r.status_code == 200
            time.sleep(0.2)
        open_after = 0
        for s in slow:
            s.setblocking(False)
            try:
                open_after += s.recv(1) != b""
            except BlockingIOError:
                open_after += 1
            except OSError:
                pass
    finally:
        for s in slow:
            s.close()
    assert max(latencies) < SLOW_CLIENT_BOUND_S, max(latencies)
    print(
        f"\nslow clients: {SLOW_CLIENTS} connections trickling headers for 3 s; {len(latencies)} normal requests, "
        f"slowest {max(latencies) * 1000:.0f} ms, median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms; "
        f"{open_after} slow connections still open at the end"
    )
