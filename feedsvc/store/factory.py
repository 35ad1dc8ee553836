"""The choice of engine: ``open_store(url)``, the one place that names them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from feedsvc.errors import InvalidInputError
from feedsvc.store.protocol import Store

if TYPE_CHECKING:
    from feedsvc.store.sqlite.backup import Restored


def open_store(url: str, *, timeout: float | None = None) -> Store:
    """Return an unopened Store for ``url``: ``sqlite:///path``, a path, or ``postgresql://``.

    ``timeout``: the longest one call may take, in seconds (a server's
    ``FEEDSVC_DATABASE_TIMEOUT``); None leaves each engine its own bounds, for the long
    calls of the command line (imports, copies).

    Raises:
        InvalidInputError: an unknown scheme, a malformed SQLite URL, or a PostgreSQL URL
            without asyncpg installed (the message says what to install).
    """
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from feedsvc.store.postgres import PostgresStore
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise InvalidInputError(
                "a postgresql:// database needs asyncpg: pip install 'feedsvc[postgres]'"
            ) from e
        return PostgresStore(url, timeout=timeout)
    from feedsvc.store.sqlite import SqliteStore

    if url.startswith("sqlite:") and not url.startswith("sqlite:///"):
        raise InvalidInputError("SQLite URLs look like sqlite:///relative/path or sqlite:////abs/path")
    if "://" in url and not url.startswith("sqlite:///"):
        raise InvalidInputError(f"unsupported database URL scheme: {url.split('://')[0]}")
    path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else url
    # A local file cannot be unreachable: the deadline bounds the wait for the write lock.
    return SqliteStore(path) if timeout is None else SqliteStore(path, busy_timeout_ms=int(timeout * 1000))


def restore_backup(path: str, source: Path) -> tuple[Restored, int]:
    """Replace the SQLite database at ``path`` with the rows of the backup ``source``
    (feedsvc.store.sqlite.backup.restore says how, and what it refuses); return the
    outcome and the schema version this feedsvc migrates it to. Only SQLite databases are
    restored here: PostgreSQL has its own tools."""
    from feedsvc.store.migrations.sqlite import VERSION
    from feedsvc.store.sqlite.backup import restore

    return restore(source, Path(path)), VERSION
