"""The exceptions feedsvc raises, one tree for every layer.

    FeedsvcError
    ├── NotFoundError            the thing asked for does not exist (or is not public)
    ├── InvalidInputError        a value is well-formed JSON but breaks a rule of the contract
    │   ├── InvalidCursorError   a pagination cursor was tampered with or belongs elsewhere
    │   └── UnprocessableError   well-formed, but not something the server will act on
    │                            (a webhook URL into a private network)
    ├── ConflictError            a unique value (a slug in a language) is taken
    ├── PreconditionFailedError  If-Match named a version that is no longer current
    ├── PreconditionRequiredError a write to an existing item came without If-Match
    ├── AuthenticationError      no token, or a token that is unknown, revoked or expired
    ├── PermissionDeniedError    a valid token without the scope the operation needs
    ├── BusyError                the server has too much of this work under way; retry shortly
    └── StorageError             the database failed; the operation did not happen
        └── StorageBusyError     the database is locked, full or unreachable; retrying later may work
            └── WriteOutcomeUnknownError  the connection was lost while a write committed

Only ``feedsvc.http.errors`` knows which HTTP status each class becomes. This module
imports nothing from feedsvc so that every other module may import it.
"""

from __future__ import annotations

from typing import Any


class FeedsvcError(Exception):
    """Base of every error feedsvc raises on purpose."""

    default_message = "feedsvc error"

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or self.default_message
        #: Machine-readable details (the offending field, the languages that exist, ...).
        self.extra: dict[str, Any] = extra
        super().__init__(self.message)


class NotFoundError(FeedsvcError):
    default_message = "not found"


class InvalidInputError(FeedsvcError):
    default_message = "invalid input"


class InvalidCursorError(InvalidInputError):
    default_message = "invalid cursor: it was altered or belongs to another query"


class UnprocessableError(InvalidInputError):
    default_message = "the request is well-formed but cannot be carried out"


class ConflictError(FeedsvcError):
    default_message = "conflict with an existing resource"


class PreconditionFailedError(FeedsvcError):
    default_message = "the resource changed since the ETag given in If-Match"


class PreconditionRequiredError(FeedsvcError):
    default_message = "this write needs an If-Match header with the ETag from a GET"


class AuthenticationError(FeedsvcError):
    default_message = "a valid bearer token is required"


class PermissionDeniedError(FeedsvcError):
    default_message = "the token lacks the scope this operation needs"


class BusyError(FeedsvcError):
    default_message = "the server is busy; retry shortly"


class UpstreamError(FeedsvcError):
    default_message = "a server feedsvc relies on (the mail server) refused or failed"


class StorageError(FeedsvcError):
    default_message = "the database failed; nothing was stored"


class StorageBusyError(StorageError):
    default_message = "the database is busy or out of space; retry shortly"


class WriteOutcomeUnknownError(StorageBusyError):
    """The database went away after the commit was sent and before it was confirmed: the
    write may or may not be stored. Every other failed write stored nothing."""

    default_message = (
        "the database stopped answering while this write was being committed: it may have been stored."
        " Repeat it with the same Idempotency-Key (POST) or If-Match (PUT, PATCH, DELETE) to find out"
    )
