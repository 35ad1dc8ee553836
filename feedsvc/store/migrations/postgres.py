"""PostgreSQL's schema: the shared steps (feedsvc.store.migrations.steps) in PostgreSQL's
words, with what only PostgreSQL has: the tsvector columns that stand in for SQLite's FTS5
index, and their use to backfill related keys.

``PostgresStore.migrate`` applies the pending steps and records the version in
``schema_version``, all in one transaction under an advisory lock, so that several nodes
starting at once migrate once and never see a half-made schema.
"""

from __future__ import annotations

from feedsvc.store.migrations.steps import POSTGRES, steps

STEPS: dict[int, str] = steps(POSTGRES, {
    1: {
        "search_columns": """
        -- Words exactly as SQLite's FTS5 tokenizer splits them, with positions (title A,
        -- summary B, body C, tags and authors D): matches what SqliteStore matches.
        tsv tsvector NOT NULL,
        -- The same words through the language's text-search configuration (english, russian,
        -- simple): lets a word also find its inflected forms.
        tsv_stem tsvector NOT NULL,""",
        "lang_slug": "CONSTRAINT commentaries_lang_slug ",
        "search_index": """
    CREATE INDEX commentaries_tsv ON commentaries USING gin (tsv);
    CREATE INDEX commentaries_tsv_stem ON commentaries USING gin (tsv_stem);""",
        "member_tables": """
    CREATE TABLE commentary_tags (
        cid bigint NOT NULL REFERENCES commentaries (cid) ON DELETE CASCADE,
        tag text COLLATE "C" NOT NULL,      -- as written, for display
        tag_key text COLLATE "C" NOT NULL,  -- case-folded, for matching
        PRIMARY KEY (tag_key, cid)
    );
    CREATE TABLE commentary_authors (
        cid bigint NOT NULL REFERENCES commentaries (cid) ON DELETE CASCADE,
        name text COLLATE "C" NOT NULL,
        name_key text COLLATE "C" NOT NULL,
        PRIMARY KEY (name_key, cid)
    );""",
    },
    # Related keys of the commentaries there are; their title words are the weight-A lexemes
    # of `tsv`, which holds the title as SQLite's tokenizer splits it.
    5: {"backfill": """
    INSERT INTO related_keys (lang, key, pub_us, id, translation_key, cid)
        SELECT lang, 'c:' || category, pub_us, id, translation_key, cid FROM commentaries WHERE public;
    INSERT INTO related_keys (lang, key, pub_us, id, translation_key, cid)
        SELECT c.lang, 't:' || t.tag_key, c.pub_us, c.id, c.translation_key, c.cid
        FROM commentary_tags t JOIN commentaries c ON c.cid = t.cid WHERE c.public;
    INSERT INTO related_keys (lang, key, pub_us, id, translation_key, cid)
        SELECT c.lang, 'w:' || w.lexeme, c.pub_us, c.id, c.translation_key, c.cid
        FROM commentaries c, unnest(ts_filter(c.tsv, '{a}')) AS w WHERE c.public;"""},
    # Its index goes with it.
    7: {"stems": "ALTER TABLE commentaries DROP COLUMN tsv_stem;"},
})

VERSION = max(STEPS)
