"""Security: every file feedsvc creates that holds the database's data is 0600.

The database holds the cursor key, webhook signing keys and token hashes; its -wal and
-shm files hold the same pages; backups, pre-restore copies and exports hold the data (and
drafts). Under the usual umask (022) they used to be created 0644, readable by every user
of the machine. Each test sets that umask and checks the mode of the real files with
os.stat. An existing database keeps the mode it has (the operator's choice) and a warning
says how to tighten it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from feedsvc.cli import main
from feedsvc.model import CategoryIn, NewCommentary
from feedsvc.service import Service
from feedsvc.store.sqlite import SqliteStore
from tests.conftest import CATEGORIES, PUBLIC_URL, commentary, postgres_dsn
from tests.test_cli import CATEGORIES as IMPORT_CATEGORIES
from tests.test_cli import record

pytestmark = pytest.mark.usefixtures("restore_logging", "clean_env")


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cli(*args: str, db: Path) -> int:
    return main([*args, "--database-url", f"sqlite:///{db}"])


async def seed(db: Path) -> None:
    store = SqliteStore(str(db))
    await store.open()
    try:
        service = Service(store, base_url=PUBLIC_URL)
        for slug, body in CATEGORIES.items():
            await service.put_category(slug, CategoryIn(names=body["names"]))
        await service.publish(msgspec.convert(commentary(), NewCommentary))
        await service.create_token("editor", ["write"])
    finally:
        await store.close()


async def test_a_new_database_and_its_wal_and_shm_are_0600(tmp_path: Path) -> None:
    db = tmp_path / "feedsvc.db"
    store = SqliteStore(str(db))
    await store.open()
    try:
        service = Service(store, base_url=PUBLIC_URL)
        await service.put_category("economy", CategoryIn(names={"en": "Economy"}))
        await store.get_secret()
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        assert wal.exists() and shm.exists()  # while open, in WAL mode
        assert (mode(db), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
    finally:
        await store.close()


def test_an_existing_readable_database_is_left_alone_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "feedsvc.db"
    asyncio.run(seed(db))
    db.chmod(0o640)  # e.g. a backup agent in the group reads it
    with caplog.at_level(logging.WARNING, logger="feedsvc.store.sqlite"):
        assert cli("migrate", db=db) == 0
    assert mode(db) == 0o640
    assert any("chmod 600" in r.getMessage() and str(db) in r.getMessage() for r in caplog.records)


def test_migrate_and_import_create_the_database_0600(tmp_path: Path) -> None:
    migrated = tmp_path / "migrated" / "feedsvc.db"
    assert cli("migrate", db=migrated) == 0
    assert mode(migrated) == 0o600
    folder = tmp_path / "sample"
    folder.mkdir()
    (folder / "categories.json").write_bytes(msgspec.json.encode(IMPORT_CATEGORIES))
    (folder / "commentaries.jsonl").write_bytes(msgspec.json.encode(record()) + b"\n")
    imported = tmp_path / "imported.db"
    assert cli("import", str(folder), db=imported) == 0
    assert mode(imported) == 0o600


def test_backup_restore_and_the_pre_restore_copy_are_0600(tmp_path: Path) -> None:
    db = tmp_path / "feedsvc.db"
    asyncio.run(seed(db))
    backup = tmp_path / "backups" / "feedsvc-backup.db"
    backup.parent.mkdir()
    assert cli("backup", str(backup), db=db) == 0
    assert mode(backup) == 0o600
    backup.write_bytes(backup.read_bytes())  # a second backup over an existing file
    backup.chmod(0o644)
    assert cli("backup", str(backup), db=db) == 0
    assert mode(backup) == 0o600
    assert cli("restore", str(backup), db=db) == 0
    assert mode(db) == 0o600
    assert mode(tmp_path / "feedsvc.db.pre-restore") == 0o600
    fresh = tmp_path / "new" / "feedsvc.db"
    assert cli("restore", str(backup), db=fresh) == 0
    assert mode(fresh) == 0o600


def test_an_export_to_a_file_is_0600(tmp_path: Path) -> None:
    db = tmp_path / "feedsvc.db"
    asyncio.run(seed(db))
    out = tmp_path / "export.jsonl"
    out.write_text("an older export\n")
    out.chmod(0o644)
    assert cli("export", str(out), db=db) == 0
    assert mode(out) == 0o600 and out.stat().st_size > 100


def test_migrate_data_creates_its_sqlite_target_0600(tmp_path: Path) -> None:
    db = tmp_path / "feedsvc.db"
    asyncio.run(seed(db))
    target = tmp_path / "copy" / "feedsvc.db"
    assert main(["migrate-data", "--from", f"sqlite:///{db}", "--to", f"sqlite:///{target}", "--quiet"]) == 0
    assert mode(target) == 0o600


def test_migrate_data_from_postgres_creates_its_sqlite_target_0600(tmp_path: Path) -> None:
    """The same on the way back from PostgreSQL (skipped without a DSN)."""
    from tests.conftest import drop_schema, new_schema, with_schema

    dsn = postgres_dsn()
    schema = new_schema()
    pg = with_schema(dsn, schema)
    db = tmp_path / "feedsvc.db"
    asyncio.run(seed(db))
    try:
        assert main(["migrate-data", "--from", f"sqlite:///{db}", "--to", pg, "--quiet"]) == 0
        target = tmp_path / "back" / "feedsvc.db"
        assert main(["migrate-data", "--from", pg, "--to", f"sqlite:///{target}", "--quiet"]) == 0
        assert mode(target) == 0o600
    finally:
        asyncio.run(drop_schema(dsn, schema))
