"""What the RSS and Atom renderers share: feedgen setup, extension elements, serialising.

feedgen quirks handled here, once:

* it stamps ``lastBuildDate``/``updated`` with the current time unless told otherwise, so
  every feed and entry gets its time set explicitly;
* it refuses naive datetimes and empty titles (``ValueError``), so :mod:`.feedview`
  normalises both before anything reaches it;
* its ``FeedGenerator.link()`` makes the *last* link added the RSS ``<link>`` and turns an
  entry's ``rel="enclosure"`` link into an RSS ``<enclosure length="0">``; RSS and Atom
  therefore use separate generators, each given only the links it should carry;
* its built-in ``media`` extension writes ``media:content`` attributes only (no
  ``media:description``/``media:credit``) and its ``dc`` extension would cost a second
  extension object per entry, so feedsvc registers its own extension classes
  (``fg.register_extension``) that write those elements directly.
"""

from __future__ import annotations

from collections.abc import Iterable

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from feedsvc.render.feedview import (
    COMMENTARY_NS,
    HISTORY_NS,
    FeedView,
    ItemParts,
    clean_view_text,
)

EXTENSION = "feedsvc"
"""The name feedsvc's extension is registered under (``fg.feedsvc``, ``entry.feedsvc``)."""

_TREND = f"{{{COMMENTARY_NS}}}trend"
_PERIOD = f"{{{COMMENTARY_NS}}}period"
_SOURCE = f"{{{COMMENTARY_NS}}}source"
_AUTHOR = f"{{{COMMENTARY_NS}}}author"
_ARCHIVE = f"{{{HISTORY_NS}}}archive"

_SubElement = etree.SubElement

#: The type of translation links. The item's own link comes first and is plain
#: ``text/html``: readers that take the first alternate link as the permalink (SimplePie,
#: Miniflux) get the item itself; feedparser takes the *last* ``text/html`` alternate, and
#: does not count ``text/html; charset=utf-8`` as one, so it gets the item itself too.
TRANSLATION_TYPE = "text/html; charset=utf-8"


class FeedExtension(BaseExtension):  # type: ignore[misc]  # feedgen is untyped
    """Feed-level part of the extension; subclasses know the format. Set ``view`` first."""

    view: FeedView
    uses_commentary = False
    uses_media = False
    uses_dc = False

    def _ns(self) -> dict[str, str]:
        ns = {}
        if self.uses_commentary:
            ns["commentary"] = COMMENTARY_NS
        if self.view.is_archive:
            ns["fh"] = HISTORY_NS
        return ns


class EntryExtension(BaseEntryExtension):  # type: ignore[misc]
    """Entry-level part of the extension; set ``parts`` (and ``feed_lang``) after add_entry."""

    parts: ItemParts
    feed_lang: str | None = None


def new_generator(
    view: FeedView,
    parts: list[ItemParts],
    feed_ext: type[FeedExtension],
    entry_ext: type[EntryExtension],
) -> tuple[FeedGenerator, FeedExtension]:
    """A FeedGenerator with the settings RSS and Atom share and the extension registered."""
    fg = FeedGenerator()
    fg.register_extension(EXTENSION, feed_ext, entry_ext, atom=True, rss=True)
    ext: FeedExtension = getattr(fg, EXTENSION)
    ext.view = view
    ext.uses_commentary = any(p.trend or p.period or p.source or _has_author_details(p) for p in parts)
    ext.uses_media = any(p.image for p in parts)
    ext.uses_dc = any(p.authors for p in parts)
    fg.title(clean_view_text(view.title) or view.id)
    if view.lang:
        fg.language(view.lang)
    return fg, ext


def _has_author_details(p: ItemParts) -> bool:
    return any(a.affiliation or a.url for a in p.authors)


def add_commentary_elements(parent: etree._Element, p: ItemParts) -> None:
    """``commentary:author`` per author (when any has an affiliation or a URL: what the one
    author string of RSS and Atom leaves out), ``commentary:trend``, ``commentary:period``,
    ``commentary:source`` (when known)."""
    for a in p.authors if _has_author_details(p) else ():
        attrs = {"name": a.name}
        if a.affiliation:
            attrs["affiliation"] = a.affiliation
        if a.url:
            attrs["url"] = a.url
        _SubElement(parent, _AUTHOR, attrs)
    if p.trend:
        _SubElement(parent, _TREND).text = p.trend
    if p.period:
        _SubElement(parent, _PERIOD, start=p.period[0].isoformat(), end=p.period[1].isoformat())
    if p.source:
        attrs = {"name": p.source.name}
        if p.source.url:
            attrs["url"] = p.source.url
        _SubElement(parent, _SOURCE, attrs)


def add_archive_marker(parent: etree._Element, view: FeedView) -> None:
    if view.is_archive:
        _SubElement(parent, _ARCHIVE)


def extra_links(view: FeedView, self_type: str) -> Iterable[dict[str, str]]:
    """Feed-level links beyond self and the HTML page: other formats, hubs, RFC 5005."""
    seen_types = {"text/html", self_type}
    for href, type_, title in view.alternates:
        if href == view.self_url or type_ in seen_types:
            continue
        seen_types.add(type_)
        link = {"href": href, "rel": "alternate", "type": type_}
        if title:
            link["title"] = clean_view_text(title)
        yield link
    for hub in view.hubs:
        yield {"href": hub, "rel": "hub"}
    archive_links: tuple[tuple[str, str | None], ...] = (
        ("first", view.first),
        ("current", view.current),
        ("prev-archive", view.prev_archive),
        ("next-archive", view.next_archive),
    )
    for rel, url in archive_links:
        if url:
            yield {"href": url, "rel": rel}


def serialize(xml: bytes, xsl_url: str | None) -> bytes:
    """feedgen's UTF-8 output, with the xml-stylesheet instruction after the declaration."""
    if not xsl_url:
        return xml
    end = xml.index(b"?>") + 2
    href = xsl_url.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    pi = f'\n<?xml-stylesheet type="text/xsl" href="{href}"?>'.encode()
    return xml[:end] + pi + xml[end:]
