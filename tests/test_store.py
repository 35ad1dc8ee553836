"""The Store contract, tested directly on each backend.

The ``backend`` fixture is parametrised by backend name: SQLite on a temporary file, and
PostgreSQL on a fresh schema of the database FEEDSVC_TEST_POSTGRES_DSN names (skipped, with
that reason, when it is unset). The tests only use the Store protocol, so they run
unchanged on every backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from feedsvc.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PreconditionFailedError,
)
from feedsvc.model import Author, CategoryIn, Commentary, TokenInfo, to_us
from feedsvc.query import Query
from feedsvc.store import Store, TokenRecord
from tests.conftest import drop_schema, new_schema, postgres_dsn

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
EARLIER = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

StoreFactory = Callable[[], Store]


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Makes unopened stores that all share one fresh database of the backend under test."""
    if request.param == "sqlite":
        from feedsvc.store.sqlite import SqliteStore

        path = str(tmp_path / "store.db")
        yield lambda: SqliteStore(path)
    elif request.param == "postgres":
        from feedsvc.store.postgres import PostgresStore

        dsn = postgres_dsn()
        schema = new_schema()
        try:
            yield lambda: PostgresStore(dsn, schema=schema)
        finally:
            await drop_schema(dsn, schema)
    else:  # pragma: no cover
        raise AssertionError(f"unknown backend {request.param}")


@pytest.fixture
async def store(backend: StoreFactory) -> AsyncIterator[Store]:
    s = backend()
    await s.open()
    await s.put_category("economy", CategoryIn(names={"en": "Economy"}), now=EARLIER)
    await s.put_category("foreign-policy", CategoryIn(names={"en": "Foreign policy"}), now=EARLIER)
    try:
        yield s
    finally:
        await s.close()


def ID(n: int) -> str:
    return f"01JQ{n:022d}"


def make(n: int, **fields: Any) -> Commentary:
    """Commentary ``n`` as the service would hand it to the store (version 0)."""
    values: dict[str, Any] = {
        "id": ID(n), "slug": f"commentary-{n}", "lang": "en", "title": f"Commentary {n}", "summary": "Summary.",
        "body_html": "<p>Body.</p>", "category": "economy", "tags": ["Trade"],
        "authors": [Author(name="Anna Kovalenko")],
        "published_at": EARLIER, "updated_at": EARLIER, "created_at": EARLIER, "status": "published", "version": 0,
    }
    values.update(fields)
    return Commentary(**values)


async def update(store: Store, n: int, expected_version: int | None, **fields: Any) -> Commentary:
    """Replace commentary ``n`` with ``make(n, **fields)``, pinning ``expected_version``."""
    item = make(n, **fields)
    return await store.update_commentary(item, expected_version=expected_version, unique_slug=False, now=NOW)


async def public_ids(store: Store, **query: Any) -> list[str]:
    return [c.id for c in await store.get_commentaries(Query(limit=100, **query))]


# --- schema ---------------------------------------------------------------------------------


async def test_opening_migrates_to_the_current_schema_and_migrating_again_changes_nothing(
    store: Store, backend: StoreFactory
) -> None:
    have, want = await store.schema_status()
    assert have == want >= 1
    assert await store.migrate() == want
    assert await store.migrate() == want
    await store.add_commentary(make(1), unique_slug=False, now=NOW)

    again = backend()
    await again.open()  # a second open of the same database migrates nothing and loses nothing
    try:
        assert await again.schema_status() == (want, want)
        assert (await again.get_commentary(ID(1), public_only=True)).title == "Commentary 1"
        assert await again.get_secret() == await store.get_secret()
    finally:
        await again.close()


async def test_the_shared_secret_is_random_stable_and_long(store: Store, backend: StoreFactory) -> None:
    secret = await store.get_secret()
    assert len(secret) >= 32 and secret == await store.get_secret()
    await store.close()
    reopened = backend()
    await reopened.open()
    try:
        assert await reopened.get_secret() == secret
    finally:
        await reopened.close()


# --- versions and the change log --------------------------------------------------------------


async def test_every_write_takes_a_new_larger_version(store: Store) -> None:
    seqs = []
    a = await store.add_commentary(make(1), unique_slug=False, now=NOW)
    seqs.append(a.version)
    b = await store.add_commentary(make(2), unique_slug=False, now=NOW)
    seqs.append(b.version)
    a2 = await update(store, 1, a.version, title="Edited")
    seqs.append(a2.version)
    seqs.append(await store.delete_commentary(ID(2), expected_version=b.version, now=NOW))
    _, created = await store.put_category("arms-control", CategoryIn(names={"en": "Arms control"}), now=NOW)
    assert created
    seqs.append((await store.get_state()).seq)
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert (await store.get_commentary(ID(1), public_only=True)).version == a2.version
    assert (await store.get_state()).seq == seqs[-1]


async def test_the_change_log_lists_public_changes_in_order_with_tombstones(store: Store) -> None:
    a = await store.add_commentary(make(1), unique_slug=False, now=NOW)
    b = await store.add_commentary(make(2), unique_slug=False, now=NOW)
    a2 = await update(store, 1, a.version, title="Edited")
    gone = await store.delete_commentary(ID(2), expected_version=b.version, now=NOW)

    changes, resume = await store.get_changes(0, 100)
    assert [(c.op, c.id, c.seq) for c in changes] == [
        ("created", ID(1), a.version), ("created", ID(2), b.version),
        ("updated", ID(1), a2.version), ("deleted", ID(2), gone),
    ]
    assert changes[2].commentary is not None and changes[2].commentary.title == "Edited"
    assert changes[3].commentary is None
    assert resume == gone

    first, resume = await store.get_changes(0, 2)
    assert [c.seq for c in first] == [a.version, b.version] and resume == b.version
    rest, resume = await store.get_changes(resume, 2)
    assert [c.seq for c in rest] == [a2.version, gone]
    nothing, end = await store.get_changes(resume, 2)
    assert nothing == [] and end >= gone


async def test_drafts_leave_no_public_trace_until_published_and_a_tombstone_when_unpublished(store: Store) -> None:
    draft = await store.add_commentary(make(1, status="draft"), unique_slug=False, now=NOW)
    edited = await update(store, 1, draft.version, status="draft", title="Still a draft")
    assert (await store.get_changes(0, 100))[0] == []
    assert await public_ids(store) == []

    published = await update(store, 1, edited.version)
    await update(store, 1, published.version, status="draft")
    changes, _ = await store.get_changes(0, 100)
    assert [c.op for c in changes] == ["created", "deleted"]
    assert changes[1].commentary is None
    assert await public_ids(store) == []
    assert (await store.get_commentary(ID(1), public_only=False)).status == "draft"
    with pytest.raises(NotFoundError):
        await store.get_commentary(ID(1), public_only=True)


async def test_publish_due_makes_scheduled_commentaries_public_at_their_time(store: Store) -> None:
    due = NOW + timedelta(hours=1)
    await store.add_commentary(make(1, published_at=due), unique_slug=False, now=NOW)
    await store.add_commentary(make(2, published_at=due + timedelta(days=1)), unique_slug=False, now=NOW)
    assert await public_ids(store) == []
    assert (await store.get_state()).next_due == due
    assert (await store.get_changes(0, 100))[0] == []
    assert await store.get_tag_counts() == []

    assert await store.publish_due(due - timedelta(microseconds=1)) == 0
    assert await store.publish_due(due) == 1
    assert await public_ids(store) == [ID(1)]
    assert (await store.get_state()).next_due == due + timedelta(days=1)
    changes, _ = await store.get_changes(0, 100)
    assert [(c.op, c.id) for c in changes] == [("created", ID(1))]
    assert (await store.get_commentary(ID(1), public_only=True)).version == changes[0].seq
    assert await store.publish_due(due) == 0

    assert await store.publish_due(NOW + timedelta(days=30)) == 1
    assert (await store.get_state()).next_due is None
    assert await public_ids(store) == [ID(2), ID(1)]


# --- slugs ----------------------------------------------------------------------------------


async def test_a_taken_slug_is_suffixed_when_asked_within_its_language_only(store: Store) -> None:
    slugs = []
    for n, lang in enumerate(["en", "en", "en", "ru", "ru"], start=1):
        stored = await store.add_commentary(make(n, slug="weekly", lang=lang), unique_slug=True, now=NOW)
        slugs.append(stored.slug)
    assert slugs == ["weekly", "weekly-2", "weekly-3", "weekly", "weekly-2"]
    assert (await store.get_commentary_by_slug("en", "weekly-3", public_only=True)).id == ID(3)
    assert await store.get_slug_languages("weekly") == ["en", "ru"]


async def test_a_suffixed_slug_stays_within_120_characters(store: Store) -> None:
    long = "a" * 120
    await store.add_commentary(make(1, slug=long), unique_slug=True, now=NOW)
    second = await store.add_commentary(make(2, slug=long), unique_slug=True, now=NOW)
    assert second.slug == "a" * 118 + "-2"


async def test_an_explicit_duplicate_slug_or_id_is_a_conflict_and_stores_nothing(store: Store) -> None:
    await store.add_commentary(make(1, slug="weekly"), unique_slug=False, now=NOW)
    state = await store.get_state()
    with pytest.raises(ConflictError):
        await store.add_commentary(make(2, slug="weekly"), unique_slug=False, now=NOW)
    with pytest.raises(ConflictError):
        await store.add_commentary(make(1, slug="other"), unique_slug=True, now=NOW)
    assert await store.get_state() == state
    assert await public_ids(store) == [ID(1)]

    other = await store.add_commentary(make(2, slug="other"), unique_slug=False, now=NOW)
    with pytest.raises(ConflictError):
        await update(store, 2, other.version, slug="weekly")
    assert (await store.get_commentary(ID(2), public_only=True)).slug == "other"


async def test_an_unknown_category_is_invalid_input_and_stores_nothing(store: Store) -> None:
    state = await store.get_state()
    with pytest.raises(InvalidInputError) as info:
        await store.add_commentary(make(1, category="arms-control"), unique_slug=False, now=NOW)
    assert info.value.extra.get("field") == "category"
    assert await store.get_state() == state


# --- preconditions --------------------------------------------------------------------------


async def test_a_stale_version_fails_the_precondition_and_changes_nothing(store: Store) -> None:
    first = await store.add_commentary(make(1), unique_slug=False, now=NOW)
    second = await update(store, 1, first.version, title="Second")
    state = await store.get_state()
    with pytest.raises(PreconditionFailedError):
        await update(store, 1, first.version, title="Third")
    with pytest.raises(PreconditionFailedError):
        await store.delete_commentary(ID(1), expected_version=first.version, now=NOW)
    assert await store.get_state() == state
    assert (await store.get_commentary(ID(1), public_only=True)).title == "Second"

    # No expected version: the write goes through whatever is current.
    third = await update(store, 1, None, title="Third")
    assert third.version > second.version


async def test_writes_to_a_missing_commentary_are_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await update(store, 9, None)
    with pytest.raises(NotFoundError):
        await store.delete_commentary(ID(9), expected_version=None, now=NOW)
    with pytest.raises(NotFoundError):
        await store.get_commentary(ID(9), public_only=False)
    with pytest.raises(NotFoundError):
        await store.get_commentary_by_slug("en", "nothing", public_only=False)
    assert (await store.get_state()).seq == 2  # only the two categories of the fixture


async def test_a_deleted_commentary_is_gone_with_its_tags(store: Store) -> None:
    a = await store.add_commentary(make(1, tags=["Trade", "NATO"]), unique_slug=False, now=NOW)
    await store.delete_commentary(ID(1), expected_version=a.version, now=NOW)
    with pytest.raises(NotFoundError):
        await store.get_commentary(ID(1), public_only=False)
    assert await store.get_tag_counts() == []
    assert await public_ids(store, q="Commentary") == []
    with pytest.raises(NotFoundError):
        await store.delete_commentary(ID(1), expected_version=None, now=NOW)


# --- reading --------------------------------------------------------------------------------


async def test_commentaries_come_newest_first_with_ties_by_id_and_resume_after_a_key(store: Store) -> None:
    # Same instant written with two offsets: a tie on published_at.
    tie = EARLIER + timedelta(days=2)
    west = tie.astimezone(timezone(timedelta(hours=-5)))
    plan = {1: EARLIER, 2: tie, 3: west, 4: EARLIER + timedelta(days=1), 5: tie}
    for n in (3, 1, 5, 2, 4):
        await store.add_commentary(make(n, published_at=plan[n]), unique_slug=False, now=NOW)
    assert await public_ids(store) == [ID(5), ID(3), ID(2), ID(4), ID(1)]
    assert await public_ids(store, after=(to_us(tie), ID(3))) == [ID(2), ID(4), ID(1)]
    assert await public_ids(store, after=(to_us(tie), ID(9))) == [ID(5), ID(3), ID(2), ID(4), ID(1)]
    assert await public_ids(store, after=(to_us(EARLIER), ID(1))) == []
    assert [c.id for c in await store.get_commentaries(Query(limit=2))] == [ID(5), ID(3)]


async def test_counts_cover_public_commentaries_only(store: Store) -> None:
    await store.add_commentary(make(1, tags=["Trade", "NATO"]), unique_slug=False, now=NOW)
    await store.add_commentary(make(2, tags=["trade"], category="foreign-policy"), unique_slug=False, now=NOW)
    await store.add_commentary(make(3, tags=["Secret"], status="draft"), unique_slug=False, now=NOW)
    later = make(4, tags=["Later"], published_at=NOW + timedelta(days=1))
    await store.add_commentary(later, unique_slug=False, now=NOW)
    assert [(c.name, c.count) for c in await store.get_tag_counts()] == [("Trade", 2), ("NATO", 1)]
    assert [(c.name, c.count) for c in await store.get_author_counts()] == [("Anna Kovalenko", 2)]
    assert {c.slug: c.count for c in await store.get_categories()} == {"economy": 1, "foreign-policy": 1}
    assert (await store.get_category("economy")).count == 1
    with pytest.raises(NotFoundError):
        await store.get_category("arms-control")


async def test_put_category_creates_then_replaces(store: Store) -> None:
    category, created = await store.put_category(
        "arms-control", CategoryIn(names={"en": "Arms control"}, descriptions={"en": "Treaties."}), now=NOW
    )
    assert created and category.names == {"en": "Arms control"} and category.updated_at == NOW
    later = NOW + timedelta(hours=1)
    category, created = await store.put_category("arms-control", CategoryIn(names={"en": "Disarmament"}), now=later)
    assert not created
    assert (category.names, category.descriptions, category.updated_at) == ({"en": "Disarmament"}, {}, later)


# --- tokens ---------------------------------------------------------------------------------


def token(id: str, **fields: Any) -> TokenRecord:
    info = TokenInfo(**{"id": id, "name": f"token {id}", "scopes": ["write"], "created_at": NOW, **fields})
    return TokenRecord(info=info, salt=b"s" * 16, digest=b"d" * 32)


async def test_tokens_are_added_listed_and_revoked(store: Store) -> None:
    await store.add_token(token("aaaaaaaaaaaa"))
    newer = token(
        "bbbbbbbbbbbb", scopes=["admin"], created_at=NOW + timedelta(seconds=1), expires_at=NOW + timedelta(days=1)
    )
    await store.add_token(newer)
    record = await store.get_token("aaaaaaaaaaaa")
    assert (record.salt, record.digest, record.info.scopes) == (b"s" * 16, b"d" * 32, ["write"])
    assert (await store.get_token("bbbbbbbbbbbb")).info == newer.info
    assert [t.id for t in await store.get_tokens()] == ["bbbbbbbbbbbb", "aaaaaaaaaaaa"]

    revoked = await store.revoke_token("aaaaaaaaaaaa", now=NOW)
    assert revoked.revoked_at == NOW
    again = await store.revoke_token("aaaaaaaaaaaa", now=NOW + timedelta(days=1))
    assert again.revoked_at == NOW  # the first revocation time stays

    with pytest.raises(ConflictError):
        await store.add_token(token("aaaaaaaaaaaa"))
    with pytest.raises(NotFoundError):
        await store.get_token("cccccccccccc")
    with pytest.raises(NotFoundError):
        await store.revoke_token("cccccccccccc", now=NOW)
