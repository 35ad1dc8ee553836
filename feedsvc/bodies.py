"""Where a commentary's body is checked, sanitised and rendered: never on the event loop.

The rules themselves are pure (feedsvc.commentary, feedsvc.structure); this module only says
where they run. The structural check and nh3's sanitiser run in a thread: nh3 releases
the GIL while it parses, and the check is linear and bounded. markdown-it is pure Python
and holds the GIL, so Markdown renders in a small pool of processes where a render that
runs past its time is killed (its worker replaced), not left to run.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import TimeoutError as FutureTimeoutError

from pebble import ProcessExpired, ProcessPool

from feedsvc.commentary import body_of, render_body_markdown
from feedsvc.errors import BusyError, InvalidInputError, UnprocessableError
from feedsvc.structure import check_markdown


def _render_in_worker(source: str) -> tuple[bool, str]:
    """``render_body_markdown`` in a worker process: (True, the HTML) or (False, why it is
    refused). An exception would cross the process boundary without its ``field``."""
    try:
        return True, render_body_markdown(source)
    except InvalidInputError as e:
        return False, e.message


class BodyRenderer:
    """``body_of``, off the event loop.

    Args:
        workers: processes rendering Markdown; 0 renders it in a thread (no time limit:
            for the command line and tests, where no event loop serves anyone else).
        timeout: seconds one Markdown render may run in its worker before it is killed.
        max_waiting: renders queued or running at most; more get BusyError (503).
        inline_below: Markdown shorter than this many characters renders in a thread: within
            the limits it costs a fraction of a second at most, less than starting a
            worker, and the loop keeps its turns (the GIL changes hands every 5 ms).
    """

    def __init__(
        self, *, workers: int = 0, timeout: float = 15.0, max_waiting: int = 16, inline_below: int = 16_384
    ) -> None:
        self.workers = workers
        self.timeout = timeout
        self.max_waiting = max_waiting
        self.inline_below = inline_below
        self._pool: ProcessPool | None = None
        self._waiting = 0

    def start(self) -> None:
        """Make the pool (its processes start with the first render)."""
        if self.workers and self._pool is None:
            # spawn, not fork: the server has threads (the store's, the sanitiser's) whose
            # locks a forked child would inherit held.
            self._pool = ProcessPool(max_workers=self.workers, context=multiprocessing.get_context("spawn"))

    async def close(self) -> None:
        """Stop the pool, killing renders still running, and wait for its processes."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()  # type: ignore[no-untyped-call]  # pebble leaves it unannotated
            await asyncio.to_thread(pool.join)

    async def render(self, body_html: str | None, body_markdown: str | None) -> str:
        """``body_of(body_html, body_markdown)``, the loop free meanwhile.

        Raises:
            InvalidInputError: as ``body_of``.
            UnprocessableError: the Markdown took longer than ``timeout`` to render, or
                its worker died (422 naming ``body_markdown``).
            BusyError: ``max_waiting`` renders are already under way (503).
        """
        if (
            body_markdown is None
            or body_html is not None
            or self._pool is None
            or len(body_markdown) < self.inline_below
        ):
            return await asyncio.to_thread(body_of, body_html, body_markdown)
        # The check first, in a thread: a body refused never takes a worker.
        await asyncio.to_thread(check_markdown, body_markdown, "body_markdown")
        if self._waiting >= self.max_waiting:
            raise BusyError("too many Markdown bodies are being rendered; retry shortly")
        self._waiting += 1
        try:
            future = self._pool.schedule(_render_in_worker, (body_markdown,), timeout=self.timeout)
            try:
                rendered, html = await asyncio.wrap_future(future)
            except asyncio.CancelledError:
                future.cancel()  # type: ignore[no-untyped-call]  # the client left: the pool kills the render
                raise
            if not rendered:
                raise InvalidInputError(html, field="body_markdown")
            return html
        except FutureTimeoutError:
            raise UnprocessableError(
                f"body_markdown took longer than {self.timeout:g} s to render; simplify its structure",
                field="body_markdown",
            ) from None
        except ProcessExpired:
            raise UnprocessableError("body_markdown could not be rendered", field="body_markdown") from None
        finally:
            self._waiting -= 1
