"""Backups and restores of an SQLite database that trust nothing in the backup file.

A backup is an SQLite file, and an SQLite file carries code as well as rows: triggers,
views, column defaults and checks run inside whichever program opens it. A backup that
passed every check of its rows once came with a trigger that cleared ``tokens.revoked_us``,
so a revoked token kept working after the restore. So a restore never serves the backup's
schema. It builds a new file with feedsvc's own migrations (up to the backup's schema
version), copies the rows of each table those migrations make, column by column for the
columns they make, applies the remaining migrations, and only then swaps the new file in.
Anything else the backup holds (triggers, views, tables, indexes or columns the migrations
do not make, a table or index declared otherwise) is left behind and named in the result,
so the operator learns that the file was tampered with.

``inspect`` runs the same comparison without writing anything; ``backup`` runs it on each
copy it writes, so a backup is checkable the way a restore will check it.

Restore is SQLite-only: a PostgreSQL database is restored with its own tools.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from feedsvc.errors import InvalidInputError
from feedsvc.files import create_private, sync_directory
from feedsvc.store.migrations import sqlite as schema
from feedsvc.store.migrations.steps import statements

REQUIRED_TABLES = frozenset({"commentaries", "changes", "categories"})
"""Tables without which a file is not a feedsvc database at all."""

ALIAS = "backup"
"""Name under which the backup file is attached to the connection that copies it."""


@dataclass(frozen=True)
class Checked:
    """What the comparison of a backup with feedsvc's own schema found."""

    version: int
    """The backup's schema version (``PRAGMA user_version``)."""
    left_out: list[str] = field(default_factory=list)
    """Each object of the backup the migrations do not make, as ``"trigger name"``,
    ``"view name"``, ``"table name"``, ``"index name"``, ``"column table.name"`` or
    ``"table name (declared otherwise)"``: a restore does not carry them over."""


@dataclass(frozen=True)
class Restored(Checked):
    """The outcome of ``restore``."""

    kept: Path | None = None
    """Where the previous database was kept (None if there was none to keep)."""
    damaged: str | None = None
    """Why the database replaced could not be read, if it could not: a restore is the
    cure for that, not refused."""


def inspect(source: Path) -> Checked:
    """Check a backup without writing anything.

    Returns the backup's schema version and what a restore would leave out. Raises
    InvalidInputError when the file is not a readable SQLite database, fails
    ``PRAGMA integrity_check``, is not a feedsvc database, has a schema newer than this
    feedsvc's, or lacks a table or column the migrations make.
    """
    conn = _connect(None)
    try:
        version = _attach_checked(conn, source)
        _build(conn, 1, version)
        return Checked(version, _compare(conn, source))
    except sqlite3.DatabaseError as e:
        raise InvalidInputError(f"{source} is not a readable SQLite database: {e}") from None
    finally:
        conn.close()


def restore(source: Path, target: Path) -> Restored:
    """Replace the database at ``target`` with the rows of the backup ``source``.

    The rows are copied into a new file made by the migrations (see the module
    docstring), brought to the current schema version, checked, synced to disk and
    renamed over ``target``; the previous database is kept beside it as
    ``NAME.pre-restore``. Refused (InvalidInputError, nothing changed) when the backup
    fails ``inspect``'s checks, when its rows do not fit the schema (a NULL in a NOT NULL
    column, a row pointing at a missing one), when ``source`` is ``target`` or has a
    write-ahead log beside it, or while anything has ``target`` open.
    """
    if not source.is_file():
        raise InvalidInputError(f"no backup file at {source}")
    if target.exists() and os.path.samefile(source, target):
        raise InvalidInputError("the backup is the database itself")
    wal = Path(f"{source}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise InvalidInputError(
            f"{source} has a write-ahead log beside it, so it is a live database: copy it with `feedsvc backup`"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.restore")
    try:
        checked = _copy_into_new(source, tmp)
        kept, damaged = _swap_in(tmp, target)
    finally:
        for leftover in (tmp, *(Path(f"{tmp}{suffix}") for suffix in ("-journal", "-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
    return Restored(checked.version, checked.left_out, kept, damaged)


async def backup(copy: Callable[[str], Awaitable[None]], database: Path, target: Path) -> Checked:
    """Write a backup of ``database`` to ``target`` and check it as ``restore`` will.

    ``copy(path)`` writes a consistent copy of the live database to ``path`` (the store's
    backup capability). The copy goes to a temporary file created 0600 beside ``target``
    and replaces ``target`` only once it is complete, self-contained (no ``-wal``),
    checked and on disk. Returns what the check found; ``left_out`` not empty means the
    live database holds objects the migrations do not make. Raises InvalidInputError
    when ``target`` is the database itself or the copy fails the check.
    """
    if target.exists() and os.path.samefile(target, database):
        raise InvalidInputError("the backup target is the database itself")
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        for stale in (tmp, *(Path(f"{tmp}{suffix}") for suffix in ("-journal", "-wal", "-shm"))):
            stale.unlink(missing_ok=True)
        create_private(tmp)
        await copy(str(tmp))
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")  # one file, readable as it is
        finally:
            conn.close()
        checked = inspect(tmp)
        _fsync(tmp)
        os.replace(tmp, target)
        sync_directory(target.parent)
    finally:
        for leftover in (tmp, *(Path(f"{tmp}{suffix}") for suffix in ("-journal", "-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
    return checked


# --- the copy -----------------------------------------------------------------------------


def _connect(path: Path | None) -> sqlite3.Connection:
    """A connection on ``path`` (None: in memory) that may attach a file by URI."""
    conn = sqlite3.connect(path.resolve().as_uri() if path else ":memory:", uri=True, isolation_level=None)
    # Functions the backup's schema names (in views, triggers, defaults) are not run while
    # it is attached here; nothing of feedsvc's own schema needs them.
    conn.execute("PRAGMA trusted_schema = OFF")
    conn.execute("PRAGMA foreign_keys = OFF")  # rows arrive table by table; checked at the end
    return conn


def _attach_checked(conn: sqlite3.Connection, source: Path) -> int:
    """Attach ``source`` read-only as ALIAS, check it; return its schema version."""
    # immutable: a backup file is read as it is, without creating -wal/-shm beside it.
    uri = f"{source.resolve().as_uri()}?mode=ro&immutable=1"
    conn.execute(f"ATTACH DATABASE ? AS {ALIAS}", (uri,))
    problems = [row[0] for row in conn.execute(f"PRAGMA {ALIAS}.integrity_check(20)")]
    if problems != ["ok"]:
        raise InvalidInputError(f"{source} fails the integrity check: {'; '.join(problems[:3])}")
    version = int(conn.execute(f"PRAGMA {ALIAS}.user_version").fetchone()[0])
    tables = {row[0] for row in conn.execute(f"SELECT name FROM {ALIAS}.sqlite_master WHERE type = 'table'")}
    if version < 1 or not REQUIRED_TABLES <= tables:
        raise InvalidInputError(f"{source} is an SQLite database but not a feedsvc one")
    if version > schema.VERSION:
        raise InvalidInputError(
            f"{source} has schema {version}, newer than this feedsvc ({schema.VERSION}): upgrade feedsvc first"
        )
    return version


def _build(conn: sqlite3.Connection, first: int, last: int) -> None:
    """Apply migration steps ``first``..``last`` to the main database, each in a transaction."""
    for n in range(first, last + 1):
        conn.execute("BEGIN")
        try:
            for statement in statements(schema.STEPS[n]):
                conn.execute(statement)
            conn.execute(f"PRAGMA main.user_version = {n}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _objects(conn: sqlite3.Connection, db: str) -> dict[tuple[str, str], str | None]:
    """(type, name) -> CREATE statement of every schema object but SQLite's own."""
    rows = conn.execute(f"SELECT type, name, sql FROM {db}.sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
    return {(kind, name): sql for kind, name, sql in rows}


def _columns(conn: sqlite3.Connection, db: str, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA {db}.table_info({_quote(table)})")]


def _tables(conn: sqlite3.Connection) -> list[str]:
    """The main database's tables whose rows are data: not SQLite's, not an FTS index's."""
    rows = conn.execute("PRAGMA main.table_list")
    return sorted(
        name for _, name, kind, *_ in rows if kind in ("table", "virtual") and not name.startswith("sqlite_")
    )


def _compare(conn: sqlite3.Connection, source: Path) -> list[str]:
    """What the attached backup holds beyond the main database's schema (see
    ``Checked.left_out``); InvalidInputError naming each table or column it lacks."""
    expected, found = _objects(conn, "main"), _objects(conn, ALIAS)
    left_out: list[str] = []
    missing: list[str] = []
    for kind, name in sorted(found.keys() - expected.keys()):
        left_out.append(f"{_shown(kind)} {_shown(name)}")
    for kind, name in sorted(expected.keys() & found.keys()):
        if found[kind, name] != expected[kind, name]:
            left_out.append(f"{kind} {name} (declared otherwise)")
    for table in _tables(conn):
        if ("table", table) not in found:
            missing.append(f"table {table}")
            continue
        mine, theirs = _columns(conn, "main", table), _columns(conn, ALIAS, table)
        missing += [f"column {table}.{c}" for c in mine if c not in theirs]
        left_out += [f"column {table}.{_shown(c)}" for c in theirs if c not in mine]
    if missing:
        raise InvalidInputError(
            f"{source} lacks what feedsvc's schema {_version(conn)} has: {', '.join(missing)}"
        )
    return left_out


def _shown(name: str) -> str:
    """A name from the backup as it may be printed: escaped unless plainly printable, so
    that a name made of terminal control sequences cannot hide itself or what follows."""
    return name if name.isascii() and name.isprintable() else ascii(name)


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA main.user_version").fetchone()[0])


def _copy_into_new(source: Path, tmp: Path) -> Checked:
    """Make ``tmp`` a new database holding the backup's rows (module docstring); return
    what the comparison found. The file is synced to disk before this returns."""
    for stale in (tmp, *(Path(f"{tmp}{suffix}") for suffix in ("-journal", "-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    create_private(tmp)
    conn = _connect(tmp)
    try:
        try:
            conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file until served
            version = _attach_checked(conn, source)
            _build(conn, 1, version)
            left_out = _compare(conn, source)
        except sqlite3.DatabaseError as e:
            raise InvalidInputError(f"{source} is not a readable SQLite database: {e}") from None
        try:
            conn.execute("BEGIN")
            for table in _tables(conn):
                _copy_rows(conn, table)
            _copy_sequences(conn)
            conn.execute("COMMIT")
            conn.execute(f"DETACH DATABASE {ALIAS}")
            _build(conn, version + 1, schema.VERSION)
        except sqlite3.DatabaseError as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise InvalidInputError(f"the rows of {source} do not fit feedsvc's schema: {e}") from None
        dangling = sorted({row[0] for row in conn.execute("PRAGMA main.foreign_key_check")})
        if dangling:
            raise InvalidInputError(f"{source} has rows that point at rows it lacks, in {', '.join(dangling)}")
        problems = [row[0] for row in conn.execute("PRAGMA main.integrity_check(20)")]
        if problems != ["ok"]:
            raise InvalidInputError(f"the copy of {source} fails the integrity check: {'; '.join(problems[:3])}")
    finally:
        conn.close()
    _fsync(tmp)
    return Checked(version, left_out)


def _copy_rows(conn: sqlite3.Connection, table: str) -> None:
    """Copy one table's rows from the backup, the main database's columns only."""
    columns = _columns(conn, "main", table)
    if _is_virtual(conn, table):
        # An FTS table's rows are matched to their commentary by rowid, which is not one
        # of its declared columns.
        columns = ["rowid", *columns]
    names = ", ".join(_quote(c) for c in columns)
    conn.execute(
        f"INSERT INTO main.{_quote(table)} ({names}) SELECT {names} FROM {ALIAS}.{_quote(table)}"
    )


def _is_virtual(conn: sqlite3.Connection, table: str) -> bool:
    row = conn.execute("SELECT sql FROM main.sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return bool(row and str(row[0]).upper().startswith("CREATE VIRTUAL TABLE"))


def _copy_sequences(conn: sqlite3.Connection) -> None:
    """Keep each AUTOINCREMENT counter at least where the backup's was: change numbers
    are never reused, even those of changes no longer in the log."""
    if not conn.execute(f"SELECT 1 FROM {ALIAS}.sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        return
    counters: Iterable[tuple[object, object]] = conn.execute(f"SELECT name, seq FROM {ALIAS}.sqlite_sequence")
    for name, seq in list(counters):
        if not isinstance(name, str) or not isinstance(seq, int):
            continue
        if not conn.execute("SELECT 1 FROM main.sqlite_sequence WHERE name = ?", (name,)).fetchone():
            if ("table", name) not in _objects(conn, "main"):
                continue  # the counter of a table the restore left out
            conn.execute("INSERT INTO main.sqlite_sequence (name, seq) VALUES (?, ?)", (name, seq))
        else:
            conn.execute("UPDATE main.sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (seq, name))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


# --- the swap -----------------------------------------------------------------------------


def _swap_in(tmp: Path, target: Path) -> tuple[Path | None, str | None]:
    """Rename ``tmp`` over ``target`` once nothing else has ``target`` open; return where
    the previous database was kept (None if there was none) and, when it could not be
    read, why."""
    if not target.exists():
        os.replace(tmp, target)
        sync_directory(target.parent)
        return None, None
    # Locking the old database exclusively fails while any other connection (a running
    # feedsvc) has it open. Then its WAL is folded in and, as the last connection closes,
    # removed: a stale -wal beside the new file would be replayed into it.
    damaged: str | None = None
    conn = sqlite3.connect(target, timeout=1.0, isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.DatabaseError as e:
        if e.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise InvalidInputError(f"{target} is in use ({e}): stop the service first") from None
        damaged = str(e)  # unreadable: replacing it is the cure; it is kept as it is
    finally:
        conn.close()
    kept = target.with_name(f"{target.name}.pre-restore")
    for suffix in ("-wal", "-shm"):
        companion = Path(f"{target}{suffix}")
        if damaged is not None and companion.exists():
            os.replace(companion, f"{kept}{suffix}")  # what it had in flight stays with it
        elif suffix == "-wal" and companion.exists() and companion.stat().st_size > 0:
            raise InvalidInputError(f"{target} was opened during the restore: stop the service first")
        else:
            companion.unlink(missing_ok=True)
    kept.unlink(missing_ok=True)
    try:
        # A hard link: the previous database keeps its inode, so its mode (0600 when
        # feedsvc created it) and owner stay as they were.
        os.link(target, kept)
    except OSError:  # a file system without hard links: nothing is kept
        os.replace(tmp, target)
        sync_directory(target.parent)
        return None, damaged
    os.replace(tmp, target)
    sync_directory(target.parent)
    return kept, damaged
