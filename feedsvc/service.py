"""Use cases: publish, revise, retract, read, list, mirror; tokens.

The service receives a Store and never builds one. It composes the pure rules that build a
commentary (feedsvc.commentary) and the signed cursors (feedsvc.cursors) with the store,
and owns what needs both: visibility of drafts and scheduled items, If-Match, idempotent
writes, links derived at read time and token checks.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
from ulid import ULID

from feedsvc import cursors
from feedsvc.bodies import BodyRenderer
from feedsvc.commentary import ImportedCommentary, build_commentary, build_imported, looks_like_ulid
from feedsvc.digest import Digest, DigestPage, Schedule, build_digest
from feedsvc.errors import (
    InvalidInputError,
    NotFoundError,
    PreconditionRequiredError,
)
from feedsvc.model import (
    Category,
    CategoryIn,
    ChangePage,
    Commentary,
    CommentaryPatch,
    Count,
    Image,
    NewCommentary,
    Page,
    RelatedCommentary,
    Translation,
    is_slug,
    normalize_lang,
    to_us,
)
from feedsvc.paths import commentary_path, digest_path
from feedsvc.problems import Problem, one_of, summary
from feedsvc.query import Query
from feedsvc.store import DigestRecord, IdempotencyKey, Store, StoreState, ViewStamp
from feedsvc.text import absolute_url, absolutize_urls, clean_line, strip_bidi_controls, strip_invalid_xml
from feedsvc.tokens import TokenUseCases

Clock = Callable[[], datetime]
Listener = Callable[["Commentary | None", "Commentary | None"], Awaitable[None]]
"""Told (before, after) of each write; (None, None) when the change is broad (a category,
scheduled items turning public). Runs after the write is stored; its errors are logged
and never reach the writer."""
log = logging.getLogger("feedsvc.service")

SEEN_CHANGE: ContextVar[int] = ContextVar("feedsvc_seen_change", default=0)
"""The change number the current request must see (``Feedsvc-Min-Change``, set by the HTTP
edge): a write acknowledged by another node, whose notification this node may not have
received yet. ``Service.state`` then reads the state instead of trusting what it knows."""
IDEMPOTENCY_TTL = timedelta(hours=24)
"""How long an Idempotency-Key is remembered (issue 7)."""
MAX_DIGEST_LANGUAGES = 100
"""Languages one period's digests are looked up in at most."""
RELATED_LIMIT = 5
"""Related commentaries the API gives by default, and the commentary's page lists."""
RELATED_MAX = 20
"""The most related commentaries one request may ask for."""
RELATED_IN_FEEDS = 3
"""Related commentaries each JSON Feed item lists in ``_commentary.related``."""
_encode_new = msgspec.json.Encoder().encode


def utcnow() -> datetime:
    return datetime.now(UTC)


class Service(TokenUseCases):
    """Every operation the HTTP API and the command line offer, on one Store."""

    def __init__(
        self,
        store: Store,
        *,
        base_url: str,
        require_if_match: bool = True,
        clock: Clock = utcnow,
        bodies: BodyRenderer | None = None,
        digest_schedule: Schedule | None = None,
    ) -> None:
        self.store = store
        #: Where bodies are sanitised and rendered (threads only unless the app gives a pool).
        self.bodies = bodies or BodyRenderer()
        self.base_url = base_url.rstrip("/")
        self.require_if_match = require_if_match
        self.clock = clock
        self.listeners: list[Listener] = []
        # The category slugs as of a change number: categories are never deleted, so a slug
        # seen once stays known, and only a slug not seen yet makes it read them again (at
        # most once per change), however often unknown slugs are asked for.
        self._category_slugs: tuple[int, frozenset[str]] = (-1, frozenset())
        #: When weekly digests are published (feedsvc.digest.Schedule).
        self.digest_schedule = digest_schedule or Schedule()
        #: Told when digests may have been published by the clock alone (no write): the
        #: digest feeds' hubs are pinged then.
        self.digest_listeners: list[Callable[[], Awaitable[None]]] = []
        self._digests_ended_by: date | None = None

    async def notify_changed(self, before: Commentary | None, after: Commentary | None) -> None:
        """Tell the listeners about a change stored outside the methods here (bulk import)."""
        for listener in self.listeners:
            try:
                await listener(before, after)
            except Exception:
                log.exception("change listener failed")

    # --- reading --------------------------------------------------------------------------

    async def state(self) -> StoreState:
        """The store's state after making due scheduled commentaries public."""
        # Known without a query while no commit happened anywhere since it was last read,
        # unless the request saw a later change on another node (a write's Feedsvc-Change).
        known = self.store.known_state()
        state = known if known is not None and known.seq >= SEEN_CHANGE.get() else await self.store.get_state()
        if state.next_due is not None and state.next_due <= self.clock():
            if await self.store.publish_due(self.clock()):
                await self.notify_changed(None, None)
            state = await self.store.get_state()
        await self._watch_digest_schedule()
        return state

    def digests_ended_by(self) -> date:
        """The last period end whose weekly digest is public now (feedsvc.digest.Schedule):
        it moves once a day, with no write, so caches of digests key on it."""
        return self.digest_schedule.ended_by(self.clock())

    async def _watch_digest_schedule(self) -> None:
        ended_by = self.digests_ended_by()
        previous, self._digests_ended_by = self._digests_ended_by, ended_by
        if previous is not None and previous != ended_by:
            for listener in self.digest_listeners:
                try:
                    await listener()
                except Exception:
                    log.exception("digest listener failed")

    async def get_commentary(self, id: str, *, lang: str | None = None, include_hidden: bool = False) -> Commentary:
        """One commentary by id (``lang`` is then ignored), or by slug when ``lang`` is given.

        A slug that exists only in other languages raises NotFoundError naming them.
        """
        await self.state()
        public_only = not include_hidden
        # Slugs are lower case, ids upper case: an id is never a slug, with ?lang= or without.
        if looks_like_ulid(id):
            item = await self.store.get_commentary(id, public_only=public_only)
        else:
            if lang is None:
                raise NotFoundError(f"no commentary with id {id}; to look up a slug, add ?lang=")
            lang = normalize_lang(lang)
            try:
                item = await self.store.get_commentary_by_slug(lang, id, public_only=public_only)
            except NotFoundError:
                versions = await self._versions_of_slug(id)
                if versions:
                    raise NotFoundError(
                        f"commentary {id!r} has no {lang} version at this address",
                        available_languages=sorted(versions), translations=list(versions.values()),
                    ) from None
                raise
        return (await self.present([item]))[0]

    async def _versions_of_slug(self, slug: str) -> dict[str, dict[str, str]]:
        """Every public version, by language, of the commentaries with this slug: those with
        the slug and their translations, which often have slugs of their own (issue 9)."""
        items = [
            await self.store.get_commentary_by_slug(lang, slug, public_only=True)
            for lang in await self.store.get_slug_languages(slug)
        ]
        versions: dict[str, dict[str, str]] = {}
        for c in await self.present(items):
            versions.setdefault(c.lang, {"lang": c.lang, "id": c.id, "url": c.url})
            for t in c.translations:
                versions.setdefault(t.lang, {"lang": t.lang, "id": t.id, "url": t.url})
        return dict(sorted(versions.items()))

    async def list_commentaries(self, query: Query, cursor: str | None = None) -> Page:
        """A page of public commentaries, newest first, with the cursor of the next page."""
        await self.state()
        if cursor:
            query = await self.read_cursor(cursor, query)
        items = await self.store.get_commentaries(msgspec.structs.replace(query, limit=query.limit + 1))
        next_cursor = None
        if len(items) > query.limit:
            items = items[: query.limit]
            last = items[-1]
            next_cursor = await self.make_cursor(query, (to_us(last.published_at), last.id))
        return Page(items=await self.present(items), next_cursor=next_cursor)

    async def view_stamp(self, query: Query) -> ViewStamp:
        return await self.store.get_view_stamp(query)

    async def get_translations(self, id: str) -> list[Commentary]:
        item = await self.get_commentary(id)
        if not item.translation_key:
            return []
        ids = [t.id for t in item.translations if t.id != item.id]
        return [await self.get_commentary(i) for i in ids]

    async def get_related(self, id: str, limit: int = RELATED_LIMIT) -> list[RelatedCommentary]:
        """The public commentaries most related to the public commentary ``id``, best first,
        at most ``limit`` (feedsvc.store.related says how they are found and scored).
        NotFoundError when ``id`` is unknown or not public."""
        await self.state()
        item = await self.store.get_commentary(id, public_only=True)
        return [
            RelatedCommentary(
                id=c.id, lang=c.lang, slug=c.slug, title=c.title, summary=c.summary,
                url=self.link_of(c), category=c.category, tags=c.tags,
                published_at=c.published_at, image=self._absolute_image(c.image), score=score,
            )
            for c, score in (await self.store.get_related([item], limit))[0]
        ]

    async def related_links(self, items: Sequence[Commentary], limit: int) -> dict[str, list[Translation]]:
        """The ``limit`` most related to each of ``items`` (public commentaries), as links by
        commentary id, for feeds (the store answers for all of them at once)."""
        found = await self.store.get_related(items, limit)
        return {
            item.id: [
                Translation(
                    lang=c.lang, id=c.id, slug=c.slug, title=c.title, url=self.link_of(c)
                )
                for c, _ in best
            ]
            for item, best in zip(items, found, strict=True)
        }

    async def get_changes(self, since: str | None, limit: int) -> ChangePage:
        """Public changes after the cursor ``since`` (from the start when absent)."""
        await self.state()
        start = cursors.read_change_cursor(await self.store.get_secret(), since) if since else 0
        items, resume = await self.store.get_changes(start, limit)
        for change in items:
            if change.commentary is not None:
                change.commentary = (await self.present([change.commentary], translations=False))[0]
        return ChangePage(items=items, next_cursor=cursors.change_cursor(await self.store.get_secret(), resume))

    async def get_categories(self) -> list[Category]:
        await self.state()
        return await self.store.get_categories()

    async def category_problems(self, slugs: Sequence[str], *, source: str = "query") -> list[Problem]:
        """A problem for each of ``slugs`` that names no category, listing the slugs there
        are (empty when all exist)."""
        seq, known = self._category_slugs
        if all(s in known for s in slugs):
            return []
        state = await self.state()
        if state.seq != seq:
            known = frozenset(c.slug for c in await self.store.get_categories())
            self._category_slugs = (state.seq, known)
        return [one_of("category", s, sorted(known), source) for s in slugs if s not in known]

    async def check_categories(self, slugs: Sequence[str]) -> None:
        """InvalidInputError naming every one of ``slugs`` that is no category (a filter
        on one matches nothing, which would otherwise look like an empty category)."""
        problems = await self.category_problems(slugs)
        if problems:
            raise InvalidInputError(summary(problems, "the query"), problems=problems)

    @asynccontextmanager
    async def _known_category(self, slug: str) -> AsyncIterator[None]:
        """Turn the store's "unknown category" into a problem listing the categories there are."""
        try:
            yield
        except InvalidInputError as e:
            problems = await self.category_problems([slug], source="body") if e.extra.get("field") == "category" else []
            if not problems:
                raise
            raise InvalidInputError(summary(problems), problems=problems) from None

    async def get_category(self, slug: str) -> Category:
        if not is_slug(slug):
            # No category has such a slug; and PostgreSQL refuses some strings (NUL) outright.
            raise NotFoundError(f"no category {slug!r}")
        await self.state()  # its count must include scheduled commentaries that became due
        return await self.store.get_category(slug)

    async def get_tags(self) -> list[Count]:
        await self.state()
        return await self.store.get_tag_counts()

    async def get_authors(self) -> list[Count]:
        await self.state()
        return await self.store.get_author_counts()

    async def get_languages(self) -> list[Count]:
        await self.state()
        return await self.store.get_language_counts()

    # --- weekly digests (issue 9; see feedsvc.digest) -------------------------------------

    async def list_digests(self, *, lang: str | None = None, limit: int = 20, cursor: str | None = None) -> DigestPage:
        """A page of weekly digests, newest period first (ties by language), with the cursor
        of the next page; ``lang`` (normalised) keeps one language."""
        await self.state()
        after = cursors.read_digest_cursor(await self.store.get_secret(), cursor, lang) if cursor else None
        records = await self.store.get_digests(
            lang=lang, limit=limit + 1, after=after, ended_by=self.digests_ended_by()
        )
        next_cursor = None
        if len(records) > limit:
            records = records[:limit]
            last = records[-1]
            next_cursor = cursors.digest_cursor(await self.store.get_secret(), lang, last.start, last.lang)
        return DigestPage(items=[self.digest_of(r) for r in records], next_cursor=next_cursor)

    async def get_digest(self, start: date, *, lang: str | None = None) -> Digest:
        """The digest of the period starting on ``start`` in ``lang``.

        Without ``lang`` the only language there is; InvalidInputError naming ``lang`` (and
        the languages) when there are several. NotFoundError when there is none, naming the
        languages that have one when only ``lang`` is missing.
        """
        versions = await self.get_digests_of(start)
        langs = [d.lang for d in versions]
        found = [d for d in versions if d.lang == lang] if lang is not None else versions
        if len(found) == 1:
            return found[0]
        if not found:
            if langs:
                raise NotFoundError(f"the digest of {start} has no {lang} version", available_languages=langs)
            raise NotFoundError(
                f"no published digest for a period starting on {start}: a digest is published once its period"
                " is over"
            )
        raise InvalidInputError(
            f"the digest of {start} exists in {', '.join(langs)}: choose one with `lang`",
            field="lang", available_languages=langs,
        )

    async def get_digests_of(self, start: date) -> list[Digest]:
        """The digests of the period starting on ``start``, one per language, by language."""
        await self.state()
        records = await self.store.get_digests(
            lang=None, limit=MAX_DIGEST_LANGUAGES, start=start, ended_by=self.digests_ended_by()
        )
        return [self.digest_of(r) for r in records]

    async def digest_neighbours(self, digest: Digest) -> tuple[Digest | None, Digest | None]:
        """The public digests of the week before ``digest`` and of the week after, in its
        language: where a digest page's "previous" and "next" lead."""
        ended_by = self.digests_ended_by()
        older = await self.store.get_digests(
            lang=digest.lang, limit=1, after=(digest.period.start, digest.lang), ended_by=ended_by
        )
        newer: list[DigestRecord] = []
        start = await self.store.get_next_period_start(digest.lang, digest.period.start)
        if start is not None:
            newer = await self.store.get_digests(lang=digest.lang, limit=1, start=start, ended_by=ended_by)
        return (
            self.digest_of(older[0]) if older else None,
            self.digest_of(newer[0]) if newer else None,
        )

    def digest_of(self, record: DigestRecord) -> Digest:
        """A stored digest as the API shows it, with its links."""
        return build_digest(
            record.start, record.lang, record.commentaries, left_at=record.left_at,
            url=self.digest_url(record.start, record.lang),
            url_of=self.link_of, schedule=self.digest_schedule,
        )

    def digest_url(self, start: date, lang: str) -> str:
        """The readable page feedsvc serves for a digest."""
        return self.base_url + digest_path(start, lang)

    async def present(self, items: list[Commentary], *, translations: bool = True) -> list[Commentary]:
        """Fill in what is derived at read time: ``url``, translations, absolute links."""
        keys = sorted({c.translation_key for c in items if c.translation_key}) if translations else []
        groups = await self.store.get_translations(keys)
        out = []
        for c in items:
            links = [
                Translation(lang=t.lang, id=t.id, slug=t.slug, title=t.title, url=self.link_of(t))
                for t in groups.get(c.translation_key or "", [])
                if t.id != c.id
            ]
            out.append(
                msgspec.structs.replace(
                    c,
                    url=self.link_of(c),
                    translations=links,
                    body_html=absolutize_urls(c.body_html, self.page_url(c)),
                    image=self._absolute_image(c.image),
                )
            )
        return out

    def _absolute_image(self, image: Image | None) -> Image | None:
        if image is None:
            return None
        return msgspec.structs.replace(image, url=absolute_url(image.url, self.base_url))

    def page_url(self, c: Commentary) -> str:
        """The readable page feedsvc serves for a commentary (feedsvc.paths)."""
        return self.base_url + commentary_path(c.lang, c.published_at, c.slug)

    def link_of(self, c: Commentary) -> str:
        """Where a commentary is read: its ``canonical_url`` when it has one, else its page."""
        return c.canonical_url or self.page_url(c)

    # --- writing --------------------------------------------------------------------------

    async def publish(self, new: NewCommentary) -> Commentary:
        """Store a new commentary. Its slug is derived (and made unique) when not given."""
        now = self.clock()
        item = await self._build_off_loop(
            new, id=str(ULID.from_datetime(now)), created_at=now, updated_at=now, previous=None
        )
        async with self._known_category(item.category):
            stored = await self.store.add_commentary(item, unique_slug=new.slug is None, now=now)
        await self.notify_changed(None, stored)
        return (await self.present([stored]))[0]

    async def publish_once(self, new: NewCommentary, *, owner: str, key: str) -> tuple[Commentary, bool]:
        """``publish`` at most once per (``owner``, ``key``) within IDEMPOTENCY_TTL.

        Returns the commentary and whether it was stored now. A retry with the same key and
        the same body stores nothing and returns the commentary as the first request stored
        it; the same key with another body raises ConflictError naming ``Idempotency-Key``.
        """
        now = self.clock()
        item = await self._build_off_loop(
            new, id=str(ULID.from_datetime(now)), created_at=now, updated_at=now, previous=None
        )
        record = IdempotencyKey(owner=owner, key=key, fingerprint=hashlib.sha256(_encode_new(new)).hexdigest())
        async with self._known_category(item.category):
            stored, created = await self.store.add_commentary_once(
                item, unique_slug=new.slug is None, now=now, key=record, not_before=now - IDEMPOTENCY_TTL
            )
        if created:
            await self.notify_changed(None, stored)
        return (await self.present([stored]))[0], created

    def prepare_import(self, rec: ImportedCommentary, *, now: datetime | None = None) -> tuple[Commentary, bool]:
        """Build the commentary ``import_commentary`` would store, without storing it.

        Returns it and whether its slug may be suffixed to be unique (it was derived from
        the title); ``now`` defaults to the service's clock. Never touches the store (import
        workers call feedsvc.commentary.build_imported directly). Raises InvalidInputError
        as ``import_commentary`` does.
        """
        return build_imported(rec, now=now or self.clock())

    async def import_commentary(self, rec: ImportedCommentary) -> Commentary:
        """Store an imported commentary, keeping its id and timestamps when it has them."""
        now = self.clock()
        item, unique_slug = self.prepare_import(rec, now=now)
        async with self._known_category(item.category):
            stored = await self.store.add_commentary(item, unique_slug=unique_slug, now=now)
        await self.notify_changed(None, stored)
        return stored

    async def replace(self, id: str, new: NewCommentary, *, if_match: str | None) -> Commentary:
        """PUT: replace every field. An omitted slug keeps the current one (links stay valid)."""
        expected = self._expected_version(if_match)
        current = await self.store.get_commentary(id, public_only=False)
        now = self.clock()
        item = await self._build_off_loop(new, id=id, created_at=current.created_at, updated_at=now, previous=current)
        async with self._known_category(item.category):
            stored = await self.store.update_commentary(
                item, expected_version=expected, unique_slug=False, now=now
            )
        await self.notify_changed(current, stored)
        return (await self.present([stored]))[0]

    async def patch(self, id: str, patch: CommentaryPatch, *, if_match: str | None) -> Commentary:
        """PATCH: a JSON merge patch over the current commentary, validated as a whole."""
        self._expected_version(if_match)
        current = await self.store.get_commentary(id, public_only=False)
        merged: dict[str, Any] = {
            name: value
            for name, value in msgspec.structs.asdict(current).items()
            if name in NewCommentary.__struct_fields__
        }
        changes = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        if "body_markdown" in changes:
            merged.pop("body_html", None)
        merged.update(changes)
        try:
            new = msgspec.convert(msgspec.to_builtins(merged), NewCommentary)
        except msgspec.ValidationError as e:
            raise InvalidInputError(str(e)) from None
        return await self.replace(id, new, if_match=if_match)

    async def retract(self, id: str, *, if_match: str | None) -> int:
        """Delete a commentary, leaving a tombstone for mirrors; the tombstone's change number."""
        expected = self._expected_version(if_match)
        current = await self.store.get_commentary(id, public_only=False)
        seq = await self.store.delete_commentary(id, expected_version=expected, now=self.clock())
        await self.notify_changed(current, None)
        return seq

    async def put_category(self, slug: str, data: CategoryIn) -> tuple[Category, bool]:
        names = {normalize_lang(k): clean_line(v) for k, v in data.names.items()}
        if not all(names.values()):
            raise InvalidInputError("category names must not be blank", field="names")
        descriptions = {
            normalize_lang(k): strip_bidi_controls(strip_invalid_xml(v)).strip() for k, v in data.descriptions.items()
        }
        result = await self.store.put_category(
            slug, CategoryIn(names=names, descriptions=descriptions), now=self.clock()
        )
        await self.notify_changed(None, None)
        return result

    def _expected_version(self, if_match: str | None) -> int | None:
        """The version an If-Match header pins, None for ``*``; 428 when it is required and absent."""
        if if_match is None:
            if self.require_if_match:
                raise PreconditionRequiredError()
            return None
        value = if_match.strip()
        if value == "*":
            return None
        version = version_from_etag(value)
        if version is None:
            # An ETag we never issued can match nothing.
            return -1
        return version

    async def _build_off_loop(
        self, new: NewCommentary, *, id: str, created_at: datetime, updated_at: datetime, previous: Commentary | None
    ) -> Commentary:
        """``build_commentary`` with the body sanitised or rendered by ``self.bodies``, all of it off
        the event loop (a long body's summary and text take milliseconds too)."""
        body = await self.bodies.render(new.body_html, new.body_markdown)
        return await asyncio.to_thread(
            build_commentary, new, body=body, id=id, created_at=created_at, updated_at=updated_at, previous=previous
        )

    # --- cursors (feedsvc.cursors; the key is kept in the database, so every node accepts
    # every other node's cursors) --------------------------------------------------------

    async def make_cursor(self, query: Query, after: tuple[int, str]) -> str:
        """A cursor for the position ``after`` in the results of ``query``."""
        return cursors.list_cursor(await self.store.get_secret(), query, after)

    async def read_cursor(self, cursor: str, query: Query) -> Query:
        """``query`` positioned after the cursor; InvalidCursorError if it was altered or
        made for other filters."""
        return cursors.read_list_cursor(await self.store.get_secret(), cursor, query)


def version_from_etag(etag: str) -> int | None:
    """The version inside an ETag this service issued (``"v12-…"``), or None."""
    value = etag.strip()
    if value.startswith("W/"):
        return None  # a weak ETag never satisfies If-Match (RFC 9110 §13.1.1)
    value = value.strip('"')
    if not value.startswith("v") or "-" not in value:
        return None
    head = value[1:].split("-", 1)[0]
    return int(head) if head.isdigit() else None
