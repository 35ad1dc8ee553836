"""Import and export: the Importer that stores what feedsvc.importformats reads, and
JSON Lines out.

Records are handled in file order; categories are stored one by one, commentaries in
batches of ``BATCH_SIZE``, one write transaction each, a failing record rolling back alone.
A failing record never stops the import: it is reported as ``file:line: reason``. Large
imports build commentaries (Markdown, sanitising) in worker processes while the store
writes, so a second core is used; for a SQLite store the workers also build the rows the
commentaries will be stored as (feedsvc.store.bulk_rows: the document, the full-text
index's text, the related keys), which leaves the one writer thread only SQLite's own work.

Re-running an import is safe. A record whose ``id`` is already stored is skipped. A record
without an ``id`` is identified by its language and slug (given, or derived from the title):
if that slug was already taken before this import, it is skipped too rather than stored a
second time under a new id; a second record with the same slug within one import fails.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

import msgspec
from tqdm import tqdm

from feedsvc.commentary import ImportedCommentary, build_imported
from feedsvc.errors import ConflictError, FeedsvcError
from feedsvc.files import open_private
from feedsvc.importformats import BadEntry, CategoryEntry, Entry, count_records, read_file
from feedsvc.model import CategoryIn, Commentary
from feedsvc.service import Service
from feedsvc.store import Store, as_row_import
from feedsvc.store.bulk_rows import Imported, ImportRow, encode_rows, import_rows

BATCH_SIZE = 2500
"""Commentaries written per transaction: each commit costs a flush of the full-text index,
a WAL sync and a checkpoint of every page the batch touched, and the indexes take their
entries in no order, so a bigger batch writes each touched page for more records (1,000 ->
2,500: 76 -> 56 KB written to disk a commentary, 1,250 -> 1,700 records/s). But a batch
holds the database's write lock, and writers of a server running beside the import wait at
most busy_timeout (5 s) for it: about 1.2 s a batch at 50,000 rows, 1.6 s at 200,000."""
PREPARE_CHUNK = 100
"""Commentaries built per job (in a worker process for large imports)."""
PREPARING_PER_WORKER = 4
"""Jobs queued per worker process, so workers never wait for the importer."""
PARALLEL_MIN_RECORDS = 2000
"""Imports of at least this many records build commentaries in worker processes."""
REPORT_LINES = 50
"""Failure and skip reasons listed after the summary; the rest are only counted."""

_decode_commentary = msgspec.json.Decoder(ImportedCommentary).decode
_decode_stored = msgspec.json.Decoder(Commentary).decode
_decode_rows = msgspec.msgpack.Decoder(list[tuple[ImportRow, bool] | str]).decode
_encode = msgspec.json.Encoder().encode


@dataclass
class ImportResult:
    """Counts of commentary records and the reasons of those not imported."""

    imported: int = 0
    skipped: int = 0
    failed: int = 0
    categories: int = 0
    """Category records stored (created or replaced); failed ones count in ``failed``."""
    failures: list[str] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)

    def fail(self, where: str, reason: str) -> None:
        """Count a failed record and keep its reason (the first ``REPORT_LINES`` are kept)."""
        self.failed += 1
        if len(self.failures) < REPORT_LINES:
            self.failures.append(f"{where}: {reason}")

    def skip(self, where: str, reason: str) -> None:
        """Count a skipped record and keep its reason."""
        self.skipped += 1
        if len(self.skips) < REPORT_LINES:
            self.skips.append(f"{where}: skipped, {reason}")

    def summary_lines(self) -> list[str]:
        """The summary line, then failures and skips (failures first), capped at ``REPORT_LINES``."""
        lines = [f"imported {self.imported}, skipped {self.skipped}, failed {self.failed}"]
        if self.categories:
            lines.append(f"stored {self.categories} categor{'y' if self.categories == 1 else 'ies'}")
        reasons = (self.failures + self.skips)[:REPORT_LINES]
        lines += reasons
        more = self.failed + self.skipped - len(reasons)
        if more > 0:
            lines.append(f"… and {more} more")
        return lines


# --- building commentaries (here or in worker processes) -----------------------------------


Prepared = tuple[Commentary, bool, bool]
"""A commentary ready to store, whether its record had an id, and whether its slug may be
suffixed to be unique."""


def prepare_lines(lines: Sequence[bytes], now: datetime) -> list[Prepared | str]:
    """Validate and build each JSON record; a string says why one cannot be imported."""
    out: list[Prepared | str] = []
    for line in lines:
        try:
            record = _decode_commentary(line)
            item, unique_slug = build_imported(record, now=now)
        except msgspec.DecodeError as e:  # ValidationError included
            out.append(str(e))
        except FeedsvcError as e:
            out.append(e.message)
        else:
            # Without an id, the slug is what makes a re-run recognise the record (see the
            # module docstring), so it is never suffixed.
            has_id = record.id is not None
            out.append((item, has_id, has_id and unique_slug))
    return out


Vector = Callable[[list[list[str]]], str]
"""A store's ``RowImport.row_vector``: a row's words to its full-text vector."""

RowOutcome = tuple[ImportRow, bool] | str
"""What becomes of a record for a SQLite store: its row and whether it had an id, or why
it cannot be imported."""


def prepare_rows(lines: Sequence[bytes], now: datetime, vector: Vector | None = None) -> list[RowOutcome]:
    """``prepare_lines``, each commentary turned into the row a ``RowImport`` store will store
    (with its full-text vector when the store makes one: ``RowImport.row_vector``)."""
    outcomes = prepare_lines(lines, now)
    rows = iter(import_rows(((o[0], o[2]) for o in outcomes if not isinstance(o, str)), vector=vector))
    return [o if isinstance(o, str) else (next(rows), o[1]) for o in outcomes]


def prepare_in_worker(lines: Sequence[bytes], now: datetime) -> list[tuple[bytes, bool, bool] | str]:
    """``prepare_lines`` in a worker process; commentaries come back as JSON, the cheapest
    way across the process boundary that keeps each datetime's offset."""
    return [
        outcome if isinstance(outcome, str) else (_encode(outcome[0]), outcome[1], outcome[2])
        for outcome in prepare_lines(lines, now)
    ]


def prepare_rows_in_worker(lines: Sequence[bytes], now: datetime, vector: Vector | None = None) -> bytes:
    """``prepare_rows`` in a worker process, as MessagePack (one bytes object to pickle)."""
    return encode_rows(prepare_rows(lines, now, vector))


def _end_with(parent: int) -> None:
    """Make a worker process end when the import does, even when the import was killed: a
    worker outliving it would wait forever to hand back its last chunk (every worker holds
    both ends of the result pipe, so nobody reading it is never noticed)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="feedsvc-import-parent-watch", daemon=True).start()


def default_workers(records: int) -> int:
    """Worker processes worth starting for about ``records`` commentaries (0: build here)."""
    cpus = os.cpu_count() or 1
    return max(1, cpus - 1) if records >= PARALLEL_MIN_RECORDS and cpus > 1 else 0


# --- importing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pending:
    where: str
    item: Commentary | ImportRow
    has_id: bool
    unique_slug: bool


PreparedChunk = list[tuple[bytes, bool, bool] | str] | list[Prepared | str] | list[RowOutcome] | bytes
Outcome = Commentary | Imported | FeedsvcError


class Importer:
    """Feeds records to the store: categories one by one, commentaries in batches.

    Commentaries are built in chunks, here or in worker processes; while one batch is
    written in the store's worker thread, the next ones are being built. For a store with
    the ``RowImport`` capability they are built into its rows (``import_rows``).
    """

    def __init__(
        self, service: Service, result: ImportResult, bar: tqdm[Any], pool: Executor | None = None, workers: int = 0
    ) -> None:
        self.service = service
        self.result = result
        self.bar = bar
        self.pool = pool
        self._max_preparing = PREPARING_PER_WORKER * max(workers, 1)
        self._lines: list[tuple[str, bytes]] = []
        # A store that takes rows built beforehand gets them built in the workers too.
        self._rows = as_row_import(service.store)
        self._vector = self._rows.row_vector if self._rows is not None else None
        self._preparing: deque[tuple[list[str], asyncio.Future[PreparedChunk]]] = deque()
        self._batch: list[_Pending] = []
        self._in_flight: tuple[list[_Pending], asyncio.Task[Sequence[Outcome]]] | None = None
        self._stored: set[tuple[str, str]] = set()
        """(lang, slug) of every commentary stored by this import."""

    async def add(self, entry: Entry) -> None:
        """Take one record, in file order."""
        if isinstance(entry, BadEntry):
            self.result.fail(entry.where, entry.reason)
            self.bar.update()
        elif isinstance(entry, CategoryEntry):
            await self.finish()
            await self._put_category(entry)
            self.bar.update()
        else:
            self._lines.append((entry.where, entry.line))
            if len(self._lines) >= PREPARE_CHUNK:
                await self._dispatch()

    async def finish(self) -> None:
        """Build, write and wait for everything taken so far."""
        await self._dispatch()
        while self._preparing:
            await self._collect()
        await self._submit()
        await self._drain()

    async def abandon(self) -> None:
        """Stop building and wait for the batch being written, without counting anything
        more (the import is failing anyway)."""
        for _, future in self._preparing:
            future.cancel()
        self._preparing.clear()
        if self._in_flight is not None:
            task = self._in_flight[1]
            self._in_flight = None
            await asyncio.gather(task, return_exceptions=True)

    async def _put_category(self, entry: CategoryEntry) -> None:
        record = entry.record
        try:
            await self.service.put_category(
                record.slug, CategoryIn(names=record.names, descriptions=record.descriptions)
            )
        except FeedsvcError as e:
            self.result.fail(entry.where, e.message)
        else:
            self.result.categories += 1

    async def _dispatch(self) -> None:
        """Have the records taken so far built: here at once, or by a worker process."""
        if not self._lines:
            return
        wheres = [where for where, _ in self._lines]
        lines = [line for _, line in self._lines]
        self._lines = []
        now = self.service.clock()
        if self.pool is None:
            built = prepare_lines(lines, now) if self._rows is None else prepare_rows(lines, now, self._vector)
            await self._take(wheres, built)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[PreparedChunk] = (
            loop.run_in_executor(self.pool, prepare_in_worker, lines, now) if self._rows is None
            else loop.run_in_executor(self.pool, prepare_rows_in_worker, lines, now, self._vector)
        )
        self._preparing.append((wheres, future))
        while len(self._preparing) > self._max_preparing:
            await self._collect()

    async def _collect(self) -> None:
        """Wait for the oldest chunk being built by a worker and take its commentaries."""
        wheres, future = self._preparing.popleft()
        await self._take(wheres, await future)

    async def _take(self, wheres: list[str], outcomes: PreparedChunk) -> None:
        if isinstance(outcomes, bytes):
            outcomes = _decode_rows(outcomes)
        for where, outcome in zip(wheres, outcomes, strict=True):
            if isinstance(outcome, str):
                self.result.fail(where, outcome)
                self.bar.update()
                continue
            if isinstance(outcome[0], ImportRow):
                row, has_id = outcome
                self._batch.append(_Pending(where, row, has_id, row.unique_slug))
            else:
                item, has_id, unique_slug = outcome
                if isinstance(item, bytes):
                    item = _decode_stored(item)
                self._batch.append(_Pending(where, item, has_id, unique_slug))
            if len(self._batch) >= BATCH_SIZE:
                await self._submit()

    async def _submit(self) -> None:
        """Wait for the batch being written, then start writing the pending one."""
        await self._drain()
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        now = self.service.clock()
        task: asyncio.Task[Sequence[Outcome]] = asyncio.create_task(self._write(batch, now))
        self._in_flight = (batch, task)
        # Let the task start (it hands the batch to the store's worker thread) before more
        # is built here; otherwise it would only start once awaited.
        await asyncio.sleep(0)

    async def _write(self, batch: list[_Pending], now: datetime) -> Sequence[Outcome]:
        if self._rows is not None:
            return await self._rows.import_rows([cast(ImportRow, p.item) for p in batch], now=now)
        pairs = [(cast(Commentary, p.item), p.unique_slug) for p in batch]
        return await self.service.store.import_commentaries(pairs, now=now)

    async def _drain(self) -> None:
        if self._in_flight is None:
            return
        batch, task = self._in_flight
        self._in_flight = None
        outcomes = await task
        for pending, outcome in zip(batch, outcomes, strict=True):
            self._count(pending, outcome)
        self.bar.update(len(batch))
        if any(not isinstance(outcome, FeedsvcError) for outcome in outcomes):
            # As import_commentary tells the service's listeners (WebSub pings...), once a
            # batch instead of once a record: a broad change.
            await self.service.notify_changed(None, None)

    def _count(self, pending: _Pending, outcome: Outcome) -> None:
        item = pending.item
        if not isinstance(outcome, FeedsvcError):
            self.result.imported += 1
            self._stored.add((item.lang, outcome.slug))
        elif isinstance(outcome, ConflictError) and outcome.extra.get("field") == "id":
            self.result.skip(pending.where, f"exists: commentary {item.id} is already stored")
        elif isinstance(outcome, ConflictError) and outcome.extra.get("field") == "slug":
            if (item.lang, item.slug) in self._stored:
                self.result.fail(pending.where, f"{outcome.message} by another record of this import")
            elif pending.has_id:
                self.result.fail(pending.where, outcome.message)
            else:
                self.result.skip(pending.where, f"exists: slug {item.slug!r} in {item.lang} is already stored")
        else:
            self.result.fail(pending.where, outcome.message)


async def import_files(
    service: Service, files: Sequence[Path], *, progress: bool = False, workers: int | None = None
) -> ImportResult:
    """Import ``files`` (from ``collect_files``) into the service's store.

    Args:
        service: the service on an open store.
        files: the files to read, in order.
        progress: show a progress bar on stderr.
        workers: processes that build commentaries (Markdown, sanitising); 0 builds them
            here; None chooses by the size of the import.

    Returns:
        What was imported, skipped and failed, with the reasons.

    Raises:
        StorageError: the database failed; batches written before stay stored.
    """
    result = ImportResult()
    total = sum(count_records(f) for f in files)
    workers = default_workers(total) if workers is None else workers
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_end_with, initargs=(os.getpid(),)
    ) if workers else None
    try:
        with tqdm(total=total, unit="rec", file=sys.stderr, disable=not progress, dynamic_ncols=True) as bar:
            importer = Importer(service, result, bar, pool, workers)
            try:
                for path in files:
                    for entry in read_file(path):
                        await importer.add(entry)
                await importer.finish()
            except BaseException:
                await importer.abandon()
                raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return result


# --- exporting ----------------------------------------------------------------------------


def category_line(slug: str, names: dict[str, str], descriptions: dict[str, str]) -> bytes:
    """A category as one line of JSON Lines, ``kind`` first."""
    return _encode({"kind": "category", "slug": slug, "names": names, "descriptions": descriptions}) + b"\n"


def commentary_line(item: Commentary) -> bytes:
    """A stored commentary as one ``ImportedCommentary`` line: ``id`` first, null fields left out.

    The body is the stored (sanitised) HTML, so importing the line gives the same commentary.
    """
    record = ImportedCommentary(
        id=item.id,
        title=item.title,
        lang=item.lang,
        category=item.category,
        authors=item.authors,
        published_at=item.published_at,
        slug=item.slug,
        translation_key=item.translation_key,
        summary=item.summary,
        body_html=item.body_html,
        tags=item.tags,
        status=item.status,
        period=item.period,
        trend=item.trend,
        source=item.source,
        image=item.image,
        canonical_url=item.canonical_url,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )
    fields = {k: v for k, v in msgspec.structs.asdict(record).items() if v is not None and k != "id"}
    return _encode({"id": item.id, **fields}) + b"\n"


async def export_jsonl(store: Store, out: IO[bytes]) -> tuple[int, int]:
    """Write every category, then every commentary (drafts and scheduled ones too) by id.

    Returns:
        How many categories and commentaries were written.
    """
    categories = await store.get_categories()
    for c in categories:
        out.write(category_line(c.slug, c.names, c.descriptions))
    count = 0
    async for item in store.iter_all_commentaries():
        out.write(commentary_line(item))
        count += 1
    return len(categories), count


async def export_to_path(store: Store, path: Path) -> tuple[int, int]:
    """``export_jsonl`` into ``path``, replaced only once the export is complete."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        # Drafts and scheduled commentaries are in it: readable by the owner only.
        with os.fdopen(open_private(tmp), "wb") as out:
            counts = await export_jsonl(store, out)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return counts
