"""Weekly digests over HTTP (issue 9): the JSON API, the digest feeds and the digest pages.

``GET /api/v1/digests`` and ``GET /api/v1/digests/{start}`` answer with validators and
304 like the other reads; ``/digest.{rss,atom,json}`` and ``/{lang}/digest.{...}`` are
served exactly as the commentary feeds are (cached bytes, per-coding ETags, gzip/brotli,
a readable page for browsers); ``/digests/{start}?lang=`` is the page a digest's ``url``
and its feed items link to.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, PathParameter, QueryParameter

from feedsvc.config import Settings
from feedsvc.digest import Digest, DigestPage
from feedsvc.errors import InvalidInputError, NotFoundError
from feedsvc.feeds.publisher import FeedPublisher
from feedsvc.feeds.views import FORMATS, MEDIA_TYPES, FeedFormat
from feedsvc.http.feeds import _documented, feed_response
from feedsvc.http.pages import feed_link, html_response
from feedsvc.http.read import API, ServiceDep, conditional, next_link, responses
from feedsvc.model import LANG_PATTERN, Query, in_range, normalize_lang
from feedsvc.render.html import digest_page

_encode = msgspec.json.Encoder().encode
_REVALIDATE = "public, max-age=0, must-revalidate"

Lang = Annotated[str | None, QueryParameter(description="BCP 47 language tag: one language's digests.", max_length=35)]
Start = Annotated[str, PathParameter(description="The first day of the period, YYYY-MM-DD.")]


def parse_start(raw: str) -> date:
    """The ``start`` path segment as a date; InvalidInputError naming ``start`` otherwise."""
    try:
        value = msgspec.convert(raw, date) if len(raw) == 10 else None
    except msgspec.ValidationError:
        value = None
    if value is None or not in_range(value):
        raise InvalidInputError("`start` must be the first day of a period, as YYYY-MM-DD", field="start")
    return value


def _lang(raw: str | None) -> str | None:
    """``lang`` validated and normalised as the list API does it."""
    return Query.from_params(lang=raw).lang


@get(f"{API}/digests", summary="Weekly digests, newest period first", tags=["read"], responses=responses(304, 400, 503))
async def list_digests(
    request: Request[Any, Any, Any],
    service: ServiceDep,
    lang: Lang = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100, description="Digests per page.")] = 20,
    cursor: Annotated[str | None, QueryParameter(description="Opaque cursor from `next_cursor`.", max_length=500)] = None,
) -> Response[DigestPage]:
    page = await service.list_digests(lang=_lang(lang), limit=limit, cursor=cursor)
    headers: dict[str, str] = {}
    if page.next_cursor:
        headers["Link"] = next_link(request, f"{service.base_url}{API}/digests", page.next_cursor)
    return conditional(request, _encode(page), headers=headers, cache_control=_REVALIDATE)


@get(
    f"{API}/digests/{{start:str}}", summary="One weekly digest, by the first day of its period", tags=["read"],
    responses=responses(304, 400, 404, 503),
)
async def get_digest(
    request: Request[Any, Any, Any],
    service: ServiceDep,
    start: Start,
    lang: Annotated[
        str | None,
        QueryParameter(description="Its language; needed when the period has digests in several.", max_length=35),
    ] = None,
) -> Response[Digest]:
    digest = await service.get_digest(parse_start(start), lang=_lang(lang))
    return conditional(
        request, _encode(digest), last_modified=digest.updated_at, cache_control=_REVALIDATE,
        headers={"Link": f'<{digest.url}>; rel="alternate"; type="text/html"'},
    )


@get("/digests/{start:str}", summary="A weekly digest's readable page", tags=["pages"], media_type="text/html", responses=responses(304, 400, 404, 503))
async def digest_html(
    request: Request[Any, Any, Any],
    publisher: NamedDependency[FeedPublisher],
    settings: NamedDependency[Settings],
    start: Start,
    lang: Lang = None,
) -> Response[str]:
    service = publisher.service
    digest = await service.get_digest(parse_start(start), lang=_lang(lang))
    versions = await service.get_digests_of(digest.period.start)
    feeds = [feed_link(publisher, publisher.digest_spec(digest.lang)), feed_link(publisher, publisher.digest_spec(None))]
    text = digest_page(digest, others=[d for d in versions if d.lang != digest.lang], feeds=feeds, site_title=settings.title)
    return html_response(request, text, settings.cache_max_age)


def _feed_handlers(fmt: FeedFormat) -> list[HTTPRouteHandler]:
    label = fmt.upper() if fmt != "json" else "JSON Feed"

    @get(f"/digest.{fmt}", name=f"digest-feed-{fmt}", summary=f"{label}: weekly digests, every language", tags=["feeds"], media_type=MEDIA_TYPES[fmt], responses=_documented(fmt, 304, 503))
    async def digest_feed(
        request: Request[Any, Any, Any], publisher: NamedDependency[FeedPublisher], settings: NamedDependency[Settings]
    ) -> Response[bytes]:
        return feed_response(request, await publisher.digest_document(fmt, None), fmt, settings)

    @get(f"/{{language:str}}/digest.{fmt}", name=f"lang-digest-feed-{fmt}", summary=f"{label}: weekly digests, one language", tags=["feeds"], media_type=MEDIA_TYPES[fmt], responses=_documented(fmt, 304, 404, 503))
    async def lang_digest_feed(
        request: Request[Any, Any, Any], publisher: NamedDependency[FeedPublisher], settings: NamedDependency[Settings],
        language: FromPath[str],
    ) -> Response[bytes]:
        # Any language tag has a digest feed, empty where nothing is published; an empty
        # one is kept only in the bounded cache (FeedPublisher.digest_document).
        if len(language) > 35 or re.fullmatch(LANG_PATTERN, language) is None:
            raise NotFoundError(f"no feed at /{language[:40]}/digest.{fmt}: {language[:40]!r} is not a language tag")
        return feed_response(request, await publisher.digest_document(fmt, normalize_lang(language)), fmt, settings)

    return [digest_feed, lang_digest_feed]


HANDLERS: list[HTTPRouteHandler] = [
    list_digests, get_digest, digest_html, *(h for fmt in FORMATS for h in _feed_handlers(fmt))
]
