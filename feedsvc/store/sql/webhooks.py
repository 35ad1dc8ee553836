"""Webhook subscriptions and their delivery bookkeeping (``Outbox``), for either engine.

The change log is the outbox: a subscription's ``cursor`` is the sequence number of the
last change it delivered or skipped. Only registration queues behind commentary writes
(to start at an exact newest change); the bookkeeping is single statements on rows of its
own, never held open across a request to a receiver.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from feedsvc.errors import NotFoundError
from feedsvc.model import DeliveryError, Webhook, to_us
from feedsvc.store.records import (
    STORED_WEBHOOK,
    WEBHOOK,
    WEBHOOK_WITH_SECRET,
    StoredWebhook,
    WebhookRecord,
    encode,
    stored_webhook,
    webhook_from_row,
    webhook_record,
)
from feedsvc.store.sql.base import SqlBase

DUE = (
    "state = 'active' AND next_attempt_us <= ? AND lease_until_us < ?"
    " AND cursor < (SELECT coalesce(max(seq), 0) FROM changes)"
)
"""Subscriptions with work to do now (parameters: now twice) and free to lease."""

UPSERT_WEBHOOK = (
    f"INSERT INTO webhooks ({STORED_WEBHOOK.sql}, lease_owner, lease_until_us)"
    f" VALUES ({', '.join('?' * len(STORED_WEBHOOK.names))}, NULL, 0) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in STORED_WEBHOOK.names[1:])
)
"""A subscription as copied from another store: it replaces the one with its id but keeps
that one's lease; a new one has none."""


class WebhookStore(SqlBase):
    """``Outbox`` (but ``get_last_public_doc``: the change log's) and the webhook read of ``Copy``."""

    skip_locked: str = ""
    """What a claim adds to its row lock (PostgreSQL: two nodes claiming at once each take
    other subscriptions, and a row claimed meanwhile is left alone)."""

    async def add_webhook(self, hook: Webhook, *, secret: bytes, owner: str) -> Webhook:
        await self._write_rows(
            "INSERT INTO webhooks (id, url, events, categories, languages, description, secret, owner,"
            " created_us, cursor, state, failures, next_attempt_us, lease_until_us)"
            " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, coalesce(max(seq), 0), 'active', 0, 0, 0 FROM changes",
            (
                hook.id, hook.url, encode(hook.events), encode(hook.categories), encode(hook.languages),
                hook.description, secret, owner, to_us(hook.created_at),
            ),
        )
        return await self.get_webhook(hook.id)

    async def get_webhooks(self) -> list[Webhook]:
        rows = await self._rows(f"SELECT {WEBHOOK.sql} FROM webhooks ORDER BY created_us, id")
        return [webhook_from_row(r) for r in rows]

    async def get_webhook(self, id: str) -> Webhook:
        row = await self._row(f"SELECT {WEBHOOK.sql} FROM webhooks WHERE id = ?", (id,))
        if row is None:
            raise NotFoundError(f"no webhook {id}")
        return webhook_from_row(row)

    async def delete_webhook(self, id: str) -> None:
        if not await self._write_rows("DELETE FROM webhooks WHERE id = ? RETURNING id", (id,), serial=False):
            raise NotFoundError(f"no webhook {id}")

    async def claim_webhooks(
        self, *, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[WebhookRecord]:
        now_us = to_us(now)
        # Looked for on a reader first, so that an idle poll never queues for a writer.
        if await self._row(f"SELECT 1 FROM webhooks WHERE {DUE} LIMIT 1", (now_us, now_us)) is None:
            return []
        rows = await self._write_rows(
            "UPDATE webhooks SET lease_owner = ?, lease_until_us = ? WHERE id IN"
            f" (SELECT id FROM webhooks WHERE {DUE} ORDER BY next_attempt_us, id LIMIT ?{self.skip_locked})"
            f" RETURNING {WEBHOOK_WITH_SECRET.sql}",
            (owner, to_us(lease_until), now_us, now_us, limit),
            serial=False,
        )
        return [webhook_record(r) for r in rows]

    async def advance_webhook(
        self, id: str, *, owner: str, position: int, delivered_at: datetime | None, lease_until: datetime
    ) -> bool:
        success = ", failures = 0, next_attempt_us = 0, last_success_us = ?" if delivered_at is not None else ""
        params: list[Any] = [position, to_us(lease_until)]
        if delivered_at is not None:
            params.append(to_us(delivered_at))
        rows = await self._write_rows(
            f"UPDATE webhooks SET cursor = {self.dialect.greatest}(cursor, ?), lease_until_us = ?{success}"
            " WHERE id = ? AND lease_owner = ? AND state = 'active' RETURNING id",
            (*params, id, owner),
            serial=False,
        )
        return len(rows) == 1

    async def fail_webhook(
        self, id: str, *, owner: str, error: DeliveryError, next_attempt: datetime, disable: str | None
    ) -> bool:
        disabled = ", state = 'disabled', disabled_reason = ?, disabled_us = ?" if disable is not None else ""
        params: list[Any] = [error.message, error.status, to_us(error.at), to_us(next_attempt)]
        if disable is not None:
            params += [disable, to_us(error.at)]
        rows = await self._write_rows(
            "UPDATE webhooks SET failures = failures + 1, last_error = ?, last_error_status = ?,"
            f" last_error_us = ?, next_attempt_us = ?, lease_owner = NULL, lease_until_us = 0{disabled}"
            " WHERE id = ? AND lease_owner = ? AND state = 'active' RETURNING id",
            (*params, id, owner),
            serial=False,
        )
        return len(rows) == 1

    async def release_webhooks(self, owner: str, id: str | None = None) -> None:
        await self._write_rows(
            "UPDATE webhooks SET lease_owner = NULL, lease_until_us = 0 WHERE lease_owner = ?"
            + (" AND id = ?" if id is not None else ""),
            (owner,) if id is None else (owner, id),
            serial=False,
        )

    async def get_stored_webhooks(self) -> list[StoredWebhook]:
        return [stored_webhook(r) for r in await self._rows(f"SELECT {STORED_WEBHOOK.sql} FROM webhooks ORDER BY id")]
