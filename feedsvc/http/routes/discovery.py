"""What crawlers read first: robots.txt naming the sitemaps, the sitemap index and its parts
(feedsvc.feeds.sitemaps builds and caches them)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from feedsvc.config import Settings
from feedsvc.errors import NotFoundError
from feedsvc.feeds.sitemaps import Sitemaps
from feedsvc.http.common import responses
from feedsvc.http.conditional import conditional
from feedsvc.render.sitemap import robots_txt

XML = "application/xml"


@get("/robots.txt", summary="Crawling rules, naming the sitemaps", tags=["pages"], media_type="text/plain")
async def robots(
    request: Request[Any, Any, Any], sitemaps: NamedDependency[Sitemaps], settings: NamedDependency[Settings]
) -> Response[bytes]:
    text = robots_txt([sitemaps.url("index"), sitemaps.url("news")])
    return conditional(
        request, text.encode(), media_type="text/plain; charset=utf-8",
        cache_control=f"public, max-age={settings.cache_max_age}",
    )


@get(
    "/sitemap.xml",
    summary="The sitemap index: the commentary, digest and news sitemaps",
    tags=["pages"],
    media_type=XML,
    responses=responses(304, 503),
)
async def sitemap(
    request: Request[Any, Any, Any], sitemaps: NamedDependency[Sitemaps], settings: NamedDependency[Settings]
) -> Response[bytes]:
    return await _document(request, sitemaps, settings, "index")


@get(
    "/sitemaps/{name:str}",
    summary="One sitemap: `commentaries-N.xml` (50,000 pages each), `digests.xml` or `news.xml`",
    tags=["pages"],
    media_type=XML,
    responses=responses(304, 404, 503),
)
async def sitemap_part(
    request: Request[Any, Any, Any],
    sitemaps: NamedDependency[Sitemaps],
    settings: NamedDependency[Settings],
    name: FromPath[str],
) -> Response[bytes]:
    if not name.endswith(".xml") or name == "index.xml":
        raise NotFoundError(f"no sitemap {name!r}")
    return await _document(request, sitemaps, settings, name.removesuffix(".xml"))


async def _document(
    request: Request[Any, Any, Any], sitemaps: Sitemaps, settings: Settings, name: str
) -> Response[bytes]:
    body = await sitemaps.document(name)
    if body is None:
        raise NotFoundError(f"no sitemap {name + '.xml'!r}")
    return conditional(
        request, body, media_type=f"{XML}; charset=utf-8", cache_control=f"public, max-age={settings.cache_max_age}"
    )


HANDLERS = [robots, sitemap, sitemap_part]
