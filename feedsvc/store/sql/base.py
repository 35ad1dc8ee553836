"""What the shared store core needs from an engine: a handful of primitives.

The per-topic mixins (feedsvc.store.sql.commentaries, .changes, .tokens, .webhooks,
.digests, .copy) are written against these, the way lemon24/reader composes its storage
from per-topic mixins; an engine class inherits the mixins and supplies the primitives.
Every statement handed to a primitive has ``?`` placeholders (``Dialect.sql`` converts).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Protocol

from feedsvc.store.records import StoreState
from feedsvc.store.sql.dialect import Dialect

Rows = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]
"""Runs one statement and returns its rows (tuples or Records, read by ``Columns``)."""


class Watch(Protocol):
    """Knowing that nothing changed without asking the database (issue 6).

    Every feed request and every 304 starts with "did the change sequence move?". Asking
    the store is a query through a connection pool (a thread hop for aiosqlite, a round
    trip for asyncpg): most of the cost of answering a poll that finds nothing new. A watch
    (feedsvc.store.sqlite.watch, feedsvc.store.postgres.watch) remembers the ``StoreState``
    the store last read together with a *token* of a change counter that moves on every
    commit, by this process or any other.

    ``known()`` returns the remembered state only while the token is the one read *before*
    the state was queried: any commit after that moves the counter, so a remembered state
    is never older than the last commit the counter reports. A state read concurrently
    with an older token can only be discarded early, never kept late.
    """

    def token(self) -> Any: ...

    def remember(self, token: Any, state: StoreState) -> None: ...

    def known(self) -> StoreState | None: ...


class SqlBase:
    """The primitives an engine supplies to the shared mixins."""

    dialect: ClassVar[Dialect]
    _watch: Watch
    _secret: bytes | None

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one read statement, on a connection of the read pool."""
        raise NotImplementedError

    async def _row(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row of a read statement that yields one row at most (or None)."""
        rows = await self._rows(sql, params)
        return rows[0] if rows else None

    def _snapshot(self, *, strict: bool = True) -> AbstractAsyncContextManager[Rows]:
        """Several read statements on one connection that see one state of the database.

        Without ``strict`` they need only share the connection, each statement consistent
        by itself: SQLite then spares the two extra trips to its thread a transaction costs
        (a view stamp is read on every list request)."""
        raise NotImplementedError

    async def _write_rows(self, sql: str, params: Sequence[Any] = (), *, serial: bool = True) -> list[Any]:
        """One write statement in a transaction of its own; its rows (RETURNING).

        ``serial`` writes queue behind every other write (the write lock); bookkeeping that
        touches rows of its own only (webhook leases) may pass False where the engine
        lets writers run side by side.
        """
        raise NotImplementedError
