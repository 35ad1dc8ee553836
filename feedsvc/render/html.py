"""A commentary's page, a weekly digest's page and the home page's feeds: pure functions
from model values to text, in the shell of feedsvc.render.layout.

Everything interpolated is escaped here; commentary bodies are inserted as they are
stored, already sanitised against the allow-list on write. Pages carry no script, so the
Content-Security-Policy the HTTP layer sends can forbid all of it.

Hand-written rather than templated (Jinja2): a dozen page types share one shell and one list
item, each a short function whose every value passes ``escape``/``quoteattr``; a template
engine would add a dependency, a second place where escaping happens and, per page, more
CPU than the string building it replaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from xml.sax.saxutils import quoteattr

import msgspec

from feedsvc.digest import Digest, tally_text
from feedsvc.model import Category, Commentary, RelatedCommentary
from feedsvc.paths import category_path, home_path
from feedsvc.render.discovery import article_head
from feedsvc.render.layout import Site, authors_html, page, tags_html, time_tag
from feedsvc.render.messages import Messages, capitalised
from feedsvc.text import derive_summary

FEED_TYPES = (
    ("rss", "application/rss+xml", "RSS"),
    ("atom", "application/atom+xml", "Atom"),
    ("json", "application/feed+json", "JSON Feed"),
)


class FeedLink(msgspec.Struct, frozen=True):
    """A feed to list on a page and in OPML: its title and its URL per format."""

    title: str
    urls: dict[str, str]
    """Format (``rss``, ``atom``, ``json``) to absolute URL."""


def autodiscovery(feed: FeedLink) -> str:
    """``<link rel="alternate">`` tags that let browsers and readers find a feed."""
    return "".join(
        f'<link rel="alternate" type="{mime}" title={quoteattr(f"{feed.title} ({label})")} '
        f"href={quoteattr(feed.urls[fmt])}>"
        for fmt, mime, label in FEED_TYPES
        if fmt in feed.urls
    )


def shows_summary(item: Commentary) -> bool:
    """Whether a page shows the summary as a lede above the body: not when it is the body's
    first paragraph (derived from it, or written the same), which would then be read twice."""
    if not item.summary:
        return False
    return " ".join(item.summary.split()) != " ".join(derive_summary(item.body_html).split())



def subscribe_section(
    *,
    base_url: str,
    site: FeedLink,
    categories: Sequence[FeedLink],
    languages: Sequence[FeedLink],
    extra: Sequence[FeedLink],
    snippets: str = "",
    lang: str | None = None,
) -> tuple[str, str]:
    """The home page's feeds (every one, in every format), the embed snippets and the API
    links, and the autodiscovery links for its head: ``(head, body)``."""
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

    opml_link = f'<a href={quoteattr(base_url + "/feeds.opml")}>{m.html("feeds_as_opml")}</a>'
    body = (
        f'<h2>{m.html("feeds")}</h2><p class="muted">{m.html("feeds_help", opml=opml_link)}</p>'
        f'<table><tr><th scope="col">{m.html("feed")}</th><th scope="col">{m.html("formats")}</th></tr>'
        f"{rows([site])}{rows(extra)}</table>"
        f'<h3>{m.html("by_category")}</h3><table>{rows(categories)}</table>'
        f'<h3>{m.html("by_language")}</h3><table>{rows(languages)}</table>'
        f"{snippets}"
        f'<p class="muted">{m.html("api")}: '
        f'<a href="{escape(base_url)}/api/v1/commentaries">/api/v1/commentaries</a> · '
        f'<a href="{escape(base_url)}/schema">OpenAPI</a></p>'
    )
    return head, body


def commentary_page(
    site: Site,
    item: Commentary,
    *,
    category: Category | None,
    feeds: Sequence[FeedLink],
    oembed_url: str | None = None,
    related: Sequence[RelatedCommentary] = (),
) -> str:
    """The readable page a commentary's ``url`` points to when it has no ``canonical_url``,
    every label in the commentary's language."""
    m = Messages(item.lang)
    lang = item.lang
    head = "".join(autodiscovery(f) for f in feeds)
    for t in item.translations:
        head += (
            f'<link rel="alternate" hreflang={quoteattr(t.lang)} href={quoteattr(t.url)} title={quoteattr(t.title)}>'
        )
    head += article_head(item, category=category, site_title=site.title, site_url=site.base_url)
    if oembed_url:
        head += (
            f'<link rel="alternate" type="application/json+oembed" href={quoteattr(oembed_url)} '
            f"title={quoteattr(item.title)}>"
        )
    meta = [time_tag(item.published_at, m)]
    if category is not None:
        meta.append(f"<a href={site.href(category_path(lang, category.slug))}>{escape(category.name(lang))}</a>")
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
            f'<nav class="related" aria-label="{label}"><h2>{label}</h2><ul>'
            + "".join(
                f"<li><a href={quoteattr(r.url)}>{escape(r.title)}</a> "
                f'<span class="muted">{time_tag(r.published_at, m)}</span></li>'
                for r in related
            )
            + "</ul></nav>"
        )
    lede = f'<p class="lede"><strong>{escape(item.summary)}</strong></p>' if shows_summary(item) else ""
    home = f"<a href={site.href(home_path(lang, site.primary_lang))}>{escape(m.site_name(site.title))}</a>"
    crumbs = f'<p class="meta">{home}'
    if category is not None:
        crumbs += f" › <a href={site.href(category_path(lang, category.slug))}>{escape(category.name(lang))}</a>"
    crumbs += "</p>"
    body = (
        f"{crumbs}<article><h1>{escape(item.title)}</h1>"
        f'<p class="meta">{authors_html(site, item)}</p><p class="meta">{" · ".join(meta)}</p>'
        f'{lede}{figure}<div class="body">{item.body_html}</div>{source}'
        f"{tags_html(site, lang, item.tags, m('tags'))}{translations}</article>{related_html}"
        f'<p class="muted follow">{m.html("follow")} {_follow_links(feeds)}</p>'
    )
    return page(site, m, title=item.title, body=body, head=head, description=item.summary)


def _follow_links(feeds: Sequence[FeedLink]) -> str:
    """The "Follow:" line of a page: its feeds' RSS links."""
    return " · ".join(f'<a href={quoteattr(f.urls["rss"])}>{escape(f.title)}</a>' for f in feeds if "rss" in f.urls)


def digest_page(
    site: Site,
    digest: Digest,
    *,
    others: Sequence[Digest],
    feeds: Sequence[FeedLink],
    categories: dict[str, Category],
    older: Digest | None = None,
    newer: Digest | None = None,
) -> str:
    """The readable page of a weekly digest: its commentaries, trends and summaries, linked,
    every label in the digest's language; ``others`` are the same week's digests in other
    languages, ``older`` and ``newer`` the weeks either side in this one."""
    m = Messages(digest.lang)
    lang = digest.lang
    head = "".join(autodiscovery(f) for f in feeds)
    alternates = [(other.lang, other.url) for other in others]

    def category_link(slug: str) -> str:
        c = categories.get(slug)
        return f" · <a href={site.href(category_path(lang, c.slug))}>{escape(c.name(lang))}</a>" if c else ""

    entries = "".join(
        f"<li><h2><a href={quoteattr(e.url)}>{escape(e.title)}</a></h2>"
        f'<p class="meta">{time_tag(e.published_at, m)}{category_link(e.category)}'
        + (f' · <span class="trend">{escape(m.trend(e.trend))}</span>' if e.trend else "")
        + f"</p><p>{escape(e.summary)}</p></li>"
        for e in digest.commentaries
    )
    also = ""
    if others:
        also = f'<p>{m.html("this_week_in")} ' + ", ".join(
            f"<a hreflang={quoteattr(d.lang)} href={quoteattr(d.url)}>{escape(capitalised(m.language(d.lang)))}: "
            f"<span lang={quoteattr(d.lang)}>{escape(d.title)}</span></a>"
            for d in others
        ) + "</p>"
    weeks = ""
    if older is not None or newer is not None:
        weeks = (
            f'<nav class="pager" aria-label={quoteattr(m("weeks"))}>'
            + (f'<a href={quoteattr(older.url)} rel="prev">{m.html("previous_week")}</a>' if older else "<span></span>")
            + (f'<a href={quoteattr(newer.url)} rel="next">{m.html("next_week")}</a>' if newer else "")
            + "</nav>"
        )
    home = f"<a href={site.href(home_path(lang, site.primary_lang))}>{escape(m.site_name(site.title))}</a>"
    body = (
        f'<p class="meta">{home}</p>'
        f"<article><h1>{escape(digest.title)}</h1>"
        f'<p class="meta">{escape(tally_text(digest.trends, digest.lang))}</p>'
        f'<ul class="entries">{entries}</ul></article>'
        f'{weeks}{also}<p class="muted follow">{m.html("follow")} {_follow_links(feeds)}</p>'
    )
    return page(
        site, m, title=digest.title, body=body, head=head,
        description=tally_text(digest.trends, digest.lang),
        canonical=digest.url, alternates=alternates,
    )
