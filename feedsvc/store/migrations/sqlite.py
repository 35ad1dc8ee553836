"""SQLite's schema: the shared steps (feedsvc.store.migrations.steps) in SQLite's words,
with what only SQLite has: the FTS5 search index and its use to backfill related keys.

Steps run in one transaction with the version bump (``PRAGMA user_version``), at start-up
and from ``feedsvc migrate``.
"""

from __future__ import annotations

from feedsvc.store.migrations.steps import SQLITE, steps

STEPS: dict[int, str] = steps(SQLITE, {
    1: {
        "search_columns": "",
        "lang_slug": "",
        "search_index": """
    CREATE VIRTUAL TABLE commentaries_fts USING fts5 (
        title, summary, body, tags, authors,
        tokenize = 'unicode61 remove_diacritics 2'
    );""",
        # Key columns first: SQLite 3.40.0-3.41.0 reports false integrity_check errors on
        # WITHOUT ROWID tables whose PRIMARY KEY order differs from the column order.
        "member_tables": """
    CREATE TABLE commentary_tags (
        tag_key TEXT NOT NULL,            -- case-folded, for matching
        cid INTEGER NOT NULL REFERENCES commentaries (rowid) ON DELETE CASCADE,
        tag TEXT NOT NULL,                -- as written, for display
        PRIMARY KEY (tag_key, cid)
    ) WITHOUT ROWID;
    CREATE TABLE commentary_authors (
        name_key TEXT NOT NULL,
        cid INTEGER NOT NULL REFERENCES commentaries (rowid) ON DELETE CASCADE,
        name TEXT NOT NULL,
        PRIMARY KEY (name_key, cid)
    ) WITHOUT ROWID;""",
    },
    # Related keys of the commentaries there are, in key order, which makes the inserts
    # sequential (about 35 s at 100,000); their title words split by an FTS5 table with the
    # search index's tokenizer.
    5: {"backfill": """
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
    DROP TABLE temp.related_rows;"""},
    7: {"stems": ""},  # SQLite never had stems
})

VERSION = max(STEPS)
