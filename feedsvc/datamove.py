"""Moving a whole database to another store: ``feedsvc migrate-data --from URL --to URL``.

Meant for moving up from SQLite to PostgreSQL, it copies through the Store interface, so it
works in any direction (PostgreSQL to SQLite moves back). Everything is copied as it is:
commentaries of every status with their ids, versions, timestamps and visibility flag,
categories with their versions, tokens (salted digests, scopes, expiry, revocation), the
change log entry for entry (same numbers, so mirrors' cursors, versions and ETags stay
valid), the weekly digests' marks, webhook subscriptions with their signing keys and
delivery cursors, and the signing secret (so cursors issued before the move still work).
Idempotency keys are not copied: they live 24 hours, and a retry after a move stores anew.

**How.** The copy follows the source's change log: it takes the entries above the highest
one the target holds, ``batch_size`` at a time, and writes each batch in one transaction
of the target together with the current state of every commentary the batch touches (and
every category). A first run starts from an empty log; a later run copies only what the
source wrote since, which lets an operator copy while the old node still serves and run
again just before switching; a run that was interrupted resumes where its last committed
batch ended. What changes without a log entry (tokens, digest marks, webhook
subscriptions and their delivery state) and the secret are copied at the end of every run;
the target's subscriptions become the source's.

**Safety.** Before writing anything, the target's log must be a prefix of the source's
(same count and checksum up to the target's highest number) and every token the target
holds must be the source's: a target that has taken writes of its own is refused as it is.

**Verification.** After copying, both stores are read back, every record decoded, and each
kind (categories by slug, commentaries by id, tokens by id, change log by number, digest
marks by language and week, webhooks by id, the secret) is counted and hashed (SHA-256
over one canonical JSON line per record). The copy is good when every count and checksum
is the same on both sides. If the source took a write while it was being read, the new
changes are copied and the check repeats.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec
from tqdm import tqdm

from feedsvc.errors import ConflictError, StorageBusyError
from feedsvc.store import CopyBatch, LogEntry, Store

BATCH_SIZE = 500
"""Change log entries copied per transaction of the target."""
READ_CHUNK = 1000
"""Records read per query while verifying."""
VERIFY_ROUNDS = 5
"""Times the copy catches up with a source that keeps changing while it is verified."""
KINDS = ("categories", "commentaries", "tokens", "changes", "digest marks", "webhooks", "secret")

_encode = msgspec.json.Encoder().encode


class Tally(msgspec.Struct, frozen=True):
    """How many records of one kind a store holds and a SHA-256 over them, in order."""

    count: int
    sha256: str


class Summary(msgspec.Struct, frozen=True):
    """A store's content as counts and checksums per kind (``KINDS``)."""

    seq: int
    """The highest change number the summary covers."""
    kinds: dict[str, Tally]

    @property
    def checksum(self) -> str:
        """One SHA-256 over every kind's count and checksum."""
        lines = "".join(f"{kind} {t.count} {t.sha256}\n" for kind, t in self.kinds.items())
        return hashlib.sha256(lines.encode()).hexdigest()


class Copied(msgspec.Struct, kw_only=True):
    """What one run wrote to the target."""

    changes: int = 0
    commentaries: int = 0
    removed: int = 0
    seconds: float = 0.0


class Outcome(msgspec.Struct, kw_only=True):
    """The result of ``migrate_data``: what was copied, and both sides' summaries."""

    copied: Copied
    source: Summary
    target: Summary

    @property
    def verified(self) -> bool:
        return self.source.kinds == self.target.kinds


class _Hasher:
    """Counts records and hashes one canonical JSON line per record."""

    def __init__(self) -> None:
        self.count = 0
        self._sha = hashlib.sha256()

    def add(self, record: Any) -> None:
        self.count += 1
        self._sha.update(_encode(record))
        self._sha.update(b"\n")

    def tally(self) -> Tally:
        return Tally(self.count, self._sha.hexdigest())

    def copy(self) -> _Hasher:
        twin = _Hasher()
        twin.count, twin._sha = self.count, self._sha.copy()
        return twin


class LogPrefix:
    """The change log of a store counted and hashed up to ``seq``. The log only grows, so a
    prefix read once is extended later instead of read again."""

    def __init__(self, hasher: _Hasher | None = None, seq: int = 0) -> None:
        self.hasher = hasher or _Hasher()
        self.seq = seq

    def tally(self) -> Tally:
        return self.hasher.tally()


Progress = Callable[[int], Any]
"""Called with the number of records just handled (a tqdm bar's ``update``)."""


def _ignore(_: int) -> None:
    return None


async def tally_log(
    store: Store, upto: int | None = None, progress: Progress = _ignore, start: LogPrefix | None = None
) -> LogPrefix:
    """Count and hash the change log entries numbered up to ``upto`` (all when None), going
    on from ``start`` (which stays as it is) when given."""
    hasher = start.hasher.copy() if start else _Hasher()
    since = start.seq if start else 0
    while True:
        entries = await store.get_log(since, READ_CHUNK)
        for entry in entries:
            if upto is not None and entry.seq > upto:
                return LogPrefix(hasher, since)
            hasher.add(entry)
            since = entry.seq
        progress(len(entries))
        if len(entries) < READ_CHUNK:
            return LogPrefix(hasher, since)


async def summarize(
    store: Store, upto: int | None = None, progress: Progress = _ignore, log: LogPrefix | None = None
) -> Summary:
    """Every record of ``store`` counted and hashed by kind; the log up to ``upto``, going
    on from ``log`` when given."""
    seq = (await store.get_state()).seq if upto is None else upto
    kinds: dict[str, Tally] = {}
    categories = _Hasher()
    for category in await store.get_stored_categories():
        categories.add(category)
    kinds["categories"] = categories.tally()
    commentaries, after = _Hasher(), ""
    while True:
        chunk = await store.get_stored_commentaries(after=after, limit=READ_CHUNK)
        for stored in chunk:
            commentaries.add(stored)
        progress(len(chunk))
        if len(chunk) < READ_CHUNK:
            break
        after = chunk[-1].item.id
    kinds["commentaries"] = commentaries.tally()
    tokens = _Hasher()
    for token in await store.get_token_records():
        tokens.add(token)
    kinds["tokens"] = tokens.tally()
    kinds["changes"] = (await tally_log(store, upto, progress, log)).tally()
    marks = _Hasher()
    for mark in await store.get_digest_marks():
        marks.add(mark)
    kinds["digest marks"] = marks.tally()
    hooks = _Hasher()
    for hook in await store.get_stored_webhooks():
        hooks.add(hook)
    kinds["webhooks"] = hooks.tally()
    secret = _Hasher()
    secret.add(hashlib.sha256(b"feedsvc secret " + await store.get_secret()).hexdigest())
    kinds["secret"] = secret.tally()
    return Summary(seq=seq, kinds=kinds)


async def check_target(source: Store, target: Store) -> LogPrefix:
    """Refuse (ConflictError) a target that holds anything the source does not; return the
    change log the target holds (the same on both sides)."""
    held = (await target.get_state()).seq
    newest = (await source.get_state()).seq
    if held > newest:
        raise ConflictError(
            f"the target's change log reaches {held}, the source's only {newest}: the target has"
            " changes the source does not have; nothing was copied"
        )
    prefix = LogPrefix()
    if held:
        prefix, source_prefix = await asyncio.gather(tally_log(target, held), tally_log(source, held))
        theirs, ours = prefix.tally(), source_prefix.tally()
        if theirs != ours:
            raise ConflictError(
                f"the target's change log (up to {held}: {theirs.count} entries, sha256 {theirs.sha256[:16]})"
                f" is not the source's ({ours.count} entries, sha256 {ours.sha256[:16]}): the target has"
                " changes the source does not have; nothing was copied"
            )
    tokens = {t.info.id: t for t in await source.get_token_records()}
    for token in await target.get_token_records():
        mine = tokens.get(token.info.id)
        if mine is None or (token.info.revoked_at is not None and mine.info.revoked_at is None):
            state = "is revoked there" if mine is not None else "is not in the source"
            raise ConflictError(
                f"the target's token {token.info.id} ({token.info.name!r}) {state}: the target has"
                " changes the source does not have; nothing was copied"
            )
    return prefix


async def copy_changes(
    source: Store, target: Store, copied: Copied, *, batch_size: int = BATCH_SIZE, progress: Progress = _ignore
) -> None:
    """Copy the source's log entries above the target's highest, with the current state of
    what they touch, one transaction per batch; then every token and the secret."""
    since = (await target.get_state()).seq
    while True:
        entries = await source.get_log(since, batch_size)
        if not entries:
            break
        batch = await _batch(source, entries)
        await target.load_copy(batch)
        copied.changes += len(entries)
        copied.commentaries += len(batch.commentaries)
        copied.removed += len(batch.removed)
        progress(entries[-1].seq - since)
        since = entries[-1].seq
    await target.load_copy(
        CopyBatch(
            categories=await source.get_stored_categories(),
            tokens=await source.get_token_records(),
            digest_marks=await source.get_digest_marks(),
            webhooks=await source.get_stored_webhooks(),
            secret=await source.get_secret(),
        )
    )


async def _batch(source: Store, entries: list[LogEntry]) -> CopyBatch:
    """The log entries with the current state of the commentaries they touch (those the
    source no longer has as removed) and every category, read after the commentaries so
    that each category they name is there."""
    ids = sorted({e.ref for e in entries if e.kind == "commentary"})
    found = await source.get_stored_commentaries(ids=ids, limit=len(ids)) if ids else []
    present = {c.item.id for c in found}
    return CopyBatch(
        categories=await source.get_stored_categories(),
        commentaries=found,
        removed=[id for id in ids if id not in present],
        log=entries,
    )


async def migrate_data(
    source: Store, target: Store, *, batch_size: int = BATCH_SIZE, progress: bool = False
) -> Outcome:
    """Check the target, copy what it lacks, and verify both sides (see the module docstring).

    Raises ConflictError, touching nothing, when the target has changes of its own, and
    StorageBusyError when the source never stays still long enough to be verified.
    """
    started = time.monotonic()
    copied = Copied()
    prefix = await check_target(source, target)
    held = prefix.seq
    for _ in range(VERIFY_ROUNDS):
        newest = (await source.get_state()).seq
        with _bar(progress, "copying", "chg", newest - held) as bar:
            await copy_changes(source, target, copied, batch_size=batch_size, progress=bar.update)
        copied.seconds = time.monotonic() - started
        upto = (await source.get_state()).seq
        with _bar(progress, "verifying", "rec", None) as bar:
            # Both logs are known to be the same up to the prefix: only what follows is read.
            ours, theirs = await asyncio.gather(
                summarize(source, upto, bar.update, prefix), summarize(target, None, bar.update, prefix)
            )
        if (await source.get_state()).seq == upto:
            return Outcome(copied=copied, source=ours, target=theirs)
        held = (await target.get_state()).seq  # the source moved on while it was read
    raise StorageBusyError(
        f"the source kept taking writes while being verified ({VERIFY_ROUNDS} rounds); run again when it is quieter"
    )


def _bar(enabled: bool, desc: str, unit: str, total: int | None) -> tqdm[Any]:
    return tqdm(
        total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, disable=not enabled,
        dynamic_ncols=True, leave=False,
    )


def report_lines(outcome: Outcome) -> list[str]:
    """The verification table: count and checksum (its first 16 hex digits) of each kind on
    both sides, then the checksum over all of them."""
    width = max(len(k) for k in KINDS)
    lines = [f"{'':{width}}  {'source':>9} {'sha256':16}  {'target':>9} sha256"]
    for kind in KINDS:
        mine, theirs = outcome.source.kinds[kind], outcome.target.kinds[kind]
        verdict = "same" if mine == theirs else "DIFFERENT"
        lines.append(
            f"{kind:{width}}  {mine.count:>9} {mine.sha256[:16]}  {theirs.count:>9} {theirs.sha256[:16]}  {verdict}"
        )
    lines.append(f"checksum of the source {outcome.source.checksum}")
    lines.append(f"checksum of the target {outcome.target.checksum}")
    return lines
