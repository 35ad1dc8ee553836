"""The public read API: ``/api/v1`` commentaries, categories, tags, authors, changes and
weekly digests, each with validators and 304."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter

from feedsvc.digest import Digest, DigestPage
from feedsvc.errors import PermissionDeniedError
from feedsvc.http.apicache import ApiPages, CachedPage
from feedsvc.http.common import (
    API,
    FiltersDep,
    Lang,
    ServiceDep,
    Start,
    bearer_token,
    digest_lang,
    next_link,
    parse_start,
    responses,
)
from feedsvc.http.conditional import conditional, make_etag
from feedsvc.model import COMMENTARIES_WRITE, Category, ChangePage, Commentary, Count, Page, RelatedCommentary
from feedsvc.service import RELATED_LIMIT, RELATED_MAX

_REVALIDATE = "public, max-age=0, must-revalidate"

_encode = msgspec.json.Encoder().encode


@get(
    f"{API}/commentaries",
    summary="List public commentaries, newest first",
    tags=["read"],
    responses=responses(304, 400, 503),
)
async def list_commentaries(
    request: Request[Any, Any, Any],
    service: ServiceDep,
    filters: FiltersDep,
    cursor: Annotated[
        str | None, QueryParameter(description="Opaque cursor from `next_cursor`.", max_length=500)
    ] = None,
) -> Response[Page]:
    # Sent again as it was made while the store's change number stays (feedsvc.http.apicache).
    pages: ApiPages = request.app.state["api_pages"]
    seq = (await service.state()).seq
    cached = pages.get(filters, cursor, seq)
    if cached is None:
        page = await service.list_commentaries(filters, cursor)
        body = _encode(page)
        cached = CachedPage(seq, body, make_etag(body), page.next_cursor)
        pages.put(filters, cursor, cached)
    headers: dict[str, str] = {}
    if cached.next_cursor:
        headers["Link"] = next_link(request, f"{service.base_url}{API}/commentaries", cached.next_cursor)
    return conditional(request, cached.body, etag=cached.etag, headers=headers, cache_control=_REVALIDATE)


@get(
    f"{API}/commentaries/{{id:str}}",
    summary="One commentary by id (or by slug with ?lang=)",
    tags=["read"],
    responses=responses(304, 400, 401, 404, 503),
)
async def get_commentary(
    request: Request[Any, Any, Any],
    service: ServiceDep,
    id: FromPath[str],
    lang: Annotated[
        str | None, QueryParameter(description="With a slug instead of an id: its language.", max_length=35)
    ] = None,
) -> Response[Commentary]:
    token = bearer_token(request)
    include_hidden = False
    if token is not None:
        # Writers see drafts and scheduled items, so they can fetch the ETag to update them.
        try:
            await service.authenticate(token, COMMENTARIES_WRITE)
            include_hidden = True
        except PermissionDeniedError:
            pass  # a valid token without write scope reads what everyone reads
    item = await service.get_commentary(id, lang=lang, include_hidden=include_hidden)
    body = _encode(item)
    cache = "private, no-store" if include_hidden else "public, max-age=0, must-revalidate"
    return conditional(
        request, body, etag=make_etag(body, item.version), last_modified=item.updated_at, cache_control=cache,
        # With a token a writer sees drafts: the answer depends on Authorization.
        headers={"Link": f'<{item.url}>; rel="alternate"; type="text/html"', "Vary": "Authorization"},
    )


@get(
    f"{API}/commentaries/{{id:str}}/translations",
    summary="Translations of a commentary",
    tags=["read"],
    responses=responses(304, 404, 503),
)
async def get_translations(
    request: Request[Any, Any, Any], service: ServiceDep, id: FromPath[str]
) -> Response[list[Commentary]]:
    items = await service.get_translations(id)
    return conditional(request, _encode(items), cache_control="public, max-age=0, must-revalidate")


RELATED_DESCRIPTION = """Public commentaries in the same language, never the commentary itself nor its
translations, best first. For each of the commentary's category, tags and first 8 title words
(not stop words), the 10 commentaries nearest in time on either side that carry it are read; a
commentary in those windows scores 3 per shared tag, 2 for the shared category, 3 × the share of
the title words it repeats, and 1 / (1 + days apart / 30) for closeness in time. Ties: newer
first, then greater id. The same data give the same answer on every store."""


@get(
    f"{API}/commentaries/{{id:str}}/related", summary="The commentaries most related to one",
    description=RELATED_DESCRIPTION, tags=["read"], responses=responses(304, 400, 404, 503),
)
async def get_related(
    request: Request[Any, Any, Any],
    service: ServiceDep,
    id: FromPath[str],
    limit: Annotated[int, QueryParameter(ge=1, le=RELATED_MAX, description="How many at most.")] = RELATED_LIMIT,
) -> Response[list[RelatedCommentary]]:
    items = await service.get_related(id, limit)
    return conditional(request, _encode(items), cache_control="public, max-age=0, must-revalidate")


@get(
    f"{API}/categories",
    summary="Categories with counts of public commentaries",
    tags=["read"],
    responses=responses(304, 503),
)
async def list_categories(request: Request[Any, Any, Any], service: ServiceDep) -> Response[list[Category]]:
    return conditional(
        request, _encode(await service.get_categories()), cache_control="public, max-age=0, must-revalidate"
    )


@get(f"{API}/categories/{{slug:str}}", summary="One category", tags=["read"], responses=responses(304, 404, 503))
async def get_category(request: Request[Any, Any, Any], service: ServiceDep, slug: FromPath[str]) -> Response[Category]:
    return conditional(
        request, _encode(await service.get_category(slug)), cache_control="public, max-age=0, must-revalidate"
    )


@get(f"{API}/tags", summary="Tags with counts", tags=["read"], responses=responses(304, 503))
async def list_tags(request: Request[Any, Any, Any], service: ServiceDep) -> Response[list[Count]]:
    return conditional(request, _encode(await service.get_tags()), cache_control="public, max-age=0, must-revalidate")


@get(f"{API}/authors", summary="Authors with counts", tags=["read"], responses=responses(304, 503))
async def list_authors(request: Request[Any, Any, Any], service: ServiceDep) -> Response[list[Count]]:
    return conditional(
        request, _encode(await service.get_authors()), cache_control="public, max-age=0, must-revalidate"
    )


@get(
    f"{API}/languages",
    summary="Languages with counts of public commentaries (BCP 47 tags)",
    tags=["read"],
    responses=responses(304, 503),
)
async def list_languages(request: Request[Any, Any, Any], service: ServiceDep) -> Response[list[Count]]:
    return conditional(
        request, _encode(await service.get_languages()), cache_control="public, max-age=0, must-revalidate"
    )


@get(
    f"{API}/changes",
    summary="Every public create, update and delete, in order",
    tags=["read"],
    responses=responses(304, 400, 503),
)
async def list_changes(
    request: Request[Any, Any, Any],
    service: ServiceDep,
    since: Annotated[
        str | None,
        QueryParameter(
            description="Cursor from a previous `next_cursor`; omit to start at the beginning.", max_length=500
        ),
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> Response[ChangePage]:
    page = await service.get_changes(since, limit)
    return conditional(request, _encode(page), cache_control="public, max-age=0, must-revalidate")


@get(f"{API}/digests", summary="Weekly digests, newest period first", tags=["read"], responses=responses(304, 400, 503))
async def list_digests(
    request: Request[Any, Any, Any],
    service: ServiceDep,
    lang: Lang = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100, description="Digests per page.")] = 20,
    cursor: Annotated[
        str | None, QueryParameter(description="Opaque cursor from `next_cursor`.", max_length=500)
    ] = None,
) -> Response[DigestPage]:
    page = await service.list_digests(lang=digest_lang(lang), limit=limit, cursor=cursor)
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
    digest = await service.get_digest(parse_start(start), lang=digest_lang(lang))
    return conditional(
        request, _encode(digest), last_modified=digest.updated_at, cache_control=_REVALIDATE,
        headers={"Link": f'<{digest.url}>; rel="alternate"; type="text/html"'},
    )


HANDLERS = [
    list_commentaries,
    get_commentary,
    get_translations,
    get_related,
    list_categories,
    get_category,
    list_tags,
    list_authors,
    list_languages,
    list_changes,
    list_digests,
    get_digest,
]
