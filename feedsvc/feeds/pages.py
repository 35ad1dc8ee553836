"""Rendered pages for people, kept until anything public changes.

A page is stored under its address (path, query string and the kind of answer); it is
current while the store's change number and the last published digest week are what they
were when it was rendered: the same two facts that keep cached feeds current
(feedsvc.feeds.publisher), known without a query. Any write renders each page afresh at its
next request, so there is nothing to invalidate and no page is ever stale; concurrent misses
of one page share a single render. The cache holds at most ``max_pages`` pages, least
recently used out first, since search and cursor addresses are chosen by clients.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import date

from feedsvc.service import Service

MAX_PAGES = 2048
"""Pages kept per process (a rendered page is 10-40 KB: at most some 80 MB)."""


class CachedPage:
    """A rendered page, its strong ETag, and what it was rendered from."""

    __slots__ = ("body", "ended_by", "etag", "seq")

    def __init__(self, body: bytes, seq: int, ended_by: date) -> None:
        self.body = body
        self.etag = f'"{hashlib.blake2b(body, digest_size=10).hexdigest()}"'
        self.seq = seq
        self.ended_by = ended_by


class PageStats:
    def __init__(self) -> None:
        self.hits = 0
        self.renders = 0


class PageCache:
    """``await cache.page(key, render)``: the bytes of a page, rendered only when the store
    moved since they were."""

    def __init__(self, service: Service, max_pages: int = MAX_PAGES) -> None:
        self.service = service
        self.max_pages = max_pages
        self.stats = PageStats()
        self._pages: OrderedDict[str, CachedPage] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[CachedPage]] = {}

    async def fresh(self, key: str) -> CachedPage | None:
        """The page kept under ``key`` if nothing public changed since it was rendered: a
        route asks first, before the lookups it needs only to render."""
        state = await self.service.state()
        entry = self._pages.get(key)
        if entry is not None and entry.seq == state.seq and entry.ended_by == self.service.digests_ended_by():
            self._pages.move_to_end(key)
            self.stats.hits += 1
            return entry
        return None

    async def page(self, key: str, render: Callable[[], Awaitable[str]]) -> CachedPage:
        entry = await self.fresh(key)
        if entry is not None:
            return entry
        state = await self.service.state()
        ended_by = self.service.digests_ended_by()
        waiting = self._inflight.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[CachedPage] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            entry = CachedPage((await render()).encode(), state.seq, ended_by)
            self.stats.renders += 1
            self._pages[key] = entry
            self._pages.move_to_end(key)
            while len(self._pages) > self.max_pages:
                self._pages.popitem(last=False)
            future.set_result(entry)
            return entry
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # mark retrieved: waiters get it, nobody else must
            raise
        finally:
            del self._inflight[key]
