"""The one mapping from FeedsvcError to an HTTP status and a JSON body.

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
    UpstreamError,
)
from feedsvc.logs import REQUEST_ID

log = logging.getLogger("feedsvc.http")

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
    (UpstreamError, 502),
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


def error_response(status: int, detail: str, extra: Any = None, headers: dict[str, str] | None = None) -> Response[Any]:
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
        return error_response(status, exc.message, extra, headers)
    if isinstance(exc, UpstreamError):  # the mail server's answer: what the editor needs to see
        log.warning("upstream refusal on %s %s: %s", request.method, request.url.path, exc.message)
        return error_response(status, exc.message, with_request_id({}), headers)
    if status >= 500:
        log.error("storage failure on %s %s: %s", request.method, request.url.path, exc.message, exc_info=exc)
        return error_response(status, type(exc).default_message, with_request_id({}), headers)
    return error_response(status, exc.message, extra, headers)


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
        return error_response(500, "internal server error", with_request_id({}), dict(exc.headers or {}))
    return error_response(exc.status_code, exc.detail, exc.extra, dict(exc.headers or {}))


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything unexpected: logged with its traceback, answered without internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal server error", with_request_id({}))
