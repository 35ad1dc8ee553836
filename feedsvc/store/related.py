"""Related commentaries (issue 9): what two commentaries share, and how that is scored.

Both stores answer ``get_related`` with the functions here, so that for the same data they
rank the same commentaries in the same order, to the last tie (a contract, tested on both).

**Keys.** Every commentary is stored with its *related keys* (table ``related_keys``), each
beside its language, publication time and id (``stored_keys``):

* ``c:<slug>``  its category;
* ``t:<tag>``   each tag, case-folded (as ``commentary_tags.tag_key``);
* ``w:<word>``  each distinct word of its title, as the full-text index splits it
  (feedsvc.store.words: case-folded, diacritics removed, the same on both stores).

**Windows.** For a commentary A, a store reads, for each of A's *probe keys* (its category,
its tags, and its first ``MAX_TITLE_WORDS`` title words that are not stop words), the
``WINDOW`` commentaries nearest in publication time on each side of A that carry the key
and are *eligible*: public, in A's language, not A itself, and not one of A's translations
(the same ``translation_key``). Each window is one range scan of the primary key of
``related_keys`` (lang, key, pub_us, id), which holds public commentaries only, so the work
is bounded by the number of keys, never by how common a tag or a category is: at most
``2 × WINDOW`` rows per key, whatever the size of the archive, in one statement.

**Score.** A commentary B *shares* a probe key when B is in one of that key's windows. With
fewer than ``WINDOW`` carriers on B's side of A, that is simply when B carries the key; with
more, a widely used key (a common tag, the category, an everyday title word) speaks only
for the carriers nearest to A, so over a large archive a shared rare key weighs more than a
shared common one, much as inverse document frequency does in search ranking. Then

    score = 3 × (tags shared)
          + 2 × (1 if the category is shared)
          + 3 × (title words shared ÷ A's probed title words)
          + 1 ÷ (1 + days between A and B ÷ 30)

rounded to 6 decimals. Tags weigh most: an editor chose them. A shared category is a broad
hint; title words stand for the full text (a title that repeats all of A's words counts as
much as a tag). The last term is closeness in time, 1 for the same moment, ½ a month apart:
for the newest commentaries (feeds show those) it means *recency*, and an archived
commentary is related to what was written around it, not to this week's news. Being
measured from A rather than from the clock, it keeps answers (and their ETags, and cached
feeds) unchanged until the data change. Ties: the newer first, then the greater id.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import msgspec

from feedsvc.model import Commentary, to_us
from feedsvc.store.words import shared

WINDOW = 10
"""Eligible commentaries read per probe key on each side of the commentary in time."""
MAX_TITLE_WORDS = 8
"""Title words probed (the first ones that are not stop words)."""
MAX_TAGS = 20
"""Tags probed: every tag a commentary may have (model.NewCommentary)."""
MAX_KEYS = 1 + MAX_TAGS + MAX_TITLE_WORDS
"""Probe keys of one commentary at most: stores may shape their statements for this many."""
TAG_WEIGHT = 3.0
CATEGORY_WEIGHT = 2.0
TITLE_WEIGHT = 3.0
CLOSENESS_DAYS = 30.0
"""Days apart at which the closeness term halves."""
DAY_US = 86_400_000_000

# Words too common to say what a title is about, in the languages commentaries are written
# in, as the tokenizer returns them (lower case; Cyrillic keeps ё, й and ў). Words of one
# character never count either.
STOP_WORDS = frozenset(
    [
        "about", "above", "after", "again", "against", "along", "also", "amid", "among", "an", "and", "another", "any",
        "are", "around", "as", "at", "be", "been", "before", "behind", "being", "below", "beneath", "beside", "between",
        "beyond", "both", "but", "by", "can", "could", "did", "do", "does", "down", "during", "each", "either", "every",
        "for", "from", "had", "has", "have", "he", "her", "here", "hers", "him", "his", "how", "if", "in", "into", "is",
        "it", "its", "itself", "just", "may", "me", "might", "more", "most", "must", "my", "near", "neither", "no",
        "nor", "not", "now", "of", "off", "on", "once", "one", "only", "onto", "or", "other", "our", "ours", "out",
        "over", "own", "per", "shall", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs",
        "them", "then", "there", "these", "they", "this", "those", "though", "through", "till", "to", "too", "toward",
        "towards", "under", "unless", "until", "up", "upon", "us", "versus", "very", "via", "vs", "was", "we", "were",
        "what", "when", "where", "whether", "which", "while", "who", "whom", "whose", "why", "will", "with", "within",
        "without", "would", "yet", "you", "your", "yours", "без", "более", "больше", "будет", "будто", "бы", "был",
        "была", "были", "было", "быть", "в", "вам", "вас", "ведь", "весь", "во", "вот", "все", "всего", "всех", "всю",
        "вы", "где", "да", "даже", "для", "до", "его", "ее", "её", "ей", "если", "есть", "еще", "ещё", "же", "за",
        "здесь", "и", "из", "или", "им", "их", "к", "как", "какая", "какой", "когда", "кто", "ли", "либо", "между",
        "меня", "мне", "много", "может", "можно", "мой", "моя", "мы", "на", "над", "нас", "не", "него", "нее", "неё",
        "нет", "ни", "ним", "них", "но", "ну", "о", "об", "однако", "он", "она", "они", "оно", "от", "перед", "по",
        "под", "после", "при", "про", "против", "раз", "с", "сам", "свою", "себе", "себя", "со", "так", "также",
        "такой", "там", "тем", "теперь", "то", "того", "тоже", "только", "том", "тот", "три", "тут", "ты", "у", "уже",
        "хоть", "чего", "чем", "через", "что", "чтобы", "чуть", "эта", "эти", "это", "этого", "этой", "этом", "этот",
        "эту", "я", "або", "аб", "адзін", "ад", "але", "б", "без", "быў", "была", "было", "быць", "вам", "вас",
        "вельмі", "вось", "вы", "гэта", "гэтага", "гэтай", "гэтым", "гэты", "гэтыя", "да", "дзе", "для", "дык", "ёсць",
        "жа", "за", "з", "змест", "і", "іх", "калі", "каля", "мае", "мне", "між", "мы", "на", "над", "нам", "нас", "не",
        "няма", "ні", "ну", "пад", "паводле", "пасля", "перад", "праз", "пра", "паміж", "па", "так", "там", "таксама",
        "толькі", "тут", "ты", "у", "ўжо", "усе", "усё", "усіх", "хто", "чым", "што", "шчэ", "ён", "яго", "яе", "як",
        "які", "якая", "якое", "якія", "яна", "яны", "ім",
    ]
)


def category_key(slug: str) -> str:
    return "c:" + slug


def tag_key(tag: str) -> str:
    return "t:" + tag.casefold()


def word_key(word: str) -> str:
    return "w:" + word


def stored_keys(item: Commentary) -> list[str]:
    """The keys stored for ``item`` in ``related_keys``: its category, each tag and each
    distinct title word (stop words included, so a change of STOP_WORDS needs no migration)."""
    keys = [category_key(item.category), *(tag_key(t) for t in item.tags)]
    keys += [word_key(w) for w in shared().split([item.title])[0]]
    return list(dict.fromkeys(keys))


@functools.lru_cache(maxsize=4096)
def title_words(title: str) -> tuple[str, ...]:
    """The title's words that say what it is about: not stop words, not single characters,
    each once, in order, at most MAX_TITLE_WORDS. (Cached: feeds ask for the same items'
    related commentaries at every change.)"""
    found = [w for w in dict.fromkeys(shared().split([title])[0]) if len(w) > 1 and w not in STOP_WORDS]
    return tuple(found[:MAX_TITLE_WORDS])


CATEGORY, TAG, WORD = 0, 1, 2
"""Kinds of probe keys."""


class Probe(msgspec.Struct, frozen=True, kw_only=True):
    """What a store needs to find the commentaries related to one commentary."""

    id: str
    lang: str
    pub_us: int
    translation_key: str | None
    keys: tuple[str, ...]
    """Category, tags, title words: a pair of windows each. A store reports each commentary
    of a window with the window's position in ``keys``."""
    kinds: tuple[int, ...]
    """CATEGORY, TAG or WORD for each of ``keys``."""
    title_words: int
    """How many of ``keys`` are title words (the share of them B repeats is scored)."""


def probe(item: Commentary) -> Probe:
    keys = {category_key(item.category): CATEGORY}
    for tag in item.tags[:MAX_TAGS]:
        keys.setdefault(tag_key(tag), TAG)
    title = [word_key(w) for w in title_words(item.title)]
    for word in title:
        keys.setdefault(word, WORD)
    return Probe(
        id=item.id, lang=item.lang, pub_us=to_us(item.published_at), translation_key=item.translation_key,
        keys=tuple(keys), kinds=tuple(keys.values()), title_words=len(title),
    )


def score(p: Probe, pub_us: int, category: int, tags: int, words: int) -> float:
    """The score (see the module docstring) of a commentary published at ``pub_us`` that
    shares the category (0 or 1), ``tags`` tags and ``words`` title words with ``p``."""
    total = CATEGORY_WEIGHT * category + TAG_WEIGHT * tags
    if p.title_words:
        total += TITLE_WEIGHT * words / p.title_words
    total += 1 / (1 + abs(pub_us - p.pub_us) / (CLOSENESS_DAYS * DAY_US))
    return round(total, 6)


def rank(p: Probe, rows: Iterable[tuple[str, int, int]], limit: int) -> list[tuple[str, float]]:
    """The ``limit`` best commentaries of the windows as (id, score), best first.

    Args:
        p: the probe of the commentary they relate to.
        rows: (id, pub_us, n): each commentary of each window, with the position of the
            window's key in ``p.keys``.
        limit: how many to return.
    """
    found: dict[str, list[int]] = {}  # id -> [pub_us, category, tags, words]
    kinds = p.kinds
    for id, pub_us, n in rows:
        counts = found.get(id)
        if counts is None:
            counts = found[id] = [pub_us, 0, 0, 0]
        counts[1 + kinds[n]] += 1
    scored = sorted(
        (
            (score(p, pub_us, category, tags, words), pub_us, id)
            for id, (pub_us, category, tags, words) in found.items()
        ),
        reverse=True,
    )
    return [(id, s) for s, _, id in scored[:limit]]
