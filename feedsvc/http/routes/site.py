"""What the page routes share: the publication as pages show it, and a page answered from
the page cache with its validators."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response
from litestar.di import NamedDependency

from feedsvc.config import Settings
from feedsvc.feeds.pages import CachedPage, PageCache
from feedsvc.feeds.publisher import FeedPublisher
from feedsvc.http.common import HTML, PAGE_HEADERS
from feedsvc.http.conditional import conditional
from feedsvc.render.layout import Site

PageCacheDep = NamedDependency[PageCache]


async def site_of(publisher: FeedPublisher, settings: Settings) -> Site:
    """The publication as the pages show it, from the settings and what is published."""
    return Site(
        title=settings.title,
        description=settings.description,
        base_url=publisher.base_url,
        primary_lang=publisher.primary_lang,
        languages=tuple(sorted(await publisher.languages())),
        categories=tuple((await publisher.categories()).values()),
        links=tuple(settings.links),
        footer_note=settings.footer_note or "",
    )


def page_key(request: Request[Any, Any, Any]) -> str:
    """Where a page is kept: its path and query string as asked."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    return request.scope["path"] + ("?" + query if query else "")


async def from_cache(request: Request[Any, Any, Any], pages: PageCache, settings: Settings) -> Response[Any] | None:
    """The page at this request's address if it is kept and current: routes ask before
    looking up what they need only to render it."""
    entry = await pages.fresh(page_key(request))
    return respond(request, entry, settings) if entry is not None else None


async def page_response(
    request: Request[Any, Any, Any], pages: PageCache, settings: Settings, render: Callable[[], Awaitable[str]]
) -> Response[Any]:
    """The page at this request's address from the cache, or rendered, with validators."""
    return respond(request, await pages.page(page_key(request), render), settings)


def respond(request: Request[Any, Any, Any], entry: CachedPage, settings: Settings) -> Response[Any]:
    return conditional(
        request, entry.body, etag=entry.etag, media_type=HTML, headers=PAGE_HEADERS,
        cache_control=f"public, max-age={settings.cache_max_age}",
    )
