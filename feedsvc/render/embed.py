"""The partner-facing views: the iframe embed page, its single-commentary card, the oEmbed
document and the snippets shown on the index page. Pure functions from model values to text.

The embed page sits in other sites' iframes, so it is self-contained: inline CSS, no
script, no image or font from anywhere, links that open in the top window. Every
interpolated value is escaped here; summaries and titles are plain text.

``embed.js`` (in ``static/``) renders the same list into a partner's own page from the JSON
API, with the same class names and labels, using text-only DOM operations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from html import escape
from importlib import resources
from typing import Literal
from urllib.parse import urlencode

import msgspec

from feedsvc.model import Category, Commentary
from feedsvc.render.messages import Messages, script_words

Theme = Literal["light", "dark"]
THEMES: tuple[Theme, ...] = ("light", "dark")

# The card an oEmbed consumer frames: wide enough for a title on two lines, tall enough
# for the summary without a scroll bar in most cases.
CARD_WIDTH = 600
CARD_HEIGHT = 240

STYLE = """
:root{--fg:#1d2330;--muted:#5b6474;--line:#d8dde6;--accent:#1f5fbf;--bg:#fff;color-scheme:light}
.theme-dark{--fg:#e6e9ef;--muted:#9aa3b2;--line:#323a48;--accent:#8ab8ff;--bg:#12161d;color-scheme:dark}
.trend-improved{--trend:#1a7f37}.trend-worsened{--trend:#c4311c}.trend-unchanged{--trend:var(--muted)}
.theme-dark .trend-improved{--trend:#56d364}.theme-dark .trend-worsened{--trend:#ff7b72}
html,body{margin:0;padding:0;background:var(--bg);color:var(--fg)}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;padding:.75rem 1rem}
.feedsvc-list{list-style:none;margin:0;padding:0}
.feedsvc-item{padding:.6rem 0;border-bottom:1px solid var(--line)}.feedsvc-item:last-child{border-bottom:0}
.feedsvc-title{display:block;font-weight:600;font-size:1.05em;line-height:1.3;color:var(--accent);text-decoration:none}
a.feedsvc-title:hover,a.feedsvc-title:focus{text-decoration:underline}
.feedsvc-meta{margin:.2rem 0 0;font-size:.85em;color:var(--muted)}
.feedsvc-trend{font-weight:600;color:var(--trend)}
.feedsvc-summary{margin:.3rem 0 0}
.feedsvc-authors{margin:.3rem 0 0;font-size:.85em;color:var(--muted)}
.feedsvc-empty{color:var(--muted)}
.feedsvc-footer{margin:.5rem 0 0;font-size:.8em;color:var(--muted)}.feedsvc-footer a{color:inherit}
"""


def _link(url: str, text: str, cls: str) -> str:
    # The page is framed: a plain link would navigate the little frame, so it opens the
    # commentary in the top window, without giving it a handle on the partner's page.
    return f'<a class="{cls}" href="{escape(url)}" target="_top" rel="noopener">{escape(text)}</a>'


def _item(item: Commentary, category: Category | None, lang: str | None, *, authors: bool) -> str:
    shown_lang = lang or item.lang
    m = Messages(shown_lang)
    meta = [f'<time datetime="{escape(item.published_at.isoformat())}">{escape(m.day(item.published_at))}</time>']
    meta.append(
        f'<span class="feedsvc-category">{escape(category.name(shown_lang) if category else item.category)}</span>'
    )
    if item.trend:
        meta.append(f'<span class="feedsvc-trend trend-{escape(item.trend)}">{escape(m.trend(item.trend))}</span>')
    by = ""
    if authors and item.authors:
        by = f'<p class="feedsvc-authors">{escape(", ".join(a.name for a in item.authors))}</p>'
    summary = f'<p class="feedsvc-summary">{escape(item.summary)}</p>' if item.summary else ""
    return (
        f'<li class="feedsvc-item" lang="{escape(item.lang)}">{_link(item.url, item.title, "feedsvc-title")}'
        f'<p class="feedsvc-meta">{" · ".join(meta)}</p>{by}{summary}</li>'
    )


def _document(title: str, body: str, *, lang: str, theme: Theme) -> str:
    return (
        f'<!doctype html>\n<html lang="{escape(lang)}" class="theme-{theme}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="referrer" content="strict-origin-when-cross-origin">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f'<body class="theme-{theme}">{body}</body></html>\n'
    )


def embed_page(
    items: Sequence[Commentary],
    categories: Mapping[str, Category],
    *,
    lang: str | None,
    theme: Theme,
    site_title: str,
    site_url: str,
) -> str:
    """``GET /embed``: the latest commentaries as a small, self-contained page for an iframe.

    Args:
        items: the commentaries to list, newest first (already public and presented).
        categories: every category by slug, for its name in the page's language.
        lang: the language asked for; category names and trend words follow it, else each
            commentary's own language.
        theme: ``light`` or ``dark``.
        site_title: the publication's name, shown in the footer link.
        site_url: where the footer links to (the publication's feedsvc index).
    """
    m = Messages(lang)
    if items:
        lis = "".join(_item(c, categories.get(c.category), lang, authors=False) for c in items)
        listing = f'<ul class="feedsvc-list">{lis}</ul>'
    else:
        listing = f'<p class="feedsvc-empty">{m.html("no_commentaries")}</p>'
    name = m.site_name(site_title)
    footer = f'<p class="feedsvc-footer">{_link(site_url, name, "feedsvc-site")}</p>'
    return _document(m("embed_title", site=name), listing + footer, lang=m.tag, theme=theme)


def embed_card(item: Commentary, category: Category | None, *, theme: Theme, site_title: str) -> str:
    """``GET /embed?id=``: one commentary as a card, the view an oEmbed iframe shows."""
    body = f'<ul class="feedsvc-list">{_item(item, category, None, authors=True)}</ul>'
    return _document(f"{item.title} — {Messages(item.lang).site_name(site_title)}", body, lang=item.lang, theme=theme)


# --- oEmbed -------------------------------------------------------------------------------


class OEmbed(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An oEmbed 1.0 response of type ``rich`` (https://oembed.com/, section 2.3.4)."""

    version: Literal["1.0"]
    type: Literal["rich"]
    title: str
    author_name: str | None = None
    author_url: str | None = None
    provider_name: str
    provider_url: str
    cache_age: int
    html: str
    """An iframe of the commentary's card (``/embed?id=``)."""
    width: int
    height: int


def oembed(
    item: Commentary,
    *,
    base_url: str,
    site_title: str,
    cache_age: int,
    maxwidth: int | None = None,
    maxheight: int | None = None,
) -> OEmbed:
    """The oEmbed document for a commentary: an iframe of its card, within maxwidth/maxheight."""
    width = min(CARD_WIDTH, maxwidth) if maxwidth else CARD_WIDTH
    height = min(CARD_HEIGHT, maxheight) if maxheight else CARD_HEIGHT
    src = f"{base_url}/embed?" + urlencode({"id": item.id})
    author_urls = [a.url for a in item.authors if a.url]
    return OEmbed(
        version="1.0",
        type="rich",
        title=item.title,
        author_name=", ".join(a.name for a in item.authors) or None,
        author_url=author_urls[0] if len(item.authors) == 1 and author_urls else None,
        provider_name=site_title,
        provider_url=base_url + "/",
        cache_age=cache_age,
        html=iframe(src, width=width, height=height, title=item.title),
        width=width,
        height=height,
    )


# The embed page runs no script; the sandbox only lets its links open the top window (or a
# new one), so even a compromised embed could not touch the page that frames it.
SANDBOX = "allow-top-navigation-by-user-activation allow-popups allow-popups-to-escape-sandbox"


def iframe(src: str, *, width: int | str, height: int, title: str) -> str:
    """The ``<iframe>`` a partner pastes (also the ``html`` of an oEmbed response)."""
    return (
        f'<iframe src="{escape(src)}" width="{escape(str(width))}" height="{height}" title="{escape(title)}" '
        f'style="border:0;max-width:100%" loading="lazy" referrerpolicy="strict-origin-when-cross-origin" '
        f'sandbox="{SANDBOX}"></iframe>'
    )


# --- snippets for the index page ----------------------------------------------------------


def snippets(
    base_url: str, *, site_title: str, categories: Sequence[Category], example_url: str | None, lang: str | None = None
) -> str:
    """The "Embed on your site" section of ``GET /``: what a partner pastes, ready to copy.

    Args:
        base_url: the public base of the service (FEEDSVC_PUBLIC_URL).
        site_title: the publication's name, for the iframe's accessible title.
        categories: the categories to mention as values of ``category``.
        example_url: a commentary's page URL for the oEmbed example (a placeholder if None).
        lang: the language of the page's words (English by default).
    """
    m = Messages(lang)
    frame = iframe(
        f"{base_url}/embed?limit=5&theme=light", width="100%", height=520,
        title=m("embed_title", site=m.site_name(site_title)),
    )
    script = (
        f'<div data-feedsvc-embed data-limit="5" data-theme="light"'
        f' data-category="" data-lang=""></div>\n'
        f'<script src="{base_url}/embed.js" async></script>'
    )
    page = example_url or f"{base_url}/commentaries/ID"
    oembed_url = f"{base_url}/oembed?" + urlencode({"url": page, "format": "json"})
    slugs = ", ".join(f"<code>{escape(c.slug)}</code>" for c in categories) or m.html("none_yet")

    def code(text: str) -> str:
        return f"<code>{escape(text)}</code>"

    def block(text: str) -> str:
        return f"<pre>{code(text)}</pre>"

    intro = m.html(
        "embed_intro", category=code("category"), slugs=slugs, lang=code("lang"),
        langs=f"{code('en')}, {code('be')}, {code('ru')}, …", limit=code("limit"), theme=code("theme"),
        light=code("light"), dark=code("dark"),
    )
    return (
        f'<section id="embed"><h2>{m.html("embed_heading")}</h2><p>{intro}</p>'
        f'<h3>{m.html("embed_iframe")}</h3><p class="muted">{m.html("embed_iframe_help")}</p>{block(frame)}'
        f'<h3>{m.html("embed_script")}</h3><p class="muted">{m.html("embed_script_help", data=code("data-"))}</p>'
        f"{block(script)}"
        f'<h3>{m.html("embed_oembed")}</h3><p class="muted">{m.html("embed_oembed_help")}</p>{block(oembed_url)}'
        "</section>"
    )


_WORDS = re.compile(r"/\*@words\*/.*?/\*words@\*/", re.DOTALL)


@cache
def embed_js() -> bytes:
    """The source of ``/embed.js``, with the words of the message catalogue written in."""
    source = resources.files("feedsvc.render").joinpath("static", "embed.js").read_text("utf-8")
    words = json.dumps(script_words(), ensure_ascii=False, separators=(",", ":"))
    # Inside a <script> element "</" could end it early; JSON allows writing it "<\/".
    return _WORDS.sub(lambda _: words.replace("</", "<\\/"), source, count=1).encode()
