"""How SqliteStore finds a page of full-text matches (``q``) quickly at a million commentaries.

A page is the newest ``limit`` public commentaries matching the query's filters and its
words. Three plans give exactly those rows, in the same order; they differ in what SQLite
reads to find them, and the cheapest depends on how many commentaries match:

* ``probe``: walk the newest-first index and ask FTS5 about each candidate (a seek in each
  term's doclist). About ``limit / density`` seeks: the plan for a word in many documents
  ("sanctions": 28 seeks for a page instead of listing 750,000 matches).
* ``list``: FTS5 lists every match once into a rowid set; the index walk tests each
  candidate against it. Costs the number of matches: the plan for the middle ground.
* ``matches``: FTS5 lists the matches, the newest ``limit`` of them are sorted out by key
  alone and only their documents are read. For a rare word, where walking the index would
  read most of it before the page is full.

Which one: FTS5 counts the matches among the newest ``SAMPLE`` rowids (a bounded read of
each doclist's tail), which gives the density and, scaled, the number of matches.

**Prefixes.** The last word of a query is a prefix ("sanct" finds "sanctions"). FTS5 answers
a prefix by merging the doclists of every term that starts with it, in memory, at every
cursor it opens: a probe per candidate would redo that each time (10 ms a probe at 100k),
and even one pass costs twice the exact term. So the prefix is first expanded into the
terms the index holds (an ``fts5vocab`` table, one seek per term), and the query asks for
``("sanction" OR "sanctions" ...)``: the same documents, through exact terms. A prefix of
more than ``MAX_TERMS`` terms stays a prefix.
"""

from __future__ import annotations

from typing import Any, Literal

import aiosqlite

from feedsvc.store.words import shared as _words

Plan = Literal["probe", "list", "matches"]

TERMS_TABLE = "temp.commentaries_fts_terms"
CREATE_TERMS_TABLE = f"CREATE VIRTUAL TABLE IF NOT EXISTS {TERMS_TABLE} USING fts5vocab (main, commentaries_fts, instance)"
"""Per connection (a temp table: no schema change), before ``query_only`` is set."""

MAX_TERMS = 16
"""A prefix with more terms than this is left to FTS5 as a prefix."""
SAMPLE = 2000
"""Newest rowids whose matches are counted to choose a plan."""
DENSE = 0.05
"""Density from which ``probe`` wins: at most 20 seeks per row of the page."""

# The terms of the index that start with ?1, in order, at most ?2 + 1 of them: one seek of
# the vocabulary per term ("term >= t || char(1)" seeks past t; "term > t" would step over
# every instance of t, 75,000 of them for a common word at 100k).
_EXPAND = f"""
WITH RECURSIVE t (term) AS (
    SELECT (SELECT term FROM {TERMS_TABLE} WHERE term >= ?1 LIMIT 1)
    UNION ALL
    SELECT (SELECT term FROM {TERMS_TABLE} WHERE term >= t.term || char(1) LIMIT 1) FROM t
    WHERE t.term IS NOT NULL AND substr(t.term, 1, length(?1)) = ?1
    LIMIT ?2 + 2
)
SELECT term FROM t WHERE term IS NOT NULL AND substr(term, 1, length(?1)) = ?1
"""

_SAMPLE = (
    "SELECT count(*), (SELECT coalesce(max(rowid), 0) FROM commentaries) FROM commentaries_fts"
    " WHERE commentaries_fts MATCH ?1 AND rowid > (SELECT coalesce(max(rowid), 0) FROM commentaries) - ?2"
)


def fts_query(text: str) -> str:
    """Turn free text into an FTS5 query that cannot be a syntax error: every word quoted,
    all words required, the last one also as a prefix (so "sanct" finds "sanctions")."""
    words = [w.replace('"', '""') for w in text.split()]
    if not words:
        return '""'
    parts = [f'"{w}"' for w in words[:-1]] + [f'"{words[-1]}"*']
    return " ".join(parts)


async def expanded_query(conn: aiosqlite.Connection, text: str) -> tuple[str, bool]:
    """``fts_query(text)`` with the last word's prefix spelled out as the terms the index
    holds (the same documents match), and whether that was done: False when the query
    still holds a prefix. ``conn`` must have ``TERMS_TABLE``."""
    words = text.split()
    tokens = _words().split([words[-1]])[0] if words else []
    if not tokens:
        return fts_query(text), False
    rows = await conn.execute_fetchall(_EXPAND, (tokens[-1], MAX_TERMS))
    terms = [r[0] for r in rows]
    if not terms or len(terms) > MAX_TERMS:
        return fts_query(text), False
    # The last word's other tokens stay in each phrase: "covid-19" is the phrase covid 19*.
    lead = " ".join(tokens[:-1])
    phrases = [_quote(f"{lead} {term}" if lead else term) for term in terms]
    last = phrases[0] if len(phrases) == 1 else "(" + " OR ".join(phrases) + ")"
    # Explicit ANDs, since a phrase followed by a parenthesised group without AND is a
    # syntax error. Words without a token ("&") go: FTS5 ignores such an empty phrase between
    # implicit ANDs (as fts_query writes them) but matches nothing with an explicit one.
    before = [w for w, tokens in zip(words[:-1], _words().split(words[:-1])) if tokens]
    return " AND ".join([*(_quote(w) for w in before), last]), True


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


async def choose_plan(conn: aiosqlite.Connection, match: str, *, exact: bool) -> Plan:
    """The cheapest plan for a page of ``match``'s matches (see the module docstring);
    never ``probe`` for a query that still holds a prefix (``exact`` False)."""
    rows = list(await conn.execute_fetchall(_SAMPLE, (match, SAMPLE)))
    found, newest = int(rows[0][0]), int(rows[0][1])
    window = min(SAMPLE, newest)
    if window == 0:
        return "matches"
    density = found / window
    if density >= DENSE and exact:
        return "probe"
    # Sorting out the matches costs a row lookup each; walking the index costs about
    # limit / density entries (~1/30 of a lookup each): even at sqrt(rows) matches.
    if (density * newest) ** 2 <= newest:
        return "matches"
    return "list"


def match_clause(plan: Plan) -> str:
    """The WHERE condition that keeps the matches of the FTS5 query (one parameter)."""
    if plan == "probe":
        return "EXISTS (SELECT 1 FROM commentaries_fts WHERE commentaries_fts MATCH ? AND rowid = c.rowid)"
    return "c.rowid IN (SELECT rowid FROM commentaries_fts WHERE commentaries_fts MATCH ?)"


def matches_first(columns: str, match: str, where: str, params: list[Any], limit: int) -> tuple[str, list[Any]]:
    """The ``matches`` plan: the FTS5 matches of ``match`` drive, the page is chosen by key
    (no document is read but the page's own), then read in order. ``where`` (on
    commentaries ``c``, with ``params``) holds every other condition."""
    sql = (
        f"SELECT {columns} FROM commentaries c WHERE c.rowid IN ("
        "SELECT c.rowid FROM (SELECT rowid FROM commentaries_fts WHERE commentaries_fts MATCH ?) m"
        f" CROSS JOIN commentaries c ON c.rowid = m.rowid WHERE {where}"
        " ORDER BY c.pub_us DESC, c.id DESC LIMIT ?) ORDER BY c.pub_us DESC, c.id DESC"
    )
    return sql, [match, *params, limit]
