"""What every page for people shares: the document shell, the masthead, the footer and the
stylesheet (screen, phone, dark scheme and print), with the small pieces pages are built
of (a date, a commentary in a list, the links to older pages).

Everything interpolated is escaped here. Pages carry no script and load nothing from
elsewhere: the stylesheet is inline, fonts are the reader's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from html import escape
from xml.sax.saxutils import quoteattr

import msgspec

from feedsvc.model import Category, Commentary
from feedsvc.paths import (
    author_path,
    category_path,
    home_path,
    language_path,
    search_path,
    tag_path,
)
from feedsvc.render.messages import Messages, capitalised

STYLE = """
:root{color-scheme:light dark;--fg:#1b1f27;--muted:#505a69;--line:#d5dae2;--accent:#1a55ad;--bg:#fff;\
--soft:#f3f5f8;--measure:42rem}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ef;--muted:#a5adbb;--line:#343c4a;--accent:#8ab8ff;\
--bg:#12161d;--soft:#1a1f28}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;font:1.0625rem/1.6 Charter,"Bitstream Charter","Sitka Text",Cambria,Georgia,serif;\
color:var(--fg);background:var(--bg)}
h1,h2,h3,.masthead,.meta,.muted,nav,footer,.pager,button,input,.tag,.trend{\
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif}
h1{font-size:clamp(1.6rem,1.2rem + 2vw,2.3rem);line-height:1.15;margin:.3em 0 .4em;letter-spacing:-.01em}
h2{font-size:1.35rem;line-height:1.25;margin:1.8em 0 .5em}
h3{font-size:1.1rem;line-height:1.3;margin:0 0 .25em}
a{color:var(--accent);text-underline-offset:.15em}
a:hover{text-decoration-thickness:2px}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
p,ul,ol{margin:0 0 1em}
img{max-width:100%;height:auto}
.skip{position:absolute;left:-999px;top:0;background:var(--bg);padding:.5em 1em}
.skip:focus{left:.5em;z-index:2}
.wrap{max-width:var(--measure);margin:0 auto;padding:0 1.1rem}
.masthead{border-bottom:1px solid var(--line);background:var(--soft)}
.masthead .wrap{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem 1.2rem;padding-top:.7rem;padding-bottom:.7rem}
.brand{font-weight:700;font-size:1.2rem;color:var(--fg);text-decoration:none;margin-right:auto}
.masthead nav ul,.langs ul,footer ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.2rem 1rem}
.masthead nav a,.langs a{display:inline-block;padding:.35rem 0}
form.search{display:flex;gap:.4rem;flex:1 1 14rem;max-width:22rem}
form.search input{flex:1;min-width:0;font-size:1rem;padding:.45rem .6rem;border:1px solid var(--muted);\
border-radius:.3rem;background:var(--bg);color:var(--fg)}
form.search button{font-size:1rem;padding:.45rem .8rem;border:1px solid var(--accent);border-radius:.3rem;\
background:var(--accent);color:var(--bg);cursor:pointer}
main{padding:1.2rem 0 2rem}
.meta,.muted{color:var(--muted);font-size:.9rem}
.meta a{color:inherit}
.entries{list-style:none;padding:0;margin:0 0 1.5rem}
.entries>li{padding:.9rem 0;border-bottom:1px solid var(--line);margin:0}
.entries p{margin:.2em 0}
.entries h2,.entries h3{font-size:1.15rem;margin:0 0 .2em}
.tags{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4rem}
.tag{display:inline-block;border:1px solid var(--line);border-radius:1em;padding:.2em .8em;font-size:.875rem;\
text-decoration:none}
.trend{font-weight:600}
figure{margin:1.2em 0}figcaption{font-size:.875rem;color:var(--muted);margin-top:.3em}
blockquote{margin:1em 0;padding-left:1em;border-left:3px solid var(--line)}
pre,code{white-space:pre-wrap;overflow-wrap:anywhere;font-size:.9em}
table{border-collapse:collapse;width:100%;font-size:.95rem}
td,th{border-bottom:1px solid var(--line);padding:.4em .5em;text-align:left;vertical-align:top}
.lede{font-size:1.15rem}
.pager{display:flex;justify-content:space-between;gap:1rem;margin:1.5rem 0;flex-wrap:wrap}
.pager a{display:inline-block;padding:.4rem 0}
.sections{display:grid;gap:0 2rem}
@media (max-width:40rem){.masthead nav ul{flex-wrap:nowrap;overflow-x:auto;white-space:nowrap;\
scrollbar-width:thin;padding-bottom:.2rem}.masthead nav{width:100%}}
@media (min-width:56rem){:root{--measure:52rem}.sections{grid-template-columns:1fr 1fr}}
footer{border-top:1px solid var(--line);background:var(--soft);font-size:.9rem;color:var(--muted);padding:1.2rem 0 2rem}
footer p{margin:.5em 0}footer a{display:inline-block;padding:.2rem 0}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media print{
:root{color-scheme:light;--fg:#000;--muted:#333;--line:#999;--bg:#fff;--soft:#fff}
body{font-size:11pt;line-height:1.45}
.skip,form.search,.masthead nav,.langs,.pager,.follow,footer ul,nav.related{display:none}
.masthead,footer{background:none;border-color:#999}
.wrap{max-width:none;padding:0}
a{color:#000;text-decoration:none}
.body a[href^="http"]::after{content:" <" attr(href) ">";font-size:.85em;word-break:break-all}
h1,h2,h3{break-after:avoid}figure,img,blockquote{break-inside:avoid}
@page{margin:18mm 16mm}
}
"""


class Site(msgspec.Struct, frozen=True, kw_only=True):
    """The publication as every page shows it: masthead, footer, navigation."""

    title: str
    description: str
    base_url: str
    primary_lang: str = "en"
    languages: tuple[str, ...] = ()
    """Languages with public commentaries, for the language links."""
    categories: tuple[Category, ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    """(label, URL) from ``FEEDSVC_SITE_LINKS``."""
    footer_note: str = ""

    def url(self, path: str) -> str:
        return self.base_url + path

    def href(self, path: str) -> str:
        """An attribute value (quoted) for a path on this site."""
        return quoteattr(self.base_url + path)


def page(
    site: Site,
    m: Messages,
    *,
    title: str,
    body: str,
    head: str = "",
    description: str = "",
    canonical: str | None = None,
    alternates: Sequence[tuple[str, str]] = (),
    index: bool = True,
) -> str:
    """A whole page: head (title, description, canonical and hreflang links unless ``head``
    brings its own), masthead, ``body`` as the main content, footer."""
    meta = ""
    if description:
        meta += f"<meta name=\"description\" content={quoteattr(description)}>"
    if canonical:
        meta += f'<link rel="canonical" href={quoteattr(canonical)}>'
        if alternates:
            meta += f'<link rel="alternate" hreflang={quoteattr(m.tag)} href={quoteattr(canonical)}>'
    meta += "".join(
        f'<link rel="alternate" hreflang={quoteattr(lang)} href={quoteattr(url)}>' for lang, url in alternates
    )
    if not index:
        meta += '<meta name="robots" content="noindex, follow">'
    name = m.site_name(site.title)
    full_title = title if title == name else f"{title} · {name}"
    return (
        f'<!doctype html>\n<html lang="{escape(m.tag)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(full_title)}</title>{meta}{head}"
        f'<link rel="icon" href={site.href("/icon.svg")} type="image/svg+xml">'
        f"<style>{STYLE}</style></head><body>"
        f'<a class="skip" href="#main">{m.html("skip_to_content")}</a>'
        f"{masthead(site, m)}"
        f'<main id="main"><div class="wrap">{body}</div></main>'
        f"{footer(site, m)}</body></html>\n"
    )


def masthead(site: Site, m: Messages) -> str:
    lang = m.tag
    items = [f"<li><a href={site.href(language_path(lang))}>{m.html('all_commentaries')}</a></li>"]
    items += [
        f"<li><a href={site.href(category_path(lang, c.slug))}>{escape(c.name(lang))}</a></li>"
        for c in site.categories
    ]
    items += [f"<li><a href={quoteattr(_link(site, url))}>{escape(label)}</a></li>" for label, url in site.links]
    search = (
        f'<form class="search" role="search" method="get" action={site.href(search_path(lang))}>'
        f'<label class="visually-hidden" for="q">{m.html("search")}</label>'
        f'<input id="q" type="search" name="q" maxlength="200" placeholder={quoteattr(m("search_placeholder"))}>'
        f'<button type="submit">{m.html("search")}</button></form>'
    )
    return (
        f'<header class="masthead"><div class="wrap">'
        f'<a class="brand" href={site.href(home_path(lang, site.primary_lang))}>{escape(m.site_name(site.title))}</a>'
        f"{search}"
        f'<nav aria-label={quoteattr(m("sections"))}><ul>{"".join(items)}</ul></nav>'
        f"</div></header>"
    )


def footer(site: Site, m: Messages) -> str:
    lang = m.tag
    langs = "".join(
        f'<li><a href={site.href(home_path(other, site.primary_lang))} hreflang={quoteattr(other)}>'
        f"{escape(capitalised(m.language(other)))}</a></li>"
        for other in site.languages
        if other != lang
    )
    links = [
        (m("home"), site.url(home_path(lang, site.primary_lang))),
        *((label, _link(site, url)) for label, url in site.links),
        (m("all_feeds_opml"), site.url("/feeds.opml")),
        (m("api_reference"), site.url("/schema")),
    ]
    items = "".join(f"<li><a href={quoteattr(url)}>{escape(label)}</a></li>" for label, url in links)
    note = f"<p>{escape(site.footer_note)}</p>" if site.footer_note else ""
    return (
        f'<footer><div class="wrap"><p><strong>{escape(m.site_name(site.title))}</strong> · '
        f"{escape(m.site_description(site.description))}</p>"
        f'<nav aria-label={quoteattr(m("about_site"))}><ul>{items}</ul></nav>'
        + (
            f'<nav class="langs" aria-label={quoteattr(m("other_languages"))}><ul>{langs}</ul></nav>'
            if langs
            else ""
        )
        + f"{note}</div></footer>"
    )


def _link(site: Site, url: str) -> str:
    return site.base_url + url if url.startswith("/") else url


def time_tag(value: date | datetime, m: Messages) -> str:
    """A date as people write it, with the instant for machines."""
    return f"<time datetime={quoteattr(value.isoformat())}>{escape(m.day(value))}</time>"


def authors_html(site: Site, item: Commentary, *, affiliation: bool = True) -> str:
    """The authors, each a link to their page, with their affiliations."""
    return ", ".join(
        f"<a href={site.href(author_path(item.lang, a.name))}>{escape(a.name)}</a>"
        + (f" ({escape(a.affiliation)})" if affiliation and a.affiliation else "")
        for a in item.authors
    )


def tags_html(site: Site, lang: str, tags: Sequence[str], label: str) -> str:
    if not tags:
        return ""
    return f'<ul class="tags" aria-label={quoteattr(label)}>' + "".join(
        f'<li><a class="tag" href={site.href(tag_path(lang, t))}>{escape(t)}</a></li>' for t in tags
    ) + "</ul>"


def entry(
    site: Site, item: Commentary, m: Messages, *, categories: dict[str, Category], heading: str = "h2"
) -> str:
    """A commentary in a list: its title linked to its page, date, category, authors,
    trend and summary."""
    meta = [time_tag(item.published_at, m)]
    category = categories.get(item.category)
    if category is not None:
        meta.append(f"<a href={site.href(category_path(item.lang, category.slug))}>{escape(category.name(m.tag))}</a>")
    if item.authors:
        meta.append(authors_html(site, item, affiliation=False))
    if item.trend:
        meta.append(f'<span class="trend">{escape(m.trend(item.trend))}</span>')
    lang_attr = f" lang={quoteattr(item.lang)}" if item.lang != m.tag else ""
    return (
        f"<li{lang_attr}><{heading}><a href={quoteattr(item.url)}>{escape(item.title)}</a></{heading}>"
        f'<p class="meta">{" · ".join(meta)}</p>'
        + (f"<p>{escape(item.summary)}</p>" if item.summary else "")
        + "</li>"
    )


def entries(
    site: Site, items: Sequence[Commentary], m: Messages, *, categories: dict[str, Category], heading: str = "h2"
) -> str:
    if not items:
        return f'<p class="muted">{m.html("nothing_here")}</p>'
    return '<ul class="entries">' + "".join(
        entry(site, c, m, categories=categories, heading=heading) for c in items
    ) + "</ul>"


def pager(m: Messages, *, newer: str | None, older: str | None) -> str:
    """Links to the first page (when this is not it) and to the next, older page."""
    if newer is None and older is None:
        return ""
    left = f'<a href={quoteattr(newer)} rel="first">{m.html("newest")}</a>' if newer else "<span></span>"
    right = f'<a href={quoteattr(older)} rel="next">{m.html("older")}</a>' if older else ""
    return f'<nav class="pager" aria-label={quoteattr(m("pages"))}>{left}{right}</nav>'
