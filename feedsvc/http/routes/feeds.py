"""Feed handlers: /feed.*, /categories/{slug}/feed.*, /{lang}/feed.*, /all/feed.*, /digest.*,
/{lang}/digest.*, /all/digest.*, in three formats (feedsvc.feeds makes and caches the documents).

Every feed response is cheap to poll: a strong ETag per view and content coding,
Last-Modified (the newest change among the items), 304 on a matching conditional
request, ``Cache-Control`` for a CDN, gzip and brotli chosen by ``Accept-Encoding``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter

from feedsvc.config import Settings
from feedsvc.errors import NotFoundError
from feedsvc.feeds.documents import Rendered, StaleRendered, pick_encoding
from feedsvc.feeds.publisher import FeedPublisher
from feedsvc.feeds.views import ALL_LANGUAGES, FORMAT_NAMES, FORMATS, MEDIA_TYPES, FeedFormat
from feedsvc.http.common import PAGE_HEADERS, responses
from feedsvc.http.conditional import is_fresh, validators
from feedsvc.model import LANG_PATTERN, normalize_lang
from feedsvc.query import Query
from feedsvc.render.jsonfeed import Feed as JSONFeed

Cursor = Annotated[
    str | None,
    QueryParameter(description="An archive page: the cursor from a `prev-archive` link.", max_length=500),
]


def is_browser_navigation(request: Request[Any, Any, Any]) -> bool:
    """A person opening the URL in a browser, not a feed reader.

    ``Sec-Fetch-Dest``/``Sec-Fetch-Mode`` are set only by browsers (scripts cannot forge
    them there), on top-level navigations; readers that copy a browser's Accept header do
    not send them, so they keep getting the feed.
    """
    headers = request.headers
    return (
        headers.get("sec-fetch-dest") == "document"
        and headers.get("sec-fetch-mode") == "navigate"
        and "text/html" in headers.get("accept", "")
    )




def feed_response(request: Request[Any, Any, Any], doc: Rendered, fmt: FeedFormat, settings: Settings) -> Response[Any]:
    """Serve a rendered document in the client's best coding (a page for browsers), or 304.
    feedsvc.http.fastpath answers the same way before routing; tests/test_fastpath.py
    compares the two."""
    encoding = pick_encoding(request.headers.get("accept-encoding"))
    page = fmt != "json" and is_browser_navigation(request)
    body, etag = doc.variant(encoding, "page" if page else "feed")
    headers = validators(doc, etag, settings, fmt)
    if isinstance(doc, StaleRendered):  # the database is away (feedsvc.feeds.publisher)
        headers.update(stale_headers(doc))
    if is_fresh(doc, request.headers.get("if-none-match"), request.headers.get("if-modified-since"), page=page):
        return Response(content=b"", status_code=304, headers=headers)
    if encoding != "identity":
        headers["Content-Encoding"] = encoding
    if page:
        headers.update(PAGE_HEADERS)
        return Response(content=body, status_code=200, headers=headers, media_type="text/html")
    return Response(content=body, status_code=200, headers=headers, media_type=MEDIA_TYPES[fmt])


def stale_headers(doc: StaleRendered) -> dict[str, str]:
    """What says a document was served from memory while the database was away (RFC 9211
    ``Cache-Status``; ``Age``: seconds since it was last known current, which a CDN
    counts against ``max-age`` as it would its own)."""
    return {"Cache-Status": "feedsvc; hit; detail=stale", "Age": str(doc.age)}


async def known_language(publisher: FeedPublisher, language: str, path: str) -> str:
    """The normalised language tag of a language feed's path; NotFoundError, before any
    rendering, unless the store holds a public commentary in it (a made-up tag once
    became a feed rendered and kept for good)."""
    if len(language) > 35 or re.fullmatch(LANG_PATTERN, language) is None:
        raise NotFoundError(f"no feed at {path[:80]}: {language[:40]!r} is not a language tag")
    lang = normalize_lang(language)
    if not await publisher.has_language(lang):
        raise NotFoundError(f"no feed at {path}: no commentary is published in {lang!r}", language=lang)
    return lang


def _address(request: Request[Any, Any, Any]) -> tuple[str, str] | None:
    """Where a view without parameters was asked for: its path and route template."""
    scope = request.scope
    if scope.get("query_string") or "path_template" not in scope:
        return None
    return scope["path"], scope["path_template"]


def _limited(request: Request[Any, Any, Any], query: Query, publisher: NamedDependency[FeedPublisher]) -> Query:
    """Feeds show ``feed_limit`` items unless the request names a limit."""
    if "limit" in request.query_params:
        return query
    return msgspec.structs.replace(query, limit=publisher.feed_limit)


def _documented(fmt: FeedFormat, *codes: int) -> dict[int, ResponseSpec]:
    """The responses of a feed handler, under the feed's own media type; a JSON Feed's body
    is documented by its Structs, an XML feed's as text."""
    out = responses(*codes)
    out[200] = ResponseSpec(
        data_container=JSONFeed if fmt == "json" else str,
        media_type=MEDIA_TYPES[fmt],
        description=f"A{'n' if fmt == 'rss' else ''} {FORMAT_NAMES[fmt]} document",
        generate_examples=False,
    )
    return out


def _handlers(fmt: FeedFormat) -> list[HTTPRouteHandler]:
    summary = f"{fmt.upper() if fmt != 'json' else 'JSON Feed'}"

    @get(
        f"/feed.{fmt}",
        name=f"feed-{fmt}",
        summary=f"{summary}: commentaries in the primary language (same filters as the list API; `lang=all`"
        " for every language)",
        tags=["feeds"],
        media_type=MEDIA_TYPES[fmt],
        responses=_documented(fmt, 304, 400, 503),
    )
    async def site_feed(
        request: Request[Any, Any, Any],
        publisher: NamedDependency[FeedPublisher],
        settings: NamedDependency[Settings],
        filters: NamedDependency[Query],
        cursor: Cursor = None,
    ) -> Response[bytes]:
        spec = publisher.site_spec(_limited(request, filters, publisher))
        return feed_response(
            request, await publisher.document(fmt, spec, cursor, address=_address(request)), fmt, settings
        )

    @get(
        f"/categories/{{slug:str}}/feed.{fmt}",
        name=f"category-feed-{fmt}",
        summary=f"{summary}: one category",
        tags=["feeds"],
        media_type=MEDIA_TYPES[fmt],
        responses=_documented(fmt, 304, 400, 404, 503),
    )
    async def category_feed(
        request: Request[Any, Any, Any],
        publisher: NamedDependency[FeedPublisher],
        settings: NamedDependency[Settings],
        filters: NamedDependency[Query],
        slug: FromPath[str],
        cursor: Cursor = None,
    ) -> Response[bytes]:
        category = await publisher.category(slug)
        spec = publisher.category_spec(category, _limited(request, filters, publisher))
        return feed_response(
            request, await publisher.document(fmt, spec, cursor, address=_address(request)), fmt, settings
        )

    @get(
        f"/{{language:str}}/feed.{fmt}",
        name=f"lang-feed-{fmt}",
        summary=f"{summary}: one language (`all`: every language)",
        tags=["feeds"],
        media_type=MEDIA_TYPES[fmt],
        responses=_documented(fmt, 304, 400, 404, 503),
    )
    async def lang_feed(
        request: Request[Any, Any, Any],
        publisher: NamedDependency[FeedPublisher],
        settings: NamedDependency[Settings],
        filters: NamedDependency[Query],
        language: FromPath[str],
        cursor: Cursor = None,
    ) -> Response[bytes]:
        # The path names the language; a `lang` query parameter cannot override it.
        if language.lower() == ALL_LANGUAGES:
            spec = publisher.all_spec(_limited(request, filters, publisher))
        else:
            lang = await known_language(publisher, language, f"/{language}/feed.{fmt}")
            spec = publisher.lang_spec(lang, _limited(request, filters, publisher))
        return feed_response(
            request, await publisher.document(fmt, spec, cursor, address=_address(request)), fmt, settings
        )

    return [site_feed, category_feed, lang_feed]


def _feed_handlers(fmt: FeedFormat) -> list[HTTPRouteHandler]:
    label = fmt.upper() if fmt != "json" else "JSON Feed"

    @get(
        f"/digest.{fmt}",
        name=f"digest-feed-{fmt}",
        summary=f"{label}: weekly digests in the primary language",
        tags=["feeds"],
        media_type=MEDIA_TYPES[fmt],
        responses=_documented(fmt, 304, 503),
    )
    async def digest_feed(
        request: Request[Any, Any, Any], publisher: NamedDependency[FeedPublisher], settings: NamedDependency[Settings]
    ) -> Response[bytes]:
        return feed_response(request, await publisher.digest_document(fmt, None), fmt, settings)

    @get(
        f"/{{language:str}}/digest.{fmt}",
        name=f"lang-digest-feed-{fmt}",
        summary=f"{label}: weekly digests, one language (`all`: every language)",
        tags=["feeds"],
        media_type=MEDIA_TYPES[fmt],
        responses=_documented(fmt, 304, 404, 503),
    )
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


HANDLERS = [
    *(handler for fmt in FORMATS for handler in _handlers(fmt)),
    *(handler for fmt in FORMATS for handler in _feed_handlers(fmt)),
]
