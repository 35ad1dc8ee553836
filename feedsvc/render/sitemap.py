"""Sitemaps (sitemaps.org 0.9), the Google News sitemap and robots.txt: pure functions from
plain values to text. Every value is escaped here; URLs are absolute, as the protocol wants."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from xml.sax.saxutils import escape

import msgspec

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
MAX_URLS = 50_000
"""The protocol's limit of URLs in one sitemap (and of sitemaps in one index)."""


class SitemapUrl(msgspec.Struct, frozen=True):
    loc: str
    lastmod: datetime | None = None


class NewsUrl(msgspec.Struct, frozen=True):
    loc: str
    title: str
    lang: str
    published_at: datetime


def _w3c(value: datetime) -> str:
    # W3C Datetime with the offset written as stored: seconds precision is all crawlers use.
    return value.replace(microsecond=0).isoformat()


def urlset(urls: Sequence[SitemapUrl]) -> str:
    rows = "".join(
        f"<url><loc>{escape(u.loc)}</loc>" + (f"<lastmod>{_w3c(u.lastmod)}</lastmod>" if u.lastmod else "") + "</url>"
        for u in urls
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{SITEMAP_NS}">{rows}</urlset>\n'


def sitemap_index(sitemaps: Sequence[SitemapUrl]) -> str:
    rows = "".join(
        f"<sitemap><loc>{escape(s.loc)}</loc>"
        + (f"<lastmod>{_w3c(s.lastmod)}</lastmod>" if s.lastmod else "")
        + "</sitemap>"
        for s in sitemaps
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="{SITEMAP_NS}">{rows}</sitemapindex>\n'


def news_language(lang: str) -> str:
    """The language as Google News wants it: ISO 639, except ``zh-cn``/``zh-tw``."""
    parts = lang.lower().split("-")
    if parts[0] == "zh" and len(parts) > 1 and parts[-1] in ("cn", "tw"):
        return f"zh-{parts[-1]}"
    return parts[0]


def news_urlset(urls: Sequence[NewsUrl], *, publication: str) -> str:
    name = escape(publication)
    rows = "".join(
        f"<url><loc>{escape(u.loc)}</loc><news:news><news:publication><news:name>{name}</news:name>"
        f"<news:language>{escape(news_language(u.lang))}</news:language></news:publication>"
        f"<news:publication_date>{_w3c(u.published_at)}</news:publication_date>"
        f"<news:title>{escape(u.title)}</news:title></news:news></url>"
        for u in urls
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{SITEMAP_NS}" xmlns:news="{NEWS_NS}">'
        f"{rows}</urlset>\n"
    )


def robots_txt(sitemaps: Sequence[str]) -> str:
    """Everything public may be crawled but the API and the write side; the sitemaps named."""
    lines = ["User-agent: *", "Disallow: /api/", "Allow: /", ""]
    lines += [f"Sitemap: {url}" for url in sitemaps]
    return "\n".join(lines) + "\n"
