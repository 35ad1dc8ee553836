"""The pure rules that turn what a writer sends into the commentary that is stored.

Nothing here reads the store, the clock or the settings: what a rule needs (the id, the
times, the version being replaced) is passed in. The service composes these rules with the
store; import worker processes call them directly, with no service and no store.

The rules: the body is checked against structural limits, then sanitised (HTML) or
rendered (Markdown); every one-line field is cleaned; blank titles, bodies and author names
are refused; the summary is derived from the body when not given; tags are de-duplicated
case-insensitively, the first spelling kept; the slug is given, kept from the version being
replaced, or derived from the title; an omitted ``published_at`` keeps the replaced version's
date (an edit never re-dates a commentary).
"""

from __future__ import annotations

from datetime import datetime

from ulid import ULID

from feedsvc.errors import InvalidInputError
from feedsvc.model import Author, Commentary, Image, NewCommentary, Source, normalize_lang
from feedsvc.structure import check_html, check_markdown
from feedsvc.text import clean_line, derive_summary, markdown_to_html, sanitize_html, slugify

ULID_CHARS = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


class ImportedCommentary(NewCommentary, kw_only=True, forbid_unknown_fields=True):
    """A commentary as ``feedsvc export`` writes it: with its id and timestamps, so a
    round trip through export and import gives the same commentaries."""

    id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


def looks_like_ulid(value: str) -> bool:
    """Whether ``value`` has the shape of a commentary id (26 Crockford base32 characters,
    upper case); slugs are lower case, so a slug never looks like one."""
    return len(value) == 26 and set(value) <= ULID_CHARS


def clean_body_html(html: str) -> str:
    """``body_html`` checked against the structural limits, then sanitised."""
    check_html(html, "body_html")
    return sanitize_html(html)


def render_body_markdown(source: str) -> str:
    """``body_markdown`` checked against the structural limits, then rendered, the HTML
    checked again (the depth of the raw HTML in it), then sanitised."""
    check_markdown(source, "body_markdown")
    html = markdown_to_html(source)
    check_html(html, "body_markdown")
    return sanitize_html(html)


def body_of(body_html: str | None, body_markdown: str | None) -> str:
    """The sanitised body of a commentary from whichever body it was given, here and now
    (feedsvc.bodies runs the same rules off the event loop).

    Raises:
        InvalidInputError: no body, or one beyond the structural limits (naming it).
    """
    if body_html is not None:
        return clean_body_html(body_html)
    if body_markdown is not None:
        return render_body_markdown(body_markdown)
    raise InvalidInputError("a body is required: body_html or body_markdown", field="body_html")


def build_commentary(
    new: NewCommentary,
    *,
    body: str,
    id: str,
    created_at: datetime,
    updated_at: datetime,
    previous: Commentary | None,
) -> Commentary:
    """The commentary to store for ``new`` (version 0: the store numbers versions).

    Args:
        new: what the writer sent, already validated by its type.
        body: its body, already checked and sanitised (``body_of``, or the same rules run
            off the event loop by feedsvc.bodies).
        id: the commentary's id.
        created_at: when it was first stored.
        updated_at: this write's time; also ``published_at`` for a new commentary that
            gives none.
        previous: the version being replaced, None for a new commentary. Its slug and
            publication date are kept when ``new`` omits them.

    Raises:
        InvalidInputError: a blank title or a blank author name (``field`` names it).
    """
    title = clean_line(new.title)
    if not title:
        raise InvalidInputError("title must not be blank", field="title")
    summary = clean_line(new.summary) if new.summary else ""
    if not summary:
        summary = derive_summary(body)
    authors = [
        Author(
            name=clean_line(a.name),
            affiliation=clean_line(a.affiliation) or None if a.affiliation else None,
            url=a.url,
        )
        for a in new.authors
    ]
    if not all(a.name for a in authors):
        raise InvalidInputError("author names must not be blank", field="authors")
    tags: dict[str, str] = {}
    for raw in new.tags:
        tag = clean_line(raw)
        if tag:
            tags.setdefault(tag.casefold(), tag)
    slug = new.slug or (previous.slug if previous is not None else slugify(title))
    return Commentary(
        id=id,
        slug=slug,
        lang=normalize_lang(new.lang),
        translation_key=new.translation_key,
        title=title,
        summary=summary,
        body_html=body,
        category=new.category,
        tags=list(tags.values()),
        authors=authors,
        # Omitted on a replace: keep the date, so an edit never re-dates (and re-tops) it.
        published_at=new.published_at or (previous.published_at if previous is not None else updated_at),
        updated_at=updated_at,
        created_at=created_at,
        status=new.status,
        version=0,
        period=new.period,
        trend=new.trend,
        source=Source(name=clean_line(new.source.name), url=new.source.url) if new.source else None,
        image=_clean_image(new.image) if new.image else None,
        canonical_url=new.canonical_url,
    )


def build_imported(record: ImportedCommentary, *, now: datetime) -> tuple[Commentary, bool]:
    """The commentary an import stores for ``record``, and whether its slug may be suffixed
    to be unique (it was derived from the title).

    The record's id and timestamps are kept when it has them. Without ``created_at`` or
    ``updated_at`` the record is taken as unchanged since its publication: its
    ``published_at`` stands in for them (``now`` when it has none or it is still to come),
    so year-old commentaries do not read as updated on the day of the import. A new id is
    made from ``now``.

    Raises:
        InvalidInputError: an id that is not a ULID, a missing body or one beyond the
            structural limits, or what ``build_commentary`` raises.
    """
    if record.id is not None and not looks_like_ulid(record.id):
        raise InvalidInputError("id must be a ULID (26 characters, Crockford base32)", field="id")
    published = record.published_at
    since = published if published is not None and published <= now else now
    item = build_commentary(
        record,
        body=body_of(record.body_html, record.body_markdown),
        id=record.id or str(ULID.from_datetime(now)),
        created_at=record.created_at or since,
        updated_at=record.updated_at or since,
        previous=None,
    )
    return item, record.slug is None


def _clean_image(image: Image) -> Image:
    return Image(
        url=image.url,
        alt=clean_line(image.alt) or None if image.alt else None,
        caption=clean_line(image.caption) or None if image.caption else None,
        credit=clean_line(image.credit) or None if image.credit else None,
        length=image.length,
    )
