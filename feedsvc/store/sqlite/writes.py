"""SQLite's writes: plain synchronous functions ``fn(conn, ...)`` run inside one write
transaction on the writer thread (as datasette's ``execute_write_fn``).

The shared writes (feedsvc.store.sql.rules) run here through ``apply``, their requests
answered by plain calls on the connection; ``add_commentary`` and the bulk import's
record-by-record path (feedsvc.store.sqlite.bulk) run the very same ``rules.add``. Nothing
here awaits, so a whole transaction costs one trip to the writer thread.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import msgspec

from feedsvc.errors import ConflictError, InvalidInputError, StorageBusyError, StorageError
from feedsvc.model import Commentary, to_us
from feedsvc.store import related
from feedsvc.store.bulk_rows import ImportRow, import_row
from feedsvc.store.records import Columns, CopyBatch, decode_commentary, encode
from feedsvc.store.sql import copy, rules
from feedsvc.store.sql.dialect import SQLITE
from feedsvc.store.sql.digests import MARK_UPSERT

DUE = Columns("rowid", "doc")
_T = TypeVar("_T")

INSERT_CHANGE = "INSERT INTO changes (seq, kind, ref, op, public_op, at_us, doc) VALUES (?, ?, ?, ?, ?, ?, ?)"
INSERT_RELATED_KEY = (
    "INSERT INTO related_keys (lang, key, pub_us, id, translation_key, cid) VALUES (?, ?, ?, ?, ?, ?)"
)
# The largest rowid and change number: the next INSERTs would take the ones after them
# (AUTOINCREMENT's counter may be above the largest seq). A write that gives them itself can
# write the change with its document at once, and the rows of a whole batch in one go.
LAST_NUMBERS = (
    "SELECT (SELECT coalesce(max(rowid), 0) FROM commentaries),"
    " max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0),"
    " coalesce((SELECT max(seq) FROM changes), 0))"
)


class Placed(NamedTuple):
    """A commentary's rows as ``insert_rows`` writes them: its ``ImportRow`` with what the
    transaction decided (rowid, slug, version, public, the document with that version)."""

    cid: int
    row: ImportRow
    slug: str
    version: int
    public: bool
    doc: bytes


def wrap(e: sqlite3.Error) -> Exception:
    """Driver errors stop here: map them onto the feedsvc error tree."""
    text = str(e).lower()
    if isinstance(e, sqlite3.IntegrityError):
        if "foreign key" in text:
            return InvalidInputError("unknown category", field="category")
        return ConflictError(f"conflict: {e}")
    if isinstance(e, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text or "full" in text or "disk i/o" in text
    ):
        return StorageBusyError(f"database unavailable: {e}")
    return StorageError(f"database error: {e}")


def transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], _T]) -> _T:
    """``fn(conn)`` as one write transaction, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _scalar(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def apply(conn: sqlite3.Connection, rule: rules.Rule[_T]) -> _T:
    """A shared write (feedsvc.store.sql.rules) on ``conn``, inside its transaction."""
    return rules.drive(rule, functools.partial(_do, conn))


def _do(conn: sqlite3.Connection, op: rules.Op) -> Any:
    """What a shared write asks for, done on ``conn``."""
    match op:
        case rules.One(sql, params):
            return conn.execute(sql, params).fetchone()
        case rules.Run(sql, params):
            conn.execute(sql, params)
        case rules.Change(kind, ref, what, public_op, now):
            return _append_change(conn, kind, ref, what, public_op, now)
        case rules.Put(item, public, what, public_op, now, rowid):
            # The bulk import's path (insert_rows), for one commentary.
            last_rowid, last_seq = conn.execute(LAST_NUMBERS).fetchone()
            seq = last_seq + 1
            placed = _placed(item, public, rowid if rowid is not None else last_rowid + 1, seq)
            conn.execute(INSERT_CHANGE, (seq, "commentary", item.id, what, public_op, to_us(now),
                                         placed.doc if public else None))
            insert_rows(conn, [placed])
            return msgspec.structs.replace(item, version=seq)
        case rules.Drop(rowid, now):
            _mark_digest(conn, rowid, now)
            _delete_row(conn, rowid)
    return None


def _placed(item: Commentary, public: bool, rowid: int, version: int) -> Placed:
    """``item``'s rows at ``rowid``, with ``version``."""
    row = import_row(item, unique_slug=False)
    return Placed(rowid, row, item.slug, version, public, row.document(version))


def insert_rows(conn: sqlite3.Connection, rows: Sequence[Placed]) -> None:
    """The rows of commentaries, their tags, authors, related keys (those public) and
    full-text rows, one statement a table: what every write of a commentary writes (a
    single one, a bulk import's batch, a copy)."""
    conn.executemany(
        "INSERT INTO commentaries (rowid, id, lang, slug, translation_key, category, status, trend,"
        " pub_us, pub_date, updated_us, period_start, period_end, version, public, doc)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (p.cid, r.id, r.lang, p.slug, r.translation_key, r.category, r.status, r.trend, r.pub_us,
             r.pub_date, r.updated_us, r.period_start, r.period_end, p.version, int(p.public), p.doc)
            for p in rows for r in (p.row,)
        ],
    )
    conn.executemany(
        "INSERT INTO commentary_tags (cid, tag, tag_key) VALUES (?, ?, ?)",
        [(p.cid, tag, key) for p in rows for tag, key in p.row.tags],
    )
    conn.executemany(
        "INSERT INTO commentary_authors (cid, name, name_key) VALUES (?, ?, ?)",
        [(p.cid, name, key) for p in rows for name, key in p.row.authors],
    )
    conn.executemany(INSERT_RELATED_KEY, [
        (r.lang, key, r.pub_us, r.id, r.translation_key, p.cid)
        for p in rows if p.public for r in (p.row,) for key in r.related_keys
    ])
    conn.executemany(
        "INSERT INTO commentaries_fts (rowid, title, summary, body, tags, authors) VALUES (?, ?, ?, ?, ?, ?)",
        [(p.cid, *p.row.fts) for p in rows],
    )


def publish_due(conn: sqlite3.Connection, now: datetime) -> int:
    """``publish_due``: scheduled commentaries whose time has come turn public."""
    rows = conn.execute(
        f"SELECT {DUE.sql} FROM commentaries WHERE public = 0 AND status = 'published' AND pub_us <= ?"
        " ORDER BY pub_us, id",
        (to_us(now),),
    ).fetchall()
    for row in rows:
        rowid, seq = row[DUE.at["rowid"]], conn.execute(LAST_NUMBERS).fetchone()[1] + 1
        item = msgspec.structs.replace(decode_commentary(row[DUE.at["doc"]]), version=seq)
        doc = encode(item)
        conn.execute(INSERT_CHANGE, (seq, "commentary", item.id, "updated", "created", to_us(now), doc))
        conn.execute("UPDATE commentaries SET public = 1, version = ?, doc = ? WHERE rowid = ?", (seq, doc, rowid))
        _mark_digest(conn, rowid, now)
        conn.executemany(INSERT_RELATED_KEY, [
            (item.lang, key, to_us(item.published_at), item.id, item.translation_key, rowid)
            for key in related.stored_keys(item)
        ])
    return len(rows)


def load_copy(conn: sqlite3.Connection, batch: CopyBatch) -> None:
    """``load_copy``: each commentary replaces the row of its id (keeping its rowid) and
    any stale one holding its language and slug."""
    _run(conn, copy.before_commentaries(batch))
    rowids: dict[str, int] = {}
    for id in [*batch.removed, *(c.item.id for c in batch.commentaries)]:
        rowid = _scalar(conn, "SELECT rowid FROM commentaries WHERE id = ?", (id,))
        if rowid is not None:
            _delete_row(conn, rowid)
            rowids[id] = rowid
    for stored in batch.commentaries:
        item = stored.item
        stale = _scalar(conn, "SELECT rowid FROM commentaries WHERE lang = ? AND slug = ?", (item.lang, item.slug))
        if stale is not None:
            _delete_row(conn, stale)
        rowid = rowids.get(item.id) or conn.execute(LAST_NUMBERS).fetchone()[0] + 1
        insert_rows(conn, [_placed(item, stored.public, rowid, item.version)])
    # An explicit seq also moves AUTOINCREMENT's counter (sqlite_sequence) up to it, so the
    # next write here gets the number after the copied ones.
    _run(conn, copy.after_commentaries(batch, SQLITE))


def _run(conn: sqlite3.Connection, statements: copy.Statements) -> None:
    for sql, rows in statements:
        conn.executemany(sql, rows)


def _append_change(
    conn: sqlite3.Connection, kind: str, ref: str, op: str, public_op: str | None, now: datetime
) -> int:
    cur = conn.execute(
        "INSERT INTO changes (kind, ref, op, public_op, at_us) VALUES (?, ?, ?, ?, ?)",
        (kind, ref, op, public_op, to_us(now)),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def _mark_digest(conn: sqlite3.Connection, rowid: int, now: datetime) -> None:
    """Note ``now`` on the weekly digest of a row that is public and has a period (issue 9):
    called before the row is replaced or deleted, and once it turned public when due, so
    the digest's updated time moves though none of the commentaries left in it changed."""
    conn.execute(
        "INSERT INTO digest_marks (lang, period_start, left_us)"
        " SELECT lang, period_start, ? FROM commentaries WHERE rowid = ? AND public = 1 AND period_start IS NOT NULL"
        + MARK_UPSERT.format(greatest=SQLITE.greatest),
        (to_us(now), rowid),
    )


def _delete_row(conn: sqlite3.Connection, rowid: int) -> None:
    conn.execute("DELETE FROM commentaries_fts WHERE rowid = ?", (rowid,))
    conn.execute("DELETE FROM commentaries WHERE rowid = ?", (rowid,))
