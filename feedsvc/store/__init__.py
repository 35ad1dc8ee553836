"""Storage: the capabilities a store offers, its records, and the choice of engine.

``protocol`` says what a store does (``Store`` and the smaller capabilities), ``records``
what it holds, ``factory.open_store`` which engine a URL means. The engines
(``feedsvc.store.sqlite``, ``feedsvc.store.postgres``) are named nowhere outside this package.
"""

from feedsvc.store.factory import open_store, restore_backup
from feedsvc.store.protocol import (
    Backup,
    BulkImport,
    ChangeLog,
    Copy,
    Lifecycle,
    Outbox,
    Reader,
    RowImport,
    SendQueue,
    Store,
    Subscribers,
    Tokens,
    Writer,
    as_backup,
    as_row_import,
)
from feedsvc.store.records import (
    CopyBatch,
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

__all__ = [
    "Backup",
    "BulkImport",
    "ChangeLog",
    "Copy",
    "CopyBatch",
    "DigestMark",
    "DigestRecord",
    "IdempotencyKey",
    "IssueRecord",
    "Lifecycle",
    "LogEntry",
    "Outbox",
    "Subscribers",
    "Reader",
    "SendQueue",
    "RowImport",
    "Store",
    "SendRecord",
    "StoreState",
    "StoredCategory",
    "StoredCommentary",
    "StoredSubscriber",
    "StoredWebhook",
    "TokenRecord",
    "Tokens",
    "ViewStamp",
    "WebhookRecord",
    "Writer",
    "as_backup",
    "as_row_import",
    "open_store",
    "restore_backup",
]
