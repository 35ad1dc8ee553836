"""The ``Writer`` methods (and ``load_copy``), once: each runs a write of
feedsvc.store.sql.rules, or one of the engine's own, as one write transaction.

The rules are generators that ask for what they need done; an engine says how it runs one
in a transaction (``_apply``: SQLite on its writer thread, PostgreSQL under the advisory
lock) and answers their requests in its module ``writes`` (feedsvc.store.sqlite.writes,
feedsvc.store.postgres.writes), which also holds the two writes shaped by the engine:
``publish_due`` and ``load_copy`` (``_transact``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar

from feedsvc.model import Category, CategoryIn, Commentary
from feedsvc.store.records import CopyBatch, IdempotencyKey
from feedsvc.store.sql import rules
from feedsvc.store.sql.tokens import CategoryReads

_T = TypeVar("_T")


class WriteFunctions(Protocol):
    """An engine's writes of its own, each taking its connection (or transaction) first."""

    publish_due: Callable[..., Any]
    load_copy: Callable[..., Any]


class CommentaryWrites(CategoryReads):
    """``Writer`` and ``Copy.load_copy`` on the shared rules and the engine's ``writes``."""

    writes: ClassVar[WriteFunctions]

    async def _apply(self, rule: rules.Rule[_T]) -> _T:
        """``rule`` run to its end in one write transaction; its result."""
        raise NotImplementedError

    async def _transact(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """``fn(conn or tx, **kwargs)`` as one write transaction; its result."""
        raise NotImplementedError

    async def add_commentary(self, item: Commentary, *, unique_slug: bool, now: datetime) -> Commentary:
        return await self._apply(rules.add(item, unique_slug=unique_slug, now=now))

    async def add_commentary_once(
        self, item: Commentary, *, unique_slug: bool, now: datetime, key: IdempotencyKey, not_before: datetime
    ) -> tuple[Commentary, bool]:
        return await self._apply(
            rules.add_once(item, unique_slug=unique_slug, now=now, key=key, not_before=not_before)
        )

    async def update_commentary(
        self, item: Commentary, *, expected_version: int | None, unique_slug: bool, now: datetime
    ) -> Commentary:
        return await self._apply(rules.update(
            item, expected_version=expected_version, unique_slug=unique_slug, now=now, d=self.dialect
        ))

    async def delete_commentary(self, id: str, *, expected_version: int | None, now: datetime) -> int:
        return await self._apply(rules.delete(id, expected_version=expected_version, now=now, d=self.dialect))

    async def publish_due(self, now: datetime) -> int:
        count: int = await self._transact(self.writes.publish_due, now=now)
        return count

    async def put_category(self, slug: str, data: CategoryIn, *, now: datetime) -> tuple[Category, bool]:
        created = await self._apply(rules.put_category(slug, data, now=now))
        return await self.get_category(slug), created

    async def load_copy(self, batch: CopyBatch) -> None:
        await self._transact(self.writes.load_copy, batch=batch)
        self._secret = None  # read anew: what is stored now is what counts
