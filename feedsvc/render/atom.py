"""Atom 1.0 (RFC 4287) from a FeedView and presented commentaries (feedgen).

Feed level, besides the usual: an RFC 6721 ``<at:deleted-entry ref="GUID" when="..."/>``
for each item gone from the feed's window (``FeedView.deleted``); readers that do not
know tombstones skip them.

Per entry: ``id`` (a tag URI), ``title``, ``updated``, ``published``, one ``author`` whose
``name`` names every author ("A and B"; ``uri`` when there is one author with a URL; an
entry without authors gets the feed's title as its author, since Atom requires one),
``content type="html"`` (the lede, the image figure, the body, the source and authors
lines), ``summary type="html"``,
``link rel="alternate" type="text/html" hreflang=...`` for the item and for each
translation, ``link rel="enclosure"`` for the image (``type`` from the file extension,
``application/octet-stream`` when unknown; ``length`` when known), ``category`` (term =
slug, ``scheme="{base}/categories"``, ``label`` in the feed's language; tags with
``scheme="{base}/tags"``), ``xml:lang`` when the entry's language differs from the feed's,
and the ``commentary`` elements (see
:mod:`feedsvc.render.feedview`).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from feedgen.feed import FeedGenerator
from lxml import etree

from feedsvc.model import Commentary
from feedsvc.render.feedview import (
    TOMBSTONES_NS,
    XML_LANG,
    FeedView,
    ItemParts,
    aware,
    byline,
    clean_view_text,
    enclosure_type,
    newest_update,
    prepare,
    safe_view,
)
from feedsvc.render.xmlfeed import (
    TRANSLATION_TYPE,
    EntryExtension,
    FeedExtension,
    add_archive_marker,
    add_commentary_elements,
    extra_links,
    new_generator,
    serialize,
)

MEDIA_TYPE = "application/atom+xml"

_SubElement = etree.SubElement
_DELETED_ENTRY = f"{{{TOMBSTONES_NS}}}deleted-entry"


class _AtomFeedExtension(FeedExtension):
    def extend_ns(self) -> dict[str, str]:
        ns = self._ns()
        if self.view.deleted:
            ns["at"] = TOMBSTONES_NS
        return ns

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        add_archive_marker(feed, self.view)
        # Before the entries (feedgen adds them after the extensions), so the document's
        # head carries them and the entries stay what feedsvc.feeds.fragments reuses.
        for ref, when in self.view.deleted:
            _SubElement(feed, _DELETED_ENTRY, ref=ref, when=aware(when).isoformat())
        return feed


class _AtomEntryExtension(EntryExtension):
    def extend_atom(self, entry: etree._Element) -> etree._Element:
        p = self.parts
        if p.lang and p.lang != self.feed_lang:
            entry.set(XML_LANG, p.lang)
        # feedgen 1.0 drops every attribute but href from entry links (it reads them back
        # from the element it has just made), so the item's own link gets them here and the
        # other links are written here entirely.
        if p.url:
            own = entry.find("link")
            if own is not None:
                own.set("rel", "alternate")
                own.set("type", "text/html")
                if p.lang:
                    own.set("hreflang", p.lang)
        for t in p.translations:
            link = {"href": t.url, "rel": "alternate", "type": TRANSLATION_TYPE, "hreflang": t.lang}
            if t.title:
                link["title"] = t.title
            _SubElement(entry, "link", link)
        if p.image:
            # An unknown image format still gets a type: without one, readers (feedparser)
            # assume text/html.
            link = {"href": p.image.url, "rel": "enclosure", "type": enclosure_type(p.image)}
            if p.image.length:
                link["length"] = str(p.image.length)
            _SubElement(entry, "link", link)
        add_commentary_elements(entry, p)
        return entry


def render_atom(view: FeedView, items: Sequence[Commentary]) -> bytes:
    """Render an Atom 1.0 document (UTF-8 bytes with an XML declaration).

    Args:
        view: the feed's identity, links and labels.
        items: presented commentaries, in the order they should appear (newest first).

    Returns:
        The document; identical input gives identical bytes (no render-time values).
    """
    return render_atom_parts(view, [prepare(view, item) for item in items])


def render_atom_parts(view: FeedView, parts: Sequence[ItemParts], *, only: Sequence[ItemParts] | None = None) -> bytes:
    """``render_atom`` for items already reduced to ItemParts (weekly digests build theirs).

    ``only``: write just these entries, in a feed made for all of ``parts``
    (feedsvc.feeds.fragments splices the others in from earlier renders).
    """
    view = safe_view(view)
    parts = list(parts)
    fg, _ = new_generator(view, parts, _AtomFeedExtension, _AtomEntryExtension)
    fg.id(view.id)
    subtitle = clean_view_text(view.subtitle)
    if subtitle:
        fg.subtitle(subtitle)
    links = [
        {"href": view.self_url, "rel": "self", "type": MEDIA_TYPE},
        {"href": view.html_url, "rel": "alternate", "type": "text/html"},
    ]
    links.extend(extra_links(view, MEDIA_TYPE))
    fg.link(links)
    if view.icon:
        fg.icon(view.icon)
    if view.logo:
        fg.logo(view.logo)
    fg.generator(view.generator, version=view.generator_version, uri=view.generator_uri)
    fg.updated(newest_update(view, parts))
    fallback_author = [{"name": fallback_author_name(view)}]
    for p in parts if only is None else only:
        _add_entry(fg, p, view, fallback_author)
    return serialize(fg.atom_str(pretty=False), view.xsl_url)


def fallback_author_name(view: FeedView) -> str:
    """The author of entries without one (Atom requires one): the feed's title."""
    return clean_view_text(view.title) or view.id


def _add_entry(fg: FeedGenerator, p: ItemParts, view: FeedView, fallback_author: list[dict[str, str]]) -> None:
    fe = fg.add_entry(order="append")
    ext: _AtomEntryExtension = fe.feedsvc
    ext.parts = p
    ext.feed_lang = view.lang
    fe.id(p.guid)
    fe.title(p.title)
    fe.updated(p.updated)
    fe.published(p.published)
    if p.authors:
        # One author naming them all: the reader library keeps one <author> only. A single
        # author's page is its uri; each author's own is in commentary:author.
        author = {"name": byline(p)}
        if len(p.authors) == 1 and p.authors[0].url:
            author["uri"] = p.authors[0].url
        fe.author([author])
    else:
        fe.author(fallback_author)
    if p.url:
        fe.link(href=p.url, rel="alternate")
    if p.content_html or not p.url:  # Atom needs content or an alternate link; blank content warns
        fe.content(p.content_html, type="html")
    if p.summary:
        # type="html" (the text escaped once more, as in RSS): feedparser marks a text
        # summary text/plain, and rss2email, which mails text/plain first, would then
        # mail the lede alone instead of the content.
        fe.summary(escape(p.summary, quote=False), type="html")
    categories = []
    if p.category_slug:
        categories.append({"term": p.category_slug, "scheme": f"{view.base_url}/categories", "label": p.category_label})
    categories.extend({"term": tag, "scheme": f"{view.base_url}/tags", "label": tag} for tag in p.tags)
    if categories:
        fe.category(categories)
