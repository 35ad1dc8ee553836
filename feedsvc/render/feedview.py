"""What a feed document is about (FeedView), and each item reduced once to feed-ready parts.

The three feed renderers (``rss``, ``atom``, ``jsonfeed``) are pure functions of a
:class:`FeedView` and a sequence of already *presented* commentaries (absolute ``url``,
sanitised ``body_html`` with absolute links, absolute ``image.url``, ``translations``
filled). Each renderer calls :func:`prepare` once per item; everything the formats share
(cleaned text, the GUID, the content HTML with its figure and source line, normalised
dates, the image's media type) is computed there and nowhere else.

Per-item fragment caching would go at :func:`prepare`: its result depends only on the
presented item (``id`` + ``version`` identify the stored content; ``url`` and
``translations`` come from presenting it, and a translation's title can change without
this item's version changing) and on the view fields ``lang``, ``categories``,
``base_url`` and ``tag_authority``, so it can be memoised on that key. The next step,
caching the serialised ``<item>``/``<entry>``/JSON object per format, needs the same key
plus the format, and for XML a way around feedgen, which rebuilds every item.

The ``commentary`` extension
============================

XML feeds carry what RSS and Atom have no element for in the namespace
``https://feedsvc.dev/ns/commentary/1.0`` (prefix ``commentary``); JSON Feed carries it in
an ``_commentary`` object on each item (JSON Feed's extension convention). Readers that do
not know the extension ignore it; the source is also in the content HTML and, for RSS, in
``<source>``.

XML elements, children of ``rss/channel/item`` and of ``atom:entry``:

``<commentary:trend>worsened</commentary:trend>``
    How the situation the commentary monitors changed over its period: ``improved``,
    ``worsened`` or ``unchanged``. Absent when the commentary has no trend.
``<commentary:period start="2022-02-28" end="2022-03-06"/>``
    The monitoring period the commentary covers, as ISO 8601 calendar dates; both days are
    included. Absent when the commentary has no period.
``<commentary:source name="The Outlet" url="https://outlet.example/a"/>``
    Where the commentary was originally published (``url`` is optional). RSS additionally
    carries ``<source url="...">The Outlet</source>`` when a URL is known; the content HTML
    ends with "Originally published in The Outlet."

JSON Feed: each item has ``_commentary`` with the keys

``category``      ``{"slug": ..., "name": ...}``, the name in the feed's language (the
                  item's in a feed of mixed languages);
``trend``         as above (absent when unknown);
``period``        ``{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}`` (absent when unknown);
``source``        ``{"name": ..., "url": ...}`` (absent when unknown; ``url`` optional);
``image``         ``{"url", "alt", "caption", "credit", "length"}``, the item's ``image``
                  with its caption and credit (absent when there is no image);
``authors``       ``[{"name", "affiliation", "url"}]``, structured, where the standard
                  ``authors`` carry names only;
``translations``  ``[{"id", "lang", "title", "url"}]``, always present, may be empty;
``related``       same shape as ``translations``, always present: the commentaries most
                  related to this one, best first (feedsvc serves at most 3; see
                  feedsvc.store.related for how they are found and ranked).

Other mappings worth knowing: item GUIDs/ids are tag URIs (RFC 4151)
``tag:{tag_authority},{YYYY-MM-DD of created_at in UTC}:commentary/{id}``, so they survive
changes of title, slug, URL and domain of the links. RSS ``dc:creator`` and Atom
``author/name`` are one string naming every author (:func:`byline`); affiliations are in
``commentary:author`` elements (``name``, ``affiliation``, ``url``; written when any author
has an affiliation or URL) and in the content's last paragraph. The image is an RSS
``<enclosure>`` plus Media RSS ``media:content``/``media:thumbnail``, ``link
rel="enclosure"`` in Atom, ``image`` and an attachment in JSON Feed, and a ``<figure>``
after the content's first block (the lede, when the summary is not the body's first
paragraph) everywhere.
Translations are ``rel="alternate"`` links with ``hreflang`` (``atom:link`` inside RSS
items), typed ``text/html; charset=utf-8`` and placed after the item's own ``text/html``
link so that every common reader keeps the item's own URL as its permalink. RSS items
carry ``atom:updated`` for the modification date and ``dc:language`` when their language
differs from the feed's (Atom: ``xml:lang`` on the entry). Archive documents
(RFC 5005 §4) carry ``<fh:archive/>`` and ``current``/``prev-archive``/``next-archive``
links; the subscription document links its newest archive with ``prev-archive``; in JSON
Feed ``next_url`` points to ``prev_archive`` (older items).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from html import escape
from urllib.parse import quote, urlsplit

import msgspec

from feedsvc.model import EPOCH, Category, Commentary, Translation, Trend
from feedsvc.text import absolute_url, clean_line, derive_summary, html_to_text, strip_invalid_xml

COMMENTARY_NS = "https://feedsvc.dev/ns/commentary/1.0"
HISTORY_NS = "http://purl.org/syndication/history/1.0"
TOMBSTONES_NS = "http://purl.org/atompub/tombstones/1.0"
MEDIA_NS = "http://search.yahoo.com/mrss/"
DC_NS = "http://purl.org/dc/elements/1.1/"
ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

#: Media types of images by file extension. For other extensions ``media:content`` has no
#: ``type`` (``medium="image"`` says enough) and the Atom enclosure is
#: ``application/octet-stream``.
IMAGE_TYPES = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "avif": "image/avif",
}

# The word joining the last two names of a byline ("A, B and C").
_AND = {"en": "and", "be": "і", "ru": "и", "uk": "і", "pl": "i"}

# "Originally published in <Outlet>." in the languages commentaries are written in.
_ORIGINALLY = {
    "en": "Originally published in",
    "be": "Упершыню апублікавана ў",
    "ru": "Впервые опубликовано в",
    "uk": "Вперше опубліковано в",
    "pl": "Pierwotnie opublikowano w",
}


class FeedView(msgspec.Struct, frozen=True, kw_only=True):
    """One feed document: which feed it is, where it lives, and what it links to.

    All URLs are absolute. ``updated`` is required but may be ``None``; see
    :func:`feed_updated` for how the document's own updated time is chosen.
    """

    id: str
    """Stable feed id URI: the self URL without paging parameters and without the format."""
    title: str
    subtitle: str
    self_url: str
    """The absolute URL of this very document, format and paging parameters included."""
    html_url: str
    """The human page this feed corresponds to."""
    lang: str | None
    """The feed's language, or ``None`` for a feed that mixes languages."""
    updated: datetime | None
    """A fixed lower bound for the document's updated time (e.g. when the view last
    changed without a visible item changing, such as a deletion); ``None`` means the epoch.
    Never the render time."""
    tag_authority: str
    """The authority of item tag URIs, e.g. ``feeds.example.org``. Never change it."""
    base_url: str
    """The public base URL; category and tag schemes are ``{base_url}/categories`` and
    ``{base_url}/tags``."""
    icon: str | None = None
    logo: str | None = None
    generator: str = "feedsvc"
    generator_version: str | None = None
    generator_uri: str | None = None
    hubs: tuple[str, ...] = ()
    """WebSub hubs."""
    first: str | None = None
    prev_archive: str | None = None
    next_archive: str | None = None
    current: str | None = None
    is_archive: bool = False
    """True for an RFC 5005 archive document (``<fh:archive/>``)."""
    alternates: tuple[tuple[str, str, str], ...] = ()
    """The same feed in other formats: ``(href, media type, title)``."""
    categories: Mapping[str, Category] = msgspec.field(default_factory=dict)
    """Categories by slug, for item category labels in the feed's language."""
    xsl_url: str | None = None
    """When set, RSS and Atom begin with ``<?xml-stylesheet type="text/xsl" href=...?>``."""
    ttl: int | None = None
    """RSS ``<ttl>`` in minutes."""
    deleted: tuple[tuple[str, datetime], ...] = ()
    """Items gone from this feed's window: ``(guid, when)``, newest first. Atom writes them
    as RFC 6721 ``at:deleted-entry``; RSS and JSON Feed have no way to say it."""


class AuthorParts(msgspec.Struct, frozen=True):
    name: str
    affiliation: str | None
    url: str | None
    display: str
    """``Name (Affiliation)``, or just the name."""


class ImageParts(msgspec.Struct, frozen=True):
    url: str
    type: str | None
    alt: str | None
    caption: str | None
    credit: str | None
    length: int | None = None
    """Bytes, when the publisher gave them."""


class SourceParts(msgspec.Struct, frozen=True):
    name: str
    url: str | None


class RefParts(msgspec.Struct, frozen=True):
    """A link to another commentary: a translation or a related one."""

    id: str
    lang: str
    title: str
    url: str


class ItemParts(msgspec.Struct, frozen=True):
    """One commentary, reduced to the cleaned values every feed format renders."""

    guid: str
    title: str
    url: str | None
    lang: str | None
    summary: str
    content_html: str
    authors: tuple[AuthorParts, ...]
    category_slug: str
    category_label: str
    tags: tuple[str, ...]
    published: datetime
    updated: datetime
    image: ImageParts | None
    source: SourceParts | None
    translations: tuple[RefParts, ...]
    trend: Trend | None
    period: tuple[date, date] | None


# --- helpers ------------------------------------------------------------------------------


def aware(value: datetime) -> datetime:
    """An aware datetime every format accepts: naive means UTC; odd offsets become UTC.

    RFC 3339 offsets have whole minutes only, so an offset with seconds is converted.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    offset = value.utcoffset()
    if offset is None:
        return value.replace(tzinfo=UTC)
    if offset.seconds % 60 or offset.microseconds:
        return value.astimezone(UTC)
    return value


def feed_updated(view: FeedView, items: Iterable[Commentary]) -> datetime:
    """The document's updated time: the newest ``updated_at`` among ``items``, or
    ``view.updated`` when that is later, or the epoch when neither exists. Never "now"."""
    newest = aware(view.updated) if view.updated is not None else EPOCH
    for item in items:
        candidate = aware(item.updated_at)
        newest = max(newest, candidate)
    return newest


def newest_update(view: FeedView, parts: Iterable[ItemParts]) -> datetime:
    """``feed_updated`` for items already reduced by :func:`prepare` (or built otherwise,
    as weekly digests are): the newest ``updated`` among them, or ``view.updated``."""
    newest = aware(view.updated) if view.updated is not None else EPOCH
    for p in parts:
        newest = max(newest, p.updated)
    return newest


def tag_uri(authority: str, item: Commentary) -> str:
    """The permanent id of a commentary in feeds (RFC 4151 tag URI).

    Built from the commentary id and its creation date (in UTC, so the value does not
    depend on the offset a store returns) — never from the title, slug or URL.
    """
    created = aware(item.created_at).astimezone(UTC).date()
    return f"tag:{authority},{created.isoformat()}:commentary/{quote(item.id, safe='')}"


def image_type(url: str) -> str | None:
    """The media type of an image from its file extension, or ``None`` when unknown."""
    path = urlsplit(url).path
    dot = path.rfind(".")
    if dot < 0 or "/" in path[dot:]:
        return None
    return IMAGE_TYPES.get(path[dot + 1 :].lower())


def enclosure_type(image: ImageParts) -> str:
    """The media type an enclosure declares: the image's, or ``application/octet-stream``
    when its extension says nothing (readers assume text/html without one)."""
    return image.type or "application/octet-stream"


def _line(text: str) -> str:
    """A one-line text already known to be XML-safe: trimmed, whitespace runs collapsed."""
    return " ".join(text.split())


def _line_strip(text: str) -> str:
    return " ".join(strip_invalid_xml(text).split())


def _same(text: str) -> str:
    return text


def _has_invalid_xml(item: Commentary) -> bool:
    """Whether any text of the item has a character XML cannot carry.

    One scan over all of an item's text instead of one regex call per field: stored text
    is cleaned on write, so this is almost always False and the per-field work is then
    plain ``str`` methods.
    """
    texts = [item.title, item.slug, item.summary, item.body_html, item.category, item.lang, item.url]
    texts += item.tags
    for a in item.authors:
        texts += (a.name, a.affiliation or "", a.url or "")
    if item.image is not None:
        i = item.image
        texts += (i.url, i.alt or "", i.caption or "", i.credit or "")
    if item.source is not None:
        texts += (item.source.name, item.source.url or "")
    for t in item.translations:
        texts += (t.lang, t.id, t.title, t.url)
    blob = "\n".join(texts)
    return strip_invalid_xml(blob) is not blob


def _opt(text: str | None, line: Callable[[str], str]) -> str | None:
    if text is None:
        return None
    return line(text) or None


_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*\Z")


def safe_url(url: str) -> str:
    """``url`` with every character a URI may not contain percent-encoded (UTF-8).

    Presented URLs are normally clean already (one regex match decides); non-ASCII IRIs
    become URIs, which RSS requires, and ``<``, ``>``, ``"``, spaces and the like cannot
    reach an ``href``.
    """
    if _URI_CHARS.match(url):
        return url
    return quote(url, safe="-._~:/?#[]@!$&'()*+,;=%")


def _url(value: str | None, base: str, line: Callable[[str], str]) -> str | None:
    if not value:
        return None
    value = line(value)
    return safe_url(absolute_url(value, base)) if value else None


def _figure(image: ImageParts) -> str:
    caption = []
    if image.caption:
        caption.append(escape(image.caption, quote=False))
    if image.credit:
        caption.append(f"<small>{escape(image.credit, quote=False)}</small>")
    alt = image.alt or image.caption or ""
    # On a line of its own: text made from the content (a plain-text mail) keeps the
    # caption apart from the image.
    figcaption = f"\n<figcaption>{'<br>'.join(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{escape(image.url)}" alt="{escape(alt)}">{figcaption}</figure>'


def byline(p: ItemParts) -> str:
    """Every author's name in one string: "A", "A and B", "A, B and C" (the conjunction in
    the item's language); affiliations stay out.

    Feeds give readers this one string rather than one element per author: RSS readers
    keep a single author string (feedparser's ``author``, the reader library, newsboat and
    Miniflux take the last ``dc:creator``), the reader library keeps one Atom ``<author>``,
    and the reader library splits an RSS author at commas and reads "(...)" as an e-mail
    address, so "Name (Affiliation, Institute)" became two fake authors.
    """
    names = [a.name for a in p.authors]
    if len(names) < 2:
        return names[0] if names else ""
    word = _AND.get((p.lang or "en").split("-")[0].lower(), _AND["en"])
    return f"{', '.join(names[:-1])} {word} {names[-1]}"


def _authors_line(authors: Sequence[AuthorParts]) -> str:
    """The authors with their affiliations, for the end of the content (the only place
    readers show affiliations: no author field can carry them without being misread)."""
    if not any(a.affiliation for a in authors):
        return ""
    return f"<p>{'<br>'.join(escape(a.display, quote=False) for a in authors)}</p>"


# The end of the first block of a body: the image goes after it, so that a teaser cut from
# the start of the content is the lede, never the image's caption.
_FIRST_BLOCK_END = re.compile(r"</(?:p|ul|ol|h[1-6]|blockquote|pre|table|div|section)>", re.IGNORECASE)
_FIRST_PARAGRAPH = re.compile(r"<p(?:\s[^>]*)?>(.*?)</p>", re.IGNORECASE | re.DOTALL)


def _opens_with(body: str, summary: str) -> bool:
    """Whether ``summary`` is the body's first paragraph (as a derived summary is): then
    the content does not repeat it as a lede."""
    first = ""
    for match in _FIRST_PARAGRAPH.finditer(body):  # the first with text, as derive_summary takes
        first = clean_line(html_to_text(match.group(1)))
        if first:
            break
    else:
        first = clean_line(html_to_text(body))
    return bool(first) and (first == summary or (summary.endswith("…") and first.startswith(summary[:-1])))


def _content(lede: str, body: str, figure: str, tail: list[str]) -> str:
    """The content HTML: lede, image, body, then the source and authors lines; blocks
    separated by newlines, so that text taken from it by tag stripping keeps its word
    boundaries."""
    blocks = [lede] if lede else []
    if figure:
        end = None if lede else _FIRST_BLOCK_END.search(body)
        if lede or end is None:
            blocks += [figure, body]
        else:
            blocks += [body[: end.end()], figure, body[end.end() :].lstrip("\n")]
    else:
        blocks.append(body)
    blocks += tail
    return "\n".join(b for b in blocks if b)


def _source_line(source: SourceParts, lang: str | None) -> str:
    words = _ORIGINALLY.get((lang or "en").split("-")[0].lower(), _ORIGINALLY["en"])
    name = escape(source.name, quote=False)
    if source.url:
        name = f'<a href="{escape(source.url)}">{name}</a>'
    return f"<p>{words} {name}.</p>"


def _refs(
    refs: Sequence[Translation], skip_lang: str | None, base: str, line: Callable[[str], str], one_per_lang: bool
) -> list[RefParts]:
    seen = {skip_lang}
    out = []
    for t in refs:
        lang = line(t.lang)
        url = _url(t.url, base, line)
        if not url or (one_per_lang and (not lang or lang in seen)):
            continue
        seen.add(lang)
        out.append(RefParts(id=line(t.id), lang=lang, title=line(t.title), url=url))
    return out


def related_refs(related: Sequence[Translation], base: str) -> list[RefParts]:
    """Related commentaries (given by the caller) as cleaned references."""
    return _refs(related, None, base, _line_strip, one_per_lang=False)


# --- the one per-item step ----------------------------------------------------------------


def prepare(view: FeedView, item: Commentary) -> ItemParts:
    """Reduce a presented commentary to what the feeds render; the only per-item pass.

    Every text loses the characters XML 1.0 cannot carry; one-line texts are trimmed and
    their whitespace collapsed. Any value the model allows yields something renderable:
    an empty title falls back to the slug (then the id), an empty summary to the body's
    first paragraph. Translations are linked once per language, never in the item's own.
    """
    base = view.base_url
    dirty = _has_invalid_xml(item)
    line = _line_strip if dirty else _line
    block = strip_invalid_xml if dirty else _same
    lang = line(item.lang) or None

    authors = []
    for a in item.authors:
        name = line(a.name)
        if not name:
            continue
        affiliation = _opt(a.affiliation, line)
        display = f"{name} ({affiliation})" if affiliation else name
        authors.append(AuthorParts(name=name, affiliation=affiliation, url=_url(a.url, base, line), display=display))

    image = None
    if item.image is not None:
        img_url = _url(item.image.url, base, line)
        if img_url:
            image = ImageParts(
                url=img_url,
                type=image_type(img_url),
                alt=_opt(item.image.alt, line),
                caption=_opt(item.image.caption, line),
                credit=_opt(item.image.credit, line),
                length=item.image.length,
            )

    source = None
    if item.source is not None:
        source_name = line(item.source.name)
        if source_name:
            source = SourceParts(name=source_name, url=_url(item.source.url, base, line))

    body = block(item.body_html).strip()
    summary = block(item.summary).strip()
    if not summary and body:
        summary = derive_summary(body)
    # A lede written apart from the body opens the content, so that a reader showing only
    # the content (rss2email, newsboat) shows the whole commentary; a summary derived from
    # the body's first paragraph is not repeated.
    lede = f"<p>{escape(summary, quote=False)}</p>" if summary and not (body and _opens_with(body, summary)) else ""
    tail = [_source_line(source, lang)] if source is not None else []
    tail.append(_authors_line(authors))
    content = _content(lede, body, _figure(image) if image is not None else "", tail)

    category_slug = line(item.category)
    category = view.categories.get(item.category)
    category_label = clean_line(category.name(view.lang or lang)) if category is not None else ""

    tags: list[str] = []
    for tag in item.tags:
        tag = line(tag)
        if tag and tag not in tags:
            tags.append(tag)

    return ItemParts(
        guid=tag_uri(view.tag_authority, item),
        title=line(item.title) or line(item.slug) or item.id,
        url=_url(item.url, base, line),
        lang=lang,
        summary=summary,
        content_html=content,
        authors=tuple(authors),
        category_slug=category_slug,
        category_label=category_label or category_slug,
        tags=tuple(tags),
        published=aware(item.published_at),
        updated=aware(item.updated_at),
        image=image,
        source=source,
        translations=tuple(_refs(item.translations, lang, base, line, one_per_lang=True)),
        trend=item.trend,
        period=(item.period.start, item.period.end) if item.period is not None else None,
    )


_VIEW_URLS = ("id", "self_url", "html_url", "icon", "logo", "generator_uri", "first", "prev_archive",
              "next_archive", "current", "xsl_url")


def safe_view(view: FeedView) -> FeedView:
    """The view with every URL made URI-safe (query values from a request may need it).

    Called once per render; returns ``view`` itself when nothing needed encoding.
    """
    changes: dict[str, object] = {}
    for name in _VIEW_URLS:
        value = getattr(view, name)
        if value and safe_url(value) != value:
            changes[name] = safe_url(value)
    hubs = tuple(safe_url(h) for h in view.hubs)
    if hubs != view.hubs:
        changes["hubs"] = hubs
    alternates = tuple((safe_url(h), t, title) for h, t, title in view.alternates)
    if alternates != view.alternates:
        changes["alternates"] = alternates
    return msgspec.structs.replace(view, **changes) if changes else view


def clean_view_text(text: str) -> str:
    """A feed-level one-line text (title, subtitle), XML-safe."""
    return clean_line(text)
