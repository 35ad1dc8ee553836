"""PostgreSQL's full-text search, made to match what SQLite's FTS5 matches.

Words are split by SQLite's own FTS5 tokenizer (feedsvc.store.words), stored with their
positions in ``tsv``, and queried as SQLite's ``fts_query`` does: every word, phrases for
words the tokenizer splits, the last word as a prefix. On top, ``tsv_stem`` holds the same
words through the language's text-search configuration (``TEXT_SEARCH_CONFIGS``), and a
query word also matches through its stem, so it finds its inflected forms ("sanction"
finds "sanctions", "санкции" finds "санкций"): PostgreSQL finds everything SQLite finds,
and sometimes more. (On the 43 demo commentaries, of 2,056 one- and two-word queries 90%
gave the same results and 10% more; none fewer.) With ``TEXT_SEARCH_CONFIGS`` empty the
two searches are the same.
"""

from __future__ import annotations

from feedsvc.model import Commentary
from feedsvc.store.words import Words
from feedsvc.text import html_to_text

TEXT_SEARCH_CONFIGS = {"en": "english", "ru": "russian"}
"""Text-search configuration by primary language subtag; ``simple`` for any other."""
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
        condition = "c.tsv @@ ?::text::tsquery"
        params.append(" <-> ".join(lexemes) + prefix)
        configs = sorted(set(TEXT_SEARCH_CONFIGS.values()))
        if len(lexemes) == 1 and configs:
            # The word through each configuration's stemmer, computed once per query. Never
            # as a prefix: the stem of a word still being typed means nothing, and a prefix
            # of a stem ("added" -> "ad") would match far too much.
            stems = " || ".join(f"to_tsquery('{cfg}', ?::text)" for cfg in configs)
            params += [lexemes[0]] * len(configs)
            condition = f"({condition} OR c.tsv_stem @@ (SELECT {stems}))"
        parts.append(condition)
    return (" AND ".join(parts) if parts else "false"), params


def text_search_config(lang: str) -> str:
    return TEXT_SEARCH_CONFIGS.get(lang.split("-")[0].lower(), "simple")


def _lexeme(token: str) -> str:
    """A token as PostgreSQL can store it: cut to MAX_LEXEME_BYTES at a character boundary."""
    data = token.encode()
    if len(data) <= MAX_LEXEME_BYTES:
        return token
    return data[:MAX_LEXEME_BYTES].decode(errors="ignore")


def _tsquery_quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def search_vectors(words: Words, item: Commentary) -> tuple[str, str]:
    """``tsv`` as a tsvector literal (the tokenizer's words with positions and weights; a
    gap between fields, so a phrase never spans two) and the distinct words as text for
    ``tsv_stem``. Within PostgreSQL's limits: positions stop at 16383, 256 per word, and
    once the words reach ~1 MB the rest of a very long body is not indexed."""
    fields = words.split(
        [item.title, item.summary, html_to_text(item.body_html), " ".join(item.tags),
         " ".join(a.name for a in item.authors)]
    )
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
    literal = " ".join(
        _tsquery_quote(lexeme) + ":" + ",".join(f"{p}{weights[(lexeme, p)]}" for p in found)
        for lexeme, found in positions.items()
    )
    return literal, " ".join(positions)
