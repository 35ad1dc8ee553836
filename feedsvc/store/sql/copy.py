"""Verbatim copies between stores (``feedsvc migrate-data``): the statements of
``load_copy`` both engines run as they are, and the category read of ``Copy``."""

from __future__ import annotations

from typing import Any

from feedsvc.store.records import (
    LOG_ENTRY,
    STORED_CATEGORY,
    CopyBatch,
    StoredCategory,
    encode,
    stored_category,
    token_values,
    webhook_values,
)
from feedsvc.store.sql.base import SqlBase
from feedsvc.store.sql.dialect import Dialect
from feedsvc.store.sql.tokens import UPSERT_TOKEN
from feedsvc.store.sql.webhooks import UPSERT_WEBHOOK

Statements = list[tuple[str, list[tuple[Any, ...]]]]
"""Statements (``?`` placeholders) each to run once per parameter row, in order."""

INSERT_LOG_ENTRY = f"INSERT INTO changes ({LOG_ENTRY.sql}) VALUES ({', '.join('?' * len(LOG_ENTRY.names))})"
UPSERT_CATEGORY = (
    f"INSERT INTO categories ({STORED_CATEGORY.sql}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (slug) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in STORED_CATEGORY.names[1:])
)

UPSERT_DIGEST_MARK = (
    "INSERT INTO digest_marks (lang, period_start, left_us) VALUES (?, ?, ?)"
    " ON CONFLICT (lang, period_start) DO UPDATE SET left_us = excluded.left_us"
)


def before_commentaries(batch: CopyBatch) -> Statements:
    """What ``load_copy`` writes before the commentaries: their categories."""
    return [(UPSERT_CATEGORY, [
        (c.slug, encode(c.names), encode(c.descriptions), c.updated_us, c.version) for c in batch.categories
    ])]


def after_commentaries(batch: CopyBatch, d: Dialect) -> Statements:
    """What ``load_copy`` writes after the commentaries: the log entries with their own
    sequence numbers, tokens, digest marks, the subscriptions (those not among them go)
    and the secret."""
    out: Statements = [
        (INSERT_LOG_ENTRY, [(e.seq, e.kind, e.ref, e.op, e.public_op, e.at_us, e.doc) for e in batch.log]),
        (UPSERT_TOKEN, [token_values(t) for t in batch.tokens]),
        (UPSERT_DIGEST_MARK, [(m.lang, d.day(m.period_start), m.left_us) for m in batch.digest_marks]),
    ]
    if batch.webhooks is not None:
        among, keep = d.among("id", [h.id for h in batch.webhooks])
        out.append((UPSERT_WEBHOOK, [webhook_values(h) for h in batch.webhooks]))
        out.append((f"DELETE FROM webhooks WHERE NOT ({among})", [tuple(keep)]))
    if batch.secret is not None:
        out.append((
            "INSERT INTO meta (key, value) VALUES ('secret', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [(batch.secret,)],
        ))
    return out


class CopyReads(SqlBase):
    """The category read of ``Copy`` (the others live with their topics)."""

    async def get_stored_categories(self) -> list[StoredCategory]:
        rows = await self._rows(f"SELECT {STORED_CATEGORY.sql} FROM categories ORDER BY slug")
        return [stored_category(r) for r in rows]
