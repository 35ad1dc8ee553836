"""SQLite's single writer: writes take turns, whichever event loop they come from.

A store may be used from two loops at once: the test client runs the app's background
tasks (the webhook sender) in a loop of its own while a test calls the service from its
own. An asyncio.Lock belongs to the first loop that waits on it, and a write from the
other loop then failed with RuntimeError instead of waiting its turn.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

from feedsvc.model import TokenInfo
from feedsvc.store import TokenRecord
from feedsvc.store.sqlite import SqliteStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)
WRITES = 40


def token(id: str) -> TokenRecord:
    return TokenRecord(info=TokenInfo(id=id, name=id, scopes=["write"], created_at=NOW), salt=b"s", digest=b"d")


async def test_writes_from_two_event_loops_take_turns(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "turns.db"))
    await store.open()
    errors: list[BaseException] = []

    def other_loop() -> None:
        async def write() -> None:
            await asyncio.gather(*(store.add_token(token(f"other-{n}")) for n in range(WRITES)))

        try:
            asyncio.run(write())
        except BaseException as e:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(e)

    try:
        thread = threading.Thread(target=other_loop)
        thread.start()
        await asyncio.gather(*(store.add_token(token(f"this-{n}")) for n in range(WRITES)))
        await asyncio.to_thread(thread.join)
        assert errors == []
        assert len(await store.get_tokens()) == 2 * WRITES
    finally:
        await store.close()
