"""WebSub publisher pings (https://www.w3.org/TR/websub/#publishing).

After a write, the feeds it changed are queued; a background task POSTs
``hub.mode=publish`` with one ``hub.url`` per feed to the hub, retrying with exponential
backoff. URLs queued while a ping is pending are merged into one request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from urllib.parse import urlencode

import httpx

log = logging.getLogger("feedsvc.websub")


class HubStats:
    """Outcomes for /metrics."""

    def __init__(self) -> None:
        self.sent = 0
        self.failed = 0
        self.retried = 0


class HubNotifier:
    """Pings one WebSub hub about changed feed URLs, in the background."""

    def __init__(
        self,
        hub_url: str,
        *,
        attempts: int = 6,
        first_delay: float = 1.0,
        max_delay: float = 60.0,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.hub_url = hub_url
        self.attempts = attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.stats = HubStats()
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._pending: dict[str, None] = {}
        # Events belong to the loop that serves the app; made in start(), not here.
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def notify(self, urls: Iterable[str]) -> None:
        """Queue feed URLs for the next ping. Never blocks, never raises."""
        for url in urls:
            self._pending[url] = None
        if self._pending and self._wake is not None and self._idle is not None:
            self._idle.clear()
            self._wake.set()

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        if self._pending:
            self._wake.set()
        else:
            self._idle.set()
        self._task = asyncio.create_task(self._run(), name="websub-notifier")

    async def drain(self, timeout: float) -> bool:
        """Wait until every queued ping was sent or given up; False on timeout."""
        if self._idle is None:
            return not self._pending
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (within ``timeout``), then stop."""
        await self.drain(timeout)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._client.aclose()

    async def _run(self) -> None:
        assert self._wake is not None and self._idle is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            urls = list(self._pending)
            self._pending.clear()
            if urls:
                await self._ping(urls)
            if not self._pending:
                self._idle.set()

    async def _ping(self, urls: list[str]) -> None:
        # Repeated hub.url fields: one request announces every changed feed.
        body = urlencode([("hub.mode", "publish")] + [("hub.url", url) for url in urls]).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self._client.post(self.hub_url, content=body, headers=headers)
                if response.status_code < 300:
                    self.stats.sent += 1
                    return
                error = f"hub answered {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    self.stats.failed += 1
                    log.warning("websub ping refused: %s; not retried", error)
                    return
            except httpx.HTTPError as e:
                error = f"{type(e).__name__}: {e}"
            if attempt == self.attempts:
                break
            self.stats.retried += 1
            log.info("websub ping failed (%s); retry %d in %.1fs", error, attempt, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_delay)
        self.stats.failed += 1
        log.warning("websub ping gave up after %d attempts: %s", self.attempts, error)
