"""The pages people read, at their readable addresses (feedsvc.paths): a commentary, and the
lists of a language, a month, a category, a tag, an author and a search, paginated with the
API's keyset cursors. Every page comes from the page cache (feedsvc.feeds.pages), rendered
again only after something public changed."""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from html import escape
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect

from feedsvc.config import Settings
from feedsvc.errors import NotFoundError
from feedsvc.feeds.pages import PageCache
from feedsvc.feeds.publisher import FeedPublisher
from feedsvc.http.common import HTML, responses
from feedsvc.http.routes.pages import render_commentary
from feedsvc.http.routes.site import PageCacheDep, from_cache, page_response, site_of
from feedsvc.model import LANG_PATTERN, Commentary, normalize_lang
from feedsvc.paths import (
    archive_path,
    author_path,
    category_path,
    commentary_path,
    language_path,
    search_path,
    tag_path,
)
from feedsvc.query import Query
from feedsvc.render.listing import Listing, listing_page
from feedsvc.render.messages import Messages

PAGE_SIZE = 20
"""Commentaries per list page."""

Cursor = Annotated[
    str | None,
    QueryParameter(description="The next page: the cursor in the page before's `Older` link.", max_length=500),
]


async def page_language(publisher: FeedPublisher, raw: str) -> str:
    """A page's language from its path: a tag some public commentary is written in;
    NotFoundError otherwise (a made-up tag would otherwise be a page of nothing)."""
    if len(raw) > 35 or re.fullmatch(LANG_PATTERN, raw) is None:
        raise NotFoundError(f"no page at /{raw[:40]}/: not a language tag")
    lang = normalize_lang(raw)
    if not await publisher.has_language(lang):
        raise NotFoundError(f"no commentary is published in {lang!r}", language=lang)
    return lang


async def _list(
    request: Request[Any, Any, Any],
    publisher: FeedPublisher,
    settings: Settings,
    pages: PageCache,
    *,
    path: str,
    query: Query,
    cursor: str | None,
    heading: Callable[[Messages], str],
    intro: Callable[[Messages], str] = lambda m: "",
    intro_html: Callable[[Messages], Awaitable[str]] | None = None,
    alternates: Callable[[], Awaitable[list[tuple[str, str]]]] | None = None,
    search: str | None = None,
    feeds: Callable[[Messages], list[tuple[str, str]]] = lambda m: [],
) -> Response[Any]:
    """A list page of ``query`` at ``path``: rendered (through the cache) with its pager."""
    lang = query.lang or publisher.primary_lang

    async def render() -> str:
        service = publisher.service
        page = await service.list_commentaries(query, cursor) if search != "" else None
        m = Messages(lang)
        older = None
        if page is not None and page.next_cursor:
            params = ([("q", search)] if search else []) + [("cursor", page.next_cursor)]
            older = path + "?" + urlencode(params)
        view = Listing(
            lang=lang,
            path=path + ("?" + urlencode({"q": search}) if search else ""),
            heading=heading(m),
            intro=intro(m),
            intro_html=await intro_html(m) if intro_html else "",
            items=page.items if page is not None else [],
            categories=await publisher.categories(),
            older=older,
            first=cursor is None,
            alternates=await alternates() if alternates else [],
            search=search,
            feed_urls=feeds(m),
        )
        return listing_page(await site_of(publisher, settings), view)

    return await page_response(request, pages, settings, render)


# --- a commentary ---------------------------------------------------------------------------


@get(
    "/{language:str}/{year:str}/{month:str}/{slug:str}",
    summary="A commentary's page",
    tags=["pages"],
    media_type=HTML,
    responses=responses(304, 308, 404, 503),
)
async def commentary(
    request: Request[Any, Any, Any],
    publisher: NamedDependency[FeedPublisher],
    settings: NamedDependency[Settings],
    pages: PageCacheDep,
    language: FromPath[str],
    year: FromPath[str],
    month: FromPath[str],
    slug: FromPath[str],
) -> Response[Any]:
    if (hit := await from_cache(request, pages, settings)) is not None:
        return hit
    lang = await page_language(publisher, language)
    item = await publisher.service.get_commentary(slug, lang=lang)
    own = commentary_path(item.lang, item.published_at, item.slug)
    if request.scope["path"] != own:
        # Its date moved, or the language was spelt in another case: one address per page.
        return Redirect(path=publisher.base_url + own, status_code=308)
    return await page_response(request, pages, settings, lambda: render_commentary(publisher, settings, item))


# --- lists ----------------------------------------------------------------------------------


def _lang_feed(publisher: FeedPublisher, lang: str, m: Messages) -> list[tuple[str, str]]:
    spec = publisher.lang_spec(lang, Query(limit=publisher.feed_limit))
    return [(m("everything_in", language=m.language(lang)), publisher.feed_url(spec, "rss"))]


@get("/{language:str}/", summary="Every commentary in a language", tags=["pages"], media_type=HTML,
     responses=responses(304, 400, 404, 503))
async def language_page(
    request: Request[Any, Any, Any],
    publisher: NamedDependency[FeedPublisher],
    settings: NamedDependency[Settings],
    pages: PageCacheDep,
    language: FromPath[str],
    cursor: Cursor = None,
) -> Response[Any]:
    if (hit := await from_cache(request, pages, settings)) is not None:
        return hit
    lang = await page_language(publisher, language)
    return await _list(
        request, publisher, settings, pages, path=language_path(lang),
        query=Query(lang=lang, limit=PAGE_SIZE), cursor=cursor,
        heading=lambda m: m("in_language", language=m.language(lang)),
        feeds=lambda m: _lang_feed(publisher, lang, m),
    )


@get("/{language:str}/{year:str}/{month:str}/", summary="A month's commentaries in a language", tags=["pages"],
     media_type=HTML, responses=responses(304, 400, 404, 503))
async def archive_page(
    request: Request[Any, Any, Any],
    publisher: NamedDependency[FeedPublisher],
    settings: NamedDependency[Settings],
    pages: PageCacheDep,
    language: FromPath[str],
    year: FromPath[str],
    month: FromPath[str],
    cursor: Cursor = None,
) -> Response[Any]:
    if (hit := await from_cache(request, pages, settings)) is not None:
        return hit
    lang = await page_language(publisher, language)
    if not (re.fullmatch(r"\d{4}", year) and re.fullmatch(r"\d{2}", month) and 1 <= int(month) <= 12 and int(year)):
        raise NotFoundError(f"no page at /{lang}/{year[:8]}/{month[:8]}/: the archive is /{{lang}}/YYYY/MM/")
    y, mo = int(year), int(month)
    first, last = date(y, mo, 1), date(y, mo, monthrange(y, mo)[1])

    async def months(m: Messages) -> str:
        """Links to the month before with commentaries, and to the next month if any follow."""
        service = publisher.service
        links = ["<span></span>"]
        if first > date.min:
            earlier = await service.list_commentaries(Query(lang=lang, to_date=first - timedelta(days=1), limit=1))
            if earlier.items:
                p = earlier.items[0].published_at
                links[0] = (
                    f'<a href="{publisher.base_url}{archive_path(lang, p.year, p.month)}" rel="prev">'
                    f"← {escape(m.month(p.year, p.month))}</a>"
                )
        if last < date.max:
            n = last + timedelta(days=1)
            if (await service.list_commentaries(Query(lang=lang, from_date=n, limit=1))).items:
                links.append(
                    f'<a href="{publisher.base_url}{archive_path(lang, n.year, n.month)}" rel="next">'
                    f"{escape(m.month(n.year, n.month))} →</a>"
                )
        return f'<nav class="pager" aria-label="{escape(m("archive"))}">{"".join(links)}</nav>'

    return await _list(
        request, publisher, settings, pages, path=archive_path(lang, y, mo),
        query=Query(lang=lang, from_date=first, to_date=last, limit=PAGE_SIZE), cursor=cursor,
        heading=lambda m: m.month(y, mo), intro_html=months,
        feeds=lambda m: _lang_feed(publisher, lang, m),
    )


@get("/{language:str}/categories/{slug:str}", summary="A category's commentaries in a language", tags=["pages"],
     media_type=HTML, responses=responses(304, 400, 404, 503))
async def category_page(
    request: Request[Any, Any, Any],
    publisher: NamedDependency[FeedPublisher],
    settings: NamedDependency[Settings],
    pages: PageCacheDep,
    language: FromPath[str],
    slug: FromPath[str],
    cursor: Cursor = None,
) -> Response[Any]:
    if (hit := await from_cache(request, pages, settings)) is not None:
        return hit
    lang = await page_language(publisher, language)
    category = (await publisher.categories()).get(slug)
    if category is None:
        raise NotFoundError(f"no category {slug[:120]}")

    async def alternates() -> list[tuple[str, str]]:
        return [(other, category_path(other, category.slug)) for other in sorted(await publisher.languages())
                if other != lang]

    def feeds(m: Messages) -> list[tuple[str, str]]:
        spec = publisher.category_spec(category, Query(limit=publisher.feed_limit, lang=lang))
        return [(category.name(lang), publisher.feed_url(spec, "rss"))]

    return await _list(
        request, publisher, settings, pages, path=category_path(lang, category.slug),
        query=Query(lang=lang, categories=(category.slug,), limit=PAGE_SIZE), cursor=cursor,
        heading=lambda m: category.name(lang), intro=lambda m: category.description(lang),
        alternates=alternates, feeds=feeds,
    )


@get("/{language:str}/tags/{tag:str}", summary="A tag's commentaries in a language", tags=["pages"],
     media_type=HTML, responses=responses(304, 400, 404, 503))
async def tag_page(
    request: Request[Any, Any, Any],
    publisher: NamedDependency[FeedPublisher],
    settings: NamedDependency[Settings],
    pages: PageCacheDep,
    language: FromPath[str],
    tag: FromPath[str],
    cursor: Cursor = None,
) -> Response[Any]:
    if (hit := await from_cache(request, pages, settings)) is not None:
        return hit
    lang = await page_language(publisher, language)
    query = Query.from_params(tag=tag, lang=lang, limit=PAGE_SIZE)
    return await _list(
        request, publisher, settings, pages, path=tag_path(lang, tag), query=query, cursor=cursor,
        heading=lambda m: m("tag_heading", tag=tag),
    )


@get("/{language:str}/authors/{name:str}", summary="An author's commentaries in a language", tags=["pages"],
     media_type=HTML, responses=responses(304, 400, 404, 503))
async def author_page(
    request: Request[Any, Any, Any],
    publisher: NamedDependency[FeedPublisher],
    settings: NamedDependency[Settings],
    pages: PageCacheDep,
    language: FromPath[str],
    name: FromPath[str],
    cursor: Cursor = None,
) -> Response[Any]:
    if (hit := await from_cache(request, pages, settings)) is not None:
        return hit
    lang = await page_language(publisher, language)
    query = Query.from_params(author=name, lang=lang, limit=PAGE_SIZE)
    found = await publisher.service.list_commentaries(msgspec.structs.replace(query, limit=1))
    if not found.items:
        raise NotFoundError(f"no author called {name[:200]!r} writes in {lang}")
    author = next(a for a in found.items[0].authors if a.name.casefold() == name.casefold())
    return await _list(
        request, publisher, settings, pages, path=author_path(lang, author.name), query=query, cursor=cursor,
        heading=lambda m: m("author_heading", author=author.name), intro=lambda m: author.affiliation or "",
    )


@get("/{language:str}/search", summary="Full-text search of the commentaries in a language", tags=["pages"],
     media_type=HTML, responses=responses(304, 400, 404, 503))
async def search_page(
    request: Request[Any, Any, Any],
    publisher: NamedDependency[FeedPublisher],
    settings: NamedDependency[Settings],
    pages: PageCacheDep,
    language: FromPath[str],
    q: Annotated[str | None, QueryParameter(description="Words to find (the last also as a prefix).", max_length=200)]
    = None,
    cursor: Cursor = None,
) -> Response[Any]:
    if (hit := await from_cache(request, pages, settings)) is not None:
        return hit
    lang = await page_language(publisher, language)
    words = " ".join((q or "").split())
    query = Query.from_params(q=words or None, lang=lang, limit=PAGE_SIZE)
    return await _list(
        request, publisher, settings, pages, path=search_path(lang), query=query, cursor=cursor,
        heading=lambda m: m("search_heading", q=words) if words else m("search"),
        search=words,
    )


@get("/commentaries/{id:str}", summary="A commentary's former address: a permanent redirect to its page",
     tags=["pages"], responses=responses(308, 404, 503))
async def commentary_by_id(publisher: NamedDependency[FeedPublisher], id: FromPath[str]) -> Redirect:
    item: Commentary = await publisher.service.get_commentary(id)
    return Redirect(path=publisher.service.page_url(item), status_code=308)


HANDLERS = [
    commentary,
    commentary_by_id,
    language_page,
    archive_page,
    category_page,
    tag_page,
    author_page,
    search_page,
]
