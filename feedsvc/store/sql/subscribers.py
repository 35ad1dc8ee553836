"""Newsletter subscribers (``Subscribers``), for either engine.

Each operation is one statement on the subscriber's own row, so it never queues behind
commentary writes; a sign-up is one upsert, so two sign-ups of one address at once (on
any nodes) make one row and at most one confirmation mail.
"""

from __future__ import annotations

from feedsvc.errors import NotFoundError
from feedsvc.store.records import STORED_SUBSCRIBER, StoredSubscriber, stored_subscriber, subscriber_values
from feedsvc.store.sql.base import SqlBase

_COLUMNS = STORED_SUBSCRIBER.sql
_RENEWED = ("lang", "languages", "categories", "cadence", "state", "state_reason", "updated_us", "confirm_nonce",
            "confirm_sent_us")
"""What a new sign-up of a known address replaces (never its id, creation or address)."""

SIGN_UP = (
    f"INSERT INTO subscribers ({_COLUMNS}) VALUES ({', '.join('?' * len(STORED_SUBSCRIBER.names))})"
    " ON CONFLICT (email) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _RENEWED)
    + " WHERE subscribers.state <> 'active' AND subscribers.confirm_sent_us < ?"
    f" RETURNING {_COLUMNS}"
)
"""A sign-up: a new address is stored pending; a known one that is not active goes back to
pending with the new choices and nonce, unless a confirmation mail went to it after the
last parameter's time. No row back: nothing changed and no mail is to go."""


class SubscriberStore(SqlBase):
    """``Subscribers``, and the subscriber read of ``Copy``."""

    async def sign_up(self, sub: StoredSubscriber, *, resend_after_us: int) -> StoredSubscriber | None:
        rows = await self._write_rows(SIGN_UP, (*subscriber_values(sub), resend_after_us), serial=False)
        return stored_subscriber(rows[0]) if rows else None

    async def get_subscriber(self, id: str) -> StoredSubscriber:
        row = await self._row(f"SELECT {_COLUMNS} FROM subscribers WHERE id = ?", (id,))
        if row is None:
            raise NotFoundError(f"no subscriber {id}")
        return stored_subscriber(row)

    async def find_subscriber(self, email: str) -> StoredSubscriber | None:
        row = await self._row(f"SELECT {_COLUMNS} FROM subscribers WHERE email = ?", (email,))
        return stored_subscriber(row) if row is not None else None

    async def get_subscribers(self, *, state: str | None, after: str, limit: int) -> list[StoredSubscriber]:
        where, params = ("id > ?", [after]) if state is None else ("state = ? AND id > ?", [state, after])
        rows = await self._rows(
            f"SELECT {_COLUMNS} FROM subscribers WHERE {where} ORDER BY id LIMIT ?", [*params, limit]
        )
        return [stored_subscriber(r) for r in rows]

    async def confirm_subscriber(self, id: str, *, nonce: str, now_us: int) -> StoredSubscriber | None:
        rows = await self._write_rows(
            "UPDATE subscribers SET state = 'active', state_reason = NULL, confirmed_us = ?, updated_us = ?,"
            " confirm_nonce = NULL WHERE id = ? AND confirm_nonce = ? AND state = 'pending'"
            f" RETURNING {_COLUMNS}",
            (now_us, now_us, id, nonce),
            serial=False,
        )
        return stored_subscriber(rows[0]) if rows else None

    async def set_subscriber_state(
        self, id: str, *, state: str, reason: str | None, now_us: int
    ) -> StoredSubscriber:
        rows = await self._write_rows(
            "UPDATE subscribers SET state = ?, state_reason = ?, updated_us = ?, confirm_nonce = NULL"
            f" WHERE id = ? RETURNING {_COLUMNS}",
            (state, reason, now_us, id),
            serial=False,
        )
        if not rows:
            raise NotFoundError(f"no subscriber {id}")
        return stored_subscriber(rows[0])

    async def reopen_confirmation(self, id: str, *, nonce: str) -> None:
        await self._write_rows(
            "UPDATE subscribers SET confirm_sent_us = 0 WHERE id = ? AND confirm_nonce = ?", (id, nonce), serial=False
        )

    async def erase_subscriber(self, id: str) -> None:
        if not await self._write_rows("DELETE FROM subscribers WHERE id = ? RETURNING id", (id,), serial=False):
            raise NotFoundError(f"no subscriber {id}")
        await self._write_rows("DELETE FROM newsletter_sends WHERE subscriber_id = ?", (id,), serial=False)
