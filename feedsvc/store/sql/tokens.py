"""Tokens, the shared secret and category reads, for either engine."""

from __future__ import annotations

import secrets
from datetime import datetime

from feedsvc.errors import NotFoundError
from feedsvc.model import Category, TokenInfo, to_us
from feedsvc.store.records import (
    CATEGORY,
    TOKEN,
    TOKEN_INFO,
    TokenRecord,
    category,
    token_info,
    token_record,
    token_values,
)
from feedsvc.store.sql.base import SqlBase

UPSERT_TOKEN = f"INSERT INTO tokens ({TOKEN.sql}) VALUES ({', '.join('?' * len(TOKEN.names))})" + (
    " ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in TOKEN.names[1:])
)
"""A token as stored elsewhere, replacing the one with its id (copies between stores)."""


class TokenStore(SqlBase):
    """``Tokens``, and the token read of ``Copy``."""

    async def add_token(self, record: TokenRecord) -> None:
        await self._write_rows(
            f"INSERT INTO tokens ({TOKEN.sql}) VALUES ({', '.join('?' * len(TOKEN.names))})", token_values(record)
        )

    async def get_token(self, id: str) -> TokenRecord:
        row = await self._row(f"SELECT {TOKEN.sql} FROM tokens WHERE id = ?", (id,))
        if row is None:
            raise NotFoundError(f"no token {id}")
        return token_record(row)

    async def get_tokens(self) -> list[TokenInfo]:
        rows = await self._rows(f"SELECT {TOKEN_INFO.sql} FROM tokens ORDER BY created_us DESC, id DESC")
        return [token_info(r) for r in rows]

    async def revoke_token(self, id: str, *, now: datetime) -> TokenInfo:
        rows = await self._write_rows(
            f"UPDATE tokens SET revoked_us = coalesce(revoked_us, ?) WHERE id = ? RETURNING {TOKEN_INFO.sql}",
            (to_us(now), id),
        )
        if not rows:
            raise NotFoundError(f"no token {id}")
        return token_info(rows[0])

    async def get_token_records(self) -> list[TokenRecord]:
        return [token_record(r) for r in await self._rows(f"SELECT {TOKEN.sql} FROM tokens ORDER BY id")]

    async def get_secret(self) -> bytes:
        if self._secret is None:
            row = await self._row("SELECT value FROM meta WHERE key = 'secret'")
            if row is None:
                # Two nodes making one at once: the first one stored wins, for both.
                await self._write_rows(
                    "INSERT INTO meta (key, value) VALUES ('secret', ?) ON CONFLICT (key) DO NOTHING",
                    (secrets.token_bytes(32),),
                )
                row = await self._row("SELECT value FROM meta WHERE key = 'secret'")
            self._secret = bytes(row[0])
        return self._secret


class CategoryReads(SqlBase):
    """The category reads of ``Reader``."""

    def _categories_sql(self, where: str = "") -> str:
        stored = ", ".join(f"k.{name}" for name in CATEGORY.names if name != "count")
        count = f"(SELECT count(*) FROM commentaries c WHERE c.category = k.slug AND {self.dialect.public('c')})"
        return f"SELECT {stored}, {count} AS count FROM categories k{where}"

    async def get_categories(self) -> list[Category]:
        return [category(r) for r in await self._rows(self._categories_sql(" ORDER BY k.slug"))]

    async def get_category(self, slug: str) -> Category:
        row = await self._row(self._categories_sql(" WHERE k.slug = ?"), (slug,))
        if row is None:
            raise NotFoundError(f"no category {slug}")
        return category(row)
