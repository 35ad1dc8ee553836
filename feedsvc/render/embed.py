"""The partner-facing views: the iframe embed page, its single-commentary card, the oEmbed
document and the snippets shown on the index page. Pure functions from model values to text.

The embed page sits in other sites' iframes, so it is self-contained: inline CSS, one
inline script (allowed by its hash) that tells the framing page its height, no font from
anywhere, images only those of the commentaries, links that open in the top window. Every
interpolated value is escaped here; summaries and titles are plain text.

``embed.js`` (in ``static/``) renders the same list into a partner's own page from the JSON
API, with the same class names and labels, using text-only DOM operations; it also sizes
the embed iframes of the page it runs in to the heights they post.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from html import escape
from importlib import resources
from typing import Literal
from urllib.parse import urlencode

import msgspec

from feedsvc.model import Category, Commentary, Image
from feedsvc.render.messages import Messages, script_words

Theme = Literal["light", "dark"]
THEMES: tuple[Theme, ...] = ("light", "dark")

# The card an oEmbed consumer frames: wide enough for a title on two lines, tall enough
# for the summary without a scroll bar in most cases.
CARD_WIDTH = 600
CARD_HEIGHT = 240
CARD_PADDING = 32
"""The card's padding left and right, in pixels (1rem each side)."""
CAPTION_HEIGHT = 48
"""Room for an image's caption and credit (two lines) below it."""

STYLE = """
:root{--fg:#1d2330;--muted:#5b6474;--line:#d8dde6;--accent:#1f5fbf;--bg:#fff;color-scheme:light}
.theme-dark{--fg:#e6e9ef;--muted:#9aa3b2;--line:#323a48;--accent:#8ab8ff;--bg:#12161d;color-scheme:dark}
.trend-improved{--trend:#1a7f37}.trend-worsened{--trend:#c4311c}.trend-unchanged{--trend:var(--muted)}
.theme-dark .trend-improved{--trend:#56d364}.theme-dark .trend-worsened{--trend:#ff7b72}
html,body{margin:0;padding:0;background:var(--bg);color:var(--fg)}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;padding:.75rem 1rem;overflow-wrap:anywhere}
.feedsvc-list{list-style:none;margin:0;padding:0}
.feedsvc-item{padding:.6rem 0;border-bottom:1px solid var(--line)}.feedsvc-item:last-child{border-bottom:0}
.feedsvc-item::after{content:"";display:block;clear:both}
.feedsvc-thumb{float:right;width:4.5rem;height:4.5rem;object-fit:cover;margin:0 0 .3rem .75rem;border-radius:4px}
.feedsvc-title{display:block;font-weight:600;font-size:1.05em;line-height:1.3;color:var(--accent);text-decoration:none}
a.feedsvc-title:hover,a.feedsvc-title:focus{text-decoration:underline}
.feedsvc-meta{margin:.2rem 0 0;font-size:.85em;color:var(--muted)}
.feedsvc-trend{font-weight:600;color:var(--trend)}
.feedsvc-summary{margin:.3rem 0 0}
.feedsvc-authors{margin:.3rem 0 0;font-size:.85em;color:var(--muted)}
.feedsvc-figure{margin:.5rem 0 0}
.feedsvc-figure img{display:block;width:100%;height:auto;aspect-ratio:16/9;object-fit:cover;border-radius:4px}
.feedsvc-figure figcaption{margin:.25rem 0 0;font-size:.8em;color:var(--muted)}
.feedsvc-empty{color:var(--muted);margin:0}.feedsvc-empty+.feedsvc-empty{margin-top:.4rem}
.feedsvc-footer{margin:.5rem 0 0;font-size:.8em;color:var(--muted)}.feedsvc-footer a{color:inherit}
"""

RESIZE_MESSAGE = "feedsvc-embed:height"
"""The ``type`` of the message an embed page posts to the page framing it (``embed.js``
listens for it)."""

# The one script of an embed page: it posts the document's height whenever it changes (a
# narrower frame wraps more lines; images arrive late), so that embed.js on the framing
# page can size the iframe to its content. A height is no secret: any page may hear it.
RESIZE_SCRIPT = (
    "(function(){var last=-1;function send(){var h=Math.ceil(document.documentElement"
    ".getBoundingClientRect().height);if(h!==last&&window.parent!==window){last=h;"
    f'window.parent.postMessage({{type:"{RESIZE_MESSAGE}",height:h}},"*");}}}}'
    "if(window.ResizeObserver){new ResizeObserver(send).observe(document.documentElement);}"
    'else{window.addEventListener("resize",send);}window.addEventListener("load",send);send();})();'
)
SCRIPT_HASH = "'sha256-" + base64.b64encode(hashlib.sha256(RESIZE_SCRIPT.encode()).digest()).decode() + "'"
"""The CSP source that allows ``RESIZE_SCRIPT`` and nothing else."""


def _link(url: str, text: str, cls: str) -> str:
    # The page is framed: a plain link would navigate the little frame, so it opens the
    # commentary in the top window, without giving it a handle on the partner's page.
    return f'<a class="{cls}" href="{escape(url)}" target="_top" rel="noopener">{escape(text)}</a>'


def _thumbnail(image: Image | None) -> str:
    if image is None:
        return ""
    return (
        f'<img class="feedsvc-thumb" src="{escape(image.url)}" alt="{escape(image.alt or "")}" '
        'width="72" height="72" loading="lazy" decoding="async">'
    )


def _figure(image: Image | None) -> str:
    """The image of a commentary's card, with its alt text, caption and credit."""
    if image is None:
        return ""
    # Credits come written as the publisher wants them ("Photo: …"): shown as they are.
    parts = [escape(image.caption)] if image.caption else []
    if image.credit:
        parts.append(f'<span class="feedsvc-credit">{escape(image.credit)}</span>')
    caption = f"<figcaption>{' '.join(parts)}</figcaption>" if parts else ""
    return (
        f'<figure class="feedsvc-figure"><img src="{escape(image.url)}" alt="{escape(image.alt or "")}" '
        f'decoding="async">{caption}</figure>'
    )


def _item(
    item: Commentary, category: Category | None, lang: str | None, *, authors: bool, thumbnail: bool = False,
    figure: bool = False,
) -> str:
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
    thumb = _thumbnail(item.image) if thumbnail else ""
    image = _figure(item.image) if figure else ""
    return (
        f'<li class="feedsvc-item" lang="{escape(item.lang)}">{thumb}{_link(item.url, item.title, "feedsvc-title")}'
        f'<p class="feedsvc-meta">{" · ".join(meta)}</p>{by}{summary}{image}</li>'
    )


def _document(title: str, body: str, *, lang: str, theme: Theme) -> str:
    return (
        f'<!doctype html>\n<html lang="{escape(lang)}" class="theme-{theme}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="referrer" content="strict-origin-when-cross-origin">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f'<body class="theme-{theme}">{body}<script>{RESIZE_SCRIPT}</script></body></html>\n'
    )


@dataclass(frozen=True)
class Filters:
    """What a list was asked for, and what there is to ask for: the empty state says which
    filter matched nothing and what to change it to."""

    categories: tuple[str, ...]
    lang: str | None
    known_categories: tuple[str, ...]
    known_languages: tuple[str, ...]

    def given(self) -> list[tuple[str, str]]:
        """The filters that were set, as (parameter, value) pairs."""
        out = [("category", ",".join(self.categories))] if self.categories else []
        return out + ([("lang", self.lang)] if self.lang else [])


def empty_state(filters: Filters | None, m: Messages) -> str:
    """What an empty list says: "No commentaries yet." when nothing was filtered; else which
    filters matched nothing, and the categories and languages there are."""
    given = filters.given() if filters else []
    if not filters or not given:
        return f'<p class="feedsvc-empty">{m.html("no_commentaries")}</p>'

    def code(text: str) -> str:
        return f"<code>{escape(text)}</code>"

    asked = ", ".join(code(f"{name}={value}") for name, value in given)
    out = [m.html("nothing_matches", filters=asked)]
    if filters.known_categories:
        out.append(m.html("categories_are", list=", ".join(code(c) for c in filters.known_categories)))
    if filters.known_languages:
        out.append(m.html("languages_are", list=", ".join(code(lang) for lang in filters.known_languages)))
    return "".join(f'<p class="feedsvc-empty">{line}</p>' for line in out)


def embed_page(
    items: Sequence[Commentary],
    categories: Mapping[str, Category],
    *,
    lang: str | None,
    theme: Theme,
    site_title: str,
    site_url: str,
    thumbnails: bool = False,
    filters: Filters | None = None,
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
        thumbnails: show each commentary's image, small, beside its title.
        filters: what was asked for, for the empty state.
    """
    m = Messages(lang)
    if items:
        lis = "".join(
            _item(c, categories.get(c.category), lang, authors=False, thumbnail=thumbnails) for c in items
        )
        listing = f'<ul class="feedsvc-list">{lis}</ul>'
    else:
        listing = empty_state(filters, m)
    name = m.site_name(site_title)
    footer = f'<p class="feedsvc-footer">{_link(site_url, name, "feedsvc-site")}</p>'
    return _document(m("embed_title", site=name), listing + footer, lang=m.tag, theme=theme)


def embed_card(item: Commentary, category: Category | None, *, theme: Theme, site_title: str) -> str:
    """``GET /embed?id=``: one commentary as a card, the view an oEmbed iframe shows, with its
    image (alt text, caption and credit) when it has one."""
    body = f'<ul class="feedsvc-list">{_item(item, category, None, authors=True, figure=True)}</ul>'
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
    # The card shows the image 16:9 across its width, under the text.
    needed = CARD_HEIGHT + (round((width - CARD_PADDING) * 9 / 16) + CAPTION_HEIGHT if item.image else 0)
    height = min(needed, maxheight) if maxheight else needed
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
        html=iframe(src, title=item.title, width=width, height=height),
        width=width,
        height=height,
    )


# The embed page runs one script, its own (RESIZE_SCRIPT: the CSP allows that one by its
# hash). It keeps its origin (allow-same-origin) so that embed.js can check where a height
# comes from; feedsvc's origin is not the partner's, so it still cannot reach the partner's
# page, and it may open links in the top window only when a reader clicks.
SANDBOX = (
    "allow-scripts allow-same-origin allow-top-navigation-by-user-activation allow-popups "
    "allow-popups-to-escape-sandbox"
)

FRAME_HEIGHT = 480
"""An embed iframe's height until embed.js has set it to its content's (or for good, on a
page without embed.js)."""


def iframe(src: str, *, title: str, width: int | str | None = None, height: int = FRAME_HEIGHT) -> str:
    """The ``<iframe>`` a partner pastes (also the ``html`` of an oEmbed response). Without
    ``width`` it is as wide as the column it is put in."""
    size = f'width="{escape(str(width))}" ' if width is not None else ""
    style = "border:0;max-width:100%" if width is not None else "display:block;width:100%;max-width:100%;border:0"
    return (
        f'<iframe src="{escape(src)}" {size}height="{height}" title="{escape(title)}" '
        f'style="{style}" loading="lazy" referrerpolicy="strict-origin-when-cross-origin" '
        f'sandbox="{SANDBOX}"></iframe>'
    )


def frame_snippet(base_url: str, query: str, *, title: str) -> str:
    """What a partner pastes for the iframe form: the iframe of ``/embed?{query}``, and
    ``embed.js``, which makes it as tall as its content."""
    return f'{iframe(f"{base_url}/embed?{query}", title=title)}\n<script src="{base_url}/embed.js" async></script>'


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
    frame = frame_snippet(base_url, "limit=5&theme=light", title=m("embed_title", site=m.site_name(site_title)))
    script = (
        f'<div data-feedsvc-embed data-limit="5" data-category="" data-lang="" data-thumbnails></div>\n'
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
        langs=f"{code('en')}, {code('be')}, {code('ru')}, …", limit=code("limit"), thumbnails=code("thumbnails"),
        theme=code("theme"),
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
