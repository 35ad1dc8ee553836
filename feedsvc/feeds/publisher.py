"""Feed documents: the rendered bytes of each view (feedsvc.feeds.views), cached.

A view's rendered bytes are cached and checked on every request
against the store's change sequence, one cheap query:

* sequence unchanged since the bytes were made: serve them (a hit);
* sequence moved: read the view's *stamp* (the versions of the items it shows, of their
  translations and categories). Same stamp: the write was elsewhere, keep the bytes and
  their ETag (validators are per view). Different stamp: render again.
* JSON Feed items also list their related commentaries (issue 9), which a write anywhere
  in their language can change (a new commentary sharing a tag, a retitled or retracted
  one): for JSON views those lists are part of the stamp, worked out again (one query per
  item) whenever the sequence moved, so no list is ever staler than the last write. RSS
  and Atom carry none and keep their cheap stamp.

So a feed fetched after a write is acknowledged always shows it, an unchanged feed is
never re-rendered, and a write in one category leaves every other view's ETag alone.
Concurrent misses of one view share a single render.

Archives (RFC 5005 §4): the subscription document holds the newest ``feed_limit`` items
and links ``prev-archive`` to the page of items just older than its last one, and so on
back to the first commentary. Pages are keyset-bounded, so walking them yields every
public commentary exactly once; archive pages carry ``<fh:archive/>`` and ``current``.

While the database cannot be reached (StorageBusyError), a view whose bytes are cached is
served from them as long as they were known current less than ``stale_max_age`` seconds
ago, as a StaleRendered that the handlers mark (``Cache-Status``, ``Age``): a reader gets
what it would have got a moment before, instead of a 503. Category and language feeds
know their category or language from what was last read, for the same reason.

Deletions (RFC 6721): an Atom subscription document names the commentaries that left its
window (see ``tombstones``); they are part of its stamp, worked out again whenever the
sequence moved, like JSON Feed's related lists.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

import msgspec

from feedsvc import __version__
from feedsvc.digest import digest_name
from feedsvc.digest import stamp as digest_stamp
from feedsvc.errors import StorageBusyError
from feedsvc.feeds.documents import Rendered, StaleRendered
from feedsvc.feeds.fragments import Fragments
from feedsvc.feeds.views import (
    ALL_LANGUAGES,
    FORMAT_NAMES,
    FORMATS,
    MEDIA_TYPES,
    FeedFormat,
    FeedSpec,
    canonical_params,
    is_canonical,
)
from feedsvc.model import Category, Commentary, Translation, to_us
from feedsvc.query import Query
from feedsvc.render.digestfeed import render_digest_feed
from feedsvc.render.feedview import FeedView, tag_uri
from feedsvc.service import RELATED_IN_FEEDS, Service

TOMBSTONE_DAYS = 30
"""How long an Atom feed tells of a deletion: readers that polled in that time learn of it."""
MAX_TOMBSTONES = 50

MAX_ADDRESSES = 10_000
"""Request paths remembered for ``FeedPublisher.cached``: a backstop, since only the
canonical path of a view of something the store holds is remembered."""


class FeedStats:
    """Counters for /metrics."""

    def __init__(self) -> None:
        self.hits = 0
        self.revalidated = 0
        self.renders = 0
        self.early = 0
        """Hits answered before routing (feedsvc.http.fastpath); counted in ``hits`` too."""
        self.stale = 0
        """Documents served from the cache while the database could not be reached."""


class FeedPublisher:
    """Makes and caches feed documents for views."""

    def __init__(
        self,
        service: Service,
        *,
        title: str,
        description: str,
        feed_limit: int,
        hubs: Sequence[str] = (),
        tag_authority: str | None = None,
        max_bytes: int = 64 * 1024 * 1024,
        primary_lang: str = "en",
        stale_max_age: float = 3600,
    ) -> None:
        self.service = service
        self.stale_max_age = stale_max_age
        self.title = title
        self.primary_lang = primary_lang
        self.description = description
        self.feed_limit = feed_limit
        self.hubs = tuple(hubs)
        self.tag_authority = tag_authority or (urlsplit(service.base_url).hostname or "localhost")
        self.max_bytes = max_bytes
        self.stats = FeedStats()
        # Canonical views (a site, category or language feed with no other filter, and no
        # archive cursor) are few and are what readers poll: they are never evicted. They
        # exist only for what the store holds (a category, a language with a public
        # commentary: the handlers answer 404 for others), so their number is
        # bounded by the content, which only token holders change. Anything else is keyed
        # by client-chosen query strings, so it lives in an LRU bounded in bytes, where no
        # amount of query-string variety can push out the canonical views or grow the
        # process without bound.
        self._pinned: dict[tuple[object, ...], Rendered] = {}
        self._cache: OrderedDict[tuple[object, ...], Rendered] = OrderedDict()
        self._cache_bytes = 0
        self._inflight: dict[tuple[object, ...], asyncio.Future[Rendered]] = {}
        self._categories: tuple[int, dict[str, Category]] = (-1, {})
        self._languages: tuple[int, frozenset[str]] = (-1, frozenset())
        # Items rendered once serve every document that shows them (render once, reuse).
        self.fragments = Fragments(max_bytes=max(1, max_bytes // 4))
        # Request paths (no query string) where a canonical view was served: its cache key,
        # format and route template, for answering polls before routing (feedsvc.http.fastpath).
        self._addresses: dict[str, tuple[tuple[object, ...], FeedFormat, str]] = {}

    @property
    def base_url(self) -> str:
        return self.service.base_url

    # --- views ----------------------------------------------------------------------------

    def feed_lang(self, lang: str | None) -> str | None:
        """The language a view without one in its path shows, from its ``lang`` parameter:
        none given is the primary language, ``all`` is every language (None)."""
        if lang is None:
            return self.primary_lang
        return None if lang == ALL_LANGUAGES else lang

    def site_spec(self, query: Query) -> FeedSpec:
        """``/feed``: the primary language unless ``query.lang`` names another (or ``all``)."""
        query = msgspec.structs.replace(query, lang=self.feed_lang(query.lang))
        return FeedSpec(
            path="/feed", query=query, title=self.title, subtitle=self.description, lang=query.lang,
            path_lang=self.primary_lang,
        )

    def all_spec(self, query: Query) -> FeedSpec:
        """``/all/feed``: every language, each commentary and each of its translations an item."""
        return FeedSpec(
            path=f"/{ALL_LANGUAGES}/feed", query=msgspec.structs.replace(query, lang=None),
            title=f"{self.title} (all languages)", subtitle=self.description,
        )

    def lang_spec(self, lang: str, query: Query) -> FeedSpec:
        return FeedSpec(
            path=f"/{lang}/feed", query=msgspec.structs.replace(query, lang=lang),
            title=f"{self.title} ({lang})", subtitle=self.description, lang=lang, html_path=f"/?lang={lang}",
            path_lang=lang,
        )

    def category_spec(self, category: Category, query: Query) -> FeedSpec:
        """A category's feed: the primary language unless ``query.lang`` names another (or ``all``)."""
        lang = self.feed_lang(query.lang)
        return FeedSpec(
            path=f"/categories/{category.slug}/feed",
            query=msgspec.structs.replace(query, categories=(category.slug,), lang=lang),
            title=f"{category.name(lang)} — {self.title}",
            subtitle=category.description(lang) or self.description,
            lang=lang,
            html_path="/",
            path_lang=self.primary_lang,
        )

    def feed_url(self, spec: FeedSpec, fmt: FeedFormat, cursor: str | None = None) -> str:
        """The canonical absolute URL of a view: the path, then its filters in a fixed order."""
        params = canonical_params(spec.query, spec.path, spec.path_lang)
        if spec.query.limit != self.feed_limit:
            params.append(("limit", str(spec.query.limit)))
        if cursor:
            params.append(("cursor", cursor))
        qs = "?" + urlencode(params) if params else ""
        return f"{self.base_url}{spec.path}.{fmt}{qs}"

    async def urls_affected(self, before: Commentary | None, after: Commentary | None) -> list[str]:
        """The canonical feed URLs (every format) a change can alter, for WebSub pings.

        Filtered variants (tags, search) cannot be enumerated; hubs serve the canonical ones.
        ``(None, None)`` means a broad change: every category and language feed.
        """
        primary = self.primary_lang
        paths: dict[str, str | None] = {f"/{ALL_LANGUAGES}/feed": None}
        if before is None and after is None:
            paths["/feed"] = primary
            paths |= {f"/categories/{slug}/feed": primary for slug in (await self._category_map())}
            paths |= {f"/{c.name}/feed": c.name for c in await self.service.store.get_language_counts()}
        for item in (before, after):
            if item is not None:
                paths[f"/{item.lang}/feed"] = item.lang
                if item.lang == primary:
                    paths |= {"/feed": primary, f"/categories/{item.category}/feed": primary}
        return [
            self.feed_url(
                FeedSpec(
                    path=path, query=Query(limit=self.feed_limit, lang=lang), title="", subtitle="", path_lang=lang
                ),
                fmt,
            )
            for path, lang in sorted(paths.items())
            for fmt in FORMATS
        ]

    # --- documents ------------------------------------------------------------------------

    async def document(
        self, fmt: FeedFormat, spec: FeedSpec, cursor: str | None = None, *, address: tuple[str, str] | None = None
    ) -> Rendered:
        """The rendered document for a view, from the cache when nothing it shows changed.

        ``address``: the request path (without a query string) and route template it was
        asked at; a canonical view is then also found there by ``cached``.
        """
        key = (fmt, spec.path, spec.query.fingerprint(), spec.query.limit, cursor)
        try:
            return await self._document(key, fmt, spec, cursor, address)
        except StorageBusyError as e:
            return self._stale(key, e)

    async def _document(
        self, key: tuple[object, ...], fmt: FeedFormat, spec: FeedSpec, cursor: str | None,
        address: tuple[str, str] | None,
    ) -> Rendered:
        state = await self.service.state()
        query = spec.query
        if cursor:
            query = await self.service.read_cursor(cursor, spec.query)
        entry = self._pinned.get(key) or self._cache.get(key)
        if (
            address is not None
            and cursor is None
            and len(self._addresses) < MAX_ADDRESSES
            and is_canonical(spec)
            # Only the view's own spelling: /EN/feed.rss and /En/feed.rss are served from the
            # same document, but each spelling remembered would be an entry a client chose.
            and address[0].endswith(f"{spec.path}.{fmt}")
        ):
            self._addresses[address[0]] = (key, fmt, address[1])
        if entry is not None and entry.seq == state.seq:
            if key in self._cache:
                self._cache.move_to_end(key)
            self.stats.hits += 1
            entry.checked_at = time.monotonic()
            return entry
        waiting = self._inflight.get(key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[Rendered] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._refresh(fmt, spec, query, cursor, state.seq, entry)
            future.set_result(result)
            return result
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # mark retrieved: waiters get it, nobody else must
            raise
        finally:
            del self._inflight[key]

    async def _refresh(
        self, fmt: FeedFormat, spec: FeedSpec, query: Query, cursor: str | None, seq: int, entry: Rendered | None
    ) -> Rendered:
        # One more than a page: whether an older page exists is part of what is shown.
        probe = msgspec.structs.replace(query, limit=query.limit + 1)
        stamp = await self.service.view_stamp(probe)
        key = (fmt, spec.path, spec.query.fingerprint(), spec.query.limit, cursor)
        items: list[Commentary] | None = None
        related: dict[str, list[Translation]] = {}
        shown: object = stamp.versions
        deleted: tuple[tuple[str, datetime], ...] = ()
        if fmt == "json":
            items = await self.service.store.get_commentaries(probe)
            related = await self.service.related_links(items[: query.limit], RELATED_IN_FEEDS)
            shown = (stamp.versions, related)
        elif fmt == "atom" and cursor is None:
            # Tombstones are part of what is shown: two nodes (or one, before and after a
            # restart) whose cached bytes saw different histories must agree on them.
            items = await self.service.store.get_commentaries(probe)
            deleted = await self.tombstones(query, items[: query.limit], len(items) > query.limit)
            shown = (stamp.versions, deleted)
        if entry is not None and entry.stamp == shown:
            entry.seq = seq
            entry.checked_at = time.monotonic()
            self.stats.revalidated += 1
            return entry
        if items is None:
            items = await self.service.store.get_commentaries(probe)
        older = len(items) > query.limit
        items = items[: query.limit]
        presented = await self.service.present(items)
        view = await self._view(fmt, spec, cursor, presented, older, seq)
        if deleted:
            view = msgspec.structs.replace(view, deleted=deleted)
        body = self.fragments.render(fmt, view, presented, related)
        self.stats.renders += 1
        rendered = Rendered(body, _newest(presented), seq, shown)
        canonical = cursor is None and spec.query.limit == self.feed_limit and is_canonical(spec)
        self._keep(key, rendered, canonical=canonical)
        return rendered

    async def tombstones(
        self, query: Query, items: Sequence[Commentary], older: bool
    ) -> tuple[tuple[str, datetime], ...]:
        """The commentaries that left this view's window in the last ``TOMBSTONE_DAYS``, as
        ``(guid, when)``, newest first. The window: everything the view holds when this
        document shows all of it, else its items' time span (a commentary older than the
        oldest shown had left the document before it went). Views by category and
        language only: other filters (tag, author, trend, dates, full text) are not
        replayed on the deleted commentaries, so those feeds name none."""
        if query.tag or query.author or query.trend or query.q or query.updated_since or query.after:
            return ()
        if query.from_date or query.to_date or query.from_time or query.to_time:
            return ()
        since = self.service.clock() - timedelta(days=TOMBSTONE_DAYS)
        oldest = min((c.published_at for c in items), default=None) if older else None
        found = []
        for gone in await self.service.store.get_deletions(max(since, oldest) if oldest else since, MAX_TOMBSTONES):
            c = gone.last
            if c is None or (oldest is not None and c.published_at < oldest):
                continue
            if (query.lang and c.lang.lower() != query.lang.lower()) or (
                query.categories and c.category not in query.categories
            ):
                continue
            found.append((tag_uri(self.tag_authority, c), gone.at))
        return tuple(found)

    def cached(self, path: str) -> tuple[Rendered, FeedFormat, str] | None:
        """The document of the canonical view last served at ``path``, its format and route
        template, if it is current: the store knows without a query that nothing changed
        since it was made (``Store.known_state``: feedsvc.store.sqlite.watch, feedsvc.store.postgres.watch),
        and no scheduled commentary is due."""
        found = self._addresses.get(path)
        if found is None:
            return None
        key, fmt, template = found
        entry = self._pinned.get(key)
        if entry is None:
            return None
        state = self.service.store.known_state()
        if (
            state is None
            or entry.seq != state.seq
            or (state.next_due is not None and state.next_due <= self.service.clock())
        ):
            return None
        entry.checked_at = time.monotonic()
        return entry, fmt, template

    def _stale(self, key: tuple[object, ...], error: StorageBusyError) -> Rendered:
        """The cached document of ``key`` to serve while the database is away, if it was
        known current recently enough; else ``error`` goes on (a 503)."""
        entry = self._pinned.get(key) or self._cache.get(key)
        if entry is None or time.monotonic() - entry.checked_at > self.stale_max_age:
            raise error
        self.stats.stale += 1
        return StaleRendered(entry)

    async def category(self, slug: str) -> Category:
        """The category a feed path names; while the database is away, as last read."""
        try:
            return await self.service.get_category(slug)
        except StorageBusyError:
            known = self._categories[1].get(slug)
            if known is None:
                raise
            return known

    def _forget(self, key: tuple[object, ...]) -> None:
        """Drop ``key`` from the LRU, if it is there."""
        old = self._cache.pop(key, None)
        if old is not None:
            self._cache_bytes -= old.weight

    def _keep(self, key: tuple[object, ...], rendered: Rendered, *, canonical: bool) -> None:
        if canonical:
            self._pinned[key] = rendered
            return
        self._forget(key)
        self._cache[key] = rendered
        self._cache_bytes += rendered.weight
        while self._cache_bytes > self.max_bytes and len(self._cache) > 1:
            _, evicted = self._cache.popitem(last=False)
            self._cache_bytes -= evicted.weight

    async def _view(
        self, fmt: FeedFormat, spec: FeedSpec, cursor: str | None, items: list[Commentary], older: bool, seq: int
    ) -> FeedView:
        base = self.base_url
        prev_archive = None
        if older and items:
            last = items[-1]
            next_cursor = await self.service.make_cursor(spec.query, (to_us(last.published_at), last.id))
            prev_archive = self.feed_url(spec, fmt, next_cursor)
        alternates = tuple(
            (self.feed_url(spec, other), MEDIA_TYPES[other].split(";")[0], f"{spec.title} ({FORMAT_NAMES[other]})")
            for other in FORMATS
            if other != fmt
        )
        return FeedView(
            id=self.feed_url(spec, "atom").replace(".atom", ""),
            title=spec.title,
            subtitle=spec.subtitle,
            self_url=self.feed_url(spec, fmt, cursor),
            html_url=base + spec.html_path,
            lang=spec.lang,
            updated=None,
            tag_authority=self.tag_authority,
            base_url=base,
            icon=f"{base}/icon.svg",
            logo=None,
            generator="feedsvc",
            generator_version=__version__,
            hubs=self.hubs,
            first=self.feed_url(spec, fmt),
            prev_archive=prev_archive,
            current=self.feed_url(spec, fmt) if cursor else None,
            is_archive=cursor is not None,
            alternates=alternates,
            categories=await self._category_map(seq),
            xsl_url=f"{base}/feed.xsl" if fmt != "json" else None,
        )

    async def has_language(self, lang: str) -> bool:
        """Whether the store holds a public commentary in ``lang`` (normalised). Known
        without a query while the change sequence stands still; language feeds of other
        tags are 404s, never rendered nor cached."""
        cached_seq, languages = self._languages
        try:
            seq = (await self.service.state()).seq
            if cached_seq != seq:
                languages = frozenset(c.name for c in await self.service.store.get_language_counts())
                self._languages = (seq, languages)
        except StorageBusyError:
            if lang not in languages:  # never seen (or nothing read yet): the 503 stands
                raise
        return lang in languages

    async def languages(self) -> frozenset[str]:
        """The languages of public commentaries, reloaded when the change sequence moved."""
        seq = (await self.service.state()).seq
        cached_seq, languages = self._languages
        if cached_seq != seq:
            languages = frozenset(c.name for c in await self.service.store.get_language_counts())
            self._languages = (seq, languages)
        return languages

    async def categories(self) -> dict[str, Category]:
        """Categories by slug, reloaded when the change sequence moved (as feeds use them)."""
        return await self._category_map((await self.service.state()).seq)

    async def _category_map(self, seq: int | None = None) -> dict[str, Category]:
        """Categories by slug, reloaded when the change sequence moved. ``seq`` is the one the
        caller already read; without it the store is asked."""
        if seq is None:
            seq = (await self.service.store.get_state()).seq
        cached_seq, categories = self._categories
        if cached_seq != seq:
            categories = {c.slug: c for c in await self.service.store.get_categories()}
            self._categories = (seq, categories)
        return categories

    # --- weekly digests (issue 9) ---------------------------------------------------------
    # One item per digest (feedsvc.render.digestfeed), newest period first; no archives.
    # Cached like the commentary feeds: a hit while the change sequence stands still and no
    # digest came due (Service.digests_ended_by), else the digests are read and the bytes
    # kept when they are the same (a write elsewhere, a day on which no period ended).

    def digest_spec(self, lang: str | None) -> FeedSpec:
        """The digest feed of the primary language (``/digest``, ``lang`` None), of one
        language (``/{lang}/digest``) or of every language (``/all/digest``, ``lang="all"``)."""
        if lang == ALL_LANGUAGES:
            return FeedSpec(
                path=f"/{ALL_LANGUAGES}/digest", query=Query(limit=self.feed_limit),
                title=f"{self.title} — {digest_name(None)} (all languages)", subtitle=self.description,
            )
        shown = lang or self.primary_lang
        query = Query(limit=self.feed_limit, lang=shown)
        if lang is None:
            return FeedSpec(
                path="/digest", query=query, title=f"{self.title} — {digest_name(shown)}",
                subtitle=self.description, lang=shown, path_lang=shown,
            )
        return FeedSpec(
            path=f"/{lang}/digest", query=query, title=f"{self.title} — {digest_name(lang)} ({lang})",
            subtitle=self.description, lang=lang, html_path=f"/?lang={lang}", path_lang=lang,
        )

    async def digest_urls_affected(self, before: Commentary | None, after: Commentary | None) -> list[str]:
        """The digest feed URLs (every format) a change can alter, for WebSub pings;
        ``(None, None)`` means a broad change (or digests published by the clock): every
        language's."""
        if before is None and after is None:
            langs = {c.name for c in await self.service.store.get_language_counts()}
        else:
            langs = {c.lang for c in (before, after) if c is not None and c.period is not None}
            if not langs:
                return []  # commentaries without a period are in no digest
        specs = [
            self.digest_spec(ALL_LANGUAGES),
            *([self.digest_spec(None)] if self.primary_lang in langs else []),
            *(self.digest_spec(lang) for lang in sorted(langs)),
        ]
        return [self.feed_url(spec, fmt) for spec in specs for fmt in FORMATS]

    async def digest_document(self, fmt: FeedFormat, lang: str | None) -> Rendered:
        """The rendered digest feed (``lang`` as ``digest_spec`` takes it), from the cache
        when no digest it shows changed."""
        spec = self.digest_spec(lang)
        key = ("digest", fmt, spec.path)
        try:
            return await self._digest_document(key, fmt, spec)
        except StorageBusyError as e:
            return self._stale(key, e)

    async def _digest_document(self, key: tuple[object, ...], fmt: FeedFormat, spec: FeedSpec) -> Rendered:
        state = await self.service.state()
        ended_by = self.service.digests_ended_by()
        entry = self._pinned.get(key) or self._cache.get(key)
        if entry is not None and entry.seq == state.seq and _digest_cutoff(entry) == ended_by:
            self.stats.hits += 1
            entry.checked_at = time.monotonic()
            return entry
        digests = (await self.service.list_digests(lang=spec.lang, limit=self.feed_limit)).items
        stamp = (ended_by, digest_stamp(digests))
        if entry is not None and entry.stamp == stamp:
            entry.seq = state.seq
            entry.checked_at = time.monotonic()
            self.stats.revalidated += 1
            return entry
        view = await self._view(fmt, spec, None, [], False, state.seq)
        body = render_digest_feed(fmt, view, digests, publication=self.title)
        self.stats.renders += 1
        rendered = Rendered(body, max((d.updated_at for d in digests), default=None), state.seq, stamp)
        # Pinned only when it has digests: any language tag is a valid address, and an
        # empty feed for each made-up one must not stay in memory for good. Nor is it kept
        # in the LRU when nothing at all is published in that language (20,000 made-up
        # tags took 36 MiB there); rendering it again costs about a millisecond.
        if not digests:
            self._pinned.pop(key, None)
            if spec.lang is not None and not await self.has_language(spec.lang):
                self._forget(key)
                return rendered
        self._keep(key, rendered, canonical=bool(digests))
        return rendered


def _digest_cutoff(entry: Rendered) -> object:
    """The ``Service.digests_ended_by`` a cached digest feed was made at."""
    return entry.stamp[0] if isinstance(entry.stamp, tuple) else None


def _newest(items: list[Commentary]) -> datetime | None:
    return max((c.updated_at for c in items), default=None)


