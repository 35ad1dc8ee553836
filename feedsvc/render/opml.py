"""``/feeds.opml``: the subscriptions a reader imports, one group per language.

What a reader does with an OPML file is subscribe to every outline in it, and several
readers (newsboat among them) key items by GUID across all of their feeds: an item in two
subscriptions shows up in one of them only, and the other looks empty or stale. So the
file lists subscriptions that never overlap: per language, that language's commentary
feed and its weekly digest feed (a digest item has a GUID of its own). The category feeds
are left out, as is the all-languages feed: each would repeat commentaries of a language
feed, and a category created later would be missed by whoever subscribed to categories
only. Those feeds are listed on ``/`` for readers who want a topic or everything in one.

Each outline carries ``htmlUrl`` (the page the feed describes), ``type="rss"`` as OPML 2.0
asks of every feed outline whatever its format, and the feed's language; groups are
labelled with the language's own name.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from xml.sax.saxutils import quoteattr

import msgspec

# Languages named in themselves (the name a speaker looks for); others show their tag.
LANGUAGE_NAMES = {
    "en": "English",
    "be": "Беларуская",
    "ru": "Русский",
    "uk": "Українська",
    "pl": "Polski",
    "de": "Deutsch",
    "fr": "Français",
    "lt": "Lietuvių",
    "lv": "Latviešu",
}


def language_name(lang: str) -> str:
    """The language's own name (its primary subtag's), or the tag itself."""
    return LANGUAGE_NAMES.get(lang.split("-")[0].lower(), lang)


class Subscription(msgspec.Struct, frozen=True):
    """One feed to subscribe to."""

    title: str
    xml_url: str
    html_url: str


class SubscriptionGroup(msgspec.Struct, frozen=True):
    """The subscriptions of one language."""

    lang: str
    feeds: Sequence[Subscription]


def opml(title: str, groups: Sequence[SubscriptionGroup]) -> str:
    """OPML 2.0: a folder per language, its feeds inside."""
    body = "".join(
        f"<outline text={quoteattr(language_name(g.lang))} title={quoteattr(language_name(g.lang))}>"
        + "".join(
            f'<outline type="rss" text={quoteattr(f.title)} title={quoteattr(f.title)}'
            f" xmlUrl={quoteattr(f.xml_url)} htmlUrl={quoteattr(f.html_url)} language={quoteattr(g.lang)}/>"
            for f in g.feeds
        )
        + "</outline>"
        for g in groups
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0"><head>'
        f"<title>{escape(title)}</title></head>"
        f"<body>{body}</body></opml>\n"
    )
