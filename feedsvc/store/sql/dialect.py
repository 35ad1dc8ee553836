"""What the two engines spell differently, and nothing else.

Shared statements are written once, with ``?`` placeholders and the dialect's words for
the rest; ``Dialect.sql`` turns them into the engine's own text (PostgreSQL numbers its
placeholders ``$1, $2...``), once per statement text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import date
from typing import Any


class Dialect:
    """SQLite's spelling; ``PostgresDialect`` overrides what PostgreSQL says otherwise."""

    name = "sqlite"
    rowid = "rowid"
    """The column that numbers commentaries for their tags, authors and search rows."""
    greatest = "max"
    """The function that returns the greater of its arguments."""

    def public(self, alias: str = "") -> str:
        """The condition that a commentary (of ``alias``, when given) is public. Spelled as
        the partial indexes are, so that the planner can use them."""
        return f"{alias}.public = 1" if alias else "public = 1"

    def hidden(self) -> str:
        """The condition that a commentary is not public (yet)."""
        return "public = 0"

    def flag(self, value: bool) -> Any:
        """The stored form of a boolean column's value."""
        return int(value)

    def among(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column`` is one of ``values`` (not empty): the condition and its parameters."""
        return f"{column} IN ({','.join('?' * len(values))})", list(values)

    def typed(self, type: str) -> str:
        """A placeholder whose type the engine cannot infer by itself (``bigint``, ``text``)."""
        return "?"

    def day(self, value: date) -> Any:
        """A date as a parameter (SQLite stores dates as ISO text)."""
        return value.isoformat()

    def read_day(self, value: Any) -> date:
        """A date column's value as a date."""
        return date.fromisoformat(value)

    def sql(self, text: str) -> str:
        """The statement as this engine takes it."""
        return text


class PostgresDialect(Dialect):
    """PostgreSQL's spelling (``$n`` placeholders, booleans, arrays, dates)."""

    name = "postgres"
    rowid = "cid"
    greatest = "greatest"

    def public(self, alias: str = "") -> str:
        return f"{alias}.public" if alias else "public"

    def hidden(self) -> str:
        return "NOT public"

    def flag(self, value: bool) -> Any:
        return value

    def among(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?::text[])", [list(values)]

    def typed(self, type: str) -> str:
        return f"?::{type}"

    def day(self, value: date) -> Any:
        return value

    def read_day(self, value: Any) -> date:
        assert isinstance(value, date)
        return value

    def sql(self, text: str) -> str:
        return _numbered(text)


_PLACEHOLDER = re.compile(r"\?")


@functools.lru_cache(maxsize=1024)
def _numbered(text: str) -> str:
    """``?`` placeholders as ``$1, $2...`` (no shared statement has a ``?`` in a string)."""
    counter = iter(range(1, text.count("?") + 1))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", text)


SQLITE = Dialect()
POSTGRES = PostgresDialect()
