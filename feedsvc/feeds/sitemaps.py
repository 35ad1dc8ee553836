"""The sitemaps search engines read: an index, the commentary pages in parts of at most
50,000 URLs, the digest pages, and a news sitemap of the last two days.

The whole set is built at once, walking the store in keyset-paged batches, and kept as bytes
until the change log moves (the same test the feed cache makes): crawlers fetch the index
and then every part, so building them together is one walk instead of one per part.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import msgspec

from feedsvc.model import to_us
from feedsvc.query import Query
from feedsvc.render.sitemap import MAX_URLS, NewsUrl, SitemapUrl, news_urlset, sitemap_index, urlset
from feedsvc.service import Service

BATCH = 1000
"""Commentaries read from the store per query while walking it."""
NEWS_DAYS = 2
"""Google News reads only articles published in the last two days."""
NEWS_MAX = 1000
"""Google's limit of URLs in one news sitemap."""


class SitemapSet(msgspec.Struct, frozen=True):
    """Every sitemap document at one change number, by name (``index``, ``news``,
    ``digests``, ``commentaries-1``, ``commentaries-2``, ...)."""

    seq: int
    built_at: datetime
    documents: dict[str, bytes]


class Sitemaps:
    def __init__(self, service: Service, *, publication: str, max_urls: int = MAX_URLS, batch: int = BATCH) -> None:
        self.service = service
        self.publication = publication
        self.max_urls = max_urls
        self.batch = batch
        self._current: SitemapSet | None = None
        self._lock = asyncio.Lock()

    def url(self, name: str) -> str:
        if name == "index":
            return f"{self.service.base_url}/sitemap.xml"
        return f"{self.service.base_url}/sitemaps/{name}.xml"

    async def document(self, name: str) -> bytes | None:
        """The sitemap called ``name`` as it is now, or None when there is no such part."""
        return (await self.current()).documents.get(name)

    async def current(self) -> SitemapSet:
        state = await self.service.state()
        now = self.service.clock()
        if self._fresh(state.seq, now):
            assert self._current is not None
            return self._current
        async with self._lock:
            # Another request may have built it while this one waited.
            state = await self.service.state()
            if not self._fresh(state.seq, now):
                self._current = await self._build(state.seq, now)
            assert self._current is not None
            return self._current

    def _fresh(self, seq: int, now: datetime) -> bool:
        # The news sitemap is a window on the clock as well as on the store: it is rebuilt
        # at least hourly so that items leave it on time even when nothing is written.
        c = self._current
        return c is not None and c.seq == seq and now - c.built_at < timedelta(hours=1)

    async def _build(self, seq: int, now: datetime) -> SitemapSet:
        documents: dict[str, bytes] = {}
        parts: list[SitemapUrl] = []
        chunk: list[SitemapUrl] = []
        newest: datetime | None = None

        def close_part() -> None:
            name = f"commentaries-{len(parts) + 1}"
            documents[name] = urlset(chunk).encode()
            parts.append(SitemapUrl(self.url(name), max((u.lastmod for u in chunk if u.lastmod), default=None)))
            chunk.clear()

        query = Query(limit=self.batch)
        while True:
            items = await self.service.store.get_commentaries(query)
            for c in items:
                # A commentary whose canonical home is elsewhere is that site's to list.
                if c.canonical_url:
                    continue
                chunk.append(SitemapUrl(self.service.page_url(c), c.updated_at))
                if len(chunk) == self.max_urls:
                    close_part()
            if len(items) < self.batch:
                break
            last = items[-1]
            query = msgspec.structs.replace(query, after=(to_us(last.published_at), last.id))
        if chunk or not parts:
            close_part()

        digests: list[SitemapUrl] = []
        cursor: str | None = None
        while len(digests) < self.max_urls:
            page = await self.service.list_digests(limit=min(self.batch, self.max_urls - len(digests)), cursor=cursor)
            digests += [SitemapUrl(d.url, d.updated_at) for d in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        documents["digests"] = urlset(digests).encode()
        newest = max((d.lastmod for d in digests if d.lastmod), default=None)
        parts.append(SitemapUrl(self.url("digests"), newest))

        recent = await self.service.store.get_commentaries(
            Query(limit=NEWS_MAX, from_time=now - timedelta(days=NEWS_DAYS))
        )
        news = [
            NewsUrl(self.service.page_url(c), c.title, c.lang, c.published_at)
            for c in recent
            if not c.canonical_url
        ]
        documents["news"] = news_urlset(news, publication=self.publication).encode()
        parts.append(SitemapUrl(self.url("news"), max((u.published_at for u in news), default=None)))

        # The schema wants at least one <url> in a sitemap: an empty part stays out of the
        # index (it still answers, empty, so that robots.txt never names a 404).
        listed = [p for p in parts if p.lastmod is not None]
        documents["index"] = sitemap_index(listed).encode()
        return SitemapSet(seq=seq, built_at=now, documents=documents)
