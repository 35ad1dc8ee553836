"""List-API pages kept as the bytes they were sent as, while nothing changed.

Most list-API requests are mirrors and widgets asking for the same few pages (page 1, a
category, a language) again and again. Building one costs about 2 ms of CPU (the query,
decoding 20 commentaries, presenting and encoding 100 KB of JSON), some twenty times what the
framework costs for the same bytes. A page is a function of its filters, its cursor and
the store's state: the same change number (``StoreState.seq``) after due commentaries were
published (``Service.state``) gives the same bytes, so a page made at that number is sent
again until the number moves, on this node or on another (``Store.known_state`` follows
other nodes' commits, feedsvc.store.sqlite.watch and feedsvc.store.postgres.watch).

Bounded: at most ``max_bytes`` of bodies, least recently used first out.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from feedsvc.query import Query

MAX_BYTES = 16 * 1024 * 1024
"""Bodies kept, in bytes (about 150 pages of 20 commentaries with their full text)."""


class CachedPage(NamedTuple):
    seq: int
    """The store's change number the page was made at."""
    body: bytes
    etag: str
    next_cursor: str | None


class ApiPages:
    """Encoded list-API pages by (filters, cursor), each valid at the change number it was made at."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._pages: OrderedDict[tuple[Query, str | None], CachedPage] = OrderedDict()
        self._bytes = 0

    def get(self, query: Query, cursor: str | None, seq: int) -> CachedPage | None:
        """The page for ``query`` and ``cursor`` if it was made at change ``seq``."""
        key = (query, cursor)
        page = self._pages.get(key)
        if page is None:
            return None
        if page.seq != seq:
            self._drop(key)
            return None
        self._pages.move_to_end(key)
        return page

    def put(self, query: Query, cursor: str | None, page: CachedPage) -> None:
        key = (query, cursor)
        self._drop(key)
        if len(page.body) > self.max_bytes:
            return
        self._pages[key] = page
        self._bytes += len(page.body)
        while self._bytes > self.max_bytes:
            _, evicted = self._pages.popitem(last=False)
            self._bytes -= len(evicted.body)

    def _drop(self, key: tuple[Query, str | None]) -> None:
        old = self._pages.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
