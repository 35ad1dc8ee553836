"""The ``Writer`` methods (and ``load_copy``), once: each runs the engine's own write
function as one write transaction.

An engine keeps its write functions in a module of its own (feedsvc.store.sqlite.writes:
plain ``fn(conn)`` on the writer thread; feedsvc.store.postgres.writes: ``fn(tx)`` under
the advisory lock), each keeping the rules of feedsvc.store.sql.rules, and says how one
runs (``_transact``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Protocol

from feedsvc.model import Category, CategoryIn, Commentary
from feedsvc.store.records import CopyBatch, IdempotencyKey
from feedsvc.store.sql.tokens import CategoryReads


class WriteFunctions(Protocol):
    """An engine's write functions, each taking its connection (or transaction) first."""

    add: Callable[..., Any]
    add_once: Callable[..., Any]
    update: Callable[..., Any]
    delete: Callable[..., Any]
    publish_due: Callable[..., Any]
    put_category: Callable[..., Any]
    load_copy: Callable[..., Any]


class CommentaryWrites(CategoryReads):
    """``Writer`` and ``Copy.load_copy`` on the engine's ``writes``."""

    writes: ClassVar[WriteFunctions]

    async def _transact(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """``fn(conn or tx, **kwargs)`` as one write transaction; its result."""
        raise NotImplementedError

    async def add_commentary(self, item: Commentary, *, unique_slug: bool, now: datetime) -> Commentary:
        stored: Commentary = await self._transact(self.writes.add, item=item, unique_slug=unique_slug, now=now)
        return stored

    async def add_commentary_once(
        self, item: Commentary, *, unique_slug: bool, now: datetime, key: IdempotencyKey, not_before: datetime
    ) -> tuple[Commentary, bool]:
        result: tuple[Commentary, bool] = await self._transact(
            self.writes.add_once, item=item, unique_slug=unique_slug, now=now, key=key, not_before=not_before
        )
        return result

    async def update_commentary(
        self, item: Commentary, *, expected_version: int | None, unique_slug: bool, now: datetime
    ) -> Commentary:
        stored: Commentary = await self._transact(
            self.writes.update, item=item, expected_version=expected_version, unique_slug=unique_slug, now=now
        )
        return stored

    async def delete_commentary(self, id: str, *, expected_version: int | None, now: datetime) -> int:
        seq: int = await self._transact(self.writes.delete, id=id, expected_version=expected_version, now=now)
        return seq

    async def publish_due(self, now: datetime) -> int:
        count: int = await self._transact(self.writes.publish_due, now=now)
        return count

    async def put_category(self, slug: str, data: CategoryIn, *, now: datetime) -> tuple[Category, bool]:
        created: bool = await self._transact(self.writes.put_category, slug=slug, data=data, now=now)
        return await self.get_category(slug), created

    async def load_copy(self, batch: CopyBatch) -> None:
        await self._transact(self.writes.load_copy, batch=batch)
        self._secret = None  # read anew: what is stored now is what counts
