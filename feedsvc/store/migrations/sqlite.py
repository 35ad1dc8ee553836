"""SQLite schema steps. ``STEPS[n]`` takes the schema from version n-1 to n.

Steps run in one transaction with the version bump (``PRAGMA user_version``), at start-up
and from ``feedsvc migrate``. Never edit a released step; add the next one.
"""

from __future__ import annotations

STEPS: dict[int, str] = {
    # Issue 2: commentaries, categories, tokens and the change log.
    1: """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    CREATE TABLE categories (
        slug TEXT PRIMARY KEY,
        names TEXT NOT NULL,
        descriptions TEXT NOT NULL,
        updated_us INTEGER NOT NULL,
        version INTEGER NOT NULL
    );
    -- Columns beside `doc` exist only to filter and order; `doc` is the Commentary as JSON.
    CREATE TABLE commentaries (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        lang TEXT NOT NULL,
        slug TEXT NOT NULL,
        translation_key TEXT,
        category TEXT NOT NULL REFERENCES categories (slug),
        status TEXT NOT NULL,
        trend TEXT,
        pub_us INTEGER NOT NULL,          -- published_at, microseconds since the epoch
        pub_date TEXT NOT NULL,           -- the calendar date written in published_at
        updated_us INTEGER NOT NULL,
        period_start TEXT,
        period_end TEXT,
        version INTEGER NOT NULL,
        public INTEGER NOT NULL,          -- 1: published and due, shown everywhere public
        doc BLOB NOT NULL,
        UNIQUE (lang, slug)
    );
    CREATE INDEX commentaries_public ON commentaries (pub_us, id) WHERE public = 1;
    CREATE INDEX commentaries_category ON commentaries (category, pub_us, id) WHERE public = 1;
    CREATE INDEX commentaries_lang ON commentaries (lang, pub_us, id) WHERE public = 1;
    CREATE INDEX commentaries_updated ON commentaries (updated_us) WHERE public = 1;
    CREATE INDEX commentaries_translation ON commentaries (translation_key)
        WHERE translation_key IS NOT NULL;
    CREATE INDEX commentaries_due ON commentaries (pub_us)
        WHERE public = 0 AND status = 'published';
    CREATE INDEX commentaries_slug ON commentaries (slug);

    -- Key columns first: SQLite 3.40.0-3.41.0 reports false integrity_check errors on
    -- WITHOUT ROWID tables whose PRIMARY KEY order differs from the column order.
    CREATE TABLE commentary_tags (
        tag_key TEXT NOT NULL,            -- case-folded, for matching
        cid INTEGER NOT NULL REFERENCES commentaries (rowid) ON DELETE CASCADE,
        tag TEXT NOT NULL,                -- as written, for display
        PRIMARY KEY (tag_key, cid)
    ) WITHOUT ROWID;
    CREATE INDEX commentary_tags_cid ON commentary_tags (cid);

    CREATE TABLE commentary_authors (
        name_key TEXT NOT NULL,
        cid INTEGER NOT NULL REFERENCES commentaries (rowid) ON DELETE CASCADE,
        name TEXT NOT NULL,
        PRIMARY KEY (name_key, cid)
    ) WITHOUT ROWID;
    CREATE INDEX commentary_authors_cid ON commentary_authors (cid);

    CREATE VIRTUAL TABLE commentaries_fts USING fts5 (
        title, summary, body, tags, authors,
        tokenize = 'unicode61 remove_diacritics 2'
    );

    -- Every write appends a row. `public_op` is what a public mirror sees (NULL: nothing).
    CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,               -- 'commentary' or 'category'
        ref TEXT NOT NULL,                -- commentary id or category slug
        op TEXT NOT NULL,                 -- created, updated, deleted
        public_op TEXT,
        at_us INTEGER NOT NULL,
        doc BLOB                          -- the commentary after the change (public upserts)
    );
    CREATE INDEX changes_public ON changes (seq) WHERE public_op IS NOT NULL;

    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        scopes TEXT NOT NULL,
        salt BLOB NOT NULL,
        digest BLOB NOT NULL,
        created_us INTEGER NOT NULL,
        expires_us INTEGER,
        revoked_us INTEGER
    );
    """,
    # Issue 7: Idempotency-Key on POST /api/v1/commentaries. One row per (token, key),
    # forgotten after 24 hours; `doc` is the commentary as that POST stored it, so that a
    # retry gets the same answer even after later edits.
    2: """
    CREATE TABLE idempotency_keys (
        owner TEXT NOT NULL,              -- id of the token that sent the key
        key TEXT NOT NULL,                -- the Idempotency-Key header
        fingerprint TEXT NOT NULL,        -- SHA-256 of the request body, as decoded
        commentary_id TEXT NOT NULL,
        doc BLOB NOT NULL,                -- the Commentary as first stored, as JSON
        created_us INTEGER NOT NULL,
        PRIMARY KEY (owner, key)
    ) WITHOUT ROWID;
    CREATE INDEX idempotency_keys_created ON idempotency_keys (created_us);
    """,
    # Issue 4, part 6: webhook subscriptions. The change log is their outbox: each one keeps
    # the seq of the last change it delivered or skipped (`cursor`), moved only after the
    # receiver acknowledged, so a restart resumes where delivery stopped.
    3: """
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        events TEXT NOT NULL,             -- JSON list: created, updated, deleted
        categories TEXT NOT NULL,         -- JSON list of slugs (empty: every category)
        languages TEXT NOT NULL,          -- JSON list of language tags (empty: every one)
        description TEXT,
        secret BLOB NOT NULL,             -- the signing key, shown once when registered
        owner TEXT NOT NULL,              -- id of the token that registered it
        created_us INTEGER NOT NULL,
        cursor INTEGER NOT NULL,          -- seq of the last change delivered or skipped
        state TEXT NOT NULL,              -- active, disabled
        disabled_reason TEXT,
        disabled_us INTEGER,
        failures INTEGER NOT NULL,        -- consecutive failed attempts
        next_attempt_us INTEGER NOT NULL, -- no attempt before this (backoff)
        last_error TEXT,
        last_error_status INTEGER,
        last_error_us INTEGER,
        last_success_us INTEGER,
        lease_owner TEXT,                 -- the sender delivering now (several nodes)
        lease_until_us INTEGER NOT NULL
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
    CREATE INDEX commentaries_digest ON commentaries (period_start, lang)
        WHERE public = 1 AND period_start IS NOT NULL;
    CREATE INDEX commentaries_lang_digest ON commentaries (lang, period_start)
        WHERE public = 1 AND period_start IS NOT NULL;
    CREATE TABLE digest_marks (
        lang TEXT NOT NULL,
        period_start TEXT NOT NULL,
        left_us INTEGER NOT NULL,
        PRIMARY KEY (lang, period_start)
    ) WITHOUT ROWID;
    """,
    # Issue 9: related commentaries (feedsvc.store.related). Each commentary's category, tags
    # and title words, beside its language, time and id: the commentaries nearest in time that
    # share a key are one range scan of the primary key away, with nothing else to read:
    # only public commentaries have keys (publish_due adds them), and the translation key is
    # at hand to leave translations out. Existing commentaries get theirs here (in key order,
    # which makes the inserts sequential: about 35 s at 100,000), their title words split by
    # an FTS5 table with the search index's tokenizer.
    5: """
    CREATE TABLE related_keys (
        lang TEXT NOT NULL,
        key TEXT NOT NULL,                -- c:category, t:tag (case-folded), w:title word
        pub_us INTEGER NOT NULL,
        id TEXT NOT NULL,
        translation_key TEXT,
        cid INTEGER NOT NULL REFERENCES commentaries (rowid) ON DELETE CASCADE,
        PRIMARY KEY (lang, key, pub_us, id)
    ) WITHOUT ROWID;
    CREATE TEMP TABLE related_rows (
        cid INTEGER PRIMARY KEY, lang TEXT, pub_us INTEGER, id TEXT, translation_key TEXT, category TEXT
    );
    INSERT INTO temp.related_rows
        SELECT rowid, lang, pub_us, id, translation_key, category FROM commentaries WHERE public = 1;
    CREATE VIRTUAL TABLE temp.related_titles USING fts5 (
        title, content = '', tokenize = 'unicode61 remove_diacritics 2'
    );
    INSERT INTO temp.related_titles (rowid, title) SELECT rowid, title FROM commentaries_fts;
    CREATE VIRTUAL TABLE temp.related_title_words USING fts5vocab (temp, related_titles, instance);
    INSERT INTO related_keys (lang, key, pub_us, id, translation_key, cid)
        SELECT lang, 'c:' || category, pub_us, id, translation_key, cid FROM temp.related_rows
        UNION SELECT r.lang, 't:' || t.tag_key, r.pub_us, r.id, r.translation_key, r.cid
            FROM commentary_tags t JOIN temp.related_rows r ON r.cid = t.cid
        UNION SELECT r.lang, 'w:' || w.term, r.pub_us, r.id, r.translation_key, r.cid
            FROM temp.related_title_words w JOIN temp.related_rows r ON r.cid = w.doc
        ORDER BY 1, 2, 3, 4;
    DROP TABLE temp.related_title_words;
    DROP TABLE temp.related_titles;
    DROP TABLE temp.related_rows;
    CREATE INDEX related_keys_cid ON related_keys (cid);
    """,
}

VERSION = max(STEPS)
