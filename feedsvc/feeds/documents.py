"""Cached feed bytes: one rendered document, its ETag and its encoded variants.

A document is rendered once per change of what it shows (feedsvc.feeds.publisher); each
content coding (gzip, brotli) and the HTML page a browser gets are made from it on first
demand and kept with it, each with its own strong ETag (the document's, suffixed).
"""

from __future__ import annotations

import gzip
import hashlib
import time
from datetime import datetime
from typing import Literal

import brotli

from feedsvc.render.browser import feed_page

Encoding = Literal["identity", "gzip", "br"]
ENTRY_OVERHEAD = 1024
"""Bytes a cached document costs beyond its bodies (key, object, dict slot): counted
against ``max_bytes``, so that many small documents are bounded too."""
Kind = Literal["feed", "page"]
"""``page``: the feed as HTML for a browser navigation (see feedsvc.render.browser)."""


class Rendered:
    """One cached feed document and its compressed variants, made on first demand."""

    __slots__ = ("_variants", "body", "checked_at", "etag", "last_modified", "seq", "stamp", "weight")

    def __init__(self, body: bytes, last_modified: datetime | None, seq: int, stamp: object) -> None:
        self.checked_at = time.monotonic()
        """When it was last known current (``time.monotonic``): made, found unchanged, or
        served as current. A copy served while the database is away is this old."""
        self.body = body
        self.etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        self.last_modified = last_modified
        self.seq = seq
        self.stamp = stamp
        self._variants: dict[str, tuple[bytes, str]] = {"identity": (body, self.etag)}
        # What it may come to hold: the body, its compressed variants and its HTML page.
        self.weight = 2 * len(body) + ENTRY_OVERHEAD

    def variant(self, encoding: Encoding, kind: Kind = "feed") -> tuple[bytes, str]:
        """The body (or its HTML page) in ``encoding``, with its own strong ETag: RFC 9110
        wants one per representation, so codings and the page each get a suffix."""
        key = encoding if kind == "feed" else f"page-{encoding}"
        found = self._variants.get(key)
        if found is None:
            if kind == "page" and encoding == "identity":
                found = (feed_page(self.body), self.etag[:-1] + '-page"')
            else:
                plain, etag = self.variant("identity", kind)
                if encoding == "gzip":
                    data = gzip.compress(plain, compresslevel=6, mtime=0)
                else:
                    data = brotli.compress(plain, quality=6)
                found = (data, etag[:-1] + "-" + encoding + '"')
            self._variants[key] = found
        return found


class StaleRendered(Rendered):
    """A cached document served while the database cannot be reached: the same bytes,
    variants and ETag, and how long ago (whole seconds) it was last known current."""

    __slots__ = ("age",)

    def __init__(self, doc: Rendered) -> None:  # noqa: D107 - a view of ``doc``, nothing rendered
        self.checked_at = doc.checked_at
        self.body = doc.body
        self.etag = doc.etag
        self.last_modified = doc.last_modified
        self.seq = doc.seq
        self.stamp = doc.stamp
        self._variants = doc._variants  # shared: a variant made for one is made for both
        self.weight = doc.weight
        self.age = max(0, int(time.monotonic() - doc.checked_at))


def pick_encoding(accept_encoding: str | None) -> Encoding:
    """The best coding the client accepts: brotli, then gzip, else identity (q=0 honoured)."""
    if not accept_encoding:
        return "identity"
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        weights[name.strip().lower()] = q
    star = weights.get("*", 0.0)
    codings: tuple[Encoding, ...] = ("br", "gzip")
    for coding in codings:
        if weights.get(coding, star) > 0:
            return coding
    return "identity"
