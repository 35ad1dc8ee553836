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
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from feedsvc.errors import ConflictError, InvalidInputError, StorageBusyError, StorageError
from feedsvc.model import Commentary, to_us
from feedsvc.store import related
from feedsvc.store.records import Columns, CopyBatch, decode_commentary, encode
from feedsvc.store.sql import copy, rules
from feedsvc.store.sql.dialect import SQLITE
from feedsvc.store.sql.digests import MARK_UPSERT
from feedsvc.text import html_to_text

DUE = Columns("rowid", "doc")
_T = TypeVar("_T")


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


def _scalar(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> Any:
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
            seq = _append_change(conn, "commentary", item.id, what, public_op, now)
            item = msgspec.structs.replace(item, version=seq)
            _insert_row(conn, item, public, rowid=rowid)
            if public:
                _set_change_doc(conn, seq, item)
            return item
        case rules.Drop(rowid, now):
            _mark_digest(conn, rowid, now)
            _delete_row(conn, rowid)
    return None


def publish_due(conn: sqlite3.Connection, now: datetime) -> int:
    """``publish_due``: scheduled commentaries whose time has come turn public."""
    rows = conn.execute(
        f"SELECT {DUE.sql} FROM commentaries WHERE public = 0 AND status = 'published' AND pub_us <= ?"
        " ORDER BY pub_us, id",
        (to_us(now),),
    ).fetchall()
    for row in rows:
        rowid = row[DUE.at["rowid"]]
        item = decode_commentary(row[DUE.at["doc"]])
        seq = _append_change(conn, "commentary", item.id, "updated", "created", now)
        item = msgspec.structs.replace(item, version=seq)
        conn.execute(
            "UPDATE commentaries SET public = 1, version = ?, doc = ? WHERE rowid = ?", (seq, encode(item), rowid)
        )
        _mark_digest(conn, rowid, now)
        _insert_related_keys(conn, item, rowid)
        _set_change_doc(conn, seq, item)
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
        _insert_row(conn, item, stored.public, rowid=rowids.get(item.id))
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


def _set_change_doc(conn: sqlite3.Connection, seq: int, item: Commentary) -> None:
    conn.execute("UPDATE changes SET doc = ? WHERE seq = ?", (encode(item), seq))


def _insert_row(conn: sqlite3.Connection, item: Commentary, public: bool, rowid: int | None = None) -> None:
    cur = conn.execute(
        "INSERT INTO commentaries (rowid, id, lang, slug, translation_key, category, status, trend,"
        " pub_us, pub_date, updated_us, period_start, period_end, version, public, doc)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            rowid, item.id, item.lang, item.slug, item.translation_key, item.category, item.status,
            item.trend, to_us(item.published_at), item.published_at.date().isoformat(),
            to_us(item.updated_at),
            item.period.start.isoformat() if item.period else None,
            item.period.end.isoformat() if item.period else None,
            item.version, int(public), encode(item),
        ),
    )
    cid = cur.lastrowid
    tags = {t.casefold(): t for t in item.tags}
    conn.executemany(
        "INSERT INTO commentary_tags (cid, tag, tag_key) VALUES (?, ?, ?)", [(cid, t, k) for k, t in tags.items()]
    )
    authors = {a.name.casefold(): a.name for a in item.authors}
    conn.executemany(
        "INSERT INTO commentary_authors (cid, name, name_key) VALUES (?, ?, ?)",
        [(cid, n, k) for k, n in authors.items()],
    )
    if public:
        _insert_related_keys(conn, item, cid)
    conn.execute(
        "INSERT INTO commentaries_fts (rowid, title, summary, body, tags, authors) VALUES (?, ?, ?, ?, ?, ?)",
        (
            cid, item.title, item.summary, html_to_text(item.body_html), " ".join(item.tags),
            " ".join(a.name for a in item.authors),
        ),
    )


def _insert_related_keys(conn: sqlite3.Connection, item: Commentary, cid: int | None) -> None:
    """The related keys (feedsvc.store.related) of a commentary that is public now."""
    pub_us = to_us(item.published_at)
    conn.executemany(
        "INSERT INTO related_keys (lang, key, pub_us, id, translation_key, cid) VALUES (?, ?, ?, ?, ?, ?)",
        [(item.lang, key, pub_us, item.id, item.translation_key, cid) for key in related.stored_keys(item)],
    )


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
