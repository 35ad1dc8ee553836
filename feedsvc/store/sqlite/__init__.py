"""The SQLite engine: ``SqliteStore`` (store.py) and what only SQLite has.

``writes`` holds its write transactions as plain ``fn(conn)`` functions run on the one
writer thread; ``bulk`` the bulk import, on those same functions; ``search`` the FTS5 page
plans; ``related`` its statement for related commentaries; ``watch`` the WAL-index watch.
Everything both engines share lives in feedsvc.store.sql.
"""

from feedsvc.store.sqlite.store import SqliteStore, build_where, source_of

__all__ = ["SqliteStore", "build_where", "source_of"]
