"""The schema steps, written once for both engines. ``STEPS[n]`` takes the schema from
version n-1 to n; never edit a released step, add the next one.

Each step is a template. An engine module (feedsvc.store.migrations.sqlite, .postgres)
fills it with its ``Words``: how it spells a type, the condition of the partial indexes,
an index's order; and with its own statements where the engines differ in substance
(SQLite's FTS5 index, PostgreSQL's tsvector columns, how existing rows are backfilled).
The tables agree column for column, so that the two stores answer every query alike:

* text that is compared or ordered (``{key}``) uses ``COLLATE "C"`` on PostgreSQL: byte
  order, like SQLite's BINARY, whatever the database's default collation;
* instants are microseconds since the epoch (``bigint``) on both, so keyset cursors and
  comparisons are exact and the same on both stores;
* JSON documents (``{json}``, ``{blob}``) are ``bytea`` on PostgreSQL holding msgspec's
  encoding, so they round-trip byte for byte (``jsonb`` would reorder the keys of category
  names).

SQLite keeps each CREATE statement's text as written, and a restore compares a backup's
statements with these word for word (feedsvc.store.sqlite.backup): the SQLite text of a
released step must stay the same to the space, inline comments included, which is why
their columns line up as SQLite's words make them. tests/test_schema.py pins both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from feedsvc.errors import StorageError


class Words(NamedTuple):
    """How an engine spells what the shared steps leave open."""

    key: str
    """Text that is compared or ordered."""
    text: str
    json: str
    """A JSON document the store encodes (lists of events, names by language)."""
    blob: str
    int: str
    """A small count or status code."""
    bigint: str
    date: str
    bool: str
    rowid: str
    """The column that numbers commentaries for the rows that hang on them."""
    rowid_column: str
    seq_column: str
    """The change log's number: handed out by SQLite's AUTOINCREMENT, or by the
    PostgreSQL store as max + 1 under its write lock, so that numbers come in commit
    order and a reader never sees a lower one appear later."""
    public: str
    """The condition of the partial indexes over public commentaries."""
    hidden: str
    desc: str
    """Newest first: PostgreSQL's indexes say so; SQLite walks its ascending ones backwards."""
    without_rowid: str
    include: str
    """Columns an index carries beside its key (PostgreSQL only: index-only scans)."""


SQLITE = Words(
    key="TEXT", text="TEXT", json="TEXT", blob="BLOB", int="INTEGER", bigint="INTEGER", date="TEXT",
    bool="INTEGER", rowid="rowid", rowid_column="rowid INTEGER PRIMARY KEY",
    seq_column="seq INTEGER PRIMARY KEY AUTOINCREMENT", public="public = 1", hidden="public = 0", desc="",
    without_rowid=" WITHOUT ROWID", include="",
)
POSTGRES = Words(
    key='text COLLATE "C"', text="text", json="bytea", blob="bytea", int="integer", bigint="bigint",
    date="date", bool="boolean", rowid="cid", rowid_column="cid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    seq_column="seq bigint PRIMARY KEY", public="public", hidden="NOT public", desc=" DESC", without_rowid="",
    include=" INCLUDE (translation_key)",
)

TEMPLATES: dict[int, str] = {
    # Issue 2: commentaries, categories, tokens and the change log (issue 5: on PostgreSQL
    # too, with full-text search on tsvector). The engine's own: {search_columns} (and the
    # name of the (lang, slug) constraint, {lang_slug}), {search_index} and {member_tables}.
    1: """
    CREATE TABLE meta (
        key {key} PRIMARY KEY,
        value {blob} NOT NULL
    );
    CREATE TABLE categories (
        slug {key} PRIMARY KEY,
        names {json} NOT NULL,
        descriptions {json} NOT NULL,
        updated_us {bigint} NOT NULL,
        version {bigint} NOT NULL
    );
    -- Columns beside `doc` exist only to filter and order; `doc` is the Commentary as JSON.
    CREATE TABLE commentaries (
        {rowid_column},
        id {key} NOT NULL UNIQUE,
        lang {key} NOT NULL,
        slug {key} NOT NULL,
        translation_key {key},
        category {key} NOT NULL REFERENCES categories (slug),
        status {text} NOT NULL,
        trend {text},
        pub_us {bigint} NOT NULL,          -- published_at, microseconds since the epoch
        pub_date {date} NOT NULL,           -- the calendar date written in published_at
        updated_us {bigint} NOT NULL,
        period_start {date},
        period_end {date},
        version {bigint} NOT NULL,
        public {bool} NOT NULL,          -- 1: published and due, shown everywhere public
        doc {blob} NOT NULL,{search_columns}
        {lang_slug}UNIQUE (lang, slug)
    );
    CREATE INDEX commentaries_public ON commentaries (pub_us{desc}, id{desc}) WHERE {public};
    CREATE INDEX commentaries_category ON commentaries (category, pub_us{desc}, id{desc}) WHERE {public};
    CREATE INDEX commentaries_lang ON commentaries (lang, pub_us{desc}, id{desc}) WHERE {public};
    CREATE INDEX commentaries_updated ON commentaries (updated_us) WHERE {public};
    CREATE INDEX commentaries_translation ON commentaries (translation_key)
        WHERE translation_key IS NOT NULL;
    CREATE INDEX commentaries_due ON commentaries (pub_us)
        WHERE {hidden} AND status = 'published';
    CREATE INDEX commentaries_slug ON commentaries (slug);
    {search_index}
    {member_tables}
    CREATE INDEX commentary_tags_cid ON commentary_tags (cid);
    CREATE INDEX commentary_authors_cid ON commentary_authors (cid);

    -- Every write appends a row. `public_op` is what a public mirror sees (NULL: nothing).
    CREATE TABLE changes (
        {seq_column},
        kind {text} NOT NULL,               -- 'commentary' or 'category'
        ref {key} NOT NULL,                -- commentary id or category slug
        op {text} NOT NULL,                 -- created, updated, deleted
        public_op {text},
        at_us {bigint} NOT NULL,
        doc {blob}                          -- the commentary after the change (public upserts)
    );
    CREATE INDEX changes_public ON changes (seq) WHERE public_op IS NOT NULL;

    CREATE TABLE tokens (
        id {key} PRIMARY KEY,
        name {text} NOT NULL,
        scopes {json} NOT NULL,
        salt {blob} NOT NULL,
        digest {blob} NOT NULL,
        created_us {bigint} NOT NULL,
        expires_us {bigint},
        revoked_us {bigint}
    );
    """,
    # Issue 7: Idempotency-Key on POST /api/v1/commentaries. One row per (token, key),
    # forgotten after 24 hours; `doc` is the commentary as that POST stored it, so that a
    # retry gets the same answer even after later edits.
    2: """
    CREATE TABLE idempotency_keys (
        owner {key} NOT NULL,              -- id of the token that sent the key
        key {key} NOT NULL,                -- the Idempotency-Key header
        fingerprint {text} NOT NULL,        -- SHA-256 of the request body, as decoded
        commentary_id {text} NOT NULL,
        doc {blob} NOT NULL,                -- the Commentary as first stored, as JSON
        created_us {bigint} NOT NULL,
        PRIMARY KEY (owner, key)
    ){without_rowid};
    CREATE INDEX idempotency_keys_created ON idempotency_keys (created_us);
    """,
    # Issue 4, part 6: webhook subscriptions. The change log is their outbox: each one keeps
    # the seq of the last change it delivered or skipped (`cursor`), moved only after the
    # receiver acknowledged, so a restart resumes where delivery stopped.
    3: """
    CREATE TABLE webhooks (
        id {key} PRIMARY KEY,
        url {text} NOT NULL,
        events {json} NOT NULL,             -- JSON list: created, updated, deleted
        categories {json} NOT NULL,         -- JSON list of slugs (empty: every category)
        languages {json} NOT NULL,          -- JSON list of language tags (empty: every one)
        description {text},
        secret {blob} NOT NULL,             -- the signing key, shown once when registered
        owner {text} NOT NULL,              -- id of the token that registered it
        created_us {bigint} NOT NULL,
        cursor {bigint} NOT NULL,          -- seq of the last change delivered or skipped
        state {text} NOT NULL,              -- active, disabled
        disabled_reason {text},
        disabled_us {bigint},
        failures {int} NOT NULL,        -- consecutive failed attempts
        next_attempt_us {bigint} NOT NULL, -- no attempt before this (backoff)
        last_error {text},
        last_error_status {int},
        last_error_us {bigint},
        last_success_us {bigint},
        lease_owner {text},                 -- the sender delivering now (several nodes)
        lease_until_us {bigint} NOT NULL
    );
    CREATE INDEX webhooks_due ON webhooks (next_attempt_us) WHERE state = 'active';
    -- Filters of a deletion need the deleted commentary's category and language: the doc of
    -- its latest earlier public change.
    CREATE INDEX changes_ref ON changes (ref, seq) WHERE doc IS NOT NULL;
    """,
    # Issue 9: weekly digests, public commentaries grouped by (period_start, lang). The
    # indexes yield the newest periods first without a sort, overall and per language.
    # `digest_marks` keeps, per digest, the last time a commentary left it (replaced or
    # deleted) or joined it by turning public when due: what the ones in it cannot show.
    4: """
    CREATE INDEX commentaries_digest ON commentaries (period_start{desc}, lang)
        WHERE {public} AND period_start IS NOT NULL;
    CREATE INDEX commentaries_lang_digest ON commentaries (lang, period_start{desc})
        WHERE {public} AND period_start IS NOT NULL;
    CREATE TABLE digest_marks (
        lang {key} NOT NULL,
        period_start {date} NOT NULL,
        left_us {bigint} NOT NULL,
        PRIMARY KEY (lang, period_start)
    ){without_rowid};
    """,
    # Issue 9: related commentaries (feedsvc.store.related). Each commentary's category, tags
    # and title words, beside its language, time and id: the commentaries nearest in time that
    # share a key are one range scan of the primary key away, with nothing else to read:
    # only public commentaries have keys (publish_due adds them), and the translation key is
    # at hand to leave translations out. Existing commentaries get theirs here ({backfill}).
    5: """
    CREATE TABLE related_keys (
        lang {key} NOT NULL,
        key {key} NOT NULL,                -- c:category, t:tag (case-folded), w:title word
        pub_us {bigint} NOT NULL,
        id {key} NOT NULL,
        translation_key {key},
        cid {bigint} NOT NULL REFERENCES commentaries ({rowid}) ON DELETE CASCADE,
        -- INCLUDE (PostgreSQL): the windows read the index alone, never the table.
        PRIMARY KEY (lang, key, pub_us, id){include}
    ){without_rowid};
    {backfill}
    CREATE INDEX related_keys_cid ON related_keys (cid);
    """,
    # Issue 16: newsletter subscribers. An address is stored normalised and once
    # (feedsvc.newsletter.addresses); `confirm_nonce` makes a confirmation link single-use
    # (confirming clears it, a new sign-up replaces it) and `confirm_sent_us` keeps sign-ups
    # of one address from sending it more than one confirmation mail an hour.
    6: """
    CREATE TABLE subscribers (
        id {key} PRIMARY KEY,
        email {key} NOT NULL UNIQUE,
        lang {text} NOT NULL,               -- the language its mails and pages speak
        languages {json} NOT NULL,          -- JSON list: languages of the commentaries it gets
        categories {json} NOT NULL,         -- JSON list of slugs (empty: every category)
        cadence {text} NOT NULL,            -- weekly, each
        state {text} NOT NULL,              -- pending, active, unsubscribed, suspended
        state_reason {text},
        created_us {bigint} NOT NULL,
        updated_us {bigint} NOT NULL,
        confirmed_us {bigint},
        confirm_nonce {text},               -- the open confirmation link's nonce
        confirm_sent_us {bigint} NOT NULL   -- the last confirmation mail (0: may send now)
    );
    CREATE INDEX subscribers_state ON subscribers (state, id);
    -- An issue is one mailing (a weekly digest in one language); its sends are the queue:
    -- one row per (issue, subscriber), made once, so a subscriber is mailed an issue at most
    -- once whatever runs twice; a sender leases rows before sending (several nodes).
    CREATE TABLE newsletter_issues (
        key {key} PRIMARY KEY,             -- digest:START:LANG
        kind {text} NOT NULL,               -- digest
        start {date} NOT NULL,
        lang {key} NOT NULL,
        state {text} NOT NULL,              -- draft, sending, sent
        created_us {bigint} NOT NULL,
        queued_us {bigint}
    );
    CREATE TABLE newsletter_sends (
        issue {key} NOT NULL,
        subscriber_id {key} NOT NULL,
        state {text} NOT NULL,              -- queued, sent, failed
        attempts {int} NOT NULL,
        next_attempt_us {bigint} NOT NULL,  -- no attempt before this (back-off)
        lease_owner {text},
        lease_until_us {bigint} NOT NULL,
        message_id {text} NOT NULL,         -- the same on every attempt: receivers drop repeats
        last_error {text},
        sent_us {bigint},
        PRIMARY KEY (issue, subscriber_id)
    ){without_rowid};
    CREATE INDEX newsletter_sends_due ON newsletter_sends (next_attempt_us) WHERE state = 'queued';
    CREATE INDEX newsletter_sends_subscriber ON newsletter_sends (subscriber_id);
    """,
    # Full-text search matches the words as written on both engines, none stemmed
    # (feedsvc.store.postgres.text): PostgreSQL's stemmed copy of the words goes ({stems}).
    7: """{stems}""",
}


def steps(words: Words, own: Mapping[int, Mapping[str, str]]) -> dict[int, str]:
    """Every step in ``words``, with the engine's ``own`` statements in its slots."""
    return {n: template.format(**words._asdict(), **own.get(n, {})) for n, template in TEMPLATES.items()}


def statements(script: str) -> list[str]:
    """A step's statements, comment lines left out (no step has ';' in a string or trigger)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def pending(current: int, version: int) -> range:
    """The steps a database at ``current`` needs to reach ``version``.

    Raises:
        StorageError: the database is newer than this feedsvc.
    """
    if current > version:
        raise StorageError(f"the database is at schema {current}, newer than this feedsvc ({version})")
    return range(current + 1, version + 1)
