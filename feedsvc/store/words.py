"""What a word is, for every store: SQLite's FTS5 tokenizer, asked directly.

SqliteStore's full-text index splits text with FTS5's ``unicode61`` tokenizer; PostgresStore
stores and queries the very same words, and related commentaries (feedsvc.store.related)
compare titles word by word on both stores. One definition, taken from SQLite itself, is
what makes the stores agree down to case folding, diacritics and every Unicode edge SQLite
has an opinion on.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Iterable

FTS_TOKENIZER = "unicode61 remove_diacritics 2"
"""The tokenizer of SqliteStore's FTS5 table (migrations/sqlite.py): what a word is."""


class Words:
    """Splits text into words exactly as SqliteStore's FTS5 index does, by asking SQLite's
    own tokenizer (an in-memory FTS5 table and its ``fts5vocab`` view). Thread-safe."""

    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute(f"CREATE VIRTUAL TABLE t USING fts5 (x, content = '', tokenize = '{FTS_TOKENIZER}')")
        self._db.execute("CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance')")
        self._primed: dict[str, list[str]] = {}

    def prime(self, texts: Iterable[str]) -> None:
        """Split ``texts`` in one pass and answer ``split`` from that until the next
        ``prime``: a bulk import primes a batch's titles, one pass instead of one per
        record (splitting them one by one was a sixth of writing a commentary)."""
        unique = list(dict.fromkeys(texts))
        self._primed = dict(zip(unique, self.split(unique), strict=True))

    def split(self, texts: Iterable[str]) -> list[list[str]]:
        """The words of each text, in order, case-folded and without diacritics."""
        texts = list(texts)
        primed = self._primed
        if primed and all(t in primed for t in texts):
            return [list(primed[t]) for t in texts]
        rows = list(enumerate(texts, start=1))
        out: list[list[str]] = [[] for _ in rows]
        with self._lock:
            try:
                self._db.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)", rows)
                for doc, term in self._db.execute("SELECT doc, term FROM v ORDER BY doc, offset"):
                    out[doc - 1].append(term)
            finally:
                self._db.execute("INSERT INTO t (t) VALUES ('delete-all')")
        return out

    def close(self) -> None:
        self._db.close()


@functools.cache
def shared() -> Words:
    """One tokenizer for the whole process, made on first use (a Words is thread-safe)."""
    return Words()
