"""The capabilities a store offers, each a small Protocol; ``Store`` is their union.

A caller asks for what it needs: the webhook sender takes an ``Outbox``, ``feedsvc
migrate-data`` a ``Copy``. Two capabilities only some stores have are checked at run time
(``RowImport``, ``Backup``), never by asking which engine a store is. Every method raises
only ``feedsvc.errors`` exceptions.

A Store keeps commentaries, categories, tokens and an ordered change log. Every write
appends one change with a new, strictly increasing sequence number; that number is the
commentary's ``version``, orders the change API, and keys every cache of rendered output.

Visibility is decided by the store from a single flag, ``public``: a commentary is public
when it is published and due. Scheduled commentaries turn public when ``publish_due`` runs
(the service calls it before public reads once ``StoreState.next_due`` has passed), which
also appends a change so caches and mirrors see them appear.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from feedsvc.errors import FeedsvcError
from feedsvc.model import (
    Category,
    CategoryIn,
    Change,
    Commentary,
    Count,
    DeliveryError,
    TokenInfo,
    Webhook,
)
from feedsvc.query import Query
from feedsvc.store.bulk_rows import Imported, ImportRow
from feedsvc.store.records import (
    CopyBatch,
    Deletion,
    DigestMark,
    DigestRecord,
    IdempotencyKey,
    IssueRecord,
    LogEntry,
    SendRecord,
    StoredCategory,
    StoredCommentary,
    StoredSubscriber,
    StoredWebhook,
    StoreState,
    TokenRecord,
    ViewStamp,
    WebhookRecord,
)


class Lifecycle(Protocol):
    """Opening, closing and the schema."""

    async def open(self) -> None:
        """Connect and apply pending migrations. Raises StorageError."""

    async def close(self) -> None:
        """Finish queued writes and close every connection."""

    async def migrate(self) -> int:
        """Apply pending schema migrations; return the schema version now in force."""

    async def schema_status(self) -> tuple[int, int]:
        """Return (version in the database, version this code expects)."""


class Reader(Protocol):
    """Reads of commentaries, categories and counts: what pages, feeds and the read API need."""

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

    async def get_translations(self, keys: list[str]) -> dict[str, list[Commentary]]:
        """Public commentaries sharing each translation key, by language and id."""

    async def get_related(self, items: Sequence[Commentary], limit: int) -> list[list[tuple[Commentary, float]]]:
        """For each of ``items``, in order: up to ``limit`` public commentaries related to it,
        most related first, each with its score, as feedsvc.store.related defines them (every
        store gives the same answer for the same data). Never the item itself, a commentary
        in another language, or one sharing the item's ``translation_key``. Several items
        cost one or a few queries, not one each."""

    async def get_next_period_start(self, lang: str, after: date) -> date | None:
        """The earliest period start after ``after`` among public commentaries in ``lang``
        (a digest's next week, public or not yet), or None."""

    async def get_digests(
        self,
        *,
        lang: str | None,
        limit: int,
        after: tuple[date, str] | None = None,
        start: date | None = None,
        ended_by: date | None = None,
    ) -> list[DigestRecord]:
        """Weekly digests (issue 9): public commentaries with a period, grouped by (period
        start, language); newest start first, ties by language; only ``lang`` when given,
        only the period starting on ``start`` when given; strictly after ``after`` (start,
        lang); only groups whose latest ``period.end`` is on or before ``ended_by`` when
        given (a group still running is left out whole, never in part); at most ``limit``.

        For ``DigestRecord.left_at``, ``update_commentary`` and ``delete_commentary`` note
        their ``now`` on the digest a public commentary with a period was in before they
        replaced or deleted it, and ``publish_due`` on the digest a commentary joins.
        """

    async def get_tag_counts(self) -> list[Count]:
        """Tags of public commentaries with their counts, most used first."""

    async def get_author_counts(self) -> list[Count]:
        """Author names of public commentaries with their counts, most prolific first."""

    async def get_language_counts(self) -> list[Count]:
        """Languages of public commentaries with their counts, most used first."""

    async def get_categories(self) -> list[Category]:
        """Every category with its count of public commentaries, by slug."""

    async def get_category(self, slug: str) -> Category:
        """One category; NotFoundError if unknown."""


class Writer(Protocol):
    """Writes of commentaries and categories; each appends to the change log."""

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

    async def publish_due(self, now: datetime) -> int:
        """Make scheduled commentaries whose time has come public; return how many."""

    async def put_category(self, slug: str, data: CategoryIn, *, now: datetime) -> tuple[Category, bool]:
        """Create or replace a category; return it and whether it was created."""


class ChangeLog(Protocol):
    """The ordered change log as caches and mirrors read it."""

    async def get_state(self) -> StoreState:
        """The newest sequence number and the next scheduled publication time."""

    def known_state(self) -> StoreState | None:
        """What ``get_state`` would answer, when the store knows without a query that no
        commit (by any process or node) happened since it last read it; else None.
        Microseconds: feedsvc.store.sqlite.watch and feedsvc.store.postgres.watch."""

    async def get_changes(self, since: int, limit: int) -> tuple[list[Change], int]:
        """Public changes with a sequence number above ``since``, oldest first, and the
        sequence number to resume from (the last one examined)."""

    async def get_deletions(self, since: datetime, limit: int) -> list[Deletion]:
        """Commentaries that left public view at ``since`` or later and have not come back,
        newest first, at most ``limit``; only among the log's last 10,000 entries, so the
        cost is bounded whatever the log's size."""


class Tokens(Protocol):
    """API tokens and the shared secret."""

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


class Outbox(Protocol):
    """Webhook subscriptions and their delivery state (issue 4, part 6; feedsvc.push.webhooks).

    The change log is the outbox: a subscription's ``position`` is the sequence number of
    the last change it delivered or skipped. The bookkeeping of deliveries is one short
    statement at a time, never held open across a request to a receiver, so a slow
    receiver cannot hold a commentary write up.
    """

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


class Subscribers(Protocol):
    """Newsletter subscribers (feedsvc.newsletter). Instants are microseconds
    since the epoch, as stored. Each call is one statement on one subscriber's row."""

    async def sign_up(self, sub: StoredSubscriber, *, resend_after_us: int) -> StoredSubscriber | None:
        """Store a sign-up. A new address is stored as ``sub``; a known address that is not
        active, and whose last confirmation mail was sent before ``resend_after_us``, takes
        ``sub``'s choices, state, nonce and ``confirm_sent_us`` (keeping its id and creation
        time). Return the row as now stored, or None when nothing changed (the address is
        active, or was sent a confirmation too recently): then no mail is to go. Two
        sign-ups of one address at once store one row and return it at most once."""

    async def get_subscriber(self, id: str) -> StoredSubscriber:
        """One subscriber; NotFoundError if unknown."""

    async def find_subscriber(self, email: str) -> StoredSubscriber | None:
        """The subscriber with this (normalised) address, if any."""

    async def get_subscribers(self, *, state: str | None, after: str, limit: int) -> list[StoredSubscriber]:
        """Subscribers in ``state`` (every state when None) with an id above ``after``, by id,
        at most ``limit``."""

    async def confirm_subscriber(self, id: str, *, nonce: str, now_us: int) -> StoredSubscriber | None:
        """Make a pending subscriber whose open confirmation has ``nonce`` active, closing
        the confirmation (a link works once). None when there is no such pending subscriber."""

    async def set_subscriber_state(self, id: str, *, state: str, reason: str | None, now_us: int) -> StoredSubscriber:
        """Set a subscriber's state (unsubscribed, suspended…) and reason, closing any open
        confirmation; NotFoundError if unknown."""

    async def reopen_confirmation(self, id: str, *, nonce: str) -> None:
        """A confirmation mail with ``nonce`` could not be sent: let the next sign-up send one at once."""

    async def erase_subscriber(self, id: str) -> None:
        """Delete everything kept about a subscriber; NotFoundError if unknown."""


class SendQueue(Protocol):
    """The newsletter's issues and the durable queue of their sends."""

    async def add_issue(self, issue: IssueRecord) -> bool:
        """Store a new issue; False (and nothing changed) when its key exists."""

    async def get_issue(self, key: str) -> IssueRecord | None:
        """One issue, if stored."""

    async def get_issues(self, limit: int) -> list[IssueRecord]:
        """The newest issues first, at most ``limit``."""

    async def queue_issue(self, key: str, *, now_us: int, host: str) -> int:
        """Queue a send of issue ``key`` for every active weekly subscriber of its language
        that has none yet (a (issue, subscriber) is queued once, ever), its Message-ID
        ``<KEY.SUBSCRIBER@host>``; mark the issue sending. Return how many sends it has."""

    async def claim_sends(self, *, owner: str, now_us: int, lease_until_us: int, limit: int) -> list[SendRecord]:
        """Lease to ``owner`` at most ``limit`` queued sends that are due and not leased
        (or whose lease ran out); two owners never hold one send at once."""

    async def finish_send(
        self, issue: str, subscriber_id: str, *, owner: str, state: str, error: str | None, next_attempt_us: int,
        now_us: int,
    ) -> bool:
        """Record an attempt of a send ``owner`` holds: ``state`` ``sent``, ``failed``, or
        ``queued`` again (not before ``next_attempt_us``); release it. False when ``owner``
        no longer holds it or it is not queued."""

    async def extend_sends(self, owner: str, *, lease_until_us: int) -> None:
        """Hold every send ``owner`` leases until ``lease_until_us`` (a batch still going)."""

    async def release_sends(self, owner: str) -> None:
        """Give up every lease ``owner`` holds (a sender stopping)."""

    async def send_counts(self, key: str) -> dict[str, int]:
        """How many sends of an issue are in each state."""

    async def finish_issue(self, key: str) -> bool:
        """Mark a sending issue sent when none of its sends is queued; whether it was."""


class BulkImport(Protocol):
    """Batches in and everything out (``feedsvc import`` / ``export``)."""

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


class Copy(Protocol):
    """Verbatim copies between stores (``feedsvc migrate-data``)."""

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


class Store(
    Lifecycle, Reader, Writer, ChangeLog, Tokens, Outbox, Subscribers, SendQueue, BulkImport, Copy, Protocol
):
    """Every capability every store has: what the app is given."""


@runtime_checkable
class RowImport(Protocol):
    """A bulk import of rows built beforehand, off the writer, by ``bulk_rows.import_rows``
    (in ``feedsvc import``'s worker processes); a store without it takes commentaries."""

    row_vector: Callable[[list[list[str]]], str] | None
    """What turns a row's words (``ImportRow.fts``, split) into the full-text vector its rows
    carry (``ImportRow.tsv``), built with them in the import's workers; None: no vector. A
    module-level function, so that it reaches the worker processes by name."""

    async def import_rows(self, rows: Sequence[ImportRow], *, now: datetime) -> list[Imported | FeedsvcError]:
        """``import_commentaries`` for rows built by ``bulk_rows.import_rows``: each stored
        row's sequence number and slug, or its error, in order."""


@runtime_checkable
class Backup(Protocol):
    """A consistent copy of a live database into one file (``feedsvc backup``)."""

    async def backup(self, target: Path) -> list[str]:
        """Write a consistent copy of the live database to ``target``, checked as a restore
        will check it, and return what the database holds that a restore of it leaves out
        (objects feedsvc's migrations do not make). InvalidInputError when ``target`` is
        the database itself or the copy fails the check."""



# A caller asks for a capability instead of asking which engine a store is.


def as_row_import(store: object) -> RowImport | None:
    """``store`` as a ``RowImport`` when it offers one, else None."""
    return store if isinstance(store, RowImport) else None


def as_backup(store: object) -> Backup | None:
    """``store`` as a ``Backup`` when it offers one, else None."""
    return store if isinstance(store, Backup) else None
