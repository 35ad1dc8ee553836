"""No single request blocks the event loop: the heaviest bodies are refused or processed
while /healthz keeps answering.

A real uvicorn on 127.0.0.1, in a thread of this process. A task on the server's loop wakes
every 5 ms and notes how much CPU the server's thread spent between two of its wake-ups:
that is the longest the loop was kept from serving anyone, measured in CPU time of that
thread alone, so other processes on a loaded machine do not inflate it. Meanwhile another
thread polls /healthz, and the heavy bodies are POSTed one after another.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from feedsvc.config import load_settings
from feedsvc.http.app import create_app
from feedsvc.service import Service
from feedsvc.store import open_store
from feedsvc.structure import MAX_BRACKETS, MAX_DELIMITERS, MAX_DEPTH, MAX_TAG_CHARS
from tests.conftest import CATEGORIES, PUBLIC_URL, commentary

LOOP_BLOCK_LIMIT_S = 0.050
"""The most CPU the server's loop thread may spend without its probe getting a turn."""
WRITE_BOUND_S = 60.0
"""Each heavy write ends (400, 422 or 201) within this much wall time on a loaded machine;
the old code took 31 s of CPU for the first body alone, 110 s for the second."""
HEALTHZ_BOUND_S = 1.0
"""/healthz answers within this, wall time, while the writes run (it waited 31.8 s)."""

_formatting = "".join(f'<b title="{i}">' for i in range(MAX_DEPTH // 2 - 1))
# (what, the body fields, the statuses that may answer)
HEAVY: list[tuple[str, dict[str, Any], set[int]]] = [
    ("88,000 unclosed <div>", {"body_html": "<div>" * 88_000}, {400}),
    ("860 KiB of <div> in Markdown", {"body_markdown": "<div>" * 172_000}, {400}),
    ("'![' x 440,000", {"body_markdown": "![" * 440_000}, {400}),
    # The worst found within the limits: formatting elements open to the depth limit, as
    # many times as the size allows; tags at the length limit full of attributes; Markdown
    # at the bracket and delimiter limits with raw HTML nested to the depth limit.
    (
        "formatting at the depth limit, 880 KB",
        {"body_html": ((_formatting + "x" + "</b>" * (MAX_DEPTH // 2 - 1)) * 900)[:880_000]},
        {201},
    ),
    (
        "tags at the length limit, 880 KB",
        {"body_html": ("<b " + " ".join(f"a{i}" for i in range((MAX_TAG_CHARS - 10) // 6)) + ">x</b>") * 215},
        {201},
    ),
    (
        "Markdown at every limit",
        {
            "body_markdown": "![" * (MAX_BRACKETS - 1)
            + "\n\n"
            + "*a_" * (MAX_DELIMITERS // 3 - 1)
            + "\n\n"
            + "<div>\n" * (MAX_DEPTH - 5)
            + "x\n"
        },
        {201, 400},
    ),
    (
        "a long real-shaped Markdown article, 550 KB",
        {
            "body_markdown": (
                "## A heading\n\nPlain words, with `code` and https://example.org.\n\n- one\n- two\n\n> quoted\n\n"
            )
            * 5_000
        },
        {201},
    ),
]


class LoopProbe:
    """Runs on the server's loop: the largest CPU time of the loop's thread between two
    wake-ups of a task that asks to wake every 5 ms."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        last = time.thread_time()
        while True:
            await asyncio.sleep(0.005)
            now = time.thread_time()
            self.worst = max(self.worst, now - last)
            self.samples += 1
            last = now


@pytest.fixture
def server(tmp_path: Path, any_database_url: str) -> Iterator[tuple[str, str, LoopProbe]]:
    """The app on each store in turn (PostgreSQL builds search vectors on the write path)."""
    settings = load_settings(
        {}, database_url=any_database_url, public_url=PUBLIC_URL, media_dir=str(tmp_path),
        access_log="false", rate_limit_write="0", rate_limit_feeds="0",
    )

    async def seed() -> str:
        store = open_store(settings.database_url)
        await store.open()
        try:
            service = Service(store, base_url=settings.base_url)
            from feedsvc.model import CategoryIn

            for slug, data in CATEGORIES.items():
                await service.put_category(slug, CategoryIn(names=data["names"]))
            token, _ = await service.create_token("loop", ["write"])
            return token
        finally:
            await store.close()

    token = asyncio.run(seed())
    app = create_app(settings)
    probe = LoopProbe()
    app.on_startup.append(probe.start)
    app.on_shutdown.append(probe.stop)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", ws="none", log_config=None, log_level="warning",
        access_log=False, timeout_graceful_shutdown=5,
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="uvicorn", daemon=True)
    # The test runner's own heap (every earlier test's leftovers in this process) is kept out
    # of the collector's full passes, which would otherwise stall whichever thread triggers
    # one, the server's loop included: the measure is of the requests, not of that heap.
    gc.collect()
    gc.freeze()
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", token, probe
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
        gc.unfreeze()


def test_no_request_blocks_the_loop_while_the_heaviest_bodies_are_written(server: tuple[str, str, LoopProbe]) -> None:
    base, token, probe = server
    latencies: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            while not stop.is_set():
                started = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - started)
                stop.wait(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    outcomes: dict[str, tuple[int, float]] = {}
    try:
        with httpx.Client(base_url=base, timeout=WRITE_BOUND_S, headers={"Authorization": f"Bearer {token}"}) as client:
            for i, (what, fields, allowed) in enumerate(HEAVY):
                body = commentary(slug=f"heavy-{i}", **{"body_markdown": None, **fields})
                started = time.perf_counter()
                response = client.post("/api/v1/commentaries", json=body)
                outcomes[what] = (response.status_code, time.perf_counter() - started)
                assert response.status_code in allowed, (what, response.text[:300])
    finally:
        stop.set()
        poller.join(timeout=WRITE_BOUND_S)
    print(f"\nloop probe: {probe.samples} samples, worst {probe.worst * 1000:.1f} ms of loop-thread CPU between ticks")
    print(f"/healthz: {len(latencies)} polls, max {max(latencies) * 1000:.1f} ms, "
          f"p99 {sorted(latencies)[int(len(latencies) * 0.99)] * 1000:.1f} ms")
    for what, (status, seconds) in outcomes.items():
        print(f"  {status} in {seconds:6.2f} s  {what}")
    assert probe.samples > 100
    assert probe.worst < LOOP_BLOCK_LIMIT_S, probe.worst
    assert latencies and max(latencies) < HEALTHZ_BOUND_S, max(latencies)
