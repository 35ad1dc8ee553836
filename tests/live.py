"""The real app under uvicorn on a free 127.0.0.1 port, for tests that drive it as outside
programs do (a browser, feed readers): real sockets, real HTTP, the served links absolute
to this port."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from feedsvc.config import load_settings
from feedsvc.http.app import create_app
from feedsvc.importformats import collect_files
from feedsvc.service import Clock, Service
from feedsvc.transfer import import_files

#: The sample data `feedsvc demo` loads (and its images, served under /media/).
DEMO_DATA = Path(__file__).resolve().parent.parent / "data"


class LiveServer:
    """The real app under uvicorn, on its own event loop in a thread; ``clock`` (e.g.
    tests.conftest.FakeClock) is the service's clock, for tests that move time by hand."""

    def __init__(
        self, tmp: Path, *, media_dir: Path | None = None, clock: Clock | None = None, **settings: Any
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.settings = load_settings(
            {}, database_url=f"sqlite:///{tmp / 'feedsvc.db'}", public_url=self.url,
            media_dir=str(media_dir or tmp / "media"), **settings,
        )
        self.app = create_app(self.settings)
        if clock is not None:
            self.service.clock = clock
        config = uvicorn.Config(self.app, log_level="warning", ws="none", http="h11", lifespan="on", access_log=False)
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="feedsvc-uvicorn", daemon=True)

    @property
    def service(self) -> Service:
        service: Service = self.app.state.service
        return service

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, coro: Any, timeout: float = 15) -> Any:
        """Run a coroutine on the server's loop (where the store's connection lives)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def load_demo(self) -> None:
        """Import the sample data, as `feedsvc demo` does."""
        result = self.run(import_files(self.service, collect_files([DEMO_DATA]), workers=1), timeout=120)
        assert not result.failed, result.failures

    def writer(self) -> httpx.Client:
        """An HTTP client holding a write token."""
        token, _ = self.run(self.service.create_token("editor", ["write"]))
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=15)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.loop.close()
        self.sock.close()
