"""The ``feedsvc`` command line, run in process (``main([...])``) or as a real subprocess,
against real SQLite files; assertions on the output and on the stored rows."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from feedsvc.cli import app_from_env, main
from feedsvc.config import load_settings
from feedsvc.errors import AuthenticationError, PermissionDeniedError
from feedsvc.service import Service
from feedsvc.store import open_store
from feedsvc.store.sqlite import SqliteStore
from feedsvc.transfer import BATCH_SIZE, export_jsonl, import_files

ID_1 = "01JNQ3V0000000000000000001"
ID_2 = "01JNQ3V0000000000000000002"
ID_3 = "01JNQ3V0000000000000000003"
ID_4 = "01JNQ3V0000000000000000004"
ID_5 = "01JNQ3V0000000000000000005"

CATEGORIES = [
    {"slug": "economy", "names": {"en": "Economy", "ru": "Экономика"}, "descriptions": {"en": "Money."}},
    {"slug": "regional-security", "names": {"en": "Regional security"}},
]


def record(**overrides: Any) -> dict[str, Any]:
    """A valid commentary import record; keyword arguments replace or add fields."""
    body: dict[str, Any] = {
        "title": "Grain exports through the Baltic ports",
        "lang": "en",
        "category": "economy",
        "authors": [{"name": "Elise Marchetti", "affiliation": "Energy Analyst"}],
        "published_at": "2026-03-07T10:00:00+03:00",
        "body_markdown": "First paragraph about *potash* routes.\n\nSecond paragraph.",
        "tags": ["trade", "ports"],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def jsonl(*lines: Any) -> str:
    """JSON Lines text: dicts are encoded, strings are written as they are."""
    return "".join((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n" for line in lines)


def category_line(c: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "category", **c}


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli_db(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


@pytest.fixture
def run(cli_db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run ``feedsvc ARGS --database-url cli_db`` in process; return (exit code, stdout, stderr)."""
    for key in list(os.environ):
        if key.startswith("FEEDSVC_"):
            monkeypatch.delenv(key)

    def invoke(*args: str, db: Path | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*args, "--database-url", f"sqlite:///{db or cli_db}"])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def count(db: Path, table: str) -> int:
    return int(query(db, f"SELECT count(*) FROM {table}")[0][0])


def integrity_problems(db: Path) -> list[str]:
    """``PRAGMA integrity_check`` messages other than ``ok`` (there must be none)."""
    return [message for (message,) in query(db, "PRAGMA integrity_check") if message != "ok"]


def assert_consistent(db: Path) -> None:
    """Every stored commentary is complete: its tags, authors, FTS row and change, nothing more."""
    assert integrity_problems(db) == []
    stored = query(db, "SELECT rowid, id, doc FROM commentaries ORDER BY rowid")
    rowids = [r[0] for r in stored]
    assert [r[0] for r in query(db, "SELECT rowid FROM commentaries_fts ORDER BY rowid")] == rowids
    for rowid, id, doc in stored:
        item = json.loads(doc)
        tags = sorted(r[0] for r in query(db, "SELECT tag FROM commentary_tags WHERE cid = ?", rowid))
        assert tags == sorted(item["tags"])
        authors = sorted(r[0] for r in query(db, "SELECT name FROM commentary_authors WHERE cid = ?", rowid))
        assert authors == sorted(a["name"] for a in item["authors"])
        assert query(db, "SELECT count(*) FROM changes WHERE kind = 'commentary' AND ref = ?", id) == [(1,)]
    assert query(db, "SELECT count(*) FROM commentary_tags WHERE cid NOT IN (SELECT rowid FROM commentaries)") == [(0,)]
    assert count(db, "changes") == len(stored) + query(db, "SELECT count(*) FROM changes WHERE kind = 'category'")[0][0]


def with_service(db: Path, use: Callable[[Service], Any]) -> Any:
    """Run ``await use(service)`` on a Service over the database file."""

    async def go() -> Any:
        store = SqliteStore(str(db))
        await store.open()
        try:
            return await use(Service(store, base_url="https://feeds.example.org"))
        finally:
            await store.close()

    return asyncio.run(go())


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A tiny data folder shaped like data/: categories, JSON Lines, Markdown, media."""
    folder = tmp_path / "sample"
    (folder / "markdown").mkdir(parents=True)
    (folder / "media").mkdir()
    (folder / "categories.json").write_text(json.dumps(CATEGORIES), encoding="utf-8")
    (folder / "commentaries.jsonl").write_text(
        jsonl(
            record(slug="grain-exports", period={"start": "2026-03-01", "end": "2026-03-07"}, trend="unchanged"),
            record(title="Учения у границы", lang="ru", category="regional-security", translation_key="drills"),
            record(
                title="Drills by the border", category="regional-security", translation_key="drills", status="draft"
            ),
        ),
        encoding="utf-8",
    )
    (folder / "markdown" / "refinery.md").write_text(
        "---\ntitle: Refinery margins\nlang: en\ncategory: economy\nauthors:\n  - name: Elise Marchetti\n"
        "published_at: 2026-03-10T08:00:00Z\ntags: [energy]\n---\nRefineries are where **sanctions** show.\n",
        encoding="utf-8",
    )
    (folder / "media" / "map.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>", encoding="utf-8")
    return folder


# --- tokens -------------------------------------------------------------------------------


def test_token_create_prints_the_token_alone_last_and_it_authenticates(run: Run, cli_db: Path) -> None:
    code, out, _ = run("token", "create", "--name", "ci", "--scope", "write", "--expires-days", "30")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2 and "ci" in lines[0]
    token = lines[-1]
    assert token == token.strip() and " " not in token
    info = with_service(cli_db, lambda s: s.authenticate(token, "write"))
    assert info.name == "ci" and info.scopes == ["write"] and info.expires_at is not None

    code, out, _ = run("token", "list")
    assert code == 0
    header, row = out.strip().splitlines()
    assert header.split() == ["ID", "NAME", "SCOPES", "CREATED", "EXPIRES", "REVOKED"]
    assert row.split()[:3] == [info.id, "ci", "write"] and row.rstrip().endswith("-")

    code, out, _ = run("token", "revoke", info.id)
    assert code == 0 and info.id in out
    with pytest.raises(AuthenticationError, match="revoked"):
        with_service(cli_db, lambda s: s.authenticate(token, "write"))
    code, out, _ = run("token", "list")
    assert "-" not in out.strip().splitlines()[1].split()[-2:]


def test_token_create_takes_each_scope_once_per_flag_and_the_token_allows_only_those(run: Run, cli_db: Path) -> None:
    code, out, _ = run("token", "create", "--name", "ops", "--scope", "webhooks:manage", "--scope", "metrics:read")
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert token.startswith("fsv_") and " " not in token
    info = with_service(cli_db, lambda s: s.authenticate(token, "metrics:read"))
    assert info.scopes == ["metrics:read", "webhooks:manage"]
    assert with_service(cli_db, lambda s: s.authenticate(token, "webhooks:manage")).id == info.id
    with pytest.raises(PermissionDeniedError, match="commentaries:write"):
        with_service(cli_db, lambda s: s.authenticate(token, "commentaries:write"))
    code, out, _ = run("token", "create", "--help")
    assert code == 0 and all(
        scope in out for scope in ("commentaries:write", "categories:write", "subscribers:read", "admin")
    )


def test_token_errors(run: Run) -> None:
    code, _, err = run("token", "revoke", "nope")
    assert code == 1 and err.startswith("feedsvc: ") and "nope" in err
    code, _, err = run("token", "create", "--name", "x", "--scope", "read")
    assert code == 2 and "invalid choice" in err
    code, out, _ = run("token", "create", "--name", "both", "--scope", "write", "--scope", "admin")
    assert code == 0 and "admin,write" in out


# --- import -------------------------------------------------------------------------------


def test_import_keeps_good_records_and_reports_bad_ones(run: Run, cli_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        jsonl(
            category_line(CATEGORIES[0]),
            record(id=ID_1, slug="shared", tags=["trade", "Trade", "ports"]),  # 2: good
            '{"title": nope}',  # 3: bad JSON
            record(id=ID_2, slug="other", colour="red"),  # 4: unknown field
            "",  # 5: blank, ignored
            record(id=ID_3, slug="nowhere", category="no-such-category"),  # 6: unknown category
            record(id=ID_4, slug="shared"),  # 7: slug taken in the same language
            record(id=ID_5, slug="shared", lang="ru", title="Экспорт зерна"),  # 8: good
            record(title="No id, derived slug"),  # 9: good
            record(slug="x", body_html="<p>a</p>"),  # 10: two bodies
        ),
        encoding="utf-8",
    )
    code, out, _ = run("import", str(path))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "imported 3, skipped 0, failed 5"
    failures = "\n".join(lines[1:])
    assert f"{path}:3: JSON is malformed" in failures
    assert f"{path}:4: " in failures and "colour" in failures
    assert f"{path}:6: unknown category 'no-such-category'" in failures
    assert f"{path}:7: slug 'shared' is taken in en" in failures
    assert f"{path}:10: " in failures and "body_html or body_markdown" in failures
    assert f"{path}:5:" not in failures

    stored = query(cli_db, "SELECT id, lang, slug FROM commentaries ORDER BY lang, slug")
    assert [(r[1], r[2]) for r in stored] == [("en", "no-id-derived-slug"), ("en", "shared"), ("ru", "shared")]
    assert {ID_1, ID_5} <= {r[0] for r in stored}
    assert count(cli_db, "commentaries_fts") == 3
    assert query(cli_db, "SELECT tag FROM commentary_tags t JOIN commentaries c ON c.rowid = t.cid WHERE c.id = ?"
                 " ORDER BY tag", ID_1) == [("ports",), ("trade",)]
    hits = query(cli_db, "SELECT c.id FROM commentaries_fts f JOIN commentaries c ON c.rowid = f.rowid"
                 " WHERE commentaries_fts MATCH 'potash'")
    assert len(hits) == 3
    assert_consistent(cli_db)


def test_reimport_skips_what_is_stored(run: Run, cli_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "again.jsonl"
    path.write_text(
        jsonl(
            category_line(CATEGORIES[0]),
            record(id=ID_1, slug="with-id"),
            record(slug="without-id"),
            record(title="Without id or slug"),
        ),
        encoding="utf-8",
    )
    assert run("import", str(path))[:2] == (0, "imported 3, skipped 0, failed 0\nstored 1 category\n")
    before = {t: count(cli_db, t) for t in ("commentaries", "changes", "commentary_tags", "commentaries_fts")}
    code, out, _ = run("import", str(path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "imported 0, skipped 3, failed 0"
    assert f"{path}:2: skipped, exists: commentary {ID_1} is already stored" in lines
    assert f"{path}:3: skipped, exists: slug 'without-id' in en is already stored" in lines
    assert f"{path}:4: skipped, exists: slug 'without-id-or-slug' in en is already stored" in lines
    after = {t: count(cli_db, t) for t in before}
    assert after == {**before, "changes": before["changes"] + 1}  # the category was written again
    assert_consistent(cli_db)


def test_import_of_a_markdown_folder(run: Run, cli_db: Path, tmp_path: Path) -> None:
    run("import", str(_categories_file(tmp_path)))
    folder = tmp_path / "posts"
    folder.mkdir()
    (folder / "a-dates.md").write_text(
        "---\nslug: dates\ntitle: Dates as YAML sees them\nlang: EN\ncategory: economy\n"
        "authors: [{name: Anna Kovalenko}]\npublished_at: 2026-03-10 08:00:00+03:00\n"
        "period: {start: 2026-03-02, end: 2026-03-08}\ntrend: improved\n---\n\n"
        "First paragraph.\n\n## Heading\n\n- item\n",
        encoding="utf-8",
    )
    (folder / "b-quoted.md").write_text(
        "---\ntitle: \"Quoted: dates\"\nlang: en\ncategory: economy\nauthors:\n  - name: A\n"
        "published_at: \"2026-03-11T09:30:00Z\"\n---\nBody.\n",
        encoding="utf-8",
    )
    (folder / "c-naive.md").write_text(
        "---\ntitle: Naive\nlang: en\ncategory: economy\nauthors: [{name: A}]\n"
        "published_at: 2026-03-10 08:00:00\n---\nBody.\n",
        encoding="utf-8",
    )
    (folder / "d-no-front-matter.md").write_text("# Just Markdown\n", encoding="utf-8")
    (folder / "e-body-in-front-matter.md").write_text(
        "---\ntitle: T\nlang: en\ncategory: economy\nauthors: [{name: A}]\nbody_markdown: hi\n---\n", encoding="utf-8"
    )
    (folder / "notes.txt").write_text("ignored", encoding="utf-8")

    code, out, _ = run("import", str(folder))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "imported 2, skipped 0, failed 3"
    assert any(line.startswith(f"{folder / 'c-naive.md'}:1: `published_at` needs a UTC offset") for line in lines)
    assert any(line.startswith(f"{folder / 'd-no-front-matter.md'}:1: no front matter") for line in lines)
    assert any("e-body-in-front-matter.md:1: the body goes after the front matter" in line for line in lines)

    (doc,) = query(cli_db, "SELECT doc FROM commentaries WHERE slug = 'dates'")[0]
    item = json.loads(doc)
    assert item["lang"] == "en"
    assert item["published_at"] == "2026-03-10T08:00:00+03:00"
    assert item["period"] == {"start": "2026-03-02", "end": "2026-03-08"}
    assert item["body_html"].startswith("<p>First paragraph.</p>") and "<h2>Heading</h2>" in item["body_html"]
    assert item["summary"] == "First paragraph."
    assert query(cli_db, "SELECT slug FROM commentaries WHERE slug LIKE 'quoted%'") == [("quoted-dates",)]
    assert_consistent(cli_db)


def _categories_file(tmp_path: Path) -> Path:
    path = tmp_path / "categories.json"
    path.write_text(json.dumps(CATEGORIES), encoding="utf-8")
    return path


def test_a_record_failing_halfway_rolls_back_alone(run: Run, cli_db: Path, tmp_path: Path) -> None:
    """A failure after some of a record's rows were written (here a trigger on its tags)
    leaves none of that record and keeps the others of the batch."""
    assert run("migrate")[0] == 0
    conn = sqlite3.connect(cli_db)
    conn.execute(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON commentary_tags WHEN NEW.tag = 'boom'"
        " BEGIN SELECT RAISE(ABORT, 'boom is not a tag'); END"
    )
    conn.commit()
    conn.close()
    path = tmp_path / "boom.jsonl"
    path.write_text(
        jsonl(
            category_line(CATEGORIES[0]),
            record(id=ID_1, slug="one"),
            record(id=ID_2, slug="two", tags=["boom"]),
            record(id=ID_3, slug="three"),
        ),
        encoding="utf-8",
    )
    code, out, _ = run("import", str(path))
    assert code == 1
    assert out.splitlines()[0] == "imported 2, skipped 0, failed 1"
    assert f"{path}:3: conflict: boom is not a tag" in out.splitlines()
    assert [r[0] for r in query(cli_db, "SELECT id FROM commentaries ORDER BY id")] == [ID_1, ID_3]
    assert query(cli_db, "SELECT count(*) FROM changes WHERE ref = ?", ID_2) == [(0,)]
    assert_consistent(cli_db)


def test_a_killed_import_keeps_whole_batches_and_a_rerun_finishes_it(run: Run, cli_db: Path, tmp_path: Path) -> None:
    """SIGKILL while batches are being written (and checkpointed behind them): the database
    is intact, holds whole batches of complete commentaries, and the same import run again
    adds exactly the rest."""
    from bench.generate import write_jsonl

    n = 3 * BATCH_SIZE
    path = tmp_path / "large.jsonl"
    write_jsonl(path, n)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env["FEEDSVC_DATABASE_URL"] = f"sqlite:///{cli_db}"
    proc = subprocess.Popen([sys.executable, "-m", "feedsvc", "import", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        # A batch is in: its pages reached the database file. (Watched by size: a connection
        # of this process could reset the WAL index under the import, see the report on
        # SqliteWatch's mapping of the -shm file.)
        while not cli_db.exists() or cli_db.stat().st_size < 10_000_000:
            assert proc.poll() is None, "the import ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        workers = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert workers  # ... which end with the import
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, "a worker process outlived the import"
        time.sleep(0.1)
    stored = count(cli_db, "commentaries")
    assert stored in (BATCH_SIZE, 2 * BATCH_SIZE)
    assert_whole(cli_db)
    code, out, _ = run("import", str(path))
    assert (code, out.splitlines()[0]) == (0, f"imported {n - stored}, skipped {stored}, failed 0")
    assert_whole(cli_db)


def assert_whole(db: Path) -> None:
    """``assert_consistent`` for thousands of commentaries, a few queries in all."""
    assert integrity_problems(db) == []
    checks = {
        "a commentary without its index row, or the reverse": (
            "SELECT count(*) FROM commentaries c FULL JOIN commentaries_fts f ON f.rowid = c.rowid"
            " WHERE c.rowid IS NULL OR f.rowid IS NULL"
        ),
        "a commentary without exactly one change, or a change without its commentary": (
            "SELECT count(*) FROM commentaries c FULL JOIN (SELECT ref, count(*) AS n FROM changes"
            " WHERE kind = 'commentary' GROUP BY ref) g ON g.ref = c.id WHERE c.id IS NULL OR g.n IS NOT 1"
        ),
        "tags other than the document's": "SELECT abs((SELECT sum(json_array_length(doc, '$.tags')) FROM commentaries)"
        " - (SELECT count(*) FROM commentary_tags))",
        "a commentary without authors": (
            "SELECT count(*) FROM commentaries WHERE rowid NOT IN (SELECT cid FROM commentary_authors)"
        ),
        "a public commentary without related keys, or the reverse": (
            "SELECT count(*) FROM commentaries WHERE public != (rowid IN (SELECT cid FROM related_keys))"
        ),
    }
    with contextlib.closing(sqlite3.connect(db)) as conn:
        found = {name: conn.execute(sql).fetchone()[0] for name, sql in checks.items()}
    assert found == dict.fromkeys(checks, 0)


def test_import_of_a_missing_path_is_an_error(run: Run, tmp_path: Path) -> None:
    code, _, err = run("import", str(tmp_path / "nope.jsonl"))
    assert code == 1 and err == f"feedsvc: {tmp_path / 'nope.jsonl'}: no such file or folder\n"
    (tmp_path / "x.csv").write_text("a,b\n")
    assert run("import", str(tmp_path / "x.csv"))[0] == 1


def test_category_records_in_both_shapes(run: Run, cli_db: Path, tmp_path: Path) -> None:
    array = tmp_path / "cats.json"
    array.write_text(json.dumps([CATEGORIES[0], {"slug": "Not A Slug", "names": {"en": "X"}}]), encoding="utf-8")
    lines = tmp_path / "cats.jsonl"
    lines.write_text(
        jsonl(
            category_line({"slug": "economy", "names": {"en": "Economy, renamed"}}),
            {"kind": "tag", "slug": "x", "names": {"en": "X"}},
        ),
        encoding="utf-8",
    )
    code, out, _ = run("import", str(array), str(lines))
    assert code == 1
    assert out.splitlines()[:2] == ["imported 0, skipped 0, failed 2", "stored 2 categories"]
    assert f"{array}: item 2: " in out and f"{lines}:2: " in out
    assert [(slug, json.loads(names)) for slug, names in query(cli_db, "SELECT slug, names FROM categories")] == [
        ("economy", {"en": "Economy, renamed"})
    ]


def test_failure_list_is_capped(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("not json\n" * 60, encoding="utf-8")
    code, out, _ = run("import", str(path))
    lines = out.splitlines()
    assert code == 1 and lines[0] == "imported 0, skipped 0, failed 60"
    assert len(lines) == 1 + 50 + 1 and lines[-1] == "… and 10 more"


async def test_building_in_a_worker_process_stores_the_same(tmp_path: Path, any_database_url: str) -> None:
    """Large imports build commentaries in worker processes (for SQLite, its rows too); what
    is stored must not differ from building them here, on either store."""
    path = tmp_path / "many.jsonl"
    records = [
        record(
            id=f"01JNQ3V00000000000000{i:05d}", slug=f"note-{i}", title=f"Note {i}",
            body_markdown=f"Paragraph {i} with **bold** and a [link](https://example.org/{i}).\n\nMore.",
            created_at="2026-03-01T00:00:00Z", updated_at="2026-03-02T00:00:00+02:00",
            category="economy" if i % 2 else "regional-security",
        )
        for i in range(250)
    ]
    path.write_text(jsonl(*map(category_line, CATEGORIES), *records, {"title": "broken"}), encoding="utf-8")
    # Built here into SQLite, then in a worker process into the store under test.
    targets = [f"sqlite:///{tmp_path / 'here.db'}", any_database_url]
    if any_database_url.startswith("sqlite"):
        targets[1] = f"sqlite:///{tmp_path / 'worker.db'}"
    exports = []
    for workers, url in enumerate(targets):
        store = open_store(url)
        await store.open()
        try:
            service = Service(store, base_url="https://feeds.example.org")
            result = await import_files(service, [path], workers=workers)
            assert (result.imported, result.failed) == (250, 1)
            again = await import_files(service, [path], workers=workers)
            assert (again.imported, again.skipped, again.failed) == (0, 250, 1)
            out = tmp_path / f"w{workers}.jsonl"
            with out.open("wb") as f:
                await export_jsonl(store, f)
            exports.append(out.read_bytes())
        finally:
            await store.close()
        if url.startswith("sqlite"):
            assert_consistent(Path(url.removeprefix("sqlite:///")))
    assert exports[0] == exports[1]


async def test_import_tells_the_service_listeners(tmp_path: Path) -> None:
    path = tmp_path / "two.jsonl"
    path.write_text(jsonl(category_line(CATEGORIES[0]), record(slug="a"), record(slug="b")), encoding="utf-8")
    store = SqliteStore(str(tmp_path / "l.db"))
    await store.open()
    try:
        service = Service(store, base_url="https://feeds.example.org")
        told: list[tuple[Any, Any]] = []

        async def listener(before: Any, after: Any) -> None:
            told.append((before, after))

        service.listeners.append(listener)
        result = await import_files(service, [path], workers=0)
        assert result.imported == 2
        assert told and told[-1] == (None, None)  # after the category and after the batch
        told.clear()
        await import_files(service, [path], workers=0)  # all skipped: only the category again
        assert told == [(None, None)]
    finally:
        await store.close()


# --- export -------------------------------------------------------------------------------


def test_export_import_export_is_byte_identical(run: Run, cli_db: Path, sample: Path, tmp_path: Path) -> None:
    future = "2099-01-01T00:00:00-05:00"
    extra = tmp_path / "extra.jsonl"
    extra.write_text(
        jsonl(
            record(
                slug="everything", body_markdown=None,
                body_html="<p>Hello <b>HTML</b> <a href=\"/media/map.svg\">map</a></p>",
                summary="A summary.", source={"name": "Vistula Centre", "url": "https://example.org/s"},
                image={"url": "/media/map.svg", "alt": "Map"}, canonical_url="https://example.org/everything",
                created_at="2026-01-01T00:00:00Z", updated_at="2026-01-02T00:00:00+01:00",
            ),
            record(slug="scheduled", published_at=future),
        ),
        encoding="utf-8",
    )
    assert run("import", str(sample), str(extra))[0] == 0
    first = tmp_path / "first.jsonl"
    code, _, err = run("export", str(first))
    assert code == 0 and "2 categories and 6 commentaries" in err

    lines = first.read_bytes().splitlines()
    kinds = [json.loads(line).get("kind") for line in lines]
    assert kinds == ["category"] * 2 + [None] * 6
    items = [json.loads(line) for line in lines[2:]]
    assert [i["id"] for i in items] == sorted(i["id"] for i in items)
    assert {i["status"] for i in items} == {"published", "draft"}
    assert any(i["published_at"] == future for i in items)
    assert all("body_html" in i and "body_markdown" not in i and None not in i.values() for i in items)
    assert all({"id", "created_at", "updated_at"} <= set(i) for i in items)

    copy = tmp_path / "copy.db"
    code, out, _ = run("import", str(first), db=copy)
    assert (code, out.splitlines()[0]) == (0, "imported 6, skipped 0, failed 0")
    second = tmp_path / "second.jsonl"
    assert run("export", str(second), db=copy)[0] == 0
    assert second.read_bytes() == first.read_bytes()


def test_export_to_stdout_in_a_subprocess(run: Run, cli_db: Path, sample: Path, tmp_path: Path) -> None:
    assert run("import", str(sample))[0] == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env["FEEDSVC_DATABASE_URL"] = f"sqlite:///{cli_db}"
    done = subprocess.run(
        [sys.executable, "-m", "feedsvc", "export"], capture_output=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == _export_bytes(run, tmp_path)
    usage = subprocess.run(
        [sys.executable, "-m", "feedsvc", "nonsense"], capture_output=True, env=env, timeout=60, check=False
    )
    assert usage.returncode == 2


def _export_bytes(run: Run, tmp_path: Path) -> bytes:
    path = tmp_path / "via-file.jsonl"
    assert run("export", str(path))[0] == 0
    return path.read_bytes()


def test_export_refuses_a_missing_database(run: Run, tmp_path: Path) -> None:
    code, _, err = run("export", str(tmp_path / "out.jsonl"), db=tmp_path / "missing.db")
    assert code == 1 and "no database" in err
    assert not (tmp_path / "missing.db").exists() and not (tmp_path / "out.jsonl").exists()


# --- demo, migrate, backup ----------------------------------------------------------------


def test_demo_loads_once_then_refuses(run: Run, cli_db: Path, sample: Path) -> None:
    code, out, _ = run("demo", "--data", str(sample))
    assert code == 0
    assert out.splitlines()[:2] == ["imported 4, skipped 0, failed 0", "stored 2 categories"]
    assert count(cli_db, "commentaries") == 4
    assert_consistent(cli_db)
    seq = count(cli_db, "changes")
    code, out, _ = run("demo", "--data", str(sample))
    assert (code, out) == (0, "database not empty; demo data not loaded\n")
    assert count(cli_db, "changes") == seq


def test_demo_counts_drafts_as_content(run: Run, cli_db: Path, sample: Path, tmp_path: Path) -> None:
    drafts = tmp_path / "drafts.jsonl"
    drafts.write_text(jsonl(category_line(CATEGORIES[0]), record(status="draft")), encoding="utf-8")
    assert run("import", str(drafts))[0] == 0
    assert run("demo", "--data", str(sample))[1] == "database not empty; demo data not loaded\n"


def test_demo_without_data_folder(run: Run, tmp_path: Path) -> None:
    code, _, err = run("demo", "--data", str(tmp_path / "nowhere"))
    assert code == 1 and "no demo data folder" in err


def test_migrate_prints_the_schema_version(run: Run, cli_db: Path) -> None:
    code, out, _ = run("migrate")
    version = query(cli_db, "PRAGMA user_version")[0][0]
    assert version >= 1
    assert (code, out) == (0, f"schema version {version} (up to date)\n")


def test_backup_is_a_complete_sqlite_copy(run: Run, cli_db: Path, sample: Path, tmp_path: Path) -> None:
    assert run("import", str(sample))[0] == 0
    run("token", "create", "--name", "ci", "--scope", "write")
    target = tmp_path / "backups" / "copy.db"
    target.parent.mkdir()
    code, out, _ = run("backup", str(target))
    assert code == 0 and str(target) in out
    assert integrity_problems(target) == []
    tables = ["categories", "commentaries", "commentary_tags", "commentary_authors", "commentaries_fts", "changes",
              "tokens", "meta"]
    assert {t: count(target, t) for t in tables} == {t: count(cli_db, t) for t in tables}
    assert count(target, "commentaries") == 4
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".")] == []
    # A second backup replaces the first.
    assert run("backup", str(target))[0] == 0
    assert integrity_problems(target) == []


def test_backup_refuses_postgres_and_itself(run: Run, cli_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backup", "out.db", "--database-url", "postgresql://user@localhost/feedsvc"]) == 1
    assert "pg_dump" in capsys.readouterr().err
    assert run("migrate")[0] == 0
    code, _, err = run("backup", str(cli_db))
    assert code == 1 and "database itself" in err


# --- serve --------------------------------------------------------------------------------


def test_app_from_env_reads_the_environment(cli_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDSVC_DATABASE_URL", f"sqlite:///{cli_db}")
    monkeypatch.setenv("FEEDSVC_PUBLIC_URL", "https://news.example.net/")
    app = app_from_env()
    assert app.state.settings.public_url == "https://news.example.net/"
    assert app.state.settings.database_url == f"sqlite:///{cli_db}"


@pytest.mark.slow
def test_serve_answers_and_stops_on_sigint(cli_db: Path, sample: Path, run: Run) -> None:
    assert run("import", str(sample))[0] == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env["FEEDSVC_PORT"] = "1"  # the flag wins
    proc = subprocess.Popen(
        [sys.executable, "-m", "feedsvc", "serve", "--port", str(port), "--database-url", f"sqlite:///{cli_db}",
         "--public-url", "https://feeds.example.org"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first
        body = _get_when_up(f"http://127.0.0.1:{port}/api/v1/commentaries?limit=1")
        assert body["items"][0]["url"].startswith("https://feeds.example.org/")
    finally:
        proc.send_signal(2)
        proc.wait(timeout=15)
    assert proc.returncode == 0


@pytest.mark.parametrize(
    ("environ", "base_url"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"FEEDSVC_PORT": "8001"}, "http://127.0.0.1:8001"),
        ({"FEEDSVC_HOST": "0.0.0.0", "FEEDSVC_PORT": "8080"}, "http://127.0.0.1:8080"),
        ({"FEEDSVC_HOST": "::", "FEEDSVC_PORT": "8080"}, "http://[::1]:8080"),
        ({"FEEDSVC_HOST": "192.0.2.7"}, "http://192.0.2.7:8000"),
        ({"FEEDSVC_PUBLIC_URL": "", "FEEDSVC_PORT": "8002"}, "http://127.0.0.1:8002"),
        ({"FEEDSVC_PUBLIC_URL": "https://feeds.example.org/", "FEEDSVC_PORT": "8001"}, "https://feeds.example.org"),
    ],
)
def test_links_follow_the_address_served_unless_a_public_url_is_set(environ: dict[str, str], base_url: str) -> None:
    assert load_settings(environ).base_url == base_url


@pytest.mark.slow
def test_without_a_public_url_every_link_names_the_port_served(cli_db: Path, sample: Path, run: Run) -> None:
    assert run("import", str(sample))[0] == 0
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env.update(FEEDSVC_PORT=str(port), FEEDSVC_DATABASE_URL=f"sqlite:///{cli_db}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "feedsvc", "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"links use {base} " in first and "FEEDSVC_PUBLIC_URL" in first, first
        body = _get_when_up(f"{base}/api/v1/commentaries?limit=5")
        assert body["items"] and all(item["url"].startswith(f"{base}/") for item in body["items"])
        for path in ("/", "/feed.rss", "/feeds.opml"):
            with urllib.request.urlopen(base + path, timeout=5) as response:
                text = response.read().decode()
            links = set(re.findall(r"https?://[\w.\[\]:-]+", text)) - {"http://www.w3.org", "https://www.w3.org"}
            ours = {link for link in links if "127.0.0.1" in link or "localhost" in link}
            assert ours == {base}, (path, ours)
    finally:
        proc.send_signal(2)
        proc.wait(timeout=15)


@pytest.mark.slow
def test_a_port_in_use_ends_at_once_with_a_message_naming_the_setting(cli_db: Path, sample: Path, run: Run) -> None:
    assert run("import", str(sample))[0] == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "feedsvc", "serve", "--port", str(port), "--database-url", f"sqlite:///{cli_db}"],
            capture_output=True, env=env, text=True, timeout=60,
        )
    assert done.returncode != 0
    assert time.monotonic() - started < 30
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr, done.stderr
    assert "FEEDSVC_PORT=" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_when_up(url: str) -> Any:
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
