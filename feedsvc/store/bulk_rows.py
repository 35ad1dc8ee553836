"""Rows for a bulk import (``feedsvc import``), built off the writer by pure code.

Writing a commentary through ``add_commentary`` costs ten statements and as many
encodings and text extractions on the one writer thread. A bulk import splits that work:
``import_rows`` turns each commentary into an ``ImportRow``, every value its rows hold
except the three only the transaction knows (its rowid, its change sequence number and
whether it is public at the moment of writing), with the document encoded, the full-text
index's text extracted and the related keys found. It is pure, so ``feedsvc import`` runs
it in its worker processes, beside the Markdown and sanitising, and ships the rows back as
MessagePack (no datetimes in them, so nothing is lost on the way). A store that takes such
rows offers the ``RowImport`` capability (feedsvc.store.protocol). Both stores do:
feedsvc.store.sqlite.bulk writes them with one statement a table (and SQLite's single
writes build the one row they write with ``import_row``, so that both write the same values
the same way); feedsvc.store.postgres.bulk with one COPY a table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import msgspec

from feedsvc.model import Commentary, to_us
from feedsvc.store import related, words
from feedsvc.text import html_to_text

_encode = msgspec.json.Encoder().encode
_decode_commentary = msgspec.json.Decoder(Commentary).decode
_VERSION_0 = b'"version":0'
"""Where the document of a commentary built with version 0 holds its version. Only a key
can read like this: inside a JSON string every '"' is escaped."""


class ImportRow(msgspec.Struct, array_like=True, frozen=True):
    """A commentary as ``write_rows`` stores it, built by ``import_rows`` (see the module
    docstring). The document is split around its version, which the transaction decides."""

    id: str
    lang: str
    slug: str
    unique_slug: bool
    """Whether the slug may be suffixed to be unique (``add_commentary``'s ``unique_slug``)."""
    category: str
    status: str
    translation_key: str | None
    trend: str | None
    pub_us: int
    pub_date: str
    updated_us: int
    period_start: str | None
    period_end: str | None
    doc_head: bytes
    """The document (the Commentary as JSON) up to its version number, ..."""
    doc_tail: bytes
    """... and after it."""
    tags: list[tuple[str, str]]
    """(tag, tag_key) rows of commentary_tags."""
    authors: list[tuple[str, str]]
    """(name, name_key) rows of commentary_authors."""
    related_keys: list[str]
    """Its keys in related_keys (stored only while it is public)."""
    fts: tuple[str, str, str, str, str]
    """Its row of the full-text index: title, summary, body text, tags, authors."""
    tsv: str | None = None
    """PostgreSQL's ``tsvector`` literal of ``fts`` (feedsvc.store.postgres.text), when the
    store asked for it (``RowImport.row_vector``): built here, off the writer, where it
    costs the most of a row."""

    def document(self, version: int) -> bytes:
        """The commentary as JSON with ``version``: what ``_encode(item)`` gives once stored."""
        return b"%b%d%b" % (self.doc_head, version, self.doc_tail)

    def commentary(self) -> Commentary:
        """The commentary itself (version 0), for the slow path."""
        return _decode_commentary(self.document(0))


class Imported(NamedTuple):
    """What ``write_rows`` stored for a row: its change sequence number (its version) and
    its slug (suffixed when it was taken and the row allows that)."""

    seq: int
    slug: str


encode_rows = msgspec.msgpack.Encoder().encode
"""Rows (and whatever holds them) as MessagePack, the cheapest way across processes."""


def import_rows(
    items: Iterable[tuple[Commentary, bool]], *, vector: Callable[[list[list[str]]], str] | None = None
) -> list[ImportRow]:
    """The ``ImportRow`` of each (commentary, unique_slug) pair, built as ``add_commentary``
    would write it (version 0: the document gets its version when written); with
    ``vector`` (the store's ``RowImport.row_vector``), each with its full-text vector."""
    pairs = list(items)
    # The titles' words (for the related keys) in one tokenizer pass, not one a title.
    words.shared().prime(item.title for item, _ in pairs)
    rows = [import_row(item, unique_slug) for item, unique_slug in pairs]
    if vector is None:
        return rows
    split = words.shared().split
    return [msgspec.structs.replace(row, tsv=vector(split(list(row.fts)))) for row in rows]


def import_row(item: Commentary, unique_slug: bool) -> ImportRow:
    """The ``ImportRow`` of one commentary (its version left to the transaction)."""
    if item.version != 0:
        item = msgspec.structs.replace(item, version=0)
    doc = _encode(item)
    at = doc.index(_VERSION_0) + len(_VERSION_0) - 1
    tags = {t.casefold(): t for t in item.tags}
    authors = {a.name.casefold(): a.name for a in item.authors}
    return ImportRow(
        id=item.id, lang=item.lang, slug=item.slug, unique_slug=unique_slug, category=item.category,
        status=item.status, translation_key=item.translation_key, trend=item.trend,
        pub_us=to_us(item.published_at), pub_date=item.published_at.date().isoformat(),
        updated_us=to_us(item.updated_at),
        period_start=item.period.start.isoformat() if item.period else None,
        period_end=item.period.end.isoformat() if item.period else None,
        doc_head=doc[:at], doc_tail=doc[at + 1 :],
        tags=[(t, k) for k, t in tags.items()],
        authors=[(n, k) for k, n in authors.items()],
        related_keys=related.stored_keys(item),
        fts=(
            item.title, item.summary, html_to_text(item.body_html), " ".join(item.tags),
            " ".join(a.name for a in item.authors),
        ),
    )
