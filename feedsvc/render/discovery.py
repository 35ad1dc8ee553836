"""What search engines and social networks read in a commentary page's head: Open Graph,
the Twitter card, the canonical and hreflang links, and schema.org ``NewsArticle`` JSON-LD.
One function, so the page template only has to call it where it builds the head."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.sax.saxutils import quoteattr

import msgspec

from feedsvc.model import Category, Commentary

# Open Graph wants language_TERRITORY; a bare language gets its usual territory.
_TERRITORY = {"en": "US", "be": "BY", "ru": "RU", "uk": "UA", "pl": "PL", "de": "DE", "fr": "FR", "lt": "LT"}


def og_locale(lang: str) -> str:
    parts = lang.split("-")
    region = next((p for p in parts[1:] if len(p) == 2 and p.isalpha()), None) or _TERRITORY.get(parts[0].lower())
    return f"{parts[0].lower()}_{region.upper()}" if region else parts[0].lower()


def _meta(attr: str, key: str, value: str) -> str:
    return f"<meta {attr}={quoteattr(key)} content={quoteattr(value)}>"


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def json_ld(data: dict[str, Any]) -> str:
    """A ``<script type="application/ld+json">`` block that no string in ``data`` can end
    early: ``<``, ``>`` and ``&`` are written as JSON escapes, which parse back the same."""
    text = msgspec.json.encode(data).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/ld+json">{text}</script>'


def news_article(item: Commentary, *, category: Category | None, site_title: str, site_url: str) -> dict[str, Any]:
    """schema.org ``NewsArticle`` for a (presented) commentary."""
    publisher = {"@type": "Organization", "name": site_title, "url": site_url + "/"}
    authors = []
    for a in item.authors:
        person: dict[str, Any] = {"@type": "Person", "name": a.name}
        if a.url:
            person["url"] = a.url
        if a.affiliation:
            person["affiliation"] = {"@type": "Organization", "name": a.affiliation}
        authors.append(person)
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": item.title,
        "description": item.summary,
        "url": item.url,
        "mainEntityOfPage": {"@type": "WebPage", "@id": item.url},
        "datePublished": _iso(item.published_at),
        "dateModified": _iso(item.updated_at),
        "inLanguage": item.lang,
        "author": authors,
        "publisher": publisher,
        "isPartOf": {"@type": "WebSite", "name": site_title, "url": site_url + "/"},
    }
    if item.image is not None:
        image: dict[str, Any] = {"@type": "ImageObject", "url": item.image.url}
        if item.image.caption or item.image.alt:
            image["caption"] = item.image.caption or item.image.alt
        if item.image.credit:
            image["creditText"] = item.image.credit
        data["image"] = [image]
    if category is not None:
        data["articleSection"] = category.name(item.lang)
        data["about"] = {"@type": "Thing", "name": category.name(item.lang)}
    if item.tags:
        data["keywords"] = list(item.tags)
    if item.translations:
        data["workTranslation"] = [
            {"@type": "NewsArticle", "url": t.url, "headline": t.title, "inLanguage": t.lang}
            for t in item.translations
        ]
    return data


def article_head(item: Commentary, *, category: Category | None, site_title: str, site_url: str) -> str:
    """The head tags of a commentary's page: canonical link, hreflang alternates (with the
    page itself, as the alternates want), Open Graph, Twitter card and JSON-LD."""
    head = f"<link rel=\"canonical\" href={quoteattr(item.url)}>"
    if item.translations:
        head += f'<link rel="alternate" hreflang={quoteattr(item.lang)} href={quoteattr(item.url)}>'
    og = [
        ("og:type", "article"),
        ("og:site_name", site_title),
        ("og:title", item.title),
        ("og:description", item.summary),
        ("og:url", item.url),
        ("og:locale", og_locale(item.lang)),
        *(("og:locale:alternate", og_locale(t.lang)) for t in item.translations),
    ]
    if item.image is not None:
        og.append(("og:image", item.image.url))
        if item.image.alt:
            og.append(("og:image:alt", item.image.alt))
    og += [
        ("article:published_time", _iso(item.published_at)),
        ("article:modified_time", _iso(item.updated_at)),
        *(("article:author", a.url or a.name) for a in item.authors),
    ]
    if category is not None:
        og.append(("article:section", category.name(item.lang)))
    og += [("article:tag", t) for t in item.tags]
    head += "".join(_meta("property", k, v) for k, v in og)
    twitter = [
        ("twitter:card", "summary_large_image" if item.image is not None else "summary"),
        ("twitter:title", item.title),
        ("twitter:description", item.summary),
    ]
    if item.image is not None:
        twitter.append(("twitter:image", item.image.url))
        if item.image.alt:
            twitter.append(("twitter:image:alt", item.image.alt))
    head += "".join(_meta("name", k, v) for k, v in twitter)
    return head + json_ld(news_article(item, category=category, site_title=site_title, site_url=site_url))


