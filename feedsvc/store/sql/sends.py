"""The newsletter's issues and their send queue (``SendQueue``), for either engine.

A send is one row per (issue, subscriber), made once by ``queue_issue``; its state moves
from ``queued`` to ``sent`` or ``failed`` only under the lease of the sender holding it.
Leases are taken as the webhook outbox takes them (PostgreSQL: ``FOR UPDATE SKIP LOCKED``,
so nodes claiming at once take different rows), each statement on rows of its own.
"""

from __future__ import annotations

from typing import Any

from feedsvc.store.records import IssueRecord, SendRecord
from feedsvc.store.sql.base import SqlBase

_ISSUE = "key, kind, start, lang, state, created_us, queued_us"


class SendStore(SqlBase):
    """``SendQueue``."""

    skip_locked: str = ""

    def _issue(self, row: Any) -> IssueRecord:
        return IssueRecord(
            key=row[0], kind=row[1], start=self.dialect.read_day(row[2]), lang=row[3], state=row[4],
            created_us=int(row[5]), queued_us=int(row[6]) if row[6] is not None else None,
        )

    async def add_issue(self, issue: IssueRecord) -> bool:
        rows = await self._write_rows(
            f"INSERT INTO newsletter_issues ({_ISSUE}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
            " RETURNING key",
            (issue.key, issue.kind, self.dialect.day(issue.start), issue.lang, issue.state, issue.created_us,
             issue.queued_us),
            serial=False,
        )
        return bool(rows)

    async def get_issue(self, key: str) -> IssueRecord | None:
        row = await self._row(f"SELECT {_ISSUE} FROM newsletter_issues WHERE key = ?", (key,))
        return self._issue(row) if row is not None else None

    async def get_issues(self, limit: int) -> list[IssueRecord]:
        rows = await self._rows(
            f"SELECT {_ISSUE} FROM newsletter_issues ORDER BY created_us DESC, key DESC LIMIT ?", (limit,)
        )
        return [self._issue(r) for r in rows]

    async def queue_issue(self, key: str, *, now_us: int, host: str) -> int:
        await self._write_rows(
            "INSERT INTO newsletter_sends (issue, subscriber_id, state, attempts, next_attempt_us, lease_owner,"
            " lease_until_us, message_id, last_error, sent_us)"
            " SELECT i.key, s.id, 'queued', 0, 0, NULL, 0, '<' || i.key || '.' || s.id || '@' || ? || '>', NULL, NULL"
            " FROM newsletter_issues i JOIN subscribers s ON s.lang = i.lang"
            " WHERE i.key = ? AND s.state = 'active' AND s.cadence = 'weekly'"
            " ON CONFLICT (issue, subscriber_id) DO NOTHING",
            (host, key),
            serial=False,
        )
        await self._write_rows(
            "UPDATE newsletter_issues SET state = 'sending', queued_us = coalesce(queued_us, ?) WHERE key = ?",
            (now_us, key),
            serial=False,
        )
        row = await self._row("SELECT count(*) FROM newsletter_sends WHERE issue = ?", (key,))
        return int(row[0])

    async def claim_sends(self, *, owner: str, now_us: int, lease_until_us: int, limit: int) -> list[SendRecord]:
        due = "state = 'queued' AND next_attempt_us <= ? AND lease_until_us < ?"
        if await self._row(f"SELECT 1 FROM newsletter_sends WHERE {due} LIMIT 1", (now_us, now_us)) is None:
            return []
        rows = await self._write_rows(
            "UPDATE newsletter_sends SET lease_owner = ?, lease_until_us = ? WHERE (issue, subscriber_id) IN"
            f" (SELECT issue, subscriber_id FROM newsletter_sends WHERE {due}"
            f" ORDER BY next_attempt_us, issue, subscriber_id LIMIT ?{self.skip_locked})"
            " RETURNING issue, subscriber_id, attempts, message_id",
            (owner, lease_until_us, now_us, now_us, limit),
            serial=False,
        )
        return [SendRecord(issue=r[0], subscriber_id=r[1], attempts=int(r[2]), message_id=r[3]) for r in rows]

    async def finish_send(
        self, issue: str, subscriber_id: str, *, owner: str, state: str, error: str | None, next_attempt_us: int,
        now_us: int,
    ) -> bool:
        rows = await self._write_rows(
            "UPDATE newsletter_sends SET state = ?, attempts = attempts + 1, last_error = ?, next_attempt_us = ?,"
            " sent_us = CASE WHEN ? = 'sent' THEN ? ELSE sent_us END, lease_owner = NULL, lease_until_us = 0"
            " WHERE issue = ? AND subscriber_id = ? AND lease_owner = ? AND state = 'queued' RETURNING issue",
            (state, error, next_attempt_us, state, now_us, issue, subscriber_id, owner),
            serial=False,
        )
        return bool(rows)

    async def extend_sends(self, owner: str, *, lease_until_us: int) -> None:
        await self._write_rows(
            "UPDATE newsletter_sends SET lease_until_us = ? WHERE lease_owner = ? AND state = 'queued'",
            (lease_until_us, owner),
            serial=False,
        )

    async def release_sends(self, owner: str) -> None:
        await self._write_rows(
            "UPDATE newsletter_sends SET lease_owner = NULL, lease_until_us = 0 WHERE lease_owner = ?"
            " AND state = 'queued'",
            (owner,),
            serial=False,
        )

    async def send_counts(self, key: str) -> dict[str, int]:
        rows = await self._rows("SELECT state, count(*) FROM newsletter_sends WHERE issue = ? GROUP BY state", (key,))
        return {str(r[0]): int(r[1]) for r in rows}

    async def finish_issue(self, key: str) -> bool:
        rows = await self._write_rows(
            "UPDATE newsletter_issues SET state = 'sent' WHERE key = ? AND state = 'sending' AND NOT EXISTS"
            " (SELECT 1 FROM newsletter_sends WHERE issue = ? AND state = 'queued') RETURNING key",
            (key, key),
            serial=False,
        )
        return bool(rows)
