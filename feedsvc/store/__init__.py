"""The storage interface and the choice of backend.

A Store keeps commentaries, categories, tokens and an ordered change log. Every write
appends one change with a new, strictly increasing sequence number; that number is the
commentary's ``version``, orders the change API, and keys every cache of rendered output.

Visibility is decided by the store from a single flag, ``public``: a commentary is public
when it is published and due. Scheduled commentaries turn public when ``publish_due`` runs
(the service calls it before public reads once ``StoreState.next_due`` has passed), which
also appends a change so caches and mirrors see them appear.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

import msgspec

from feedsvc.errors import FeedsvcError, InvalidInputError
from feedsvc.model import (
    Category,
    CategoryIn,
    Change,
    Commentary,
    Count,
    DeliveryError,
    Query,
    TokenInfo,
    Translation,
    Webhook,
    from_us,
)


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


STORED_WEBHOOK_COLUMNS = (
    "id, url, events, categories, languages, description, secret, owner, created_us, cursor, state,"
    " disabled_reason, disabled_us, failures, next_attempt_us, last_error, last_error_status, last_error_us,"
    " last_success_us"
)
"""The columns of a StoredWebhook, in its order, on either store."""


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


WEBHOOK_COLUMNS = (
    "id, url, events, categories, languages, description, created_us, cursor, state, disabled_reason,"
    " disabled_us, failures, next_attempt_us, last_error, last_error_status, last_error_us, last_success_us"
)
"""The columns ``webhook_from_row`` reads, in its order, on either store."""

_decode_events = msgspec.json.Decoder(list[Any]).decode


def webhook_from_row(row: Any) -> Webhook:
    """A Webhook from a row of WEBHOOK_COLUMNS, either store's."""
    failures = int(row[11])
    active = row[8] == "active"
    return Webhook(
        id=row[0], url=row[1], events=_decode_events(row[2]), categories=_decode_events(row[3]),
        languages=_decode_events(row[4]), description=row[5], created_at=from_us(row[6]), position=int(row[7]),
        state="active" if active else "disabled", disabled_reason=row[9],
        disabled_at=from_us(row[10]) if row[10] is not None else None,
        consecutive_failures=failures,
        next_attempt_at=from_us(row[12]) if active and failures else None,
        last_error=DeliveryError(at=from_us(row[15]), message=row[13], status=row[14]) if row[15] is not None else None,
        last_success_at=from_us(row[16]) if row[16] is not None else None,
    )


class ViewStamp(msgspec.Struct, frozen=True):
    """Identifies the content of a filtered view, cheaply, without loading it."""

    versions: tuple[tuple[str, int], ...]
    """(id, version) of each item in order, plus the versions its links depend on."""
    updated_at: datetime | None


class Store(Protocol):
    """Async storage of commentaries. Raises only ``feedsvc.errors`` exceptions."""

    async def open(self) -> None:
        """Connect and apply pending migrations. Raises StorageError."""

    async def close(self) -> None:
        """Finish queued writes and close every connection."""

    async def migrate(self) -> int:
        """Apply pending schema migrations; return the schema version now in force."""

    async def schema_status(self) -> tuple[int, int]:
        """Return (version in the database, version this code expects)."""

    # --- commentaries ---------------------------------------------------------------------

    async def add_commentary(self, item: Commentary, *, unique_slug: bool, now: datetime) -> Commentary:
        """Insert ``item`` and return it with its ``version`` set.

        With ``unique_slug`` a taken slug gets a ``-2``, ``-3``… suffix; without it a taken
        slug raises ConflictError, as does an existing id. An unknown category raises
        InvalidInputError.
        """

    async def add_commentary_once(
        self, item: Commentary, *, unique_slug: bool, now: datetime, key: IdempotencyKey, not_before: datetime
    ) -> tuple[Commentary, bool]:
        """``add_commentary`` at most once per (``key.owner``, ``key.key``); return the
        commentary and whether it was stored now.

        In one write transaction: forget keys recorded before ``not_before``; if the key is
        still remembered, store nothing and return the commentary exactly as it was stored
        for that key, with False (ConflictError with ``field="Idempotency-Key"`` when the
        remembered fingerprint differs from ``key.fingerprint``); otherwise store ``item`` as
        ``add_commentary`` does together with the key, and return it with True. Two racing
        calls with one key store one commentary: the loser returns the winner's. Raises the
        errors of ``add_commentary``; nothing is remembered for a call that raised.
        """

    async def update_commentary(
        self, item: Commentary, *, expected_version: int | None, unique_slug: bool, now: datetime
    ) -> Commentary:
        """Replace the stored commentary with ``item`` (same id) and return the new version.

        Raises NotFoundError if it does not exist, PreconditionFailedError if
        ``expected_version`` is given and is not the current version, and the errors of
        ``add_commentary`` for slug and category.
        """

    async def delete_commentary(self, id: str, *, expected_version: int | None, now: datetime) -> int:
        """Delete, leave a tombstone in the change log, and return its sequence number.

        Raises NotFoundError or PreconditionFailedError as ``update_commentary``.
        """

    async def get_commentary(self, id: str, *, public_only: bool) -> Commentary:
        """Return one commentary by id; NotFoundError if absent (or not public when asked)."""

    async def get_commentary_by_slug(self, lang: str, slug: str, *, public_only: bool) -> Commentary:
        """Return one commentary by language and slug; NotFoundError if absent."""

    async def get_slug_languages(self, slug: str) -> list[str]:
        """Languages in which a public commentary has this slug."""

    async def get_commentaries(self, query: Query) -> list[Commentary]:
        """Public commentaries matching ``query``, newest first (ties by id, descending),
        strictly after ``query.after``, at most ``query.limit``."""

    async def get_view_stamp(self, query: Query) -> ViewStamp:
        """The versions that determine how ``get_commentaries(query)`` renders."""

    async def get_translations(self, keys: list[str]) -> dict[str, list[Translation]]:
        """Public commentaries sharing each translation key (``url`` holds ``canonical_url`` or "")."""

    async def get_related(self, items: Sequence[Commentary], limit: int) -> list[list[tuple[Commentary, float]]]:
        """For each of ``items``, in order: up to ``limit`` public commentaries related to it,
        most related first, each with its score, as feedsvc.store.related defines them (every
        store gives the same answer for the same data). Never the item itself, a commentary
        in another language, or one sharing the item's ``translation_key``. Several items
        cost one or a few queries, not one each."""

    async def publish_due(self, now: datetime) -> int:
        """Make scheduled commentaries whose time has come public; return how many."""

    async def get_digests(
        self, *, lang: str | None, limit: int, after: tuple[date, str] | None = None, start: date | None = None
    ) -> list[DigestRecord]:
        """Weekly digests (issue 9): public commentaries with a period, grouped by (period
        start, language); newest start first, ties by language; only ``lang`` when given,
        only the period starting on ``start`` when given; strictly after ``after`` (start,
        lang); at most ``limit``.

        For ``DigestRecord.left_at``, ``update_commentary`` and ``delete_commentary`` note
        their ``now`` on the digest a public commentary with a period was in before they
        replaced or deleted it, and ``publish_due`` on the digest a commentary joins.
        """

    async def get_state(self) -> StoreState:
        """The newest sequence number and the next scheduled publication time."""

    def known_state(self) -> StoreState | None:
        """What ``get_state`` would answer, when the store knows without a query that no
        commit (by any process or node) happened since it last read it; else None.
        Microseconds: feedsvc.store.watch."""

    async def get_changes(self, since: int, limit: int) -> tuple[list[Change], int]:
        """Public changes with a sequence number above ``since``, oldest first, and the
        sequence number to resume from (the last one examined)."""

    async def get_tag_counts(self) -> list[Count]:
        """Tags of public commentaries with their counts, most used first."""

    async def get_author_counts(self) -> list[Count]:
        """Author names of public commentaries with their counts, most prolific first."""

    async def get_language_counts(self) -> list[Count]:
        """Languages of public commentaries with their counts, most used first."""

    # --- categories -----------------------------------------------------------------------

    async def get_categories(self) -> list[Category]:
        """Every category with its count of public commentaries, by slug."""

    async def get_category(self, slug: str) -> Category:
        """One category; NotFoundError if unknown."""

    async def put_category(self, slug: str, data: CategoryIn, *, now: datetime) -> tuple[Category, bool]:
        """Create or replace a category; return it and whether it was created."""

    # --- tokens and settings --------------------------------------------------------------

    async def add_token(self, record: TokenRecord) -> None:
        """Store a new token. ConflictError if the id exists."""

    async def get_token(self, id: str) -> TokenRecord:
        """NotFoundError if there is no token with this id."""

    async def get_tokens(self) -> list[TokenInfo]:
        """Every token, newest first, revoked ones included."""

    async def revoke_token(self, id: str, *, now: datetime) -> TokenInfo:
        """Mark a token revoked. NotFoundError if unknown."""

    async def get_secret(self) -> bytes:
        """A random key made on first use and shared by every node using this database."""

    # --- webhooks (issue 4, part 6; feedsvc.push.webhooks) --------------------------------
    # The change log is the outbox: a subscription's ``position`` is the sequence number of
    # the last change it delivered or skipped. The bookkeeping of deliveries is one short
    # statement at a time, never held open across a request to a receiver, so a slow
    # receiver cannot hold a commentary write up.

    async def add_webhook(self, hook: Webhook, *, secret: bytes, owner: str) -> Webhook:
        """Store a new active subscription at the newest change (it receives only changes
        written after it) and return it with that ``position``. ConflictError if the id exists."""

    async def get_webhooks(self) -> list[Webhook]:
        """Every subscription, oldest first."""

    async def get_webhook(self, id: str) -> Webhook:
        """One subscription; NotFoundError if unknown."""

    async def delete_webhook(self, id: str) -> None:
        """Forget a subscription (deliveries stop); NotFoundError if unknown."""

    async def claim_webhooks(
        self, *, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[WebhookRecord]:
        """Lease to ``owner`` until ``lease_until`` at most ``limit`` active subscriptions
        with work to do: due (their next attempt is not after ``now``), behind the newest
        change, and not leased to anyone else (or their lease ran out before ``now``). Two
        owners, on any nodes, never hold one subscription at once. Oldest due first."""

    async def advance_webhook(
        self, id: str, *, owner: str, position: int, delivered_at: datetime | None, lease_until: datetime
    ) -> bool:
        """Move a leased subscription to ``position`` and extend the lease. With
        ``delivered_at`` the receiver has just acknowledged an event: the failure count is
        cleared and the time kept as the last success; without it, changes the filters
        exclude were skipped. False (and nothing changed) when ``owner`` no longer holds the
        lease or the subscription is gone or disabled."""

    async def fail_webhook(
        self, id: str, *, owner: str, error: DeliveryError, next_attempt: datetime, disable: str | None
    ) -> bool:
        """Record a failed attempt of a leased subscription: one more consecutive failure,
        the error, no attempt before ``next_attempt``; with ``disable`` the subscription is
        disabled for that reason. Releases the lease. False when ``owner`` no longer holds it."""

    async def release_webhooks(self, owner: str, id: str | None = None) -> None:
        """Give up the lease ``owner`` holds on subscription ``id`` (caught up), or every
        lease it holds (a sender stopping), so that delivery can go on at once elsewhere."""

    async def get_last_public_doc(self, id: str, before: int) -> Commentary | None:
        """The commentary ``id`` as its latest public change with a sequence number below
        ``before`` left it; None when it was not public before then. Gives a deletion the
        category and language its subscribers' filters need."""

    # --- bulk import and export -----------------------------------------------------------

    async def import_commentaries(
        self, items: Sequence[tuple[Commentary, bool]], *, now: datetime
    ) -> list[Commentary | FeedsvcError]:
        """Insert a batch of (commentary, unique_slug) pairs in one write transaction.

        Each item is stored exactly as ``add_commentary`` would store it, and fails alone:
        the result holds, in order, either the stored commentary or the error
        ``add_commentary`` would have raised for it (ConflictError with ``field="id"`` for an
        existing id, ConflictError with ``field="slug"`` for a taken slug, InvalidInputError
        for an unknown category), and nothing of a failed item is kept. Raises StorageError
        when the batch as a whole cannot be written; then none of it is stored.
        """

    def iter_all_commentaries(self) -> AsyncIterator[Commentary]:
        """Every commentary, drafts and scheduled ones included, ordered by id.

        Reads in chunks (keyset on id), so memory stays flat on any size of database. A
        commentary written while the iteration runs may or may not appear.
        """

    # --- verbatim copies between stores (feedsvc migrate-data) -----------------------------

    async def get_log(self, since: int, limit: int) -> list[LogEntry]:
        """Change log entries with a sequence number above ``since``, oldest first, at most
        ``limit``; every entry, private ones too, exactly as stored."""

    async def get_stored_commentaries(
        self, *, after: str = "", ids: Sequence[str] | None = None, limit: int
    ) -> list[StoredCommentary]:
        """Commentaries (drafts and scheduled ones too) with an id above ``after`` and, when
        ``ids`` is given, among ``ids``; ordered by id, at most ``limit``."""

    async def get_stored_categories(self) -> list[StoredCategory]:
        """Every category as stored, by slug."""

    async def get_token_records(self) -> list[TokenRecord]:
        """Every token as stored, revoked ones too, by id."""

    async def get_digest_marks(self) -> list[DigestMark]:
        """Every digest mark as stored, by language and period start."""

    async def get_stored_webhooks(self) -> list[StoredWebhook]:
        """Every webhook subscription as stored, by id."""

    async def load_copy(self, batch: CopyBatch) -> None:
        """Write records copied from another store, in one write transaction, appending no
        change of its own: upsert the categories (with their version and time), replace each
        commentary with the copy (a row here that holds its language and slug is dropped:
        it is stale, and a later entry of the log will bring it back), delete the removed
        ids, append the log entries with their own sequence numbers (later writes here go on
        from the highest), upsert the tokens and digest marks, make the webhook subscriptions
        those given (keeping the lease of one that stays), and set the secret when given.
        """


def log_entry(row: Any) -> LogEntry:
    """A LogEntry from a row of (seq, kind, ref, op, public_op, at_us, doc), either store's."""
    return LogEntry(
        seq=row[0], kind=row[1], ref=row[2], op=row[3], public_op=row[4], at_us=row[5],
        doc=bytes(row[6]) if row[6] is not None else None,
    )


def stored_webhook(row: Any) -> StoredWebhook:
    """A StoredWebhook from a row of STORED_WEBHOOK_COLUMNS, either store's."""
    return StoredWebhook(
        id=row[0], url=row[1], events=_decode_str_list(row[2]), categories=_decode_str_list(row[3]),
        languages=_decode_str_list(row[4]), description=row[5], secret=bytes(row[6]), owner=row[7],
        created_us=row[8], cursor=row[9], state=row[10], disabled_reason=row[11], disabled_us=row[12],
        failures=row[13], next_attempt_us=row[14], last_error=row[15], last_error_status=row[16],
        last_error_us=row[17], last_success_us=row[18],
    )


def webhook_row(hook: StoredWebhook, encode: Any) -> tuple[Any, ...]:
    """The values of STORED_WEBHOOK_COLUMNS for ``hook``, its lists through ``encode``."""
    return (
        hook.id, hook.url, encode(hook.events), encode(hook.categories), encode(hook.languages),
        hook.description, hook.secret, hook.owner, hook.created_us, hook.cursor, hook.state,
        hook.disabled_reason, hook.disabled_us, hook.failures, hook.next_attempt_us, hook.last_error,
        hook.last_error_status, hook.last_error_us, hook.last_success_us,
    )


def upsert_webhook_sql(params: Sequence[str]) -> str:
    """An INSERT of STORED_WEBHOOK_COLUMNS (``params`` are their placeholders) that replaces
    the subscription with the same id but leaves its lease; a new one has none."""
    columns = [c.strip() for c in STORED_WEBHOOK_COLUMNS.split(",")]
    return (
        f"INSERT INTO webhooks ({STORED_WEBHOOK_COLUMNS}, lease_owner, lease_until_us)"
        f" VALUES ({', '.join(params)}, NULL, 0) ON CONFLICT (id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    )


def stored_category(row: Any) -> StoredCategory:
    """A StoredCategory from a row of (slug, names, descriptions, updated_us, version)."""
    return StoredCategory(
        slug=row[0], names=_decode_str_dict(row[1]), descriptions=_decode_str_dict(row[2]),
        updated_us=row[3], version=row[4],
    )


_decode_str_dict = msgspec.json.Decoder(dict[str, str]).decode
_decode_str_list = msgspec.json.Decoder(list[str]).decode


def open_store(url: str) -> Store:
    """Return an unopened Store for ``url``: ``sqlite:///path``, a path, or ``postgresql://``."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from feedsvc.store.postgres import PostgresStore
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise InvalidInputError(
                "a postgresql:// database needs asyncpg: pip install 'feedsvc[postgres]'"
            ) from e
        return PostgresStore(url)
    from feedsvc.store.sqlite import SqliteStore

    if url.startswith("sqlite:///"):
        return SqliteStore(url[len("sqlite:///") :])
    if url.startswith("sqlite:"):
        raise InvalidInputError("SQLite URLs look like sqlite:///relative/path or sqlite:////abs/path")
    if "://" in url:
        raise InvalidInputError(f"unsupported database URL scheme: {url.split('://')[0]}")
    return SqliteStore(url)
