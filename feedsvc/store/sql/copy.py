"""Statements of verbatim copies between stores (``feedsvc migrate-data``)."""

from __future__ import annotations

from collections.abc import Sequence

from feedsvc.store.records import STORED_WEBHOOK


def upsert_webhook_sql(params: Sequence[str]) -> str:
    """An INSERT of ``STORED_WEBHOOK`` (``params`` are their placeholders) that replaces the
    subscription with the same id but leaves its lease; a new one has none."""
    return (
        f"INSERT INTO webhooks ({STORED_WEBHOOK.sql}, lease_owner, lease_until_us)"
        f" VALUES ({', '.join(params)}, NULL, 0) ON CONFLICT (id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in STORED_WEBHOOK.names[1:])
    )
