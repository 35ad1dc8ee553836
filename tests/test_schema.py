"""The schema the migrations make, pinned: a new database gets exactly the schema that
databases migrated by earlier releases already have.

The steps are written once for both engines where they agree (feedsvc.store.migrations);
how that text is assembled may change, what it makes may not. On SQLite the pin is the
text of every CREATE statement, as ``sqlite_master`` keeps it: a restore compares the
backup's statements with the ones the migrations write and reports any that differ
(feedsvc.store.sqlite.backup), so a new spelling of an old step would flag every table
of every older backup. On PostgreSQL it is what the catalog says of each column, index
and constraint.

After adding a step, write the files anew and read the difference:
``FEEDSVC_TEST_POSTGRES_DSN=... python -m tests.test_schema``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import asyncpg

from feedsvc.store.postgres import PostgresStore
from feedsvc.store.sqlite import SqliteStore
from tests.conftest import drop_schema, new_schema, postgres_dsn

DATA = Path(__file__).parent / "data"
SQLITE_SCHEMA = DATA / "schema-sqlite.sql"
POSTGRES_SCHEMA = DATA / "schema-postgres.txt"


async def sqlite_schema(path: Path) -> str:
    """Every CREATE statement of a new SQLite database, in name order."""
    store = SqliteStore(str(path))
    await store.open()
    await store.close()
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            " ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()
    return "".join(f"{sql};\n" for (sql,) in rows)


async def postgres_schema(dsn: str, schema: str) -> str:
    """Every column (type, collation, null, default), index and constraint of a new schema."""
    store = PostgresStore(dsn, schema=schema)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(dsn)
    try:
        columns = await conn.fetch(
            "SELECT table_name, ordinal_position, column_name, data_type, collation_name, is_nullable,"
            " column_default, is_identity, identity_generation FROM information_schema.columns"
            " WHERE table_schema = $1 ORDER BY table_name, ordinal_position",
            schema,
        )
        indexes = await conn.fetch(
            "SELECT tablename, indexname, replace(indexdef, $1, 'S.') FROM pg_indexes WHERE schemaname = $2"
            " ORDER BY tablename, indexname",
            f'{schema}.', schema,
        )
        constraints = await conn.fetch(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
            " JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = $1 ORDER BY 1, 2",
            schema,
        )
    finally:
        await conn.close()
    lines = [" | ".join(str(v) for v in row) for part in (columns, indexes, constraints) for row in part]
    return "".join(f"{line.replace(schema, 'S')}\n" for line in lines)


def test_a_new_sqlite_database_has_the_schema_of_databases_made_before(tmp_path: Path) -> None:
    assert asyncio.run(sqlite_schema(tmp_path / "new.db")) == SQLITE_SCHEMA.read_text()


def test_a_new_postgresql_schema_has_the_schema_of_databases_made_before() -> None:
    dsn, schema = postgres_dsn(), new_schema()
    try:
        assert asyncio.run(postgres_schema(dsn, schema)) == POSTGRES_SCHEMA.read_text()
    finally:
        asyncio.run(drop_schema(dsn, schema))


def main() -> None:
    """Write both files from what the migrations make now."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        SQLITE_SCHEMA.write_text(asyncio.run(sqlite_schema(Path(tmp) / "new.db")))
    dsn, schema = os.environ["FEEDSVC_TEST_POSTGRES_DSN"], new_schema()
    try:
        POSTGRES_SCHEMA.write_text(asyncio.run(postgres_schema(dsn, schema)))
    finally:
        asyncio.run(drop_schema(dsn, schema))
    print(f"wrote {SQLITE_SCHEMA} and {POSTGRES_SCHEMA}", file=sys.stderr)


if __name__ == "__main__":
    main()
