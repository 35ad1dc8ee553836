"""The change log as its readers see it, for either engine: the state caches key on, the
public changes mirrors page through, the log as stored (copies), a deletion's last document."""

from __future__ import annotations

from datetime import datetime

from feedsvc.model import Change, Commentary, from_us, to_us
from feedsvc.store.records import LOG_ENTRY, Columns, Deletion, LogEntry, StoreState, decode_commentary, log_entry
from feedsvc.store.sql.base import SqlBase

CHANGE = Columns("newest", "seq", "ref", "public_op", "at_us", "doc")

# One statement, one snapshot: the newest number and the public changes up to it. Without
# any, one row still brings `newest` (its change columns NULL).
CHANGES = (
    "WITH n AS (SELECT coalesce(max(seq), 0) AS newest FROM changes)"
    f" SELECT {CHANGE.sql} FROM n LEFT JOIN (SELECT seq, ref, public_op, at_us, doc FROM changes"
    "  WHERE seq > ? AND seq <= (SELECT newest FROM n) AND public_op IS NOT NULL ORDER BY seq LIMIT ?) c ON true"
    " ORDER BY c.seq"
)

# Public deletions since a time, among the log's last entries, newest first, each with the
# commentary's last public document and only while nothing public came after it. The log
# is in commit order, so "since a time" is "after the newest entry older than it"; both
# walks stay within the last `DELETIONS_SCAN` entries (a range of the primary key).
DELETIONS_SCAN = 10_000
DELETIONS = (
    "WITH n AS (SELECT coalesce(max(seq), 0) - ? AS floor FROM changes),"
    " b AS (SELECT coalesce(max(seq), (SELECT floor FROM n)) AS start FROM changes"
    "  WHERE seq > (SELECT floor FROM n) AND at_us < ?)"
    " SELECT d.ref, d.at_us,"
    "  (SELECT u.doc FROM changes u WHERE u.ref = d.ref AND u.seq < d.seq AND u.doc IS NOT NULL"
    "   ORDER BY u.seq DESC LIMIT 1)"
    " FROM changes d"
    " WHERE d.seq > (SELECT start FROM b) AND d.public_op = 'deleted' AND d.kind = 'commentary'"
    "  AND NOT EXISTS (SELECT 1 FROM changes l WHERE l.ref = d.ref AND l.seq > d.seq AND l.doc IS NOT NULL)"
    " ORDER BY d.seq DESC LIMIT ?"
)


class ChangeReads(SqlBase):
    """``ChangeLog``, the log read of ``Copy``, and ``Outbox.get_last_public_doc``."""

    async def get_state(self) -> StoreState:
        token = self._watch.token()  # before the query: see the engine's watch
        row = await self._row(
            "SELECT (SELECT coalesce(max(seq), 0) FROM changes),"
            f" (SELECT min(pub_us) FROM commentaries WHERE {self.dialect.hidden()} AND status = 'published')"
        )
        state = StoreState(seq=int(row[0]), next_due=from_us(row[1]) if row[1] is not None else None)
        self._watch.remember(token, state)
        return state

    def known_state(self) -> StoreState | None:
        return self._watch.known()

    async def get_changes(self, since: int, limit: int) -> tuple[list[Change], int]:
        at = CHANGE.at
        rows = await self._rows(CHANGES, (since, limit))
        newest = int(rows[0][at["newest"]]) if rows else 0
        items = [
            Change(
                seq=r[at["seq"]], op=r[at["public_op"]], id=r[at["ref"]], at=from_us(r[at["at_us"]]),
                commentary=decode_commentary(r[at["doc"]]) if r[at["doc"]] is not None else None,
            )
            for r in rows
            if r[at["seq"]] is not None
        ]
        # A short page means every change up to `newest` was examined.
        resume = items[-1].seq if len(items) == limit else max(newest, since)
        return items, resume

    async def get_deletions(self, since: datetime, limit: int) -> list[Deletion]:
        rows = await self._rows(DELETIONS, (DELETIONS_SCAN, to_us(since), limit))
        return [
            Deletion(id=r[0], at=from_us(r[1]), last=decode_commentary(r[2]) if r[2] is not None else None)
            for r in rows
        ]

    async def get_log(self, since: int, limit: int) -> list[LogEntry]:
        rows = await self._rows(
            f"SELECT {LOG_ENTRY.sql} FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", (since, limit)
        )
        return [log_entry(r) for r in rows]

    async def get_last_public_doc(self, id: str, before: int) -> Commentary | None:
        row = await self._row(
            "SELECT doc FROM changes WHERE ref = ? AND seq < ? AND doc IS NOT NULL ORDER BY seq DESC LIMIT 1",
            (id, before),
        )
        return decode_commentary(row[0]) if row is not None else None
