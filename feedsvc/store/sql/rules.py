"""The rules every write keeps, on either engine, whatever part of it is done.

A write transaction checks them before it writes anything of a commentary, so a write
that fails leaves nothing behind (the engines roll back), and one that succeeds leaves the
tables agreeing: the change log's entry, the row, its tags, authors, search rows and
related keys are written together or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from feedsvc.errors import ConflictError, InvalidInputError, NotFoundError, PreconditionFailedError
from feedsvc.model import Commentary
from feedsvc.store.records import Columns
from feedsvc.store.sql.dialect import Dialect

MAX_SLUG = 120
"""The longest slug (model.NewCommentary): a suffix replaces its end rather than pass it."""

ID_TAKEN = "SELECT 1 FROM commentaries WHERE id = ?"
SLUG_TAKEN = "SELECT 1 FROM commentaries WHERE lang = ? AND slug = ? AND id != ?"
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
