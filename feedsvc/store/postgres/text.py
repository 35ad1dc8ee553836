"""PostgreSQL's full-text search, matching exactly what SQLite's FTS5 matches.

Words are split by SQLite's own FTS5 tokenizer (feedsvc.store.words), stored with their
positions in ``tsv``, and queried as SQLite's ``fts_query`` does: every word, phrases for
words the tokenizer splits, the last word as a prefix. Nothing is stemmed, on either
store: the same words find the same commentaries whichever store holds them (a search
through PostgreSQL's stemmers found a superset, and SQLite has no Russian or Belarusian
stemmer to match it; docs/design-notes.md, 2026-12-07).
"""

from __future__ import annotations

from feedsvc.model import Commentary
from feedsvc.store.words import Words
from feedsvc.text import html_to_text

MAX_LEXEME_BYTES = 2047  # PostgreSQL refuses longer lexemes; longer words are cut to this
MAX_POSITION = 16383  # positions beyond it are stored as 16383
MAX_POSITIONS_PER_LEXEME = 256
MAX_TSVECTOR_TEXT = 1_000_000  # lexeme bytes per tsvector (PostgreSQL's limit is 1 MiB)
WEIGHTS = ("A", "B", "C", "D", "D")  # title, summary, body, tags, authors


def search_member(text: str, words: Words) -> tuple[str, list[str]]:
    """The condition (``?`` placeholders) and parameters of a full-text query, with
    SQLite's ``fts_query`` semantics on tsvector: every whitespace-separated word must
    occur; a word the tokenizer splits ("well-known") is a phrase within one field; the
    last token of the last word is a prefix; a word with no tokens is ignored (and takes
    the prefix with it, as in SQLite); no tokens at all match nothing.

    The user's text never reaches tsquery syntax: tsquery literals are built here from the
    tokenizer's words (letters and digits only), each quoted."""
    split = text.split()
    parts: list[str] = []
    params: list[str] = []
    for n, tokens in enumerate(words.split(split)):
        if not tokens:
            continue
        prefix = ":*" if n == len(split) - 1 else ""
        lexemes = [_tsquery_quote(_lexeme(t)) for t in tokens]
        params.append(" <-> ".join(lexemes) + prefix)
        parts.append("c.tsv @@ ?::text::tsquery")
    return (" AND ".join(parts) if parts else "false"), params


def _lexeme(token: str) -> str:
    """A token as PostgreSQL can store it: cut to MAX_LEXEME_BYTES at a character boundary."""
    data = token.encode()
    if len(data) <= MAX_LEXEME_BYTES:
        return token
    return data[:MAX_LEXEME_BYTES].decode(errors="ignore")


def _tsquery_quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def search_vectors(words: Words, item: Commentary) -> str:
    """``tsv`` as a tsvector literal: the tokenizer's words with positions and weights (a
    gap between fields, so a phrase never spans two)."""
    return vector_literal(words.split(
        [item.title, item.summary, html_to_text(item.body_html), " ".join(item.tags),
         " ".join(a.name for a in item.authors)]
    ))


def vector_literal(fields: list[list[str]]) -> str:
    """The tsvector literal of the fields' tokens (title, summary, body, tags, authors),
    within PostgreSQL's limits: positions stop at 16383, 256 per word, and once the words
    reach ~1 MB the rest of a very long body is not indexed."""
    positions: dict[str, list[int]] = {}
    weights: dict[tuple[str, int], str] = {}
    budget = MAX_TSVECTOR_TEXT
    position = 0
    for tokens, weight in zip(fields, WEIGHTS, strict=True):
        for token in tokens:
            position = min(position + 1, MAX_POSITION)
            lexeme = _lexeme(token)
            found = positions.get(lexeme)
            if found is None:
                size = len(lexeme.encode())
                if size > budget:
                    continue
                budget -= size
                found = positions[lexeme] = []
            if len(found) < MAX_POSITIONS_PER_LEXEME and (not found or found[-1] != position):
                found.append(position)
                weights[(lexeme, position)] = weight
        position = min(position + 1, MAX_POSITION)
    return " ".join(
        _tsquery_quote(lexeme) + ":" + ",".join(f"{p}{weights[(lexeme, p)]}" for p in found)
        for lexeme, found in positions.items()
    )
