"""Reads of commentaries, for either engine: by id or slug, pages, view stamps,
translations, related ones, counts, and everything in chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from feedsvc.errors import NotFoundError
from feedsvc.model import Commentary, Count, from_us
from feedsvc.query import Query
from feedsvc.store import related
from feedsvc.store.records import Columns, StoredCommentary, ViewStamp, decode_commentary
from feedsvc.store.sql.base import Rows, SqlBase

STAMP = Columns("c.id", "c.version", "c.translation_key", "c.category", "c.updated_us")
"""What a view stamp reads of each commentary of a page."""
CHUNK = 1000
"""Commentaries read per query by ``iter_all_commentaries``."""


class CommentaryReads(SqlBase):
    """The read side of ``Reader`` for commentaries, and ``iter_all_commentaries``."""

    async def _page(self, query: Query, columns: str, rows: Rows | None = None) -> list[Any]:
        """``columns`` (of commentaries ``c``) of the page ``query`` asks for: the engine's
        own, since full-text search is. ``rows``, when given, runs statements in the
        caller's snapshot."""
        raise NotImplementedError

    async def get_commentary(self, id: str, *, public_only: bool) -> Commentary:
        public = f" AND {self.dialect.public()}" if public_only else ""
        row = await self._row(f"SELECT doc FROM commentaries WHERE id = ?{public}", (id,))
        if row is None:
            raise NotFoundError(f"no commentary with id {id}")
        return decode_commentary(row[0])

    async def get_commentary_by_slug(self, lang: str, slug: str, *, public_only: bool) -> Commentary:
        public = f" AND {self.dialect.public()}" if public_only else ""
        row = await self._row(f"SELECT doc FROM commentaries WHERE lang = ? AND slug = ?{public}", (lang, slug))
        if row is None:
            raise NotFoundError(f"no commentary with slug {slug} in {lang}")
        return decode_commentary(row[0])

    async def get_slug_languages(self, slug: str) -> list[str]:
        rows = await self._rows(
            f"SELECT lang FROM commentaries WHERE slug = ? AND {self.dialect.public()} ORDER BY lang", (slug,)
        )
        return [r[0] for r in rows]

    async def get_commentaries(self, query: Query) -> list[Commentary]:
        rows = await self._page(query, "c.doc")
        return [decode_commentary(r[0]) for r in rows]

    async def get_view_stamp(self, query: Query) -> ViewStamp:
        d, at = self.dialect, STAMP.at
        async with self._snapshot(strict=False) as rows:
            page = await self._page(query, STAMP.sql, rows)
            keys = sorted({r[at["translation_key"]] for r in page if r[at["translation_key"]]})
            categories = sorted({r[at["category"]] for r in page})
            versions: list[tuple[str, int]] = [(r[at["id"]], r[at["version"]]) for r in page]
            if keys:
                # Translation links render inside items, so their versions count too.
                among, params = d.among("translation_key", keys)
                found = await rows(
                    f"SELECT id, version FROM commentaries WHERE {d.public()} AND {among} ORDER BY id", params
                )
                versions += [("t:" + r[0], r[1]) for r in found]
            if categories:
                among, params = d.among("slug", categories)
                found = await rows(f"SELECT slug, version FROM categories WHERE {among} ORDER BY slug", params)
                versions += [("c:" + r[0], r[1]) for r in found]
        updated = max((r[at["updated_us"]] for r in page), default=None)
        return ViewStamp(tuple(versions), from_us(updated) if updated is not None else None)

    async def get_translations(self, keys: list[str]) -> dict[str, list[Commentary]]:
        if not keys:
            return {}
        d = self.dialect
        among, params = d.among("translation_key", keys)
        rows = await self._rows(
            f"SELECT translation_key, doc FROM commentaries WHERE {d.public()} AND {among} ORDER BY lang, id", params
        )
        out: dict[str, list[Commentary]] = {}
        for key, doc in rows:
            out.setdefault(key, []).append(decode_commentary(doc))
        return out

    async def _related_windows(self, probes: Sequence[related.Probe]) -> list[list[tuple[str, int, int]]]:
        """For each probe, the (id, pub_us, key position) rows of its keys' windows
        (feedsvc.store.related): each engine reads them in its own few statements."""
        raise NotImplementedError

    async def get_related(self, items: Sequence[Commentary], limit: int) -> list[list[tuple[Commentary, float]]]:
        probes = [related.probe(item) for item in items]
        if not probes:
            return []
        found = await self._related_windows(probes)
        ranked = [related.rank(p, rows, limit) for p, rows in zip(probes, found, strict=True)]
        wanted = sorted({id for best in ranked for id, _ in best})
        docs: dict[str, Commentary] = {}
        if wanted:
            among, params = self.dialect.among("id", wanted)
            rows = await self._rows(
                f"SELECT id, doc FROM commentaries WHERE {self.dialect.public()} AND {among}", params
            )
            docs = {r[0]: decode_commentary(r[1]) for r in rows}
        return [[(docs[id], score) for id, score in best if id in docs] for best in ranked]

    async def get_tag_counts(self) -> list[Count]:
        return await self._counts("commentary_tags", "tag", "tag_key")

    async def get_author_counts(self) -> list[Count]:
        return await self._counts("commentary_authors", "name", "name_key")

    async def _counts(self, table: str, name: str, key: str) -> list[Count]:
        """Names of public commentaries' tags or authors (one spelling each) with their
        counts, most used first, ties by key."""
        rows = await self._rows(
            f"SELECT min(t.{name}), count(*) AS n FROM {table} t JOIN commentaries c ON c.{self.dialect.rowid} = t.cid"
            f" WHERE {self.dialect.public('c')} GROUP BY t.{key} ORDER BY n DESC, t.{key}"
        )
        return [Count(name=r[0], count=r[1]) for r in rows]

    async def get_language_counts(self) -> list[Count]:
        rows = await self._rows(
            f"SELECT lang, count(*) AS n FROM commentaries WHERE {self.dialect.public()}"
            " GROUP BY lang ORDER BY n DESC, lang"
        )
        return [Count(name=r[0], count=r[1]) for r in rows]

    async def iter_all_commentaries(self) -> AsyncIterator[Commentary]:
        after = ""
        while True:
            rows = await self._rows("SELECT id, doc FROM commentaries WHERE id > ? ORDER BY id LIMIT ?", (after, CHUNK))
            for row in rows:
                yield decode_commentary(row[1])
            if len(rows) < CHUNK:
                return
            after = rows[-1][0]

    async def get_stored_commentaries(
        self, *, after: str = "", ids: Sequence[str] | None = None, limit: int
    ) -> list[StoredCommentary]:
        among, params = self.dialect.among("id", ids) if ids else ("", [])
        if ids is not None and not ids:
            return []
        rows = await self._rows(
            f"SELECT doc, public FROM commentaries WHERE id > ?{' AND ' + among if among else ''} ORDER BY id LIMIT ?",
            [after, *params, limit],
        )
        return [StoredCommentary(item=decode_commentary(r[0]), public=bool(r[1])) for r in rows]
