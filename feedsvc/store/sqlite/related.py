"""SQLite's statement for ``get_related`` (feedsvc.store.related): the windows of many
probe keys of several commentaries in one compound SELECT, prepared once per connection."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

from feedsvc.store import related

RELATED_SLOTS = 8
"""Commentaries whose related ones one statement finds: 8 x 29 keys x 2 windows = 464
SELECTs (SQLite joins at most 500 in one compound statement)."""


@functools.cache
def _related_statement(slots: int) -> str:
    """The statement for ``get_related``, for ``slots`` commentaries: the two windows of each
    of their probe keys (the eligible commentaries nearest in time on each side, each a range
    scan of related_keys' primary key, which holds public commentaries only), as (slot, id,
    pub_us, position of the key) rows. Its text is always the same, so SQLite prepares it
    once per connection (made afresh for each batch, it cost more than running it); unused
    slots and keys are NULL and find nothing.

    Parameters: ?1 the window size, then per slot its language, pub_us, id, translation
    key and MAX_KEYS keys."""
    windows = []
    for slot in range(slots):
        base = 2 + slot * (4 + related.MAX_KEYS)
        lang, pub_us, id, tk = (f"?{base + k}" for k in range(4))
        for n in range(related.MAX_KEYS):
            for side, order in (("<", " DESC"), (">", "")):
                windows.append(
                    f"SELECT * FROM (SELECT {slot}, k.id, k.pub_us, {n} FROM related_keys k"
                    f" WHERE k.lang = {lang} AND k.key = ?{base + 4 + n} AND (k.pub_us, k.id) {side} ({pub_us}, {id})"
                    f" AND ({tk} IS NULL OR k.translation_key IS NULL OR k.translation_key != {tk})"
                    f" ORDER BY k.pub_us{order}, k.id{order} LIMIT ?1)"
                )
    return " UNION ALL ".join(windows)


def related_sql(probes: Sequence[related.Probe]) -> Iterator[tuple[int, str, list[Any]]]:
    """``_related_statement`` and its parameters for every RELATED_SLOTS probes (one slot
    for a single one), each after the position of its first probe: rows name the probe by
    its slot in its statement."""
    slots = 1 if len(probes) == 1 else RELATED_SLOTS
    for start in range(0, len(probes), slots):
        params: list[Any] = [related.WINDOW]
        for p in probes[start : start + slots]:
            params += [p.lang, p.pub_us, p.id, p.translation_key, *p.keys]
            params += [None] * (related.MAX_KEYS - len(p.keys))
        params += [None] * ((4 + related.MAX_KEYS) * slots + 1 - len(params))
        yield start, _related_statement(slots), params
