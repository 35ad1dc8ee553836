"""The pages that list commentaries: home, a language, a category, a tag, an author, a
month, search results; and the error page browsers get. Pure functions from what the
page shows to its text, built on feedsvc.render.layout."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from xml.sax.saxutils import quoteattr

import msgspec

from feedsvc.digest import Digest, tally_text
from feedsvc.model import Category, Commentary
from feedsvc.paths import archive_path, category_path, home_path, search_path
from feedsvc.render.layout import Site, entries, page, pager, time_tag
from feedsvc.render.messages import Messages


class Listing(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a list of commentaries, as its route found it."""

    lang: str
    """The page's language (its labels and ``<html lang>``)."""
    path: str
    """The page's own path, without a cursor: its canonical address."""
    heading: str
    items: Sequence[Commentary]
    categories: dict[str, Category]
    intro: str = ""
    """A paragraph under the heading, as text (a category's description)."""
    intro_html: str = ""
    """Or as HTML, built by the caller with escaped values."""
    older: str | None = None
    """The path (with query) of the next, older page, if there is one."""
    first: bool = True
    """Whether this is the first page (else it links back to it and is not indexed)."""
    alternates: Sequence[tuple[str, str]] = ()
    """The same page in other languages: (lang, path)."""
    months: Sequence[tuple[int, int]] = ()
    """(year, month) to link to as the archive, newest first."""
    feed_urls: Sequence[tuple[str, str]] = ()
    """(title, URL) of the RSS feeds of what this page lists."""
    search: str | None = None
    """The words searched for, on a search page."""


def listing_page(site: Site, view: Listing) -> str:
    m = Messages(view.lang)
    body = f"<h1>{escape(view.heading)}</h1>"
    if view.intro:
        body += f'<p class="lede">{escape(view.intro)}</p>'
    body += view.intro_html
    if view.search is not None and not view.search:
        body += f'<p class="muted">{m.html("search_empty")}</p>'
    elif view.search and not view.items and view.first:
        body += f'<p class="muted">{m.html("no_results")}</p>'
    else:
        body += entries(site, view.items, m, categories=view.categories)
    body += pager(
        m,
        newer=None if view.first else site.url(view.path),
        older=site.url(view.older) if view.older else None,
    )
    if view.months:
        body += f"<h2>{m.html('archive')}</h2><ul>" + "".join(
            f"<li><a href={site.href(archive_path(view.lang, y, mo))}>{escape(m.month(y, mo))}</a></li>"
            for y, mo in view.months
        ) + "</ul>"
    if view.feed_urls:
        body += follow(view.feed_urls, m)
    return page(
        site, m, title=view.heading, body=body,
        description=view.intro or m.site_description(site.description),
        canonical=site.url(view.path) if view.search is None else None,
        alternates=[(lang, site.url(path)) for lang, path in view.alternates],
        index=view.first and view.search is None,
        head="".join(
            f'<link rel="alternate" type="application/rss+xml" title={quoteattr(title)} href={quoteattr(url)}>'
            for title, url in view.feed_urls
        ),
    )


def follow(feeds: Sequence[tuple[str, str]], m: Messages) -> str:
    """The "Follow:" line: RSS feeds of what the page shows."""
    return f'<p class="muted follow">{m.html("follow")} ' + " · ".join(
        f"<a href={quoteattr(url)}>{escape(title)}</a>" for title, url in feeds
    ) + "</p>"


class Home(msgspec.Struct, frozen=True, kw_only=True):
    lang: str
    latest: Sequence[Commentary]
    by_category: Sequence[tuple[Category, Sequence[Commentary]]]
    digest: Digest | None
    categories: dict[str, Category]
    subscribe_html: str = ""
    """The feeds and embed sections, built by feedsvc.render.html."""
    head: str = ""
    alternates: Sequence[tuple[str, str]] = ()


def home_page(site: Site, view: Home) -> str:
    """``GET /``: the latest commentaries (titles only), this week's digest, the latest per
    category, and how to subscribe; labels in ``view.lang``."""
    m = Messages(view.lang)
    lang = m.tag
    latest = "".join(
        f"<li><a href={quoteattr(c.url)}>{escape(c.title)}</a> "
        f'<span class="muted">{time_tag(c.published_at, m)}</span></li>'
        for c in view.latest
    )
    body = (
        f"<h1>{escape(m.site_name(site.title))}</h1>"
        f'<p class="lede">{escape(m.site_description(site.description))}</p>'
        f'<h2>{m.html("latest")}</h2><ul>{latest}</ul>'
        f'<p><a href={site.href("/" + lang + "/")}>{m.html("all_commentaries")} →</a></p>'
    )
    if view.digest is not None:
        d = view.digest
        body += (
            f'<h2>{m.html("this_weeks_digest")}</h2><p><a href={quoteattr(d.url)}>{escape(d.title)}</a></p>'
            f'<p class="muted">{escape(tally_text(d.trends, d.lang))}</p>'
        )
    if view.by_category:
        body += f'<h2>{m.html("by_category")}</h2><div class="sections">'
        for category, items in view.by_category:
            body += (
                f"<section><h3><a href={site.href(category_path(lang, category.slug))}>"
                f"{escape(category.name(lang))}</a></h3><ul>"
                + "".join(
                    f"<li><a href={quoteattr(c.url)}>{escape(c.title)}</a></li>" for c in items
                )
                + "</ul></section>"
            )
        body += "</div>"
    body += view.subscribe_html
    return page(
        site, m, title=m.site_name(site.title), body=body, head=view.head,
        description=m.site_description(site.description),
        canonical=site.url(home_path(lang, site.primary_lang)),
        alternates=view.alternates,
    )


def error_page(site: Site, lang: str | None, status: int, detail: str) -> str:
    """What a browser shows for an error: what happened in words, the status, a way on."""
    m = Messages(lang)
    key = {404: "error_404", 400: "error_400", 405: "error_405", 429: "error_429"}.get(status)
    if key is None:
        key = "error_5xx" if status >= 500 else "error_other"
    body = (
        f"<h1>{m.html(key)}</h1>"
        f'<p class="muted">{m.html("error_code", code=str(status))}'
        + (f": <span lang=\"en\">{escape(detail)}</span>" if detail and status < 500 else "")
        + "</p>"
        f"<p>{m.html('error_help')}</p>"
        f'<p><a href={site.href(home_path(m.tag, site.primary_lang))}>{m.html("home")}</a> · '
        f'<a href={site.href(search_path(m.tag))}>{m.html("search")}</a></p>'
    )
    return page(site, m, title=m(key), body=body, index=False)
