"""The one mapping from FeedsvcError to an HTTP status and a JSON body (or, for a browser,
a page).

A request whose ``Accept`` ranks ``text/html`` above JSON (a browser's navigation) gets the
same status as an HTML page in the reader's language, saying what happened and leading home;
every other client gets the JSON body below, unchanged.

Every error body has the keys Litestar gives its own errors: ``status_code``, ``detail``
and ``extra``. For 400s and 422s ``extra`` is a list of ``{"message", "key", "source"}``, one
per problem, naming the offending fields (Litestar's validation errors have the same shape),
with ``"allowed"`` (the valid values) where there is a fixed set of them; ``detail`` sums
them up. Otherwise ``extra`` is an object with details such as ``available_languages`` (or
empty).

A 5xx never carries what went wrong inside: a driver's message names tables, addresses
and values. The failure is logged with the request id; the answer says only what the
client can act on (the error class's own message) and that id, in ``extra.request_id``.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from feedsvc.config import Settings
from feedsvc.errors import (
    AuthenticationError,
    BusyError,
    ConflictError,
    FeedsvcError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    PreconditionRequiredError,
    StorageBusyError,
    StorageError,
    UnprocessableError,
)
from feedsvc.logs import REQUEST_ID
from feedsvc.render.layout import Site
from feedsvc.render.listing import error_page
from feedsvc.render.messages import LANGUAGES

log = logging.getLogger("feedsvc.http")

HTML = "text/html"  # Litestar adds "; charset=utf-8" to text types
# Pages run no script at all; images may come from anywhere commentaries point to; the
# one form (search, a GET) goes to this site.
PAGE_CSP = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'self'; connect-src 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


STATUS: list[tuple[type[FeedsvcError], int]] = [
    (UnprocessableError, 422),
    (InvalidInputError, 400),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PreconditionFailedError, 412),
    (PreconditionRequiredError, 428),
    (StorageBusyError, 503),
    (BusyError, 503),
    (StorageError, 500),
]

RETRY_AFTER_SECONDS = 2
CLIENT_GONE = "client disconnected prematurely"
"""Litestar's detail of the 500 it raises when the body ends in a disconnect (a client that
left, or one the server cut for trickling): no failure of the server's."""


class FieldProblem(msgspec.Struct, omit_defaults=True):
    """One problem of a 400 or 422 (the entries of ``ErrorBody.extra``; feedsvc.problems)."""

    message: str
    key: str | None
    """The field, parameter or header at fault."""
    source: str | None
    """Where it was: ``body``, ``query``, ``path`` or ``header``."""
    allowed: list[str] | None = None
    """The values there are, when there is a fixed set of them."""


class ErrorBody(msgspec.Struct):
    """The shape of every error response: one schema, referenced by every operation's errors."""

    status_code: int
    detail: str
    extra: list[FieldProblem] | dict[str, Any] = msgspec.field(default_factory=dict)
    """A 400's or 422's problems, one per field; otherwise an object of details (or empty)."""


def status_for(exc: FeedsvcError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def wants_html(accept: str | None) -> bool:
    """Whether a request's ``Accept`` prefers a page to JSON: it names ``text/html`` and
    ranks it above ``application/json`` (browsers send ``text/html,...,*/*;q=0.8``; API
    clients send JSON, ``*/*`` or nothing, and keep the JSON body)."""
    if not accept:
        return False
    ranks: dict[str, float] = {}
    for part in accept.lower().split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranks[kind] = max(q, ranks.get(kind, 0.0))
    html = ranks.get("text/html", 0.0)
    return html > 0 and html > ranks.get("application/json", 0.0)


def page_language(request: Request[Any, Any, Any], settings: Settings) -> str:
    """The language an error page speaks: the page's own (its first path segment or
    ``?lang=``) when the catalogue has it, else the publication's."""
    first = request.url.path.strip("/").split("/")[0]
    for candidate in (first, request.query_params.get("lang") or ""):
        if candidate.lower() in LANGUAGES:
            return candidate.lower()
    return settings.primary_language


def error_response(
    status: int,
    detail: str,
    extra: Any = None,
    headers: dict[str, str] | None = None,
    request: Request[Any, Any, Any] | None = None,
) -> Response[Any]:
    """The error in the one JSON shape, or as a page when a browser asked (``request``)."""
    if request is not None and wants_html(request.headers.get("accept")):
        settings = request.app.state.get("settings")
        if isinstance(settings, Settings):
            site = Site(
                title=settings.title, description=settings.description, base_url=settings.base_url,
                primary_lang=settings.primary_language, links=tuple(settings.links),
                footer_note=settings.footer_note or "",
            )
            text = error_page(site, page_language(request, settings), status, detail)
            return Response(
                content=text.encode(), status_code=status, media_type=HTML,
                headers={**(headers or {}), **PAGE_HEADERS, "Cache-Control": "no-store"},
            )
    body = ErrorBody(status_code=status, detail=detail, extra=extra if extra is not None else {})
    return Response(
        content=msgspec.json.encode(body),
        status_code=status,
        media_type="application/json",
        headers=headers or {},
    )


def feedsvc_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, FeedsvcError)
    status = status_for(exc)
    headers: dict[str, str] = {}
    extra: Any = dict(exc.extra)
    if status in (400, 422):
        problems = extra.pop("problems", None)
        if problems is None:
            field = extra.pop("field", None)
            problems = [{"message": exc.message, "key": field, "source": extra.pop("source", None)}] if field else []
        extra = problems
    if status == 401:
        headers["WWW-Authenticate"] = (
            f'Bearer realm="feedsvc", error="invalid_token", error_description="{exc.message}"'
        )
    if status == 403:
        # RFC 6750 section 3: the scope that would have allowed the request.
        scope = str(extra.get("required_scope", ""))
        headers["WWW-Authenticate"] = f'Bearer realm="feedsvc", error="insufficient_scope", scope="{scope}"'
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if isinstance(exc, BusyError):  # expected under load, not a failure; its message is ours
        return error_response(status, exc.message, extra, headers, request)
    if status >= 500:
        log.error("storage failure on %s %s: %s", request.method, request.url.path, exc.message, exc_info=exc)
        return error_response(status, type(exc).default_message, with_request_id({}), headers, request)
    return error_response(status, exc.message, extra, headers, request)


def with_request_id(extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` with the id the failure was logged under, for the operator to find it."""
    request_id = REQUEST_ID.get()
    return {**extra, "request_id": request_id} if request_id else extra


def http_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's own errors (validation, 404 routes, 405, 413), in the same shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 500 and exc.detail == CLIENT_GONE:  # nobody is left to read the answer
        log.info("%s %s: the client went away before its body arrived", request.method, request.url.path)
        return error_response(500, "internal server error", with_request_id({}))
    if exc.status_code == 500:  # Litestar's own failures (a response it could not encode)
        log.error("internal error on %s %s: %s", request.method, request.url.path, exc.detail, exc_info=exc)
        return error_response(500, "internal server error", with_request_id({}), dict(exc.headers or {}), request)
    return error_response(exc.status_code, exc.detail, exc.extra, dict(exc.headers or {}), request)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything unexpected: logged with its traceback, answered without internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal server error", with_request_id({}), None, request)
