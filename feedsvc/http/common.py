"""What the route modules share: the API prefix, the dependencies create_app provides, the
list filters, the bearer token, documented error responses, the digest parameters and the
headers of HTML pages."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIType, Reference, Schema
from litestar.params import PathParameter, QueryParameter

from feedsvc.errors import AuthenticationError, InvalidInputError
from feedsvc.http.errors import ErrorBody
from feedsvc.model import in_range
from feedsvc.query import Query
from feedsvc.service import Service

API = "/api/v1"
JSON = "application/json"


# The Trend component (feedsvc.http.openapi), for a parameter typed as text so that a wrong
# value is answered with the values there are.
TREND_SCHEMA = Reference(ref="#/components/schemas/Trend")

# Handlers name the dependencies that create_app provides (inferred injection is deprecated).
ServiceDep = NamedDependency[Service]
FiltersDep = NamedDependency[Query]


ERROR_MEANINGS = {
    400: "A parameter or the body breaks the contract; `extra` lists every problem, each naming its field",
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
    502: "The mail server refused or could not be reached; `detail` says what it answered",
    503: "The database is busy; retry after `Retry-After` seconds",
}


def responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI declarations of a handler's other responses: 304 (a conditional GET that
    matched, no body) and errors, every one in the ErrorBody shape."""
    out: dict[int, ResponseSpec] = {}
    # Every route may meet the URL bounds and parameter checks (feedsvc.http.cost: 400, 414)
    # and the rate limiter (feedsvc.http.ratelimit). Declaring 400 also keeps Litestar from
    # adding a validation error schema of its own, whose untyped ``extra`` generators drop.
    for code in dict.fromkeys((*codes, 400, 414, 429)):
        if code == 304:
            out[code] = ResponseSpec(data_container=None, description="Not modified: the validators match")
        elif code == 308:
            out[code] = ResponseSpec(data_container=None, description="The page's address: `Location`, for good")
        else:
            out[code] = ResponseSpec(
                data_container=ErrorBody, description=ERROR_MEANINGS[code], generate_examples=False
            )
    return out


def next_link(request: Request[Any, Any, Any], url: str, cursor: str) -> str:
    """A ``Link: rel="next"`` value: ``url`` with the request's parameters and ``cursor``."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    params.append(("cursor", cursor))
    return f'<{url}?{urlencode(params)}>; rel="next"'


async def provide_query(
    category: Annotated[
        list[str] | None,
        QueryParameter(description="Category slug; repeat (or separate with commas) for several."),
    ] = None,
    tag: Annotated[
        str | None, QueryParameter(description="Only commentaries with this tag (case-insensitive).", max_length=64)
    ] = None,
    author: Annotated[
        str | None,
        QueryParameter(description="Only commentaries by this author (exact name, case-insensitive).", max_length=200),
    ] = None,
    lang: Annotated[str | None, QueryParameter(description="BCP 47 language tag.", max_length=35)] = None,
    # A string here, checked by Query.from_params, so that a wrong value is answered with
    # the values there are; the schema still lists them.
    trend: Annotated[
        str | None,
        QueryParameter(
            description="Trend marker.", max_length=20,
            schema_extra={"type": None, "max_length": None, "one_of": [TREND_SCHEMA, Schema(type=OpenAPIType.NULL)]},
        ),
    ] = None,
    from_: Annotated[
        str | None,
        QueryParameter(
            name="from",
            description="Earliest publication, inclusive: a date (compared with the date written in "
            "published_at) or an RFC 3339 datetime with offset.",
            max_length=40,
        ),
    ] = None,
    to: Annotated[
        str | None, QueryParameter(description="Latest publication, inclusive; like `from`.", max_length=40)
    ] = None,
    updated_since: Annotated[
        str | None,
        QueryParameter(description="Only commentaries updated at or after this date or datetime.", max_length=40),
    ] = None,
    q: Annotated[
        str | None, QueryParameter(description="Full-text search: every word must occur.", max_length=200)
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100, description="Items per page.")] = 20,
    *,
    service: ServiceDep,
) -> Query:
    """The list filters of the API and the feeds; a category that does not exist is a 400
    naming it (as the category's own feed is a 404), not an empty list."""
    query = Query.from_params(
        category=category, tag=tag, author=author, lang=lang, trend=trend, from_=from_, to=to,
        updated_since=updated_since, q=q, limit=limit,
    )
    await service.check_categories(query.categories)
    return query


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    """The token from ``Authorization: Bearer``; AuthenticationError for any other form."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("use the Authorization: Bearer scheme")
    return token.strip()


HTML = "text/html"  # Litestar adds "; charset=utf-8" to text types
# Pages run no script at all; images may come from anywhere commentaries point to; the
# one form (search, a GET) goes to this site; connect-src lets tools that inspect a page
# from inside it (Lighthouse reads robots.txt so) fetch the site's own files.
PAGE_CSP = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'self'; connect-src 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


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


def digest_lang(raw: str | None) -> str | None:
    """``lang`` validated and normalised as the list API does it."""
    return Query.from_params(lang=raw).lang
