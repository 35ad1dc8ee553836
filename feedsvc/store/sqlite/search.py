"""How SqliteStore finds a page of a query with membership filters quickly at a million
commentaries: full text (``q``), a tag, an author.

A page is the newest ``limit`` public commentaries that pass the query's filters. Each
membership filter is a set of commentaries (FTS5's matches, or a tag's or an author's rows)
that can be used three ways; every choice gives exactly the same rows in the same order,
they differ in what SQLite reads:

* ``probe``: walk the newest-first index and ask about each candidate (``EXISTS``: a seek in
  each term's doclist, or in the tag's primary key). About ``limit / density`` candidates:
  the way for a word in many documents ("sanctions": 28 seeks for a page instead of
  listing 800,000 matches).
* ``list``: the set is read once into a rowid set the index walk tests each candidate
  against. Costs the size of the set: the middle ground.
* driven (``matches``): the smallest set drives; its rows are sorted out by key alone
  (no document is read but the page's own). For a rare word or tag, where walking the
  index would read most of it before the page is full.

Which: each set's density among the newest ``SAMPLE`` rowids (a bounded read of the tail
of each doclist or key range) gives its size; a cost model with constants measured at 1M
rows (``COSTS``) picks the cheapest. Densities multiply: a common word with a common tag
walks further than either alone.

**Prefixes.** The last word of a query is a prefix ("sanct" finds "sanctions"). FTS5 answers
a prefix by merging the doclists of every term that starts with it, in memory, at every
cursor it opens: a probe per candidate would redo that each time (10 ms a probe at 100k),
and even one pass costs twice the exact term. So the prefix is first expanded into the
terms the index holds (an ``fts5vocab`` table, one seek per term), and the query asks for
``("sanction" OR "sanctions" ...)``: the same documents, through exact terms. A prefix of
more than ``MAX_TERMS`` terms stays a prefix, never probed nor sampled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiosqlite

from feedsvc.store.words import shared as _words

Plan = Literal["probe", "list", "matches"]
"""A whole page's way, forced (tests): every set probed, every set listed, or driven."""
Mode = Literal["probe", "list"]
Kind = Literal["text", "tag", "author"]

TERMS_TABLE = "temp.commentaries_fts_terms"
CREATE_TERMS_TABLE = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {TERMS_TABLE} USING fts5vocab (main, commentaries_fts, instance)"
)
"""Per connection (a temp table: no schema change), before ``query_only`` is set."""

MAX_TERMS = 16
"""A prefix with more terms than this is left to FTS5 as a prefix."""
SAMPLE = 2000
"""Newest rowids whose members are counted to choose a plan."""

COSTS: dict[Kind, tuple[float, float]] = {"text": (40.0, 0.2), "tag": (0.7, 0.2), "author": (0.7, 0.2)}
"""Microseconds per candidate probed, and per member listed into a rowid set (1M rows)."""
LOOKUP_US = 4.0
"""A driven plan's cost per member: reading its row to sort it out by key."""
WALK_US = 0.5
"""Stepping the newest-first index by one candidate."""

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
    holds (the same documents match), and whether the result is cheap to probe: False when
    it still holds a prefix of more than MAX_TERMS terms, which FTS5 merges at every
    cursor. (A prefix no term starts with stays too, but costs nothing.) ``conn`` must have
    ``TERMS_TABLE``."""
    words = text.split()
    tokens = _words().split([words[-1]])[0] if words else []
    if not tokens:
        return fts_query(text), True
    rows = await conn.execute_fetchall(_EXPAND, (tokens[-1], MAX_TERMS))
    terms = [r[0] for r in rows]
    if not terms or len(terms) > MAX_TERMS:
        return fts_query(text), not terms
    # The last word's other tokens stay in each phrase: "covid-19" is the phrase covid 19*.
    lead = " ".join(tokens[:-1])
    phrases = [_quote(f"{lead} {term}" if lead else term) for term in terms]
    last = phrases[0] if len(phrases) == 1 else "(" + " OR ".join(phrases) + ")"
    # Explicit ANDs, since a phrase followed by a parenthesised group without AND is a
    # syntax error. Words without a token ("&") go: FTS5 ignores such an empty phrase between
    # implicit ANDs (as fts_query writes them) but matches nothing with an explicit one.
    before = [w for w, tokens in zip(words[:-1], _words().split(words[:-1]), strict=True) if tokens]
    return " AND ".join([*(_quote(w) for w in before), last]), True


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


class Expansions:
    """``expanded_query`` results remembered while the database stays as it was.

    Spelling out a prefix seeks the vocabulary past each of its terms, and past a common
    one FTS5 reads that term's whole doclist (10 ms for "sanctions" at 1M rows). Results are
    kept under the store's change token (feedsvc.store.sqlite.watch) read *before* they were
    computed, and looked up with a token read *after* the reader's snapshot began: equal
    tokens mean no commit in between, so a remembered expansion never lacks a term that
    snapshot holds (a term since deleted only adds an alternative that matches nothing).
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._token: object = None
        self._found: dict[str, tuple[str, bool]] = {}

    def get(self, token: object, text: str) -> tuple[str, bool] | None:
        return self._found.get(text) if token is not None and token == self._token else None

    def put(self, token: object, text: str, found: tuple[str, bool]) -> None:
        if token is None:
            return
        if token != self._token or len(self._found) >= self.size:
            self._token, self._found = token, {}
        self._found[text] = found


@dataclass(frozen=True)
class Member:
    """A membership filter of a page: the commentaries in one set."""

    kind: Kind
    param: Any
    """The FTS5 query, or the case-folded tag or author name."""
    probe_ok: bool = True
    """False for a full-text query that still holds a prefix: never probed nor sampled."""

    @property
    def set_sql(self) -> str:
        """One parameter; the rowids of the members, as ``r``."""
        if self.kind == "text":
            return "SELECT rowid AS r FROM commentaries_fts WHERE commentaries_fts MATCH ?"
        table, key = _TABLES[self.kind]
        return f"SELECT cid AS r FROM {table} WHERE {key} = ?"

    def clause(self, mode: Mode) -> str:
        """The WHERE condition on commentaries ``c`` (one parameter)."""
        if mode == "list":
            return f"c.rowid IN ({self.set_sql})"
        if self.kind == "text":
            return "EXISTS (SELECT 1 FROM commentaries_fts WHERE commentaries_fts MATCH ? AND rowid = c.rowid)"
        table, key = _TABLES[self.kind]
        return f"EXISTS (SELECT 1 FROM {table} WHERE {key} = ? AND cid = c.rowid)"

    @property
    def sample_sql(self) -> str:
        """Two parameters (the member, the lowest rowid sampled): how many in the sample."""
        if self.kind == "text":
            return "SELECT count(*) FROM commentaries_fts WHERE commentaries_fts MATCH ? AND rowid > ?"
        table, key = _TABLES[self.kind]
        return f"SELECT count(*) FROM {table} WHERE {key} = ? AND cid > ?"


_TABLES: dict[Kind, tuple[str, str]] = {
    "tag": ("commentary_tags", "tag_key"),
    "author": ("commentary_authors", "name_key"),
}


@dataclass(frozen=True)
class PagePlan:
    driver: Member | None
    """The set that drives the page, or None: walk the newest-first index."""
    modes: tuple[tuple[Member, Mode], ...]
    """The other sets and how each is tested."""


NEWEST = "SELECT coalesce(max(rowid), 0) FROM commentaries"
"""The newest rowid: the rows the samples scale to."""


async def plan_page(conn: aiosqlite.Connection, members: Sequence[Member], limit: int, newest: int) -> PagePlan:
    """The cheapest way to a page with ``members`` (see the module docstring), ``newest``
    the greatest rowid (``NEWEST``)."""
    window = min(SAMPLE, newest)
    sizes: list[float] = []
    for m in members:
        if not m.probe_ok:
            sizes.append(float(newest))  # a prefix of many terms: sampling it would merge them all
            continue
        found = list(await conn.execute_fetchall(m.sample_sql, (m.param, newest - window)))
        sizes.append(found[0][0] / window * newest if window else 0.0)
    return choose(members, sizes, newest, limit)


def choose(members: Sequence[Member], sizes: Sequence[float], rows: int, limit: int) -> PagePlan:
    """The plan of least estimated cost for sets of ``sizes`` among ``rows`` commentaries.

    SQLite tests the conditions of a walk in the order they are written (members' order:
    tags and authors before the text, whose probe costs most), each only on the
    candidates the earlier ones let through; the estimate follows that order.
    """
    rows = max(rows, 1)
    shares = [min(1.0, max(size, 0.5) / rows) for size in sizes]
    walk = min(float(rows), limit / math.prod(shares))  # candidates the newest-first index yields
    walking, left = walk * WALK_US, walk
    modes: list[tuple[Member, Mode]] = []
    for m, size, share in zip(members, sizes, shares, strict=True):
        probe, listed = COSTS[m.kind]
        mode: Mode = "probe" if m.probe_ok and left * probe < size * listed else "list"
        modes.append((m, mode))
        walking += left * probe if mode == "probe" else size * listed
        left *= share
    # Driven by the smallest set: each of its rows read, the other sets probed in turn.
    n = min(range(len(members)), key=lambda i: sizes[i])
    driven, left = sizes[n] * (COSTS[members[n].kind][1] + LOOKUP_US), sizes[n]
    for i, m in enumerate(members):
        if i != n:
            driven += left * COSTS[m.kind][0] if m.probe_ok else sizes[i] * COSTS[m.kind][1]
            left *= shares[i]
    if driven < walking:
        return PagePlan(members[n], tuple((m, _probe_if_ok(m)) for i, m in enumerate(members) if i != n))
    return PagePlan(None, tuple(modes))


def _probe_if_ok(m: Member) -> Mode:
    return "probe" if m.probe_ok else "list"


def forced(members: Sequence[Member], plan: Plan) -> PagePlan:
    """A plan chosen by the caller (tests compare them): ``probe`` probes every set that can
    be, ``list`` lists them all, ``matches`` is driven by the first."""
    if plan == "matches":
        return PagePlan(members[0], tuple((m, _probe_if_ok(m)) for m in members[1:]))
    return PagePlan(None, tuple((m, _probe_if_ok(m) if plan == "probe" else "list") for m in members))


def driven_sql(columns: str, driver: Member, where: str, params: list[Any], limit: int) -> tuple[str, list[Any]]:
    """A page driven by ``driver``'s set: its rows sorted out by key (no document is read
    but the page's own), then read in order. ``where`` (on commentaries ``c``, with
    ``params``) holds every other condition."""
    sql = (
        f"SELECT {columns} FROM commentaries c WHERE c.rowid IN ("
        f"SELECT c.rowid FROM ({driver.set_sql}) m CROSS JOIN commentaries c ON c.rowid = m.r WHERE {where}"
        " ORDER BY c.pub_us DESC, c.id DESC LIMIT ?) ORDER BY c.pub_us DESC, c.id DESC"
    )
    return sql, [driver.param, *params, limit]
