"""HTML pages and OPML: pure functions from model values to text.

Everything interpolated is escaped here; commentary bodies are inserted as they are
stored, already sanitised against the allow-list on write. Pages carry no script, so the
Content-Security-Policy the HTTP layer sends can forbid all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from xml.sax.saxutils import quoteattr

import msgspec

from feedsvc.digest import Digest, tally_text
from feedsvc.model import Category, Commentary, RelatedCommentary
from feedsvc.render.discovery import article_head
from feedsvc.render.messages import Messages, capitalised
from feedsvc.text import derive_summary

FEED_TYPES = (
    ("rss", "application/rss+xml", "RSS"),
    ("atom", "application/atom+xml", "Atom"),
    ("json", "application/feed+json", "JSON Feed"),
)

STYLE = """
:root{color-scheme:light dark;--fg:#1d2330;--muted:#5b6474;--line:#d8dde6;--accent:#1f5fbf;--bg:#fff}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ef;--muted:#9aa3b2;--line:#323a48;--accent:#7fb0ff;--bg:#12161d}}
body{font:17px/1.55 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg);\
max-width:46rem;margin:2rem auto;padding:0 1rem}
a{color:var(--accent)}h1{line-height:1.2;margin:.2em 0}.meta,.muted{color:var(--muted);font-size:.9em}
table{border-collapse:collapse;width:100%}\
td,th{border-bottom:1px solid var(--line);padding:.35em .5em;text-align:left;vertical-align:top}
figure{margin:1em 0}figure img{max-width:100%;height:auto}figcaption{font-size:.85em;color:var(--muted)}
.tag{display:inline-block;border:1px solid var(--line);border-radius:1em;padding:0 .6em;\
margin:0 .2em .2em 0;font-size:.85em}
.trend{font-weight:600}pre,code{white-space:pre-wrap;word-break:break-all}li{margin:.3em 0}
"""

class FeedLink(msgspec.Struct, frozen=True):
    """A feed to list on a page and in OPML: its title and its URL per format."""

    title: str
    urls: dict[str, str]
    """Format (``rss``, ``atom``, ``json``) to absolute URL."""


def _page(title: str, body: str, *, lang: str = "en", head: str = "") -> str:
    return (
        f'<!doctype html>\n<html lang="{escape(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>{head}<style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def autodiscovery(feed: FeedLink) -> str:
    """``<link rel="alternate">`` tags that let browsers and readers find a feed."""
    return "".join(
        f'<link rel="alternate" type="{mime}" title={quoteattr(f"{feed.title} ({label})")} '
        f"href={quoteattr(feed.urls[fmt])}>"
        for fmt, mime, label in FEED_TYPES
        if fmt in feed.urls
    )


def _time(value: datetime, m: Messages) -> str:
    """A publication date as people write it, with the instant for machines."""
    return f"<time datetime={quoteattr(value.isoformat())}>{escape(m.day(value))}</time>"


def shows_summary(item: Commentary) -> bool:
    """Whether a page shows the summary as a lede above the body: not when it is the body's
    first paragraph (derived from it, or written the same), which would then be read twice."""
    if not item.summary:
        return False
    return " ".join(item.summary.split()) != " ".join(derive_summary(item.body_html).split())


def index_page(
    *,
    title: str,
    description: str,
    base_url: str,
    site: FeedLink,
    categories: Sequence[FeedLink],
    languages: Sequence[FeedLink],
    extra: Sequence[FeedLink],
    latest: Sequence[Commentary],
    snippets: str = "",
    lang: str | None = None,
) -> str:
    """``GET /``: every feed, with autodiscovery, and the latest commentaries; labels in
    ``lang`` (English by default)."""
    m = Messages(lang)
    head = "".join(autodiscovery(f) for f in (site, *categories, *languages, *extra))
    head += (
        f'<link rel="outline" type="text/x-opml" title={quoteattr(m("all_feeds_opml"))} '
        f'href={quoteattr(base_url + "/feeds.opml")}>'
    )

    def rows(feeds: Sequence[FeedLink]) -> str:
        return "".join(
            "<tr><td>"
            + escape(f.title)
            + "</td><td>"
            + " · ".join(
                f"<a href={quoteattr(f.urls[fmt])}>{label}</a>" for fmt, _, label in FEED_TYPES if fmt in f.urls
            )
            + "</td></tr>"
            for f in feeds
        )

    latest_html = "".join(
        f'<li><a href={quoteattr(c.url)} hreflang={quoteattr(c.lang)}>{escape(c.title)}</a> '
        f'<span class="muted">{_time(c.published_at, m)} · {escape(m.language(c.lang))}</span></li>'
        for c in latest
    )
    opml_link = f'<a href={quoteattr(base_url + "/feeds.opml")}>{m.html("feeds_as_opml")}</a>'
    name = m.site_name(title)
    body = (
        f"<h1>{escape(name)}</h1><p>{escape(m.site_description(description))}</p>"
        f'<h2>{m.html("feeds")}</h2><p class="muted">{m.html("feeds_help", opml=opml_link)}</p>'
        f'<table><tr><th>{m.html("feed")}</th><th>{m.html("formats")}</th></tr>{rows([site])}{rows(extra)}</table>'
        f'<h3>{m.html("by_category")}</h3><table>{rows(categories)}</table>'
        f'<h3>{m.html("by_language")}</h3><table>{rows(languages)}</table>'
        f'<h2>{m.html("latest")}</h2><ul>{latest_html}</ul>'
        f"{snippets}"
        f'<p class="muted">{m.html("api")}: '
        f'<a href="{escape(base_url)}/api/v1/commentaries">/api/v1/commentaries</a> · '
        f'<a href="{escape(base_url)}/schema">OpenAPI</a></p>'
    )
    return _page(name, body, lang=m.tag, head=head)


def commentary_page(
    item: Commentary,
    *,
    category: Category | None,
    feeds: Sequence[FeedLink],
    site_title: str,
    oembed_url: str | None = None,
    related: Sequence[RelatedCommentary] = (),
    site_url: str = "",
) -> str:
    """The readable page a commentary's ``url`` points to when it has no ``canonical_url``,
    every label in the commentary's language."""
    m = Messages(item.lang)
    head = "".join(autodiscovery(f) for f in feeds)
    for t in item.translations:
        head += (
            f'<link rel="alternate" hreflang={quoteattr(t.lang)} href={quoteattr(t.url)} title={quoteattr(t.title)}>'
        )
    head += article_head(item, category=category, site_title=site_title, site_url=site_url)
    if oembed_url:
        head += (
            f'<link rel="alternate" type="application/json+oembed" href={quoteattr(oembed_url)} '
            f"title={quoteattr(item.title)}>"
        )
    head += f'<meta name="description" content={quoteattr(item.summary)}>'
    authors = ", ".join(
        (f'<a href={quoteattr(a.url)}>{escape(a.name)}</a>' if a.url else escape(a.name))
        + (f" <span class=\"muted\">({escape(a.affiliation)})</span>" if a.affiliation else "")
        for a in item.authors
    )
    meta = [_time(item.published_at, m)]
    if category is not None:
        meta.append(escape(category.name(item.lang)))
    if item.period is not None:
        meta.append(escape(m("period", period=m.period(item.period.start, item.period.end))))
    if item.trend:
        meta.append(f'<span class="trend">{escape(m.trend(item.trend))}</span>')
    figure = ""
    if item.image is not None:
        img = item.image
        caption = " ".join(escape(x) for x in (img.caption, img.credit) if x)
        figure = (
            f"<figure><img src={quoteattr(img.url)} alt={quoteattr(img.alt or '')}>"
            + (f"<figcaption>{caption}</figcaption>" if caption else "")
            + "</figure>"
        )
    source = ""
    if item.source is not None:
        name = escape(item.source.name)
        if item.source.url:
            name = f"<a href={quoteattr(item.source.url)}>{name}</a>"
        source = f'<p class="muted">{m.html("originally_published", source=name)}</p>'
    tags = ""
    if item.tags:
        tags = "<p>" + "".join(
            f'<span class="tag">{escape(t)}</span>' for t in item.tags
        ) + "</p>"
    translations = ""
    if item.translations:
        translations = f'<p>{m.html("other_languages")} ' + ", ".join(
            f'<a hreflang={quoteattr(t.lang)} href={quoteattr(t.url)}>{escape(capitalised(m.language(t.lang)))}: '
            f'<span lang={quoteattr(t.lang)}>{escape(t.title)}</span></a>'
            for t in item.translations
        ) + "</p>"
    related_html = ""
    if related:
        label = m.html("related")
        related_html = (
            f'<nav aria-label="{label}"><h2>{label}</h2><ul>'
            + "".join(
                f"<li><a href={quoteattr(r.url)}>{escape(r.title)}</a> "
                f'<span class="muted">{_time(r.published_at, m)}</span></li>'
                for r in related
            )
            + "</ul></nav>"
        )
    lede = f"<p><strong>{escape(item.summary)}</strong></p>" if shows_summary(item) else ""
    body = (
        f'<p class="muted">{escape(m.site_name(site_title))}</p><article><h1>{escape(item.title)}</h1>'
        f'<p class="meta">{authors}</p><p class="meta">{" · ".join(meta)}</p>'
        f"{lede}{figure}{item.body_html}{source}"
        f"{tags}{translations}</article>{related_html}"
        f'<p class="muted">{m.html("follow")} {_follow_links(feeds)}</p>'
    )
    return _page(item.title, body, lang=item.lang, head=head)


def _follow_links(feeds: Sequence[FeedLink]) -> str:
    """The "Follow:" line of a page: its feeds' RSS links."""
    return " · ".join(f'<a href={quoteattr(f.urls["rss"])}>{escape(f.title)}</a>' for f in feeds if "rss" in f.urls)


def digest_page(digest: Digest, *, others: Sequence[Digest], feeds: Sequence[FeedLink], site_title: str) -> str:
    """The readable page of a weekly digest: its commentaries, trends and summaries, linked,
    every label in the digest's language; ``others`` are the same week's digests in other
    languages."""
    m = Messages(digest.lang)
    head = "".join(autodiscovery(f) for f in feeds)
    for other in others:
        head += (
            f'<link rel="alternate" hreflang={quoteattr(other.lang)} href={quoteattr(other.url)} '
            f"title={quoteattr(other.title)}>"
        )
    entries = "".join(
        f"<li><p><a href={quoteattr(e.url)}>{escape(e.title)}</a> "
        + (f'<span class="trend">{escape(m.trend(e.trend))}</span> ' if e.trend else "")
        + f'<span class="muted">{_time(e.published_at, m)}</span></p><p>{escape(e.summary)}</p></li>'
        for e in digest.commentaries
    )
    also = ""
    if others:
        also = f'<p>{m.html("this_week_in")} ' + ", ".join(
            f"<a hreflang={quoteattr(d.lang)} href={quoteattr(d.url)}>{escape(capitalised(m.language(d.lang)))}: "
            f"<span lang={quoteattr(d.lang)}>{escape(d.title)}</span></a>"
            for d in others
        ) + "</p>"
    body = (
        f'<p class="muted">{escape(m.site_name(site_title))}</p><article><h1>{escape(digest.title)}</h1>'
        f'<p class="meta">{escape(tally_text(digest.trends, digest.lang))}</p><ul>{entries}</ul></article>'
        f'{also}<p class="muted">{m.html("follow")} {_follow_links(feeds)}</p>'
    )
    return _page(digest.title, body, lang=digest.lang, head=head)
