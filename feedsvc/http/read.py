"""Public GET handlers of the JSON API, and conditional GET in one place."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter

from feedsvc.errors import AuthenticationError, PermissionDeniedError
from feedsvc.http.errors import ErrorBody
from feedsvc.model import (
    COMMENTARIES_WRITE,
    Category,
    ChangePage,
    Commentary,
    Count,
    Page,
    Query,
    RelatedCommentary,
    Trend,
)
from feedsvc.service import RELATED_LIMIT, RELATED_MAX, Service

API = "/api/v1"
JSON = "application/json"

_encode = msgspec.json.Encoder().encode

# Handlers name the dependencies that create_app provides (inferred injection is deprecated).
ServiceDep = NamedDependency[Service]
FiltersDep = NamedDependency[Query]

# --- documented responses -----------------------------------------------------------------

ERROR_MEANINGS = {
    400: "A parameter or the body breaks the contract; `extra` names the field",
    401: "No valid bearer token",
    403: "The token lacks the scope the operation needs",
    404: "Not found, or not public",
    409: "A unique value (the slug in this language) is taken",
    412: "If-Match names a version that is no longer current",
    413: "The body is larger than the configured limit",
    414: "The path or the query string is longer than the server answers; `extra` names which",
    415: "The body is not declared as JSON: send Content-Type: application/json",
    422: "Well-formed, but refused: `extra` names the field (a webhook URL into a private network)",
    428: "The write needs If-Match with the ETag from a GET",
    429: "Too many requests: retry after `Retry-After` seconds; RateLimit-* headers show the budget",
    503: "The database is busy; retry after `Retry-After` seconds",
}


def responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI declarations of a handler's other responses: 304 (a conditional GET that
    matched, no body) and errors, every one in the ErrorBody shape."""
    out: dict[int, ResponseSpec] = {}
    # Every route may meet the URL bounds (feedsvc.http.cost) and the rate limiter
    # (feedsvc.http.ratelimit).
    for code in (*codes, 414, 429):
        if code == 304:
            out[code] = ResponseSpec(data_container=None, description="Not modified: the validators match")
        else:
            out[code] = ResponseSpec(data_container=ErrorBody, description=ERROR_MEANINGS[code], generate_examples=False)
    return out


# --- conditional GET ----------------------------------------------------------------------


def make_etag(body: bytes, version: int | None = None) -> str:
    """A strong ETag from the bytes; single items lead with their version so that If-Match
    can be checked against the stored version atomically (see Service._expected_version)."""
    digest = hashlib.blake2b(body, digest_size=10).hexdigest()
    return f'"v{version}-{digest}"' if version is not None else f'"{digest}"'


def etag_matches(header: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/ prefixes are ignored."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


def not_modified_since(request: Request[Any, Any, Any], last_modified: datetime | None) -> bool:
    """True when If-Modified-Since covers ``last_modified`` and If-None-Match is absent."""
    if "if-none-match" in request.headers:
        return False
    return modified_since_covers(request.headers.get("if-modified-since"), last_modified)


def modified_since_covers(header: str | None, last_modified: datetime | None) -> bool:
    """True when the If-Modified-Since value ``header`` covers ``last_modified``."""
    if not header or last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        return False
    return last_modified.replace(microsecond=0) <= since


def conditional(
    request: Request[Any, Any, Any],
    body: bytes,
    *,
    media_type: str = JSON,
    etag: str | None = None,
    last_modified: datetime | None = None,
    cache_control: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    """A 200 with validators, or a 304 with the same validators and no body."""
    etag = etag or make_etag(body)
    out = {"ETag": etag, **(headers or {})}
    if cache_control:
        out["Cache-Control"] = cache_control
    if last_modified is not None:
        out["Last-Modified"] = http_date(last_modified)
    if etag_matches(request.headers.get("if-none-match"), etag) or not_modified_since(request, last_modified):
        return Response(content=b"", status_code=304, headers=out, media_type=media_type)
    return Response(content=body, status_code=200, headers=out, media_type=media_type)


def next_link(request: Request[Any, Any, Any], url: str, cursor: str) -> str:
    """A ``Link: rel="next"`` value: ``url`` with the request's parameters and ``cursor``."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    params.append(("cursor", cursor))
    return f'<{url}?{urlencode(params)}>; rel="next"'


def http_date(value: datetime) -> str:
    return format_datetime(value.astimezone(UTC), usegmt=True)


# --- shared parameters --------------------------------------------------------------------


async def provide_query(
    category: Annotated[
        list[str] | None,
        QueryParameter(description="Category slug; repeat (or separate with commas) for several."),
    ] = None,
    tag: Annotated[str | None, QueryParameter(description="Only commentaries with this tag (case-insensitive).", max_length=64)] = None,
    author: Annotated[str | None, QueryParameter(description="Only commentaries by this author (exact name, case-insensitive).", max_length=200)] = None,
    lang: Annotated[str | None, QueryParameter(description="BCP 47 language tag.", max_length=35)] = None,
    trend: Annotated[Trend | None, QueryParameter(description="Trend marker.")] = None,
    from_: Annotated[
        str | None,
        QueryParameter(
            name="from",
            description="Earliest publication, inclusive: a date (compared with the date written in "
            "published_at) or an RFC 3339 datetime with offset.",
            max_length=40,
        ),
    ] = None,
    to: Annotated[str | None, QueryParameter(description="Latest publication, inclusive; like `from`.", max_length=40)] = None,
    updated_since: Annotated[
        str | None, QueryParameter(description="Only commentaries updated at or after this date or datetime.", max_length=40)
    ] = None,
    q: Annotated[str | None, QueryParameter(description="Full-text search: every word must occur.", max_length=200)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100, description="Items per page.")] = 20,
) -> Query:
    return Query.from_params(
        category=category, tag=tag, author=author, lang=lang, trend=trend, from_=from_, to=to,
        updated_since=updated_since, q=q, limit=limit,
    )


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    """The token from ``Authorization: Bearer``; AuthenticationError for any other form."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("use the Authorization: Bearer scheme")
    return token.strip()


def cache_control_api(service_max_age: int) -> str:
    return f"public, max-age={service_max_age}"


# --- handlers -----------------------------------------------------------------------------


@get(f"{API}/commentaries", summary="List public commentaries, newest first", tags=["read"], responses=responses(304, 400, 503))
async def list_commentaries(
    request: Request[Any, Any, Any],
    service: ServiceDep,
    filters: FiltersDep,
    cursor: Annotated[str | None, QueryParameter(description="Opaque cursor from `next_cursor`.", max_length=500)] = None,
) -> Response[Page]:
    page = await service.list_commentaries(filters, cursor)
    headers: dict[str, str] = {}
    if page.next_cursor:
        headers["Link"] = next_link(request, f"{service.base_url}{API}/commentaries", page.next_cursor)
    return conditional(request, _encode(page), headers=headers, cache_control="public, max-age=0, must-revalidate")


@get(f"{API}/commentaries/{{id:str}}", summary="One commentary by id (or by slug with ?lang=)", tags=["read"], responses=responses(304, 400, 401, 404, 503))
async def get_commentary(
    request: Request[Any, Any, Any],
    service: ServiceDep,
    id: FromPath[str],
    lang: Annotated[str | None, QueryParameter(description="With a slug instead of an id: its language.", max_length=35)] = None,
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


@get(f"{API}/commentaries/{{id:str}}/translations", summary="Translations of a commentary", tags=["read"], responses=responses(304, 404, 503))
async def get_translations(request: Request[Any, Any, Any], service: ServiceDep, id: FromPath[str]) -> Response[list[Commentary]]:
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


@get(f"{API}/categories", summary="Categories with counts of public commentaries", tags=["read"], responses=responses(304, 503))
async def list_categories(request: Request[Any, Any, Any], service: ServiceDep) -> Response[list[Category]]:
    return conditional(request, _encode(await service.get_categories()), cache_control="public, max-age=0, must-revalidate")


@get(f"{API}/categories/{{slug:str}}", summary="One category", tags=["read"], responses=responses(304, 404, 503))
async def get_category(request: Request[Any, Any, Any], service: ServiceDep, slug: FromPath[str]) -> Response[Category]:
    return conditional(request, _encode(await service.get_category(slug)), cache_control="public, max-age=0, must-revalidate")


@get(f"{API}/tags", summary="Tags with counts", tags=["read"], responses=responses(304, 503))
async def list_tags(request: Request[Any, Any, Any], service: ServiceDep) -> Response[list[Count]]:
    return conditional(request, _encode(await service.get_tags()), cache_control="public, max-age=0, must-revalidate")


@get(f"{API}/authors", summary="Authors with counts", tags=["read"], responses=responses(304, 503))
async def list_authors(request: Request[Any, Any, Any], service: ServiceDep) -> Response[list[Count]]:
    return conditional(request, _encode(await service.get_authors()), cache_control="public, max-age=0, must-revalidate")


@get(f"{API}/changes", summary="Every public create, update and delete, in order", tags=["read"], responses=responses(304, 400, 503))
async def list_changes(
    request: Request[Any, Any, Any],
    service: ServiceDep,
    since: Annotated[str | None, QueryParameter(description="Cursor from a previous `next_cursor`; omit to start at the beginning.", max_length=500)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> Response[ChangePage]:
    page = await service.get_changes(since, limit)
    return conditional(request, _encode(page), cache_control="public, max-age=0, must-revalidate")


@get("/healthz", summary="The process is up", tags=["operations"], responses=responses())
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", summary="The database answers and its schema is current", tags=["operations"], responses=responses(503))
async def readyz(service: ServiceDep) -> Response[dict[str, Any]]:
    have, want = await service.store.schema_status()
    ok = have == want
    return Response(
        content={"status": "ok" if ok else "migrations pending", "schema": have, "expected": want},
        status_code=200 if ok else 503,
    )


HANDLERS = [
    list_commentaries, get_commentary, get_translations, get_related, list_categories, get_category, list_tags,
    list_authors, list_changes, healthz, readyz,
]
