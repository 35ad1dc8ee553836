"""Security: a restore trusts nothing in the backup file, and a revocation is verified.

A backup is an SQLite file, and such a file carries code: a trigger that clears
``tokens.revoked_us`` once made ``token revoke`` print success while the token kept
working. Restore copies the rows into a database made by feedsvc's own migrations, so
what the migrations do not make (triggers, views, tables, columns, altered declarations)
stays behind and is named. Real files, the real CLI, the real app over HTTP.

Restore and backup are SQLite-only (PostgreSQL has pg_dump/pg_restore); the verified
revocation runs on both stores.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from feedsvc.cli import main
from feedsvc.config import Settings, load_settings
from feedsvc.errors import StorageError
from feedsvc.http.app import create_app
from feedsvc.model import CategoryIn, NewCommentary, Webhook
from feedsvc.service import Service
from feedsvc.store import open_store
from feedsvc.store.migrations.sqlite import STEPS, VERSION
from feedsvc.store.sqlite import SqliteStore
from tests.conftest import CATEGORIES, PUBLIC_URL, commentary, rows_for
from tests.test_lifecycle import sql

pytestmark = pytest.mark.usefixtures("restore_logging", "clean_env")


def tamper(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


def schema_of(db: Path) -> set[tuple[str, str, str]]:
    """Every schema object but SQLite's own, as (type, name, CREATE statement)."""
    return set(sql(db, "SELECT type, name, coalesce(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))


def migrated_schema(tmp: Path, version: int = VERSION) -> set[tuple[str, str, str]]:
    """What feedsvc's migrations make, in a new file."""
    db = tmp / f"fresh-{version}.db"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for n in range(1, version + 1):
            lines = [line for line in STEPS[n].splitlines() if not line.strip().startswith("--")]
            for statement in "\n".join(lines).split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {n}")
    finally:
        conn.close()
    return schema_of(db)


def cli(*args: str, db: Path) -> int:
    return main([*args, "--database-url", f"sqlite:///{db}"])


class Deployment(msgspec.Struct):
    db: Path
    backup: Path
    token: str
    token_id: str
    ids: list[str]


async def seed(db: Path) -> tuple[str, str, list[str]]:
    """Categories, two public commentaries and a draft, a write token, a webhook."""
    store = SqliteStore(str(db))
    await store.open()
    try:
        service = Service(store, base_url=PUBLIC_URL)
        for slug, body in CATEGORIES.items():
            await service.put_category(slug, CategoryIn(names=body["names"]))
        ids = []
        for title in ("Border tensions ease", "Grain corridor reopens"):
            ids.append((await service.publish(msgspec.convert(commentary(title=title), NewCommentary))).id)
        draft = commentary(title="A draft on tariffs", status="draft")
        ids.append((await service.publish(msgspec.convert(draft, NewCommentary))).id)
        secret, info = await service.create_token("editor", ["write"])
        hook = Webhook(
            id="wh_1", url="https://hooks.example.org/in", events=["created"], categories=[], languages=[],
            created_at=datetime(2026, 3, 7, tzinfo=UTC), state="active", position=0,
        )
        await store.add_webhook(hook, secret=b"k" * 32, owner=info.id)
        await store.get_secret()  # the cursor key
        return secret, info.id, ids
    finally:
        await store.close()


@pytest.fixture
def deployment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Deployment:
    data = tmp_path / "data"
    data.mkdir()
    db = data / "feedsvc.db"
    token, token_id, ids = asyncio.run(seed(db))
    backup = tmp_path / "backup.db"
    assert cli("backup", str(backup), db=db) == 0
    assert "leaves out" not in capsys.readouterr().err
    return Deployment(db, backup, token, token_id, ids)


async def write_status(db: Path, token: str) -> int:
    """The status of a write through the real app with ``token``."""
    settings = load_settings({}, database_url=f"sqlite:///{db}", public_url=PUBLIC_URL)
    async with AsyncTestClient(create_app(settings)) as client:
        r = await client.put(
            "/api/v1/categories/economy", json=CATEGORIES["economy"], headers={"Authorization": f"Bearer {token}"}
        )
        return r.status_code


# --- hostile backups ----------------------------------------------------------------------

UNREVOKE = (
    "CREATE TRIGGER keep_tokens AFTER UPDATE OF revoked_us ON tokens"
    " BEGIN UPDATE tokens SET revoked_us = NULL WHERE id = new.id; END"
)


def with_trigger(db: Path) -> tuple[str, ...]:
    tamper(db, UNREVOKE)
    return ("trigger keep_tokens",)


def with_view(db: Path) -> tuple[str, ...]:
    tamper(db, "CREATE VIEW token_digests AS SELECT id, salt, digest FROM tokens")
    return ("view token_digests",)


def with_table(db: Path) -> tuple[str, ...]:
    tamper(
        db,
        "CREATE TABLE audit (id TEXT, revoked_us INTEGER)",
        "CREATE INDEX audit_id ON audit (id)",
        "CREATE TRIGGER copy_revocations AFTER UPDATE ON tokens BEGIN"
        " INSERT INTO audit VALUES (new.id, new.revoked_us); UPDATE tokens SET revoked_us = NULL"
        " WHERE id = new.id AND new.revoked_us IS NOT NULL; END",
    )
    return ("table audit", "index audit_id", "trigger copy_revocations")


def with_altered_column(db: Path) -> tuple[str, ...]:
    """``tokens`` declared anew: a default that hides a revocation in an extra column,
    and a CHECK that makes revoking impossible."""
    (create,) = sql(db, "SELECT sql FROM sqlite_master WHERE name = 'tokens'")[0]
    altered = create.replace("revoked_us INTEGER", "revoked_us INTEGER CHECK (revoked_us IS NULL)").replace(
        "CREATE TABLE tokens (", "CREATE TABLE tokens (\n        shadow TEXT DEFAULT 'x',"
    )
    assert altered != create
    tamper(
        db,
        "ALTER TABLE tokens RENAME TO tokens_old",
        altered,
        "INSERT INTO tokens (id, name, scopes, salt, digest, created_us, expires_us, revoked_us)"
        " SELECT id, name, scopes, salt, digest, created_us, expires_us, revoked_us FROM tokens_old",
        "DROP TABLE tokens_old",
    )
    return ("table tokens (declared otherwise)", "column tokens.shadow")


@pytest.mark.parametrize("spoil", [with_trigger, with_view, with_table, with_altered_column])
async def test_a_restore_leaves_out_what_the_migrations_do_not_make_and_revoke_takes(
    deployment: Deployment, spoil: Callable[[Path], tuple[str, ...]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    named = spoil(deployment.backup)
    db = deployment.db
    capsys.readouterr()
    assert await asyncio.to_thread(cli, "restore", str(deployment.backup), db=db) == 0
    err = capsys.readouterr().err
    for thing in named:
        assert thing in err, err
    # The restored database is exactly what the migrations make, with the backup's rows.
    assert schema_of(db) == migrated_schema(tmp_path)
    assert {row[0] for row in sql(db, "SELECT id FROM commentaries")} == set(deployment.ids)
    assert await write_status(db, deployment.token) == 200

    assert await asyncio.to_thread(cli, "token", "revoke", deployment.token_id, db=db) == 0
    assert sql(db, "SELECT revoked_us IS NOT NULL FROM tokens WHERE id = ?", deployment.token_id) == [(1,)]
    assert await write_status(db, deployment.token) == 401


def test_a_backup_that_lacks_a_column_is_refused_naming_it(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(deployment.backup, "ALTER TABLE tokens DROP COLUMN revoked_us")
    before = deployment.db.read_bytes()
    capsys.readouterr()
    assert cli("restore", str(deployment.backup), db=deployment.db) == 1
    err = capsys.readouterr().err
    assert err.startswith("feedsvc: ") and "column tokens.revoked_us" in err
    assert deployment.db.read_bytes() == before
    assert sorted(p.name for p in deployment.db.parent.iterdir()) == ["feedsvc.db"]


def test_rows_that_break_the_schema_are_refused(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """The backup's own table accepted a NULL name; feedsvc's does not."""
    (create,) = sql(deployment.backup, "SELECT sql FROM sqlite_master WHERE name = 'categories'")[0]
    tamper(
        deployment.backup,
        "PRAGMA foreign_keys = OFF",
        "ALTER TABLE categories RENAME TO categories_old",
        create.replace("names TEXT NOT NULL", "names TEXT"),
        "INSERT INTO categories SELECT * FROM categories_old",
        "DROP TABLE categories_old",
        "UPDATE categories SET names = NULL WHERE slug = 'economy'",
    )
    capsys.readouterr()
    assert cli("restore", str(deployment.backup), db=deployment.db) == 1
    assert "do not fit feedsvc's schema" in capsys.readouterr().err


def test_a_restore_keeps_every_row_the_change_numbers_and_the_keys(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Tokens, webhooks with their secrets, the cursor key, the change log with its
    AUTOINCREMENT counter, tags, authors, related keys and the search index: all there."""
    # A change number taken and then let go must never be handed out again.
    tamper(deployment.backup, "UPDATE sqlite_sequence SET seq = seq + 7 WHERE name = 'changes'")
    target = tmp_path / "elsewhere" / "feedsvc.db"
    assert cli("restore", str(deployment.backup), db=target) == 0
    tables = [name for (name,) in sql(target, "SELECT name FROM pragma_table_list WHERE type IN ('table', 'virtual')"
                                      " AND schema = 'main' AND name NOT LIKE 'sqlite_%'")]
    assert {"tokens", "webhooks", "meta", "changes", "related_keys", "commentaries_fts"} <= set(tables)
    for table in tables:
        columns = "rowid, *" if table == "commentaries_fts" else "*"
        query = f"SELECT {columns} FROM {table} ORDER BY 1, 2"
        assert sql(target, query) == sql(deployment.backup, query), table
    assert sql(target, "SELECT seq FROM sqlite_sequence WHERE name = 'changes'") == sql(
        deployment.backup, "SELECT seq FROM sqlite_sequence WHERE name = 'changes'"
    )
    assert sql(target, "SELECT count(*) FROM webhooks WHERE secret = ?", b"k" * 32) == [(1,)]
    next_seq = sql(target, "SELECT seq FROM sqlite_sequence WHERE name = 'changes'")[0][0] + 1

    async def use() -> None:
        settings = load_settings({}, database_url=f"sqlite:///{target}", public_url=PUBLIC_URL)
        async with AsyncTestClient(create_app(settings)) as client:
            found = (await client.get("/api/v1/commentaries", params={"q": "corridor"})).json()
            assert [item["title"] for item in found["items"]] == ["Grain corridor reopens"]
            page = (await client.get("/api/v1/commentaries", params={"limit": 1})).json()
            more = await client.get("/api/v1/commentaries", params={"limit": 1, "after": page["next_cursor"]})
            assert more.status_code == 200 and len(more.json()["items"]) == 1
            auth = {"Authorization": f"Bearer {deployment.token}"}
            r = await client.post("/api/v1/commentaries", json=commentary(title="After the restore"), headers=auth)
            assert r.status_code == 201, r.text
            assert r.json()["version"] == next_seq

    asyncio.run(use())


def test_an_older_backup_is_brought_to_the_current_schema(deployment: Deployment, tmp_path: Path) -> None:
    """A backup at schema 4 (before related keys and subscribers): the restore applies
    steps 5, 6 and 7 itself (step 7 has nothing to do on SQLite)."""
    assert VERSION == 7, "rewrite this test's downgrade for the new step"
    old = tmp_path / "old.db"
    old.write_bytes(deployment.backup.read_bytes())
    tamper(old, "DROP TABLE related_keys", "DROP TABLE subscribers", "DROP TABLE newsletter_issues",
           "DROP TABLE newsletter_sends", "PRAGMA user_version = 4")
    target = tmp_path / "restored.db"
    assert cli("restore", str(old), db=target) == 0
    assert sql(target, "PRAGMA user_version") == [(VERSION,)]
    query = "SELECT * FROM related_keys ORDER BY 1, 2, 3, 4"
    assert sql(target, query) == sql(deployment.backup, query) != []


def test_a_backup_of_a_database_holding_a_trigger_names_it(
    deployment: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What ``feedsvc backup`` writes is checked the way a restore checks it."""
    tamper(deployment.db, UNREVOKE)
    capsys.readouterr()
    assert cli("backup", str(tmp_path / "second.db"), db=deployment.db) == 0
    err = capsys.readouterr().err
    assert "trigger keep_tokens" in err and "leaves out" in err


# --- a revocation that does not take -------------------------------------------------------


def test_token_revoke_fails_loudly_when_the_database_undoes_it(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    tamper(deployment.db, UNREVOKE)
    capsys.readouterr()
    assert cli("token", "revoke", deployment.token_id, db=deployment.db) == 1
    out, err = capsys.readouterr()
    assert "revoked token" not in out
    assert err.startswith("feedsvc: ") and "not revoked" in err and deployment.token_id in err


@pytest.fixture
def settings(any_database_url: str) -> Settings:
    return load_settings({}, database_url=any_database_url, public_url=PUBLIC_URL)


async def test_the_service_verifies_a_revocation_on_both_stores(settings: Settings) -> None:
    store = open_store(settings.database_url)
    await store.open()
    try:
        service = Service(store, base_url=PUBLIC_URL)
        secret, info = await service.create_token("editor", ["write"])
        rows = rows_for(settings.database_url)
        if settings.database_url.startswith("sqlite:///"):
            tamper(Path(settings.database_url.removeprefix("sqlite:///")), UNREVOKE)
        else:
            rows(
                "CREATE FUNCTION keep_tokens() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN NEW.revoked_us := NULL; RETURN NEW; END $$"
            )
            rows("CREATE TRIGGER keep_tokens BEFORE UPDATE ON tokens FOR EACH ROW EXECUTE FUNCTION keep_tokens()")
        with pytest.raises(StorageError, match="not revoked"):
            await service.revoke_token(info.id)
        assert (await service.authenticate(secret, "write")).id == info.id  # why it must not pass silently
    finally:
        await store.close()


def test_names_from_the_backup_are_printed_escaped(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    """A trigger named with terminal control sequences cannot erase its own line."""
    tamper(deployment.backup, 'CREATE VIEW "x\x1b[2K\rok" AS SELECT 1')
    capsys.readouterr()
    assert cli("restore", str(deployment.backup), db=deployment.db) == 0
    err = capsys.readouterr().err
    assert "\x1b" not in err and "view 'x\\x1b[2K\\rok'" in err
