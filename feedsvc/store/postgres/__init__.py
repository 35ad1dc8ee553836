"""The PostgreSQL engine: ``PostgresStore`` (store.py) and what only PostgreSQL has.

``writes`` holds its write transactions (one round trip a commentary, under an advisory
lock); ``text`` its full-text search on tsvector, made to match SQLite's; ``watch`` the
LISTEN/NOTIFY watch. Everything both engines share lives in feedsvc.store.sql.
"""

from feedsvc.store.postgres.store import WRITE_LOCK_SQL, PostgresStore

__all__ = ["WRITE_LOCK_SQL", "PostgresStore"]
