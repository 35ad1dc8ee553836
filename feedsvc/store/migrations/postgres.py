"""PostgreSQL schema steps. ``STEPS[n]`` takes the schema from version n-1 to n.

``PostgresStore.migrate`` applies the pending steps and records the version in
``schema_version``, all in one transaction under an advisory lock, so that several nodes
starting at once migrate once and never see a half-made schema. Never edit a released
step; add the next one.

The tables mirror the SQLite ones (feedsvc/store/migrations/sqlite.py) column for column,
so that the two stores can answer every query identically:

* text that is compared or ordered uses ``COLLATE "C"``: byte order, like SQLite's BINARY,
  whatever the database's default collation;
* instants are microseconds since the epoch (``bigint``), as in SQLite, so keyset cursors
  and comparisons are exact and the same on both stores;
* JSON documents are ``bytea`` holding msgspec's encoding, so they round-trip byte for byte
  (``jsonb`` would reorder the keys of category names).
"""

from __future__ import annotations

STEPS: dict[int, str] = {
    # Issue 5: the PostgreSQL store -- commentaries, categories, tokens and the change log,
    # with full-text search on tsvector.
    1: """
    CREATE TABLE meta (
        key text COLLATE "C" PRIMARY KEY,
        value bytea NOT NULL
    );
    CREATE TABLE categories (
        slug text COLLATE "C" PRIMARY KEY,
        names bytea NOT NULL,
        descriptions bytea NOT NULL,
        updated_us bigint NOT NULL,
        version bigint NOT NULL
    );
    -- Columns beside `doc` exist only to filter and order; `doc` is the Commentary as JSON.
    CREATE TABLE commentaries (
        cid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text COLLATE "C" NOT NULL UNIQUE,
        lang text COLLATE "C" NOT NULL,
        slug text COLLATE "C" NOT NULL,
        translation_key text COLLATE "C",
        category text COLLATE "C" NOT NULL REFERENCES categories (slug),
        status text NOT NULL,
        trend text,
        pub_us bigint NOT NULL,           -- published_at, microseconds since the epoch
        pub_date date NOT NULL,           -- the calendar date written in published_at
        updated_us bigint NOT NULL,
        period_start date,
        period_end date,
        version bigint NOT NULL,
        public boolean NOT NULL,          -- published and due: shown everywhere public
        doc bytea NOT NULL,
        -- Words exactly as SQLite's FTS5 tokenizer splits them, with positions (title A,
        -- summary B, body C, tags and authors D): matches what SqliteStore matches.
        tsv tsvector NOT NULL,
        -- The same words through the language's text-search configuration (english, russian,
        -- simple): lets a word also find its inflected forms.
        tsv_stem tsvector NOT NULL,
        CONSTRAINT commentaries_lang_slug UNIQUE (lang, slug)
    );
    CREATE INDEX commentaries_public ON commentaries (pub_us DESC, id DESC) WHERE public;
    CREATE INDEX commentaries_category ON commentaries (category, pub_us DESC, id DESC) WHERE public;
    CREATE INDEX commentaries_lang ON commentaries (lang, pub_us DESC, id DESC) WHERE public;
    CREATE INDEX commentaries_updated ON commentaries (updated_us) WHERE public;
    CREATE INDEX commentaries_translation ON commentaries (translation_key)
        WHERE translation_key IS NOT NULL;
    CREATE INDEX commentaries_due ON commentaries (pub_us)
        WHERE NOT public AND status = 'published';
    CREATE INDEX commentaries_slug ON commentaries (slug);
    CREATE INDEX commentaries_tsv ON commentaries USING gin (tsv);
    CREATE INDEX commentaries_tsv_stem ON commentaries USING gin (tsv_stem);

    CREATE TABLE commentary_tags (
        cid bigint NOT NULL REFERENCES commentaries (cid) ON DELETE CASCADE,
        tag text COLLATE "C" NOT NULL,      -- as written, for display
        tag_key text COLLATE "C" NOT NULL,  -- case-folded, for matching
        PRIMARY KEY (tag_key, cid)
    );
    CREATE INDEX commentary_tags_cid ON commentary_tags (cid);

    CREATE TABLE commentary_authors (
        cid bigint NOT NULL REFERENCES commentaries (cid) ON DELETE CASCADE,
        name text COLLATE "C" NOT NULL,
        name_key text COLLATE "C" NOT NULL,
        PRIMARY KEY (name_key, cid)
    );
    CREATE INDEX commentary_authors_cid ON commentary_authors (cid);

    -- Every write appends a row. `public_op` is what a public mirror sees (NULL: nothing).
    -- `seq` is assigned by the store as max + 1 while it holds the write lock, so numbers
    -- are given in commit order and a reader never sees a lower one appear later.
    CREATE TABLE changes (
        seq bigint PRIMARY KEY,
        kind text NOT NULL,               -- 'commentary' or 'category'
        ref text COLLATE "C" NOT NULL,    -- commentary id or category slug
        op text NOT NULL,                 -- created, updated, deleted
        public_op text,
        at_us bigint NOT NULL,
        doc bytea                         -- the commentary after the change (public upserts)
    );
    CREATE INDEX changes_public ON changes (seq) WHERE public_op IS NOT NULL;

    CREATE TABLE tokens (
        id text COLLATE "C" PRIMARY KEY,
        name text NOT NULL,
        scopes bytea NOT NULL,
        salt bytea NOT NULL,
        digest bytea NOT NULL,
        created_us bigint NOT NULL,
        expires_us bigint,
        revoked_us bigint
    );
    """,
    # Issue 7: Idempotency-Key on POST /api/v1/commentaries. One row per (token, key),
    # forgotten after 24 hours; `doc` is the commentary as that POST stored it, so that a
    # retry gets the same answer even after later edits.
    2: """
    CREATE TABLE idempotency_keys (
        owner text COLLATE "C" NOT NULL,    -- id of the token that sent the key
        key text COLLATE "C" NOT NULL,      -- the Idempotency-Key header
        fingerprint text NOT NULL,          -- SHA-256 of the request body, as decoded
        commentary_id text NOT NULL,
        doc bytea NOT NULL,                 -- the Commentary as first stored, as JSON
        created_us bigint NOT NULL,
        PRIMARY KEY (owner, key)
    );
    CREATE INDEX idempotency_keys_created ON idempotency_keys (created_us);
    """,
    # Issue 4, part 6: webhook subscriptions. The change log is their outbox: each one keeps
    # the seq of the last change it delivered or skipped (`cursor`), moved only after the
    # receiver acknowledged, so a restart resumes where delivery stopped.
    3: """
    CREATE TABLE webhooks (
        id text COLLATE "C" PRIMARY KEY,
        url text NOT NULL,
        events bytea NOT NULL,              -- JSON list: created, updated, deleted
        categories bytea NOT NULL,          -- JSON list of slugs (empty: every category)
        languages bytea NOT NULL,           -- JSON list of language tags (empty: every one)
        description text,
        secret bytea NOT NULL,              -- the signing key, shown once when registered
        owner text NOT NULL,                -- id of the token that registered it
        created_us bigint NOT NULL,
        cursor bigint NOT NULL,             -- seq of the last change delivered or skipped
        state text NOT NULL,                -- active, disabled
        disabled_reason text,
        disabled_us bigint,
        failures integer NOT NULL,          -- consecutive failed attempts
        next_attempt_us bigint NOT NULL,    -- no attempt before this (backoff)
        last_error text,
        last_error_status integer,
        last_error_us bigint,
        last_success_us bigint,
        lease_owner text,                   -- the sender delivering now (several nodes)
        lease_until_us bigint NOT NULL
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
    CREATE INDEX commentaries_digest ON commentaries (period_start DESC, lang)
        WHERE public AND period_start IS NOT NULL;
    CREATE INDEX commentaries_lang_digest ON commentaries (lang, period_start DESC)
        WHERE public AND period_start IS NOT NULL;
    CREATE TABLE digest_marks (
        lang text COLLATE "C" NOT NULL,
        period_start date NOT NULL,
        left_us bigint NOT NULL,
        PRIMARY KEY (lang, period_start)
    );
    """,
    # Issue 9: related commentaries (feedsvc.store.related). Each commentary's category, tags
    # and title words, beside its language, time and id: the commentaries nearest in time that
    # share a key are one range scan of the primary key away, with nothing else to read:
    # only public commentaries have keys (publish_due adds them), and the translation key is
    # at hand to leave translations out. Existing commentaries get theirs here; their title
    # words are the weight-A lexemes of `tsv`, which holds the title as SQLite's tokenizer
    # splits it.
    5: """
    CREATE TABLE related_keys (
        lang text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,      -- c:category, t:tag (case-folded), w:title word
        pub_us bigint NOT NULL,
        id text COLLATE "C" NOT NULL,
        translation_key text COLLATE "C",
        cid bigint NOT NULL REFERENCES commentaries (cid) ON DELETE CASCADE,
        -- INCLUDE: the windows read the index alone (index-only scans), never the table.
        PRIMARY KEY (lang, key, pub_us, id) INCLUDE (translation_key)
    );
    INSERT INTO related_keys (lang, key, pub_us, id, translation_key, cid)
        SELECT lang, 'c:' || category, pub_us, id, translation_key, cid FROM commentaries WHERE public;
    INSERT INTO related_keys (lang, key, pub_us, id, translation_key, cid)
        SELECT c.lang, 't:' || t.tag_key, c.pub_us, c.id, c.translation_key, c.cid
        FROM commentary_tags t JOIN commentaries c ON c.cid = t.cid WHERE c.public;
    INSERT INTO related_keys (lang, key, pub_us, id, translation_key, cid)
        SELECT c.lang, 'w:' || w.lexeme, c.pub_us, c.id, c.translation_key, c.cid
        FROM commentaries c, unnest(ts_filter(c.tsv, '{a}')) AS w WHERE c.public;
    CREATE INDEX related_keys_cid ON related_keys (cid);
    """,
}

VERSION = max(STEPS)
