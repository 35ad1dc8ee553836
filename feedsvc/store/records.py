"""Record structs of the store, and the row decoders that fill them by column name.

A decoder reads a row through a ``Columns`` value: the names a statement selects, in its
order, with a name -> index map made once per statement shape. Rows stay tuples (sqlite3)
or Records (asyncpg), so decoding costs no dict per row, and a column moved in a SELECT
list cannot be read as another one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

import msgspec

from feedsvc.model import Category, Commentary, DeliveryError, TokenInfo, Webhook, from_us, to_us


class Columns:
    """The columns a statement selects, by name: ``sql`` for the SELECT list, ``at`` for
    the index of each name in a row of it."""

    __slots__ = ("at", "names", "sql")

    def __init__(self, *names: str) -> None:
        self.names = names
        self.sql = ", ".join(names)
        self.at = {name.rsplit(".", 1)[-1]: i for i, name in enumerate(names)}

    def __add__(self, more: tuple[str, ...]) -> Columns:
        return Columns(*self.names, *more)


class StoreState(msgspec.Struct, frozen=True):
    """What a cache needs to know to decide whether anything public may have moved."""

    seq: int
    """The newest change sequence number (0 for an empty store)."""
    next_due: datetime | None
    """When the earliest scheduled commentary becomes public, if any is waiting."""


class TokenRecord(msgspec.Struct, kw_only=True):
    """A token as stored: never the secret itself, only a salted hash of it."""

    info: TokenInfo
    salt: bytes
    digest: bytes


class LogEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the change log exactly as stored, private changes included (issue 5:
    ``feedsvc migrate-data`` copies the log verbatim, so mirrors' cursors stay valid)."""

    seq: int
    kind: str
    """``commentary`` or ``category``."""
    ref: str
    """The commentary id or category slug."""
    op: str
    public_op: str | None
    at_us: int
    doc: bytes | None
    """The commentary after the change, as the stored JSON bytes (public upserts only)."""


class Deletion(msgspec.Struct, frozen=True, kw_only=True):
    """A commentary gone from public view (deleted, or back to draft) and not back since."""

    id: str
    at: datetime
    """When it went."""
    last: Commentary | None
    """The commentary as it was last public (``None`` if the log no longer has it)."""


class StoredCategory(msgspec.Struct, frozen=True, kw_only=True):
    """A category as stored, with the version and time of its last change."""

    slug: str
    names: dict[str, str]
    descriptions: dict[str, str]
    updated_us: int
    version: int


class StoredCommentary(msgspec.Struct, frozen=True, kw_only=True):
    """A commentary with the store's own visibility flag (published and due)."""

    item: Commentary
    public: bool


class DigestMark(msgspec.Struct, frozen=True, kw_only=True):
    """The last time a commentary left a weekly digest, as stored (``DigestRecord.left_at``)."""

    lang: str
    period_start: date
    left_us: int


class StoredWebhook(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook subscription as stored: its signing key, owner and delivery state (its
    ``cursor`` is a change sequence number), without the lease of the node sending now."""

    id: str
    url: str
    events: list[str]
    categories: list[str]
    languages: list[str]
    description: str | None
    secret: bytes
    owner: str
    created_us: int
    cursor: int
    state: str
    disabled_reason: str | None
    disabled_us: int | None
    failures: int
    next_attempt_us: int
    last_error: str | None
    last_error_status: int | None
    last_error_us: int | None
    last_success_us: int | None


class StoredSubscriber(msgspec.Struct, frozen=True, kw_only=True):
    """A newsletter subscriber as stored (feedsvc.newsletter): personal data, read
    only by the newsletter and by tokens with the ``subscribers:read`` scope."""

    id: str
    email: str
    """Normalised (feedsvc.newsletter.addresses), unique."""
    lang: str
    """The language of its mails and pages."""
    languages: list[str]
    """The languages of the commentaries it gets."""
    categories: list[str]
    """Category slugs; empty for every category."""
    cadence: str
    """``weekly`` (the digest) or ``each`` (a mail per commentary)."""
    state: str
    """``pending`` (not confirmed), ``active``, ``unsubscribed`` or ``suspended``."""
    state_reason: str | None
    created_us: int
    updated_us: int
    confirmed_us: int | None
    confirm_nonce: str | None
    """The nonce of the confirmation link that is open; None once confirmed."""
    confirm_sent_us: int
    """When the last confirmation mail was sent (0: another may go now)."""


class IssueRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A newsletter issue: one weekly digest in one language, mailed once."""

    key: str
    """``digest-START-LANG``."""
    kind: str
    start: date
    lang: str
    state: str
    """``draft`` (held for an editor), ``sending`` (queued), ``sent`` (nothing left queued)."""
    created_us: int
    queued_us: int | None


class SendRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One (issue, subscriber) a sender has leased."""

    issue: str
    subscriber_id: str
    attempts: int
    message_id: str
    """The same on every attempt, so that a receiver drops a repeat."""


class CopyBatch(msgspec.Struct, kw_only=True):
    """Records copied from another store, written verbatim by ``Store.load_copy``."""

    categories: list[StoredCategory] = msgspec.field(default_factory=list)
    commentaries: list[StoredCommentary] = msgspec.field(default_factory=list)
    removed: list[str] = msgspec.field(default_factory=list)
    """Ids of commentaries the other store no longer has."""
    log: list[LogEntry] = msgspec.field(default_factory=list)
    """Change log entries above the newest one held here, in order."""
    tokens: list[TokenRecord] = msgspec.field(default_factory=list)
    digest_marks: list[DigestMark] = msgspec.field(default_factory=list)
    webhooks: list[StoredWebhook] | None = None
    """When given, every subscription: the ones stored here and not among them are deleted."""
    secret: bytes | None = None


class IdempotencyKey(msgspec.Struct, frozen=True, kw_only=True):
    """An ``Idempotency-Key`` as remembered beside the commentary a POST created (issue 7)."""

    owner: str
    """The id of the token that sent it: keys of different tokens never meet."""
    key: str
    """The header's value (1-255 visible ASCII characters)."""
    fingerprint: str
    """A hash of the request body; a retry must carry the same one."""


class DigestRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The public commentaries of one digest (issue 9; see feedsvc.digest), as stored."""

    start: date
    """The day their periods start on."""
    lang: str
    commentaries: list[Commentary]
    """Oldest publication first (ties by id); never empty."""
    left_at: datetime | None
    """The last time a public commentary left this digest, or joined it by turning public
    when due; None when that never happened."""


def digest_records(
    keys: Sequence[tuple[date, str]],
    members: Iterable[tuple[date, str, Commentary]],
    left: Mapping[tuple[date, str], datetime],
) -> list[DigestRecord]:
    """Assemble ``get_digests``' answer, the same for every backend: one record per key,
    in the order of ``keys``, from (start, lang, commentary) rows in display order and the
    times noted for digests (``left``); keys without members are dropped."""
    grouped: dict[tuple[date, str], list[Commentary]] = {key: [] for key in keys}
    for start, lang, item in members:
        found = grouped.get((start, lang))
        if found is not None:
            found.append(item)
    return [
        DigestRecord(start=key[0], lang=key[1], commentaries=items, left_at=left.get(key))
        for key, items in grouped.items()
        if items
    ]


class WebhookRecord(msgspec.Struct, kw_only=True):
    """A subscription as its sender needs it: with the signing key (issue 4, part 6)."""

    webhook: Webhook
    secret: bytes


class ViewStamp(msgspec.Struct, frozen=True):
    """Identifies the content of a filtered view, cheaply, without loading it."""

    versions: tuple[tuple[str, int], ...]
    """(id, version) of each item in order, plus the versions its links depend on."""
    updated_at: datetime | None


decode_commentary = msgspec.json.Decoder(Commentary).decode
decode_str_dict = msgspec.json.Decoder(dict[str, str]).decode
decode_str_list = msgspec.json.Decoder(list[str]).decode
_decode_events = msgspec.json.Decoder(list[Any]).decode
encode = msgspec.json.Encoder().encode


_S = TypeVar("_S", bound=msgspec.Struct)


def _us(value: int | None) -> datetime | None:
    return from_us(value) if value is not None else None


WEBHOOK = Columns(
    "id", "url", "events", "categories", "languages", "description", "created_us", "cursor", "state",
    "disabled_reason", "disabled_us", "failures", "next_attempt_us", "last_error", "last_error_status",
    "last_error_us", "last_success_us",
)
"""The columns ``webhook_from_row`` reads, on either store."""
WEBHOOK_WITH_SECRET = WEBHOOK + ("secret",)
"""``WEBHOOK`` and the signing key: what a claimed subscription's sender needs."""


def webhook_from_row(row: Any) -> Webhook:
    """A Webhook from a row of ``WEBHOOK`` (or a longer shape starting with it)."""
    at = WEBHOOK.at
    failures = int(row[at["failures"]])
    active = row[at["state"]] == "active"
    error_us = row[at["last_error_us"]]
    return Webhook(
        id=row[at["id"]], url=row[at["url"]], events=_decode_events(row[at["events"]]),
        categories=decode_str_list(row[at["categories"]]), languages=decode_str_list(row[at["languages"]]),
        description=row[at["description"]], created_at=from_us(row[at["created_us"]]),
        position=int(row[at["cursor"]]), state="active" if active else "disabled",
        disabled_reason=row[at["disabled_reason"]], disabled_at=_us(row[at["disabled_us"]]),
        consecutive_failures=failures,
        next_attempt_at=from_us(row[at["next_attempt_us"]]) if active and failures else None,
        last_error=DeliveryError(
            at=from_us(error_us), message=row[at["last_error"]], status=row[at["last_error_status"]]
        )
        if error_us is not None
        else None,
        last_success_at=_us(row[at["last_success_us"]]),
    )


def webhook_record(row: Any) -> WebhookRecord:
    """A WebhookRecord from a row of ``WEBHOOK_WITH_SECRET``."""
    return WebhookRecord(webhook=webhook_from_row(row), secret=bytes(row[WEBHOOK_WITH_SECRET.at["secret"]]))


def struct_rows(cls: type[_S], *, json: tuple[str, ...] = ()) -> tuple[Columns, Callable[[Any], _S]]:
    """The columns of a table whose columns are named as ``cls``'s fields, and a decoder
    of their rows into ``cls``: by name (``msgspec.convert`` checks every value's type),
    the JSON columns ``json`` decoded first. For records copied verbatim between stores."""
    columns = Columns(*cls.__struct_fields__)

    def decode(row: Any) -> _S:
        values = dict(zip(columns.names, row, strict=True))
        for name in json:
            values[name] = msgspec.json.decode(values[name])
        return msgspec.convert(values, cls)

    return columns, decode


STORED_SUBSCRIBER, stored_subscriber = struct_rows(StoredSubscriber, json=("languages", "categories"))


def subscriber_values(sub: StoredSubscriber) -> tuple[Any, ...]:
    """The values of ``STORED_SUBSCRIBER`` for ``sub``, its lists as JSON."""
    lists = {"languages", "categories"}
    return tuple(
        encode(getattr(sub, name)) if name in lists else getattr(sub, name) for name in STORED_SUBSCRIBER.names
    )


STORED_WEBHOOK, stored_webhook = struct_rows(StoredWebhook, json=("events", "categories", "languages"))


def webhook_values(hook: StoredWebhook) -> tuple[Any, ...]:
    """The values of ``STORED_WEBHOOK`` for ``hook``, its lists as JSON."""
    lists = {"events", "categories", "languages"}
    return tuple(
        encode(getattr(hook, name)) if name in lists else getattr(hook, name) for name in STORED_WEBHOOK.names
    )


LOG_ENTRY, log_entry = struct_rows(LogEntry)
STORED_CATEGORY, stored_category = struct_rows(StoredCategory, json=("names", "descriptions"))


CATEGORY = Columns("slug", "names", "descriptions", "updated_us", "count")
"""A category with its count of public commentaries (``count`` is an expression's alias)."""


def category(row: Any) -> Category:
    """A Category from a row of ``CATEGORY``."""
    at = CATEGORY.at
    return Category(
        slug=row[at["slug"]], names=decode_str_dict(row[at["names"]]),
        descriptions=decode_str_dict(row[at["descriptions"]]), updated_at=from_us(row[at["updated_us"]]),
        count=row[at["count"]],
    )


TOKEN_INFO = Columns("id", "name", "scopes", "created_us", "expires_us", "revoked_us")
TOKEN = TOKEN_INFO + ("salt", "digest")
"""A token as stored: its TokenInfo's columns, then the salt and the digest."""


def token_info(row: Any) -> TokenInfo:
    """A TokenInfo from a row of ``TOKEN_INFO`` (or ``TOKEN``)."""
    at = TOKEN_INFO.at
    return TokenInfo(
        id=row[at["id"]], name=row[at["name"]], scopes=decode_str_list(row[at["scopes"]]),
        created_at=from_us(row[at["created_us"]]), expires_at=_us(row[at["expires_us"]]),
        revoked_at=_us(row[at["revoked_us"]]),
    )


def token_record(row: Any) -> TokenRecord:
    """A TokenRecord from a row of ``TOKEN``."""
    at = TOKEN.at
    return TokenRecord(info=token_info(row), salt=bytes(row[at["salt"]]), digest=bytes(row[at["digest"]]))


def token_values(record: TokenRecord) -> tuple[Any, ...]:
    """The values of ``TOKEN`` for ``record``."""
    info = record.info
    return (
        info.id, info.name, encode(info.scopes), to_us_or_none(info.created_at), to_us_or_none(info.expires_at),
        to_us_or_none(info.revoked_at), record.salt, record.digest,
    )


def to_us_or_none(value: datetime | None) -> int | None:
    """Microseconds since the epoch, or None."""
    return to_us(value) if value is not None else None
