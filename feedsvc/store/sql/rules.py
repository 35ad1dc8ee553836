"""The rules every write keeps, on either engine, whatever part of it is done: written
once, without I/O.

A write transaction checks them before it writes anything of a commentary, so a write
that fails leaves nothing behind (the engines roll back), and one that succeeds leaves the
tables agreeing: the change log's entry, the row, its tags, authors, search rows and
related keys are written together or not at all.

Each write (``add``, ``add_once``, ``update``, ``delete``, ``put_category``) is a generator
that yields what it needs done (``One``, ``Run``, ``Change``, ``Put``, ``Drop``) and is sent
back the outcome, the way h11 or sans-I/O protocol code leaves the I/O to its caller: SQLite
drives it with plain calls on its writer thread (``drive``), PostgreSQL with awaits on its
transaction (``drive_async``). ``Put`` and ``Drop`` are each engine's own statements for a
commentary's rows (SQLite several on one connection, PostgreSQL one round trip).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Generator
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import msgspec

from feedsvc.errors import ConflictError, FeedsvcError, InvalidInputError, NotFoundError, PreconditionFailedError
from feedsvc.model import CategoryIn, Commentary, to_us
from feedsvc.store.bulk_rows import ImportRow
from feedsvc.store.records import Columns, IdempotencyKey, decode_commentary, encode
from feedsvc.store.sql.copy import UPSERT_CATEGORY
from feedsvc.store.sql.dialect import Dialect

MAX_SLUG = 120
"""The longest slug (model.NewCommentary): a suffix replaces its end rather than pass it."""

ID_TAKEN = "SELECT 1 FROM commentaries WHERE id = ?"
SLUG_TAKEN = "SELECT 1 FROM commentaries WHERE lang = ? AND slug = ? AND id != ?"
CATEGORY_EXISTS = "SELECT 1 FROM categories WHERE slug = ?"
FORGET_KEYS = "DELETE FROM idempotency_keys WHERE created_us < ?"
REMEMBERED_KEY = "SELECT fingerprint, doc FROM idempotency_keys WHERE owner = ? AND key = ?"
REMEMBER_KEY = (
    "INSERT INTO idempotency_keys (owner, key, fingerprint, commentary_id, doc, created_us) VALUES (?, ?, ?, ?, ?, ?)"
)


def is_public(item: Commentary, now: datetime) -> bool:
    """Public: published and due."""
    return item.status == "published" and item.published_at <= now


def public_op(was_public: bool, public: bool) -> str | None:
    """What a change means to public readers: the commentary appeared, changed or went."""
    if public:
        return "updated" if was_public else "created"
    return "deleted" if was_public else None


def id_taken(id: str) -> ConflictError:
    return ConflictError(f"a commentary with id {id} exists", field="id")


def slug_taken(slug: str, lang: str) -> ConflictError:
    return ConflictError(f"slug {slug!r} is taken in {lang}", field="slug")


def unknown_category(slug: str) -> InvalidInputError:
    return InvalidInputError(f"unknown category {slug!r}", field="category")


def import_refusal(
    row: ImportRow,
    categories: Collection[str],
    taken_ids: Collection[str],
    taken_slugs: Collection[tuple[str, str]],
) -> FeedsvcError | None:
    """Why a bulk-import row may not be stored, in the order ``add_commentary`` checks; None
    when it may (a taken slug it may replace is settled by the engine)."""
    if row.category not in categories:
        return unknown_category(row.category)
    if row.id in taken_ids:
        return id_taken(row.id)
    if (row.lang, row.slug) in taken_slugs and not row.unique_slug:
        return slug_taken(row.slug, row.lang)
    return None


def key_reused() -> ConflictError:
    return ConflictError("this Idempotency-Key was used with a different request body", field="Idempotency-Key")


def next_slug(base: str, n: int) -> str:
    """The ``n``-th candidate for a taken slug: ``base-n``, cut to fit."""
    suffix = f"-{n}"
    return base[: MAX_SLUG - len(suffix)] + suffix


CURRENT = Columns("rowid", "version", "public")
"""What a replacement or deletion reads of the stored commentary (``current_sql``)."""


def current_sql(d: Dialect) -> str:
    """The ``CURRENT`` row of the commentary whose id is the parameter."""
    return f"SELECT {d.rowid} AS rowid, version, public FROM commentaries WHERE id = ?"


def check_current(row: Any, id: str, expected_version: int | None) -> tuple[int, bool]:
    """The (rowid, public) of a ``CURRENT`` row, once it is known to exist and to be at
    ``expected_version`` when that is given.

    Raises:
        NotFoundError: there is no commentary ``id``.
        PreconditionFailedError: it is at another version.
    """
    if row is None:
        raise NotFoundError(f"no commentary with id {id}")
    at = CURRENT.at
    if expected_version is not None and row[at["version"]] != expected_version:
        raise PreconditionFailedError(current_version=row[at["version"]])
    return row[at["rowid"]], bool(row[at["public"]])


# --- what a write asks its engine to do ---------------------------------------------------


class One(NamedTuple):
    """The first row of a statement (``?`` placeholders), or None."""

    sql: str
    params: tuple[Any, ...]


class Run(NamedTuple):
    """A statement whose rows are not needed."""

    sql: str
    params: tuple[Any, ...]


class Change(NamedTuple):
    """An entry appended to the change log, without a document; its number."""

    kind: str
    ref: str
    op: str
    public_op: str | None
    now: datetime


class Put(NamedTuple):
    """A commentary's row with its tags, authors, search rows and (when public) related
    keys, and its entry in the change log (with the document when public); the commentary
    as stored, its version the entry's number. ``rowid``: the number of the row it
    replaces, which SQLite gives it again (None: a new one)."""

    item: Commentary
    public: bool
    op: str
    public_op: str | None
    now: datetime
    rowid: int | None


class Drop(NamedTuple):
    """A commentary's row and what hangs on it deleted; when it was public and had a
    period, ``now`` noted on its weekly digest (issue 9), so the digest's updated time
    moves though none of the commentaries left in it changed."""

    rowid: int
    now: datetime


Op = One | Run | Change | Put | Drop
_T = TypeVar("_T")
Rule = Generator[Op, Any, _T]
REMEMBERED = Columns("fingerprint", "doc")


def drive(rule: Rule[_T], do: Callable[[Op], Any]) -> _T:
    """Run ``rule`` to its end, each request answered by ``do``; its result."""
    try:
        op = next(rule)
        while True:
            op = rule.send(do(op))
    except StopIteration as done:
        result: _T = done.value
        return result


async def drive_async(rule: Rule[_T], do: Callable[[Op], Awaitable[Any]]) -> _T:
    """``drive`` with an engine that awaits."""
    try:
        op = next(rule)
        while True:
            op = rule.send(await do(op))
    except StopIteration as done:
        result: _T = done.value
        return result


# --- the writes ---------------------------------------------------------------------------


def add(item: Commentary, *, unique_slug: bool, now: datetime) -> Rule[Commentary]:
    """What ``add_commentary`` does inside its transaction (an import's record too)."""
    if (yield One(ID_TAKEN, (item.id,))):
        raise id_taken(item.id)
    item = yield from settle_slug(item, unique_slug=unique_slug)
    public = is_public(item, now)
    stored: Commentary = yield Put(item, public, "created", "created" if public else None, now, None)
    return stored


def add_once(
    item: Commentary, *, unique_slug: bool, now: datetime, key: IdempotencyKey, not_before: datetime
) -> Rule[tuple[Commentary, bool]]:
    """``add_commentary_once``. Racing calls with one key are serialised by the write lock:
    the second finds the key."""
    yield Run(FORGET_KEYS, (to_us(not_before),))
    row = yield One(REMEMBERED_KEY, (key.owner, key.key))
    if row is not None:
        if row[REMEMBERED.at["fingerprint"]] != key.fingerprint:
            raise key_reused()
        return decode_commentary(row[REMEMBERED.at["doc"]]), False
    stored = yield from add(item, unique_slug=unique_slug, now=now)
    yield Run(REMEMBER_KEY, (key.owner, key.key, key.fingerprint, stored.id, encode(stored), to_us(now)))
    return stored, True


def update(
    item: Commentary, *, expected_version: int | None, unique_slug: bool, now: datetime, d: Dialect
) -> Rule[Commentary]:
    """``update_commentary``: the row is replaced whole."""
    rowid, was_public = check_current((yield One(current_sql(d), (item.id,))), item.id, expected_version)
    item = yield from settle_slug(item, unique_slug=unique_slug)
    public = is_public(item, now)
    yield Drop(rowid, now)
    stored: Commentary = yield Put(item, public, "updated", public_op(was_public, public), now, rowid)
    return stored


def delete(id: str, *, expected_version: int | None, now: datetime, d: Dialect) -> Rule[int]:
    """``delete_commentary``: a tombstone in the change log, and the row gone."""
    rowid, was_public = check_current((yield One(current_sql(d), (id,))), id, expected_version)
    seq: int = yield Change("commentary", id, "deleted", "deleted" if was_public else None, now)
    yield Drop(rowid, now)
    return seq


def put_category(slug: str, data: CategoryIn, *, now: datetime) -> Rule[bool]:
    """``put_category``'s write; whether the category is new."""
    exists = bool((yield One(CATEGORY_EXISTS, (slug,))))
    seq = yield Change("category", slug, "updated" if exists else "created", None, now)
    yield Run(UPSERT_CATEGORY, (slug, encode(data.names), encode(data.descriptions), to_us(now), seq))
    return not exists


def settle_slug(item: Commentary, *, unique_slug: bool) -> Rule[Commentary]:
    """Keep the slug unique within its language: suffix it, or refuse with ConflictError."""
    n, slug = 1, item.slug
    while (yield One(SLUG_TAKEN, (item.lang, slug, item.id))):
        if not unique_slug:
            raise slug_taken(slug, item.lang)
        n += 1
        slug = next_slug(item.slug, n)
    return item if slug == item.slug else msgspec.structs.replace(item, slug=slug)
