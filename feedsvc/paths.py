"""Where each page for people lives: the one place that spells a page's path.

Every link to a page (feeds, sitemaps, canonical and hreflang links, JSON-LD, Open Graph,
oEmbed, embed views, the pages themselves) is built here, so a page has one address and it
never changes:

    /                                       home (``?lang=`` for its labels and latest items)
    /{lang}/                                every commentary in a language, newest first
    /{lang}/{yyyy}/{mm}/                    a month's commentaries in a language
    /{lang}/{yyyy}/{mm}/{slug}              a commentary
    /{lang}/categories/{slug}               a category's commentaries in a language
    /{lang}/tags/{tag}                      a tag's (the tag percent-encoded)
    /{lang}/authors/{name}                  an author's (the name case-folded, percent-encoded)
    /{lang}/search?q=                       full-text search
    /digests/{yyyy-mm-dd}?lang=             a weekly digest (its address since digests began)

The year and month are those written in ``published_at`` (its own offset), as the monthly
archive counts them; a slug is unique within a language, so ``lang`` and ``slug`` find the
commentary and the date keeps slugs such as ``search`` or ``tags`` clear of the other pages.
``/commentaries/{id}``, the address before these, answers with a permanent redirect.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from urllib.parse import quote, urlencode

SECTION_CATEGORIES = "categories"
SECTION_TAGS = "tags"
SECTION_AUTHORS = "authors"
SECTION_SEARCH = "search"

_COMMENTARY = re.compile(r"/([A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4})/(\d{4})/(\d{2})/([^/]+)/?")


def home_path(lang: str | None = None, primary: str | None = None) -> str:
    """The home page, in ``lang`` when it is not the primary language."""
    return "/" if lang is None or lang == primary else "/?" + urlencode({"lang": lang})


def language_path(lang: str) -> str:
    return f"/{lang}/"


def commentary_path(lang: str, published_at: datetime, slug: str) -> str:
    return f"/{lang}/{published_at.year:04d}/{published_at.month:02d}/{slug}"


def archive_path(lang: str, year: int, month: int) -> str:
    return f"/{lang}/{year:04d}/{month:02d}/"


def category_path(lang: str, slug: str) -> str:
    return f"/{lang}/{SECTION_CATEGORIES}/{slug}"


def tag_path(lang: str, tag: str) -> str:
    return f"/{lang}/{SECTION_TAGS}/{quote(tag.lower(), safe='')}"


def author_path(lang: str, name: str) -> str:
    """An author's page: the name case-folded (as the author filter compares names) and
    percent-encoded, which browsers show as the name itself."""
    return f"/{lang}/{SECTION_AUTHORS}/{quote(name.casefold(), safe='')}"


def search_path(lang: str, q: str | None = None) -> str:
    path = f"/{lang}/{SECTION_SEARCH}"
    return path + "?" + urlencode({"q": q}) if q else path


def digest_path(start: date, lang: str) -> str:
    return f"/digests/{start.isoformat()}?" + urlencode({"lang": lang})


def parse_commentary_path(path: str) -> tuple[str, str] | None:
    """``(lang, slug)`` of a commentary's path (``/en/2026/03/some-slug``), else None."""
    match = _COMMENTARY.fullmatch(path)
    return (match.group(1), match.group(4)) if match else None
