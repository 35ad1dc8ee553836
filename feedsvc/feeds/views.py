"""Which feed views exist, and what names them.

A view is a filter (a Query) at an address (``/feed``, ``/categories/{slug}/feed``,
``/{lang}/feed``, ``/all/feed``, ``/digest``, ``/{lang}/digest``, ``/all/digest``) in one
of three formats. A view is *canonical* when its path alone names it (no filter in the
query string, ``limit`` aside): those are the views the index page links, readers poll and
WebSub hubs are told about.

Every address names a language: ``/feed``, ``/digest`` and the category feeds carry the
primary language (``FEEDSVC_PRIMARY_LANGUAGE``), ``/{lang}/…`` its own, and ``/all/…``
every language (``lang=all`` in a query string). One commentary is then one item in one
subscription, its translations being links of that item, not items of their own.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from feedsvc.query import Query

FeedFormat = Literal["rss", "atom", "json"]
FORMATS: tuple[FeedFormat, ...] = ("rss", "atom", "json")
MEDIA_TYPES: dict[FeedFormat, str] = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
FORMAT_NAMES: dict[FeedFormat, str] = {"rss": "RSS 2.0", "atom": "Atom 1.0", "json": "JSON Feed 1.1"}
ALL_LANGUAGES = "all"
"""The path segment (``/all/feed.rss``) and ``lang`` value of the views of every language.
"all" is also an ISO 639-3 code (Allar), a language feedsvc gives up for this address."""


class FeedSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A view: its filter, its address (without the format suffix) and its labels."""

    path: str
    """``/feed``, ``/categories/{slug}/feed`` or ``/{lang}/feed``."""
    query: Query
    title: str
    subtitle: str
    lang: str | None = None
    html_path: str = "/"
    path_lang: str | None = None
    """The language the address names by itself (None: every language); a ``query.lang``
    other than it is a ``lang`` parameter of the view's URL."""


def is_canonical(spec: FeedSpec) -> bool:
    """A view reachable from the index page: its path alone names it (limit aside)."""
    return not canonical_params(spec.query, spec.path, spec.path_lang)


def canonical_params(query: Query, path: str, path_lang: str | None) -> list[tuple[str, str]]:
    """Query-string parameters naming a view, in a fixed order, minus what the path says
    (its language ``path_lang`` among them)."""
    params: list[tuple[str, str]] = []
    if not path.startswith("/categories/"):
        params += [("category", c) for c in sorted(query.categories)]
    for name, value in (("tag", query.tag), ("author", query.author), ("trend", query.trend), ("q", query.q)):
        if value:
            params.append((name, value))
    if query.lang != path_lang:
        params.append(("lang", query.lang or ALL_LANGUAGES))
    for name, bound in (
        ("from", query.from_date or query.from_time),
        ("to", query.to_date or query.to_time),
        ("updated_since", query.updated_since),
    ):
        if bound is not None:
            params.append((name, bound.isoformat()))
    return params
