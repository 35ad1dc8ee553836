"""JSON Feed 1.1 (https://jsonfeed.org/version/1.1) as msgspec Structs.

Null fields are left out (``omit_defaults``). Feed level: ``version``, ``title``,
``home_page_url``, ``feed_url``, ``description``, ``user_comment``, ``next_url`` (the
RFC 5005 ``prev_archive``: JSON Feed pages towards *older* items), ``icon``/``favicon``
(both the view's icon; ``icon`` falls back to the logo), ``language``, ``hubs``
(``WebSub``) and ``items``. Per item: ``id`` (the tag URI also used as RSS guid and Atom
id), ``url``, ``title``, ``content_html``, ``summary``, ``image``, ``date_published``,
``date_modified``, ``authors`` (one per author, the name alone: affiliations are in
``_commentary.authors``), ``tags``, ``language``, ``attachments`` (the image, with its
``size_in_bytes`` when known) and the ``_commentary`` extension object described in
:mod:`feedsvc.render.feedview`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import ClassVar

import msgspec

from feedsvc.model import Commentary, Translation, Trend
from feedsvc.render.feedview import (
    FeedView,
    ItemParts,
    RefParts,
    clean_view_text,
    enclosure_type,
    prepare,
    related_refs,
    safe_view,
)

VERSION = "https://jsonfeed.org/version/1.1"
MEDIA_TYPE = "application/feed+json"
USER_COMMENT = (
    "This is a feed: a list of the latest commentaries for feed readers. "
    "Copy its URL into your reader to subscribe."
)


# The names these Structs have in the OpenAPI document: the model has an Author, an Image…
# of its own, and client generators name classes after schema titles.
class Author(msgspec.Struct, omit_defaults=True):
    __schema_name__: ClassVar[str] = "JSONFeedAuthor"
    name: str
    url: str | None = None


class Hub(msgspec.Struct):
    type: str
    url: str


class Period(msgspec.Struct):
    __schema_name__: ClassVar[str] = "JSONFeedPeriod"
    start: date
    end: date


class Source(msgspec.Struct, omit_defaults=True):
    __schema_name__: ClassVar[str] = "JSONFeedSource"
    name: str
    url: str | None = None


class Image(msgspec.Struct, kw_only=True, omit_defaults=True):
    __schema_name__: ClassVar[str] = "JSONFeedImage"
    url: str
    alt: str | None = None
    caption: str | None = None
    credit: str | None = None
    length: int | None = None


class Attachment(msgspec.Struct, kw_only=True, omit_defaults=True):
    url: str
    mime_type: str
    size_in_bytes: int | None = None


class Ref(msgspec.Struct):
    id: str
    lang: str
    title: str
    url: str


class CategoryRef(msgspec.Struct):
    slug: str
    name: str


class AuthorDetail(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    affiliation: str | None = None
    url: str | None = None


class CommentaryExt(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The ``_commentary`` object of an item."""

    category: CategoryRef | None = None
    trend: Trend | None = None
    period: Period | None = None
    source: Source | None = None
    image: Image | None = None
    authors: list[AuthorDetail]
    translations: list[Ref]
    related: list[Ref]


class Item(msgspec.Struct, kw_only=True, omit_defaults=True):
    __schema_name__: ClassVar[str] = "JSONFeedItem"
    id: str
    url: str | None = None
    title: str
    content_html: str
    summary: str | None = None
    image: str | None = None
    date_published: datetime
    date_modified: datetime
    authors: list[Author] = msgspec.field(default_factory=list)
    tags: list[str] = msgspec.field(default_factory=list)
    language: str | None = None
    attachments: list[Attachment] = msgspec.field(default_factory=list)
    commentary: CommentaryExt = msgspec.field(name="_commentary")


class Feed(msgspec.Struct, kw_only=True, omit_defaults=True):
    __schema_name__: ClassVar[str] = "JSONFeed"
    version: str
    title: str
    home_page_url: str | None = None
    feed_url: str | None = None
    description: str | None = None
    user_comment: str | None = None
    next_url: str | None = None
    icon: str | None = None
    favicon: str | None = None
    language: str | None = None
    hubs: list[Hub] = msgspec.field(default_factory=list)
    items: list[Item]


_encoder = msgspec.json.Encoder()


def _refs(refs: Sequence[RefParts]) -> list[Ref]:
    return [Ref(id=r.id, lang=r.lang, title=r.title, url=r.url) for r in refs]


def _item(p: ItemParts, related: list[Ref]) -> Item:
    img = p.image
    return Item(
        id=p.guid,
        url=p.url,
        title=p.title,
        content_html=p.content_html,
        summary=p.summary or None,
        image=img.url if img else None,
        date_published=p.published,
        date_modified=p.updated,
        authors=[Author(name=a.name, url=a.url) for a in p.authors],
        tags=list(p.tags),
        language=p.lang,
        attachments=[Attachment(url=img.url, mime_type=enclosure_type(img), size_in_bytes=img.length)] if img else [],
        commentary=CommentaryExt(
            category=CategoryRef(slug=p.category_slug, name=p.category_label) if p.category_slug else None,
            trend=p.trend,
            period=Period(start=p.period[0], end=p.period[1]) if p.period else None,
            source=Source(name=p.source.name, url=p.source.url) if p.source else None,
            image=Image(url=img.url, alt=img.alt, caption=img.caption, credit=img.credit, length=img.length)
            if img
            else None,
            authors=[AuthorDetail(name=a.name, affiliation=a.affiliation, url=a.url) for a in p.authors],
            translations=_refs(p.translations),
            related=related,
        ),
    )


def render_jsonfeed(
    view: FeedView,
    items: Sequence[Commentary],
    related: Mapping[str, Sequence[Translation]] | None = None,
) -> bytes:
    """Render a JSON Feed 1.1 document (UTF-8 JSON bytes).

    Args:
        view: the feed's identity, links and labels.
        items: presented commentaries, in the order they should appear (newest first).
        related: optional related commentaries by commentary id, for ``_commentary.related``
            (a Translation is used as a reference: id, lang, title, url; slug is ignored).

    Returns:
        The document; identical input gives identical bytes.
    """
    view = safe_view(view)
    related = related or {}
    return _document(
        view,
        [_item(prepare(view, item), _refs(related_refs(related.get(item.id, ()), view.base_url))) for item in items],
    )


def render_jsonfeed_item(view: FeedView, item: Commentary, related: Sequence[Translation] = ()) -> bytes:
    """One item of ``render_jsonfeed``'s ``items`` array, as the document has it (``view``
    already through ``safe_view``): feedsvc.feeds.fragments reuses it."""
    return _encoder.encode(_item(prepare(view, item), _refs(related_refs(related, view.base_url))))


def render_jsonfeed_empty(view: FeedView) -> bytes:
    """``render_jsonfeed`` without items (``view`` already through ``safe_view``): a document
    ending in ``"items":[]}``, where feedsvc.feeds.fragments puts the items."""
    return _document(view, [])


def render_jsonfeed_parts(view: FeedView, parts: Sequence[ItemParts]) -> bytes:
    """``render_jsonfeed`` for items already reduced to ItemParts (weekly digests build theirs)."""
    return _document(safe_view(view), [_item(p, []) for p in parts])


def _document(view: FeedView, items: list[Item]) -> bytes:
    feed = Feed(
        version=VERSION,
        title=clean_view_text(view.title) or view.id,
        home_page_url=view.html_url,
        feed_url=view.self_url,
        description=clean_view_text(view.subtitle) or None,
        user_comment=USER_COMMENT,
        next_url=view.prev_archive,
        icon=view.icon or view.logo,
        favicon=view.icon,
        language=view.lang,
        hubs=[Hub(type="WebSub", url=hub) for hub in view.hubs],
        items=items,
    )
    return _encoder.encode(feed)
