"""``feedsvc migrate-data``: moving a database from SQLite to PostgreSQL (issue 5, part 4).

A history is written into an SQLite file through the real app (categories in several
languages, drafts, scheduled and published commentaries, edits, deletions, tokens, Unicode),
then copied by the real command in a subprocess. The PostgreSQL node must then answer
every request exactly as the SQLite node did: list pages, items with their ETags, the
change log walked from the start, feeds byte for byte; tokens and cursors issued before
the move keep working. Re-running is a verified no-op, or a catch-up after more writes; a
target with writes of its own is refused untouched; an interrupted copy finishes on the
next run. The copy also works backwards, PostgreSQL to SQLite.

Needs PostgreSQL (FEEDSVC_TEST_POSTGRES_DSN); skipped without it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.cli import main
from feedsvc.config import load_settings
from feedsvc.datamove import KINDS, Copied, copy_changes, migrate_data
from feedsvc.http.app import create_app
from feedsvc.service import Service
from feedsvc.store import open_store
from tests.conftest import PUBLIC_URL, commentary, path_of
from tests.test_mirror import Writer

API = "/api/v1/commentaries"
Client = AsyncTestClient[Litestar]

CATEGORIES = {
    "regional-security": {
        "names": {"en": "Regional security", "be": "Рэгіянальная бяспека", "ru": "Региональная безопасность"},
        "descriptions": {"en": "Borders and alliances.", "ru": "Границы и союзы."},
    },
    "economy": {"names": {"en": "Economy", "be": "Эканоміка"}},
    "foreign-policy": {"names": {"ru": "Внешняя политика", "en": "Foreign policy"}},
}
FEEDS = [
    "/feed.rss", "/feed.atom", "/feed.json", "/categories/economy/feed.atom", "/ru/feed.rss", "/be/feed.json",
    "/feed.json?tag=border", "/feed.atom?q=talks",
]
SINGLES = ["/api/v1/categories", "/api/v1/categories/economy", "/api/v1/tags", "/api/v1/authors", "/api/v1/digests"]
# What the answers are compared on: besides the body, the validators and the type.
HEADERS = ("etag", "last-modified", "content-type", "link")


@asynccontextmanager
async def node(url: str) -> AsyncIterator[Client]:
    """A feedsvc node on the database at ``url``, the real app over in-process HTTP."""
    settings = load_settings({}, database_url=url, public_url=PUBLIC_URL)
    async with AsyncTestClient(create_app(settings), base_url="http://testserver.local") as client:
        yield client


def service_of(client: Client) -> Service:
    service: Service = client.app.state.service
    return service


def migrate(source: str, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """``feedsvc migrate-data`` in a subprocess, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    return subprocess.run(
        [sys.executable, "-m", "feedsvc", "migrate-data", "--from", source, "--to", target, *extra],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )


def assert_verified(done: subprocess.CompletedProcess[str]) -> str:
    """The run succeeded and printed equal counts and checksums for both sides."""
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    table = [line for line in lines if line.split() and line.split()[-1] in ("same", "DIFFERENT")]
    assert [line.split()[0] for line in table] == [kind.split()[0] for kind in KINDS], done.stdout
    assert [line.split()[-1] for line in table] == ["same"] * len(KINDS), done.stdout
    sums = {line.split()[3]: line.split()[4] for line in lines if line.startswith("checksum of the")}
    assert set(sums) == {"source", "target"} and sums["source"] == sums["target"], done.stdout
    assert len(sums["source"]) == 64
    assert lines[-1].startswith("verified: "), done.stdout
    return done.stdout


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'source.db'}"


class History:
    """What ``write_history`` made, to look at it again on the other node."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.hidden: list[str] = []
        self.writer_token = ""
        self.revoked_token = ""


async def write_history(client: Client) -> History:
    """Every kind of record and write the API knows, in a few languages."""
    h = History()
    service = service_of(client)
    h.writer_token, _ = await service.create_token("editor", ["write"])
    h.revoked_token, revoked = await service.create_token("old laptop", ["write"], expires_in=timedelta(days=30))
    await service.create_token("admin", ["admin"])
    auth = {"Authorization": f"Bearer {h.writer_token}"}
    for slug, body in CATEGORIES.items():
        r = await client.put(f"/api/v1/categories/{slug}", json=body, headers=auth)
        assert r.status_code == 201, r.text
    w = Writer(client, auth)
    week = {"start": "2026-03-02", "end": "2026-03-08"}
    h.ids += [
        await w.create(
            title="Border tensions ease after talks", tags=["border", "talks"], period=week, trend="improved"
        ),
        await w.create(
            title="Перамовы на мяжы",
            lang="be",
            translation_key="talks",
            category="foreign-policy",
            tags=["мяжа"],
            period=week,
        ),
        await w.create(
            title="Переговоры на границе",
            lang="ru",
            translation_key="talks",
            period=week,
            authors=[{"name": "Ирина Соколова"}],
            body_markdown="Абзац о *переговорах*.\n\nЕщё один.",
        ),
        await w.create(
            title="Grain through the Baltic ports",
            category="economy",
            tags=["Trade", "ports"],
            published_at="2026-03-07T10:00:00+03:00",
            source={"name": "Port Review"},
        ),
        await w.create(title="Same minute, other id", category="economy", published_at="2026-03-07T10:00:00+03:00"),
        await w.create(title="Retracted later", tags=["border"]),
        await w.create(title="Moved to a draft later", category="economy"),
    ]
    draft = await w.create(title="A draft, never public", status="draft")
    scheduled = await w.create(title="Scheduled for 2099", published_at="2099-01-01T09:00:00+01:00")
    h.hidden += [draft, scheduled]
    await w.patch(h.ids[0], summary="Talks resumed; the crossing reopened.", tags=["border", "talks", "crossings"])
    await w.replace(h.ids[3], title="Grain through the Baltic ports, revised", category="economy", tags=["trade"])
    await w.patch(h.ids[2], period={"start": "2026-03-09", "end": "2026-03-15"})  # leaves its week: a digest mark
    await w.delete(h.ids[5])
    await w.patch(h.ids[6], status="draft")
    h.hidden.append(h.ids[6])
    await w.patch(draft, title="A draft, edited")
    await w.put_category("economy", {"en": "Economy and trade", "be": "Эканоміка", "ru": "Экономика"})
    await service.revoke_token(revoked.id)
    return h


async def snapshot(client: Client, history: History) -> dict[str, Any]:
    """Every answer a reader, a mirror and an editor get, with its validators."""
    out: dict[str, Any] = {}

    async def get(path: str, **kwargs: Any) -> Any:
        r = await client.get(path, **kwargs)
        out[path + repr(kwargs.get("params", ""))] = (
            r.status_code, {k: r.headers.get(k) for k in HEADERS}, r.content,
        )
        return r

    cursor: str | None = None
    while True:  # the list, two at a time
        r = await get(API, params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    since: str | None = None
    while True:  # the change log from the start
        r = await get("/api/v1/changes", params={"limit": 3, **({"since": since} if since else {})})
        since = r.json()["next_cursor"]
        if not r.json()["items"]:
            break
    for id in history.ids:
        r = await get(f"{API}/{id}")
        if r.status_code == 200:
            await get(path_of(r.json()["url"]))  # its page
    for id in history.hidden:
        await get(f"{API}/{id}", headers={"Authorization": f"Bearer {history.writer_token}"})
    for path in SINGLES + FEEDS:
        await get(path)
    return out


async def newest_seq(url: str) -> int:
    store = open_store(url)
    await store.open()
    try:
        return (await store.get_state()).seq
    finally:
        await store.close()


async def test_the_postgresql_node_answers_exactly_as_the_sqlite_node_did(
    sqlite_url: str, pg_database_url: str
) -> None:
    async with node(sqlite_url) as old:
        history = await write_history(old)
        before = await snapshot(old, history)
        # Cursors handed out by the SQLite node, to be used on the PostgreSQL one.
        page = (await old.get(API, params={"limit": 2})).json()
        changes = (await old.get("/api/v1/changes", params={"limit": 4})).json()
        rest = await old.get(API, params={"limit": 2, "cursor": page["next_cursor"]})
        later = await old.get("/api/v1/changes", params={"since": changes["next_cursor"]})
    newest = await newest_seq(sqlite_url)

    out = assert_verified(migrate(sqlite_url, pg_database_url))
    assert f"copied {newest} changes" in out

    async with node(pg_database_url) as new:
        assert await snapshot(new, history) == before
        r = await new.get(API, params={"limit": 2, "cursor": page["next_cursor"]})
        assert (r.status_code, r.content) == (200, rest.content)
        r = await new.get("/api/v1/changes", params={"since": changes["next_cursor"]})
        assert (r.status_code, r.content) == (200, later.content)
        # The editor's token still writes; the revoked one does not; numbering goes on.
        posted = await new.post(API, json=commentary(title="First on PostgreSQL"),
                                headers={"Authorization": f"Bearer {history.writer_token}"})
        assert posted.status_code == 201, posted.text
        assert posted.json()["version"] == newest + 1
        refused = await new.post(API, json=commentary(title="Not with this one"),
                                 headers={"Authorization": f"Bearer {history.revoked_token}"})
        assert refused.status_code == 401
        tokens = {t.name: t for t in await service_of(new).list_tokens()}
        assert set(tokens) == {"editor", "old laptop", "admin"}
        assert tokens["old laptop"].revoked_at is not None and tokens["old laptop"].expires_at is not None


async def test_a_second_run_is_a_verified_no_op_and_a_later_one_catches_up(
    sqlite_url: str, pg_database_url: str
) -> None:
    async with node(sqlite_url) as old:
        history = await write_history(old)
    assert_verified(migrate(sqlite_url, pg_database_url))
    async with node(pg_database_url) as new:
        copied = await snapshot(new, history)

    out = assert_verified(migrate(sqlite_url, pg_database_url, "--quiet"))
    assert out.startswith("nothing to copy")
    async with node(pg_database_url) as new:
        assert await snapshot(new, history) == copied

    # The SQLite node goes on serving and taking writes; a run before switching catches up.
    async with node(sqlite_url) as old:
        w = Writer(old, {"Authorization": f"Bearer {history.writer_token}"})
        history.ids.append(await w.create(title="Written after the first copy", lang="ru", category="economy"))
        await w.patch(history.ids[0], title="Border tensions ease after talks, updated")
        await w.delete(history.ids[1])
        await w.patch(history.hidden[0], status="published")
        await w.put_category("foreign-policy", {"en": "Foreign policy", "be": "Знешняя палітыка"})
        admin = next(t for t in await service_of(old).list_tokens() if t.name == "admin")
        await service_of(old).revoke_token(admin.id)
        after = await snapshot(old, history)
    out = assert_verified(migrate(sqlite_url, pg_database_url))
    assert out.startswith("copied 5 changes")
    async with node(pg_database_url) as new:
        assert await snapshot(new, history) == after
        assert next(t for t in await service_of(new).list_tokens() if t.name == "admin").revoked_at is not None


async def test_webhook_subscriptions_move_with_their_keys_and_delivery_cursors(
    sqlite_url: str, pg_database_url: str
) -> None:
    async with node(sqlite_url) as old:
        await write_history(old)
        hooks_token, _ = await service_of(old).create_token("hooks", ["webhooks:manage"])
        auth = {"Authorization": f"Bearer {hooks_token}"}
        made = []
        for body in (
            {"url": "https://93.184.215.14/hooks/a", "events": ["created"], "categories": ["economy"],
             "languages": ["ru"], "description": "Партнёр А"},
            {"url": "https://93.184.215.14/hooks/b"},
        ):
            r = await old.post("/api/v1/webhooks", json=body, headers=auth)
            assert r.status_code == 201, r.text
            made.append(r.json())
        listed = (await old.get("/api/v1/webhooks", headers=auth)).json()
    assert [h["position"] for h in listed] == [await newest_seq(sqlite_url)] * 2
    assert_verified(migrate(sqlite_url, pg_database_url))
    assert await stored_webhooks(pg_database_url) == await stored_webhooks(sqlite_url)
    async with node(pg_database_url) as new:
        assert (await new.get("/api/v1/webhooks", headers=auth)).json() == listed

    # A subscription dropped on the old node before the switch is dropped by the next run.
    async with node(sqlite_url) as old:
        r = await old.delete(f"/api/v1/webhooks/{made[1]['id']}", headers=auth)
        assert r.status_code == 204, r.text
    assert_verified(migrate(sqlite_url, pg_database_url))
    assert [h.id for h in await stored_webhooks(pg_database_url)] == [made[0]["id"]]


async def stored_webhooks(url: str) -> list[Any]:
    store = open_store(url)
    await store.open()
    try:
        return await store.get_stored_webhooks()
    finally:
        await store.close()


async def test_a_target_with_writes_of_its_own_is_refused_untouched(sqlite_url: str, pg_database_url: str) -> None:
    async with node(sqlite_url) as old:
        history = await write_history(old)
    assert_verified(migrate(sqlite_url, pg_database_url))
    auth = {"Authorization": f"Bearer {history.writer_token}"}

    # One write on each side: the logs are as long as each other, but no longer the same.
    async with node(pg_database_url) as new:
        assert (await new.post(API, json=commentary(title="Only on PostgreSQL"), headers=auth)).status_code == 201
        diverged = await snapshot(new, history)
    async with node(sqlite_url) as old:
        assert (await old.post(API, json=commentary(title="Only on SQLite"), headers=auth)).status_code == 201
    assert await newest_seq(sqlite_url) == await newest_seq(pg_database_url)
    done = migrate(sqlite_url, pg_database_url)
    assert done.returncode == 1
    assert "the target has changes the source does not have; nothing was copied" in done.stderr
    async with node(pg_database_url) as new:
        assert await snapshot(new, history) == diverged

    # A target ahead of the source is refused too.
    async with node(pg_database_url) as new:
        assert (await new.post(API, json=commentary(title="Further ahead"), headers=auth)).status_code == 201
    done = migrate(sqlite_url, pg_database_url)
    assert done.returncode == 1 and "reaches" in done.stderr


async def test_a_token_made_on_the_target_is_refused(sqlite_url: str, pg_database_url: str) -> None:
    async with node(sqlite_url) as old:
        await write_history(old)
    async with node(pg_database_url) as new:
        await service_of(new).create_token("made too early", ["write"])
    done = migrate(sqlite_url, pg_database_url)
    assert done.returncode == 1
    assert "'made too early') is not in the source" in done.stderr
    assert await newest_seq(pg_database_url) == 0


async def test_a_slug_taken_over_while_batches_lag_behind_still_copies(sqlite_url: str, pg_database_url: str) -> None:
    """One change per transaction: a commentary copied as it is now may take a slug that a
    row copied earlier holds until a later change of the log reaches it."""
    async with node(sqlite_url) as old:
        history = await write_history(old)
        w = Writer(old, {"Authorization": f"Bearer {history.writer_token}"})
        a = await w.create(title="Holder", slug="the-slug")
    assert_verified(migrate(sqlite_url, pg_database_url))
    async with node(sqlite_url) as old:
        w = Writer(old, {"Authorization": f"Bearer {history.writer_token}"})
        b = await w.create(title="Taker", slug="another-slug")
        await w.patch(a, slug="moved-away")
        await w.patch(b, slug="the-slug")
        history.ids += [a, b]
        after = await snapshot(old, history)
    assert_verified(migrate(sqlite_url, pg_database_url, "--batch-size", "1"))
    async with node(pg_database_url) as new:
        assert await snapshot(new, history) == after


async def test_a_copy_made_while_the_source_takes_writes_is_completed_by_the_next_run(
    sqlite_url: str, pg_database_url: str
) -> None:
    """Each batch carries the commentaries it touches as they are when it is read, which may
    be later than its last change: the target is only consistent once it has caught up."""
    async with node(sqlite_url) as old:
        history = await write_history(old)
        source, target = open_store(sqlite_url), open_store(pg_database_url)
        await source.open()
        await target.open()
        try:
            w = Writer(old, {"Authorization": f"Bearer {history.writer_token}"})
            made: list[str] = []
            live: list[str] = []

            async def keep_writing() -> None:
                for n in range(30):
                    made.append(await w.create(title=f"Written during the copy {n}", slug=f"during-{n}"))
                    live.append(made[-1])
                    await w.patch(live[n % len(live)], slug=f"edited-during-{n}")
                    if n % 4 == 0:
                        await w.delete(live.pop(0))
                    await asyncio.sleep(0)

            writing = asyncio.create_task(keep_writing())
            while not writing.done():
                await copy_changes(source, target, Copied(), batch_size=2)
            await writing
            outcome = await migrate_data(source, target)
            assert outcome.verified, outcome
            assert outcome.target.seq == await newest_seq(sqlite_url)
            history.ids += made
            before = await snapshot(old, history)
        finally:
            await source.close()
            await target.close()
    async with node(pg_database_url) as new:
        assert await snapshot(new, history) == before


def test_an_interrupted_copy_finishes_on_the_next_run(tmp_path: Path, pg_database_url: str) -> None:
    from bench.generate import populate

    source = tmp_path / "large.db"
    populate(source, 600, workers=1)
    url = f"sqlite:///{source}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "feedsvc", "migrate-data", "--from", url, "--to", pg_database_url, "--batch-size", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while asyncio.run(_target_seq(pg_database_url)) < 50:
            assert proc.poll() is None, "the copy ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    interrupted = asyncio.run(_target_seq(pg_database_url))
    newest = asyncio.run(newest_seq(url))
    assert 50 <= interrupted < newest
    assert interrupted % 5 == 0, "a batch is copied whole or not at all"

    out = assert_verified(migrate(url, pg_database_url))
    assert out.startswith(f"copied {newest - interrupted} changes")


async def _target_seq(url: str) -> int:
    """The target's newest change number, read with plain SQL (0 before its schema exists)."""
    dsn, schema = url.split("?schema=")
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetchval("SELECT to_regclass($1)", f'"{schema}".changes')
        if found is None:
            return 0
        return int(await conn.fetchval(f'SELECT coalesce(max(seq), 0) FROM "{schema}".changes'))
    finally:
        await conn.close()


async def test_moving_back_to_sqlite_gives_the_same_answers(
    sqlite_url: str, pg_database_url: str, tmp_path: Path
) -> None:
    async with node(sqlite_url) as old:
        history = await write_history(old)
        before = await snapshot(old, history)
    assert_verified(migrate(sqlite_url, pg_database_url))
    back = f"sqlite:///{tmp_path / 'back.db'}"
    assert_verified(migrate(pg_database_url, back))
    newest = await newest_seq(back)
    async with node(back) as again:
        assert await snapshot(again, history) == before
        posted = await again.post(API, json=commentary(title="Numbering goes on in SQLite"),
                                  headers={"Authorization": f"Bearer {history.writer_token}"})
        assert posted.json()["version"] == newest + 1


def test_refuses_a_missing_source_one_database_for_both_and_a_bad_batch_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("FEEDSVC_")]:
        monkeypatch.delenv(key)
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    assert main(["migrate-data", "--from", missing, "--to", f"sqlite:///{tmp_path / 'x.db'}"]) == 1
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists() and not (tmp_path / "x.db").exists()
    assert main(["migrate-data", "--from", missing, "--to", missing]) == 1
    assert "the same database" in capsys.readouterr().err
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert main(["migrate-data", "--from", missing, "--to", other, "--batch-size", "0"]) == 1
    assert "--batch-size must be between 1 and 10000" in capsys.readouterr().err


def test_help_says_idempotency_keys_stay_behind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate-data", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--from URL" in text and "--to URL" in text and "--quiet" in text
    assert "Idempotency keys are not copied" in text
