"""SQLite's bulk import (``feedsvc import``): rows built off the writer, written a batch at a time.

Writing a commentary through ``add_commentary`` costs ten statements and as many
encodings and text extractions on the one writer thread. A bulk import splits that work:

* ``import_rows`` (feedsvc.store.bulk_rows) turns each commentary into an ``ImportRow``: every value its rows hold
  except the three only the transaction knows (its rowid, its change sequence number and
  whether it is public at the moment of writing), with the document encoded, the full-text
  index's text extracted and the related keys found. It is pure, so ``feedsvc import`` runs
  it in its worker processes, beside the Markdown and sanitising, and ships the rows back
  as MessagePack (no datetimes in them, so nothing is lost on the way).
* ``write_rows`` writes a batch of them in the transaction it is given: the rules
  ``add_commentary`` checks (known category, new id, free slug, suffixed when allowed) are
  checked for the whole batch in Python against two queries, then each table gets one
  ``executemany`` (``writes.insert_rows``, which a single write runs for its one row too).
  The rowids and sequence numbers are the ones one-by-one writes take (``max(rowid) + 1``
  for the commentaries, AUTOINCREMENT's next number for the change log, in order), so the
  tables end up holding exactly the same rows (tests/test_bulk_import.py compares every
  table and the full-text index's terms).

A rule only the database knows (a trigger, a constraint added later) surfaces as
``sqlite3.IntegrityError`` from a statement that holds the whole batch; the caller then rolls
back and writes the batch again a record at a time through ``rules.add`` (what
``add_commentary`` runs), each in a savepoint, so that the record fails alone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

import msgspec

from feedsvc.errors import FeedsvcError
from feedsvc.model import to_us
from feedsvc.store import words
from feedsvc.store.bulk_rows import Imported, ImportRow
from feedsvc.store.sql import rules
from feedsvc.store.sqlite import writes

_encode = msgspec.json.Encoder().encode


def write_rows(
    conn: Any, rows: Sequence[ImportRow], categories: set[str], now: datetime
) -> list[Imported | FeedsvcError]:
    """Store ``rows`` in the open write transaction of ``conn`` (a ``sqlite3.Connection``),
    each as ``add_commentary`` would at ``now``; a row that breaks a rule gets the error
    ``add_commentary`` raises instead, and nothing of it is written.

    Raises:
        sqlite3.IntegrityError: the database refused a row (see the module docstring); part
            of the batch may be written, so the caller rolls the transaction back.
    """
    taken_ids = {
        r[0] for r in conn.execute(
            "SELECT id FROM commentaries WHERE id IN (SELECT value FROM json_each(?))",
            (_encode([r.id for r in rows]).decode(),),
        )
    }
    taken_slugs: set[tuple[str, str]] = set(conn.execute(
        "SELECT lang, slug FROM commentaries WHERE (lang, slug) IN"
        " (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))",
        (_encode([(r.lang, r.slug) for r in rows]).decode(),),
    ))
    cid, seq = conn.execute(writes.LAST_NUMBERS).fetchone()
    now_us = to_us(now)
    results: list[Imported | FeedsvcError] = []
    changes: list[tuple[Any, ...]] = []
    placed: list[writes.Placed] = []
    for row in rows:
        if (refused := rules.import_refusal(row, categories, taken_ids, taken_slugs)) is not None:
            results.append(refused)
            continue
        slug = row.slug
        if (row.lang, slug) in taken_slugs:
            slug = _free_slug(conn, row, taken_slugs)
        taken_ids.add(row.id)
        taken_slugs.add((row.lang, slug))
        cid += 1
        seq += 1
        public = row.status == "published" and row.pub_us <= now_us
        if slug == row.slug:
            doc = row.document(seq)
        else:
            doc = _encode(msgspec.structs.replace(row.commentary(), slug=slug, version=seq))
        results.append(Imported(seq, slug))
        changes.append((seq, "commentary", row.id, "created", "created" if public else None, now_us,
                        doc if public else None))
        placed.append(writes.Placed(cid, row, slug, seq, public, doc))
    conn.executemany(writes.INSERT_CHANGE, changes)
    writes.insert_rows(conn, placed)
    return results


def _write_isolated(
    conn: sqlite3.Connection, rows: list[ImportRow], categories: set[str], now: datetime
) -> list[Imported | FeedsvcError]:
    """The batch record by record, each in a SAVEPOINT and through ``rules.add``, the
    write add_commentary runs, so a record the database refuses fails alone."""
    items = [row.commentary() for row in rows]
    words.shared().prime(item.title for item in items)  # for the related keys
    results: list[Imported | FeedsvcError] = []
    for row, item in zip(rows, items, strict=True):
        if item.category not in categories:
            results.append(rules.unknown_category(item.category))
            continue
        conn.execute("SAVEPOINT import_record")
        try:
            stored = writes.apply(conn, rules.add(item, unique_slug=row.unique_slug, now=now))
        except (FeedsvcError, sqlite3.IntegrityError) as e:
            conn.execute("ROLLBACK TO import_record")
            conn.execute("RELEASE import_record")
            error = writes.wrap(e) if isinstance(e, sqlite3.IntegrityError) else e
            assert isinstance(error, FeedsvcError)
            results.append(error)
            continue
        conn.execute("RELEASE import_record")
        results.append(Imported(stored.version, stored.slug))
    return results


def _free_slug(conn: Any, row: ImportRow, taken: set[tuple[str, str]]) -> str:
    """The slug ``rules.settle_slug`` would give ``row``: suffixed -2, -3, ... until free, in the
    database and among the rows of this batch written before it."""
    base, n, slug = row.slug, 1, row.slug
    while (row.lang, slug) in taken or conn.execute(
        "SELECT 1 FROM commentaries WHERE lang = ? AND slug = ?", (row.lang, slug)
    ).fetchone():
        n += 1
        slug = rules.next_slug(base, n)
    return slug


def connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection for writes, usable from the thread that runs them."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


class Connection:
    """The import's own connection to the database, and a thread that checkpoints behind it.

    With SQLite's autocheckpoint, the commit of a batch also copied every page the batch
    wrote from the WAL into the database file and fsynced that: 0.1 ms a commentary, a
    fifth of the writer's time, with nothing written meanwhile. Here the checkpoint runs in
    a thread of its own, on a connection of its own, while the next batch is written. How a
    batch reaches the disk is unchanged: its commit is in the WAL and the WAL fsynced
    (synchronous=FULL) when ``write_rows``' transaction returns; the checkpoint only moves it
    on into the database file, as autocheckpoint did, just later. The WAL can start over
    from its beginning only once a checkpoint has copied all of it, so once it holds more
    than ``max_wal_pages``, the next batch waits for the checkpoint before it begins.
    """

    def __init__(self, path: str, *, busy_timeout_ms: int, cache_kib: int, max_wal_pages: int) -> None:
        self.conn = connect(path, busy_timeout_ms)
        self.conn.execute(f"PRAGMA cache_size = -{cache_kib}")
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._checkpointer = connect(path, busy_timeout_ms)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="feedsvc-import-checkpoint")
        self._checkpointing: Future[int | None] | None = None
        self._max_wal_pages = max_wal_pages
        self._wal_pages = 0
        """Pages in the WAL when the last checkpoint ran."""

    def write_batch(self, rows: list[ImportRow], now: datetime) -> list[Imported | FeedsvcError]:
        """Write one batch (on the writer thread, inside the store's write lock, so one
        batch at a time uses this connection): all of it in one go, or, when the database
        refused a record, record by record (see the module docstring)."""
        self.before_batch()

        def categories(conn: sqlite3.Connection) -> set[str]:
            return {row[0] for row in conn.execute("SELECT slug FROM categories")}

        try:
            results = writes.transaction(self.conn, lambda c: write_rows(c, rows, categories(c), now))
        except sqlite3.IntegrityError:
            results = writes.transaction(self.conn, lambda c: _write_isolated(c, rows, categories(c), now))
        self.after_commit()
        return results

    def before_batch(self) -> None:
        """Wait for the checkpoint if the WAL has grown too long (see the class docstring)."""
        if self._wal_pages > self._max_wal_pages:
            self._wait()
            self._wal_pages = 0  # copied whole: the next commit starts it over

    def after_commit(self) -> None:
        """Have what the batch wrote copied into the database file, in the background."""
        self._wait()  # one checkpoint at a time
        self._checkpointing = self._thread.submit(self._checkpoint)

    def _checkpoint(self) -> int | None:
        try:
            pages: int = self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        except sqlite3.Error:
            # Nothing is lost: the batches are in the WAL and the next checkpoint copies
            # them; a database that cannot be written fails the next batch itself.
            return None
        return pages

    def _wait(self) -> None:
        if self._checkpointing is not None:
            pages, self._checkpointing = self._checkpointing.result(), None
            if pages is not None:
                self._wal_pages = pages

    def close(self) -> None:
        """Wait for the checkpoint, then close both connections."""
        try:
            self._wait()
        finally:
            self._thread.shutdown()
            self._checkpointer.close()
            self.conn.close()
