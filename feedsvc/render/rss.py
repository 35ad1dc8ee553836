"""RSS 2.0 from a FeedView and presented commentaries (feedgen + feedsvc's extension).

Per item: ``title``, ``link``, ``description`` (the summary), ``content:encoded`` (the
full HTML, with the image figure on top and the source line at the end), ``guid``
(a tag URI, ``isPermaLink="false"``), ``category`` (the category in the feed's language,
``domain="{base}/categories"``, then every tag with ``domain="{base}/tags"``),
``pubDate``, ``atom:updated``, one ``dc:creator`` naming every author ("A and B", see
:func:`~feedsvc.render.feedview.byline`; RSS ``<author>`` would need an e-mail address),
``dc:language`` when the item's language differs from the feed's, ``source`` (when the
original has a URL), the image as ``<enclosure>`` and as Media RSS
``media:content``/``media:thumbnail`` (with ``media:credit``), ``atom:link
rel="alternate" hreflang=...`` per translation, and the ``commentary`` elements (see
:mod:`feedsvc.render.feedview`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from feedgen.feed import FeedGenerator
from lxml import etree

from feedsvc.model import Commentary
from feedsvc.render.feedview import (
    ATOM_NS,
    DC_NS,
    MEDIA_NS,
    FeedView,
    ItemParts,
    byline,
    enclosure_type,
    newest_update,
    prepare,
    safe_view,
)
from feedsvc.render.feedview import (
    clean_view_text as _clean,
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

MEDIA_TYPE = "application/rss+xml"
DOCS = "https://www.rssboard.org/rss-specification"

_SubElement = etree.SubElement
_ATOM_LINK = f"{{{ATOM_NS}}}link"
_ATOM_UPDATED = f"{{{ATOM_NS}}}updated"
_DC_CREATOR = f"{{{DC_NS}}}creator"
_DC_LANGUAGE = f"{{{DC_NS}}}language"
_MEDIA_CONTENT = f"{{{MEDIA_NS}}}content"
_MEDIA_THUMBNAIL = f"{{{MEDIA_NS}}}thumbnail"
_MEDIA_CREDIT = f"{{{MEDIA_NS}}}credit"


class _RssFeedExtension(FeedExtension):
    def extend_ns(self) -> dict[str, str]:
        ns = self._ns()
        if self.uses_dc:
            ns["dc"] = DC_NS
        if self.uses_media:
            ns["media"] = MEDIA_NS
        return ns

    def extend_rss(self, rss: etree._Element) -> etree._Element:
        channel = rss[0]
        for link in extra_links(self.view, MEDIA_TYPE):
            _SubElement(channel, _ATOM_LINK, link)
        add_archive_marker(channel, self.view)
        return rss


class _RssItemExtension(EntryExtension):
    def extend_rss(self, item: etree._Element) -> etree._Element:
        p = self.parts
        _SubElement(item, "pubDate").text = rfc822(p.published)
        _SubElement(item, _ATOM_UPDATED).text = p.updated.isoformat()
        if p.authors:
            _SubElement(item, _DC_CREATOR).text = byline(p)
        if p.lang and p.lang != self.feed_lang:
            _SubElement(item, _DC_LANGUAGE).text = p.lang
        if p.source and p.source.url:
            _SubElement(item, "source", url=p.source.url).text = p.source.name
        if p.image:
            img = p.image
            # The standard enclosure first (feedparser, the reader library and rss2email
            # see no other); length 0 when unknown, as the RSS Advisory Board's best
            # practices profile says.
            _SubElement(item, "enclosure", url=img.url, length=str(img.length or 0), type=enclosure_type(img))
            attrs = {"url": img.url, "medium": "image"}
            if img.type:
                attrs["type"] = img.type
            if img.length:
                attrs["fileSize"] = str(img.length)
            content = _SubElement(item, _MEDIA_CONTENT, attrs)
            # No media:description or media:title: feedparser takes them for the item's
            # summary and title. The caption is in the content's figure.
            if img.credit:
                _SubElement(content, _MEDIA_CREDIT).text = img.credit
            _SubElement(item, _MEDIA_THUMBNAIL, url=img.url)
        if p.translations:
            # atom:link alternates go before <link>: the item's own link first (for readers
            # taking the first), then the translations, then <link> (feedparser takes the last).
            anchor = item.find("link")
            if anchor is None:
                anchor = item[0]
            elif p.url:
                own = {"href": p.url, "rel": "alternate", "type": "text/html"}
                if p.lang:
                    own["hreflang"] = p.lang
                anchor.addprevious(etree.Element(_ATOM_LINK, own))
            for t in p.translations:
                attrs = {"href": t.url, "rel": "alternate", "type": TRANSLATION_TYPE, "hreflang": t.lang}
                if t.title:
                    attrs["title"] = t.title
                anchor.addprevious(etree.Element(_ATOM_LINK, attrs))
        add_commentary_elements(item, p)
        return item


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc822(value: datetime) -> str:
    """An RFC 822 date (as RSS wants it) for an aware datetime with a whole-minute offset."""
    offset = value.utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return (
        f"{_DAYS[value.weekday()]}, {value.day:02d} {_MONTHS[value.month - 1]} {value.year:04d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d} {sign}{hours:02d}{minutes:02d}"
    )


def render_rss(view: FeedView, items: Sequence[Commentary]) -> bytes:
    """Render an RSS 2.0 document (UTF-8 bytes with an XML declaration).

    Args:
        view: the feed's identity, links and labels.
        items: presented commentaries, in the order they should appear (newest first).

    Returns:
        The document; identical input gives identical bytes (no render-time values).
    """
    return render_rss_parts(view, [prepare(view, item) for item in items])


def render_rss_parts(view: FeedView, parts: Sequence[ItemParts], *, only: Sequence[ItemParts] | None = None) -> bytes:
    """``render_rss`` for items already reduced to ItemParts (weekly digests build theirs).

    ``only``: write just these items, in a channel made for all of ``parts``
    (feedsvc.feeds.fragments splices the others in from earlier renders).
    """
    view = safe_view(view)
    parts = list(parts)
    fg, _ = new_generator(view, parts, _RssFeedExtension, _RssItemExtension)
    fg.description(_clean(view.subtitle) or _clean(view.title) or view.id)
    fg.link(href=view.self_url, rel="self", type=MEDIA_TYPE)
    fg.link(href=view.html_url, rel="alternate")  # the last link added is RSS <link>
    if view.logo:
        fg.image(url=view.logo, title=_clean(view.title) or view.id, link=view.html_url)
    version = f" {view.generator_version}" if view.generator_version else ""
    fg.generator(f"{view.generator}{version}")
    fg.docs(DOCS)
    if view.ttl:
        fg.ttl(view.ttl)
    fg.updated(newest_update(view, parts))
    for p in parts if only is None else only:
        _add_item(fg, p, view)
    return serialize(fg.rss_str(pretty=False), view.xsl_url)


def _add_item(fg: FeedGenerator, p: ItemParts, view: FeedView) -> None:
    fe = fg.add_entry(order="append")
    ext: _RssItemExtension = fe.feedsvc
    ext.parts = p
    ext.feed_lang = view.lang
    fe.guid(p.guid, permalink=False)
    fe.title(p.title)
    if p.url:
        fe.link(href=p.url)
    if p.summary:
        # RSS readers treat <description> as HTML, so the plain-text summary is escaped
        # once more: a summary that reads "<script>" must stay text.
        fe.summary(escape(p.summary, quote=False))
    fe.content(p.content_html, type="html")
    categories = []
    if p.category_slug:
        categories.append({"term": p.category_slug, "scheme": f"{view.base_url}/categories", "label": p.category_label})
    categories.extend({"term": tag, "scheme": f"{view.base_url}/tags", "label": tag} for tag in p.tags)
    if categories:
        fe.category(categories)
    # pubDate is written by the extension: feedgen formats dates by switching the
    # process-wide locale (locale.setlocale) for every one, which is slow and not
    # thread-safe. Only the channel's lastBuildDate still goes through it.
