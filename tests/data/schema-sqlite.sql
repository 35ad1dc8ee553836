CREATE INDEX changes_public ON changes (seq) WHERE public_op IS NOT NULL;
CREATE INDEX changes_ref ON changes (ref, seq) WHERE doc IS NOT NULL;
CREATE INDEX commentaries_category ON commentaries (category, pub_us, id) WHERE public = 1;
CREATE INDEX commentaries_digest ON commentaries (period_start, lang)
        WHERE public = 1 AND period_start IS NOT NULL;
CREATE INDEX commentaries_due ON commentaries (pub_us)
        WHERE public = 0 AND status = 'published';
CREATE INDEX commentaries_lang ON commentaries (lang, pub_us, id) WHERE public = 1;
CREATE INDEX commentaries_lang_digest ON commentaries (lang, period_start)
        WHERE public = 1 AND period_start IS NOT NULL;
CREATE INDEX commentaries_public ON commentaries (pub_us, id) WHERE public = 1;
CREATE INDEX commentaries_slug ON commentaries (slug);
CREATE INDEX commentaries_translation ON commentaries (translation_key)
        WHERE translation_key IS NOT NULL;
CREATE INDEX commentaries_updated ON commentaries (updated_us) WHERE public = 1;
CREATE INDEX commentary_authors_cid ON commentary_authors (cid);
CREATE INDEX commentary_tags_cid ON commentary_tags (cid);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_us);
CREATE INDEX newsletter_sends_due ON newsletter_sends (next_attempt_us) WHERE state = 'queued';
CREATE INDEX newsletter_sends_subscriber ON newsletter_sends (subscriber_id);
CREATE INDEX related_keys_cid ON related_keys (cid);
CREATE INDEX subscribers_state ON subscribers (state, id);
CREATE INDEX webhooks_due ON webhooks (next_attempt_us) WHERE state = 'active';
CREATE TABLE categories (
        slug TEXT PRIMARY KEY,
        names TEXT NOT NULL,
        descriptions TEXT NOT NULL,
        updated_us INTEGER NOT NULL,
        version INTEGER NOT NULL
    );
CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,               -- 'commentary' or 'category'
        ref TEXT NOT NULL,                -- commentary id or category slug
        op TEXT NOT NULL,                 -- created, updated, deleted
        public_op TEXT,
        at_us INTEGER NOT NULL,
        doc BLOB                          -- the commentary after the change (public upserts)
    );
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
CREATE VIRTUAL TABLE commentaries_fts USING fts5 (
        title, summary, body, tags, authors,
        tokenize = 'unicode61 remove_diacritics 2'
    );
CREATE TABLE 'commentaries_fts_config'(k PRIMARY KEY, v) WITHOUT ROWID;
CREATE TABLE 'commentaries_fts_content'(id INTEGER PRIMARY KEY, c0, c1, c2, c3, c4);
CREATE TABLE 'commentaries_fts_data'(id INTEGER PRIMARY KEY, block BLOB);
CREATE TABLE 'commentaries_fts_docsize'(id INTEGER PRIMARY KEY, sz BLOB);
CREATE TABLE 'commentaries_fts_idx'(segid, term, pgno, PRIMARY KEY(segid, term)) WITHOUT ROWID;
CREATE TABLE commentary_authors (
        name_key TEXT NOT NULL,
        cid INTEGER NOT NULL REFERENCES commentaries (rowid) ON DELETE CASCADE,
        name TEXT NOT NULL,
        PRIMARY KEY (name_key, cid)
    ) WITHOUT ROWID;
CREATE TABLE commentary_tags (
        tag_key TEXT NOT NULL,            -- case-folded, for matching
        cid INTEGER NOT NULL REFERENCES commentaries (rowid) ON DELETE CASCADE,
        tag TEXT NOT NULL,                -- as written, for display
        PRIMARY KEY (tag_key, cid)
    ) WITHOUT ROWID;
CREATE TABLE digest_marks (
        lang TEXT NOT NULL,
        period_start TEXT NOT NULL,
        left_us INTEGER NOT NULL,
        PRIMARY KEY (lang, period_start)
    ) WITHOUT ROWID;
CREATE TABLE idempotency_keys (
        owner TEXT NOT NULL,              -- id of the token that sent the key
        key TEXT NOT NULL,                -- the Idempotency-Key header
        fingerprint TEXT NOT NULL,        -- SHA-256 of the request body, as decoded
        commentary_id TEXT NOT NULL,
        doc BLOB NOT NULL,                -- the Commentary as first stored, as JSON
        created_us INTEGER NOT NULL,
        PRIMARY KEY (owner, key)
    ) WITHOUT ROWID;
CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
CREATE TABLE newsletter_issues (
        key TEXT PRIMARY KEY,             -- digest:START:LANG
        kind TEXT NOT NULL,               -- digest
        start TEXT NOT NULL,
        lang TEXT NOT NULL,
        state TEXT NOT NULL,              -- draft, sending, sent
        created_us INTEGER NOT NULL,
        queued_us INTEGER
    );
CREATE TABLE newsletter_sends (
        issue TEXT NOT NULL,
        subscriber_id TEXT NOT NULL,
        state TEXT NOT NULL,              -- queued, sent, failed
        attempts INTEGER NOT NULL,
        next_attempt_us INTEGER NOT NULL,  -- no attempt before this (back-off)
        lease_owner TEXT,
        lease_until_us INTEGER NOT NULL,
        message_id TEXT NOT NULL,         -- the same on every attempt: receivers drop repeats
        last_error TEXT,
        sent_us INTEGER,
        PRIMARY KEY (issue, subscriber_id)
    ) WITHOUT ROWID;
CREATE TABLE related_keys (
        lang TEXT NOT NULL,
        key TEXT NOT NULL,                -- c:category, t:tag (case-folded), w:title word
        pub_us INTEGER NOT NULL,
        id TEXT NOT NULL,
        translation_key TEXT,
        cid INTEGER NOT NULL REFERENCES commentaries (rowid) ON DELETE CASCADE,
        PRIMARY KEY (lang, key, pub_us, id)
    ) WITHOUT ROWID;
CREATE TABLE subscribers (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        lang TEXT NOT NULL,               -- the language its mails and pages speak
        languages TEXT NOT NULL,          -- JSON list: languages of the commentaries it gets
        categories TEXT NOT NULL,         -- JSON list of slugs (empty: every category)
        cadence TEXT NOT NULL,            -- weekly, each
        state TEXT NOT NULL,              -- pending, active, unsubscribed, suspended
        state_reason TEXT,
        created_us INTEGER NOT NULL,
        updated_us INTEGER NOT NULL,
        confirmed_us INTEGER,
        confirm_nonce TEXT,               -- the open confirmation link's nonce
        confirm_sent_us INTEGER NOT NULL   -- the last confirmation mail (0: may send now)
    );
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
