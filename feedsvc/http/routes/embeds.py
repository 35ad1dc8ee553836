"""What partner sites use: ``/embed`` (an iframe), ``/embed.js`` (a script tag), ``/oembed``,
and the "Embed on your site" snippets on the index page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec
from litestar import MediaType, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from feedsvc.config import Settings
from feedsvc.errors import InvalidInputError
from feedsvc.http.common import JSON, ServiceDep, responses
from feedsvc.http.conditional import conditional
from feedsvc.http.cost import unfit, unfit_message
from feedsvc.http.errors import ErrorBody
from feedsvc.model import Commentary
from feedsvc.paths import parse_commentary_path
from feedsvc.query import Query
from feedsvc.render.embed import (
    SCRIPT_HASH,
    Filters,
    OEmbed,
    Theme,
    embed_card,
    embed_js,
    embed_page,
    oembed,
    snippets,
)
from feedsvc.service import Service

_encode = msgspec.json.Encoder().encode


SettingsDep = NamedDependency[Settings]
API_COMMENTARIES = "/api/v1/commentaries/"
PAGE_COMMENTARIES = "/commentaries/"


# /embed.js has no version in its URL, so a day is as long as a fix may take to reach partners.
SCRIPT_MAX_AGE = 86400


def embed_headers(settings: Settings) -> dict[str, str]:
    """Headers of the iframe views: no script but the page's own, nothing from elsewhere but
    the commentaries' images, framable by ``settings.frame_ancestors`` (any site by default)."""
    # Images are the commentaries' own (on this server, or on an https host the editor named).
    csp = (
        f"default-src 'none'; script-src {SCRIPT_HASH}; style-src 'unsafe-inline'; img-src 'self' https: data:; "
        f"base-uri 'none'; form-action 'none'; frame-ancestors {settings.frame_ancestors}"
    )
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        # Partners whose pages require CORP (COEP: require-corp) may still frame it.
        "Cross-Origin-Resource-Policy": "cross-origin",
    }


@get(
    "/embed",
    summary="The latest commentaries as a small HTML page for an iframe",
    description="Self-contained (inline CSS, one inline script that posts the page's height to the framing "
    "page, no resources from elsewhere but the commentaries' images); links open in the top window. With "
    "`id`, one commentary as a card with its image (the view oEmbed frames). An empty list says which "
    "filter matched nothing and lists the categories and languages there are.",
    tags=["embed"],
    media_type=MediaType.HTML,
    responses=responses(304, 400, 404, 503),
)
async def embed(
    request: Request[Any, Any, Any],
    service: ServiceDep,
    settings: SettingsDep,
    category: Annotated[
        list[str] | None, QueryParameter(description="Category slug; repeat (or separate with commas) for several.")
    ] = None,
    lang: Annotated[
        str | None,
        QueryParameter(
            description="Only commentaries in this language (BCP 47); also the language of labels.", max_length=35
        ),
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=20, description="How many commentaries to list.")] = 5,
    theme: Annotated[Theme, QueryParameter(description="Colours: `light` or `dark`.")] = "light",
    id: Annotated[
        str | None, QueryParameter(description="One commentary's id: show it as a card.", max_length=200)
    ] = None,
    thumbnails: Annotated[
        bool, QueryParameter(description="Show each commentary's image, small, beside its title.")
    ] = False,
) -> Response[str]:
    query = Query.from_params(category=category, lang=lang, limit=limit)
    categories = {c.slug: c for c in await service.get_categories()}
    if id is not None:
        item = await service.get_commentary(id)
        text = embed_card(item, categories.get(item.category), theme=theme, site_title=settings.title)
    else:
        page = await service.list_commentaries(query)
        filters = None
        if not page.items:
            filters = Filters(
                categories=tuple(query.categories), lang=query.lang, known_categories=tuple(categories),
                known_languages=tuple(c.name for c in await service.get_languages()),
            )
        text = embed_page(
            page.items, categories, lang=query.lang, theme=theme, site_title=settings.title,
            site_url=service.base_url + "/", thumbnails=thumbnails, filters=filters,
        )
    return conditional(
        request, text.encode(), media_type=MediaType.HTML, headers=embed_headers(settings),
        cache_control=f"public, max-age={settings.cache_max_age}",
    )


# Litestar appends "; charset=utf-8" to text types.
JAVASCRIPT = "text/javascript"


@get(
    "/embed.js",
    summary="The script that renders the latest commentaries into a partner's page",
    description="Put `<div data-feedsvc-embed data-category=… data-lang=… data-limit=… data-thumbnails>` in the "
    "page and load this script; it reads the JSON API (CORS) and inserts text only, in the page's font and "
    "colours. It also sizes `/embed` iframes on the page to the height they post.",
    tags=["embed"],
    media_type=JAVASCRIPT,
    responses=responses(304),
)
async def embed_script(request: Request[Any, Any, Any]) -> Response[bytes]:
    return conditional(
        request, embed_js(), media_type=JAVASCRIPT,
        headers={"X-Content-Type-Options": "nosniff", "Cross-Origin-Resource-Policy": "cross-origin"},
        cache_control=f"public, max-age={SCRIPT_MAX_AGE}",
    )


def commentary_ref(url: str, base_url: str) -> tuple[str, str | None] | None:
    """The id (or slug and language) a URL names, if it is one of this service's commentary
    URLs: its page ``{base}/{lang}/{yyyy}/{mm}/{slug}`` (feedsvc.paths), its former page
    ``{base}/commentaries/{id}`` or ``{base}/api/v1/commentaries/{id}``
    (``?lang=`` with a slug). Either scheme is accepted; the host and port must be ours."""
    try:
        parts = urlsplit(url.strip())
        base = urlsplit(base_url)
        port, base_port = parts.port, base.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if parts.username is not None or parts.hostname != base.hostname or port != base_port:
        return None
    prefix = base.path.rstrip("/")
    if not parts.path.startswith(prefix + "/"):
        return None
    rest = parts.path[len(prefix):].removesuffix("/")
    page = parse_commentary_path(rest)
    if page is not None and not unfit(page[1]):
        return page[1], page[0]
    for form in (PAGE_COMMENTARIES, API_COMMENTARIES):
        if rest.startswith(form):
            # Escapes that are not UTF-8 kept visible, so that unfit() refuses them (as the
            # gate does for the request's own parameters) instead of a database failing.
            ident = unquote(rest[len(form):], errors="surrogateescape")
            if not ident or "/" in ident:
                return None
            lang = (
                parse_qs(parts.query, errors="surrogateescape").get("lang", [None])[0]
                if form == API_COMMENTARIES
                else None
            )
            if unfit(ident) or (lang is not None and unfit(lang)):
                message = unfit_message("url") + " (after decoding its escapes)"
                raise InvalidInputError(message, field="url", source="query")
            return ident, lang
    return None


@get(
    "/oembed",
    summary="oEmbed 1.0 for a commentary URL",
    description="`url` is a commentary's page (`/{lang}/{yyyy}/{mm}/{slug}`, or `/commentaries/{id}`) or API address "
    "(`/api/v1/commentaries/{id}`) on this service. Answers an oEmbed `rich` document whose `html` "
    "is an iframe of the commentary's card. Only `format=json` is implemented (else 501).",
    tags=["embed"],
    responses={
        **responses(304, 400, 404, 503),
        501: ResponseSpec(
            data_container=ErrorBody, description="Only format=json is implemented", generate_examples=False
        ),
    },
)
async def oembed_endpoint(
    request: Request[Any, Any, Any],
    service: ServiceDep,
    settings: SettingsDep,
    url: Annotated[str, QueryParameter(description="A commentary's URL.", max_length=2000)],
    format: Annotated[str, QueryParameter(description="Only `json` is implemented.", max_length=20)] = "json",
    maxwidth: Annotated[
        int | None, QueryParameter(ge=1, description="Largest width the consumer can show, in pixels.")
    ] = None,
    maxheight: Annotated[
        int | None, QueryParameter(ge=1, description="Largest height the consumer can show, in pixels.")
    ] = None,
) -> Response[OEmbed]:
    if format != "json":
        raise HTTPException(status_code=501, detail=f"format {format!r} is not implemented; use format=json")
    ref = commentary_ref(url, service.base_url)
    if ref is None:
        raise HTTPException(status_code=404, detail="not a commentary URL of this service")
    item = await service.get_commentary(ref[0], lang=ref[1])
    doc = oembed(
        item,
        base_url=service.base_url,
        site_title=settings.title,
        cache_age=settings.cache_max_age,
        maxwidth=maxwidth,
        maxheight=maxheight,
    )
    return conditional(
        request, _encode(doc), media_type=JSON, cache_control=f"public, max-age={settings.cache_max_age}"
    )


async def index_snippets(
    service: Service, settings: Settings, latest: Sequence[Commentary], lang: str | None = None
) -> str:
    """The "Embed on your site" section of the index page, in ``lang``."""
    return snippets(
        service.base_url,
        site_title=settings.title,
        categories=await service.get_categories(),
        example_url=service.page_url(latest[0]) if latest else None,
        lang=lang,
    )


HANDLERS = [
    embed,
    embed_script,
    oembed_endpoint,
]
