"""Import and export: JSON Lines, category arrays and Markdown folders in, JSON Lines out.

What ``feedsvc import`` reads:

* ``*.jsonl``: one record a line, either a category ``{"kind": "category", "slug", "names",
  "descriptions"}`` or a commentary (``ImportedCommentary``: the fields of a POST plus an
  optional ``id``, ``created_at`` and ``updated_at``), as ``feedsvc export`` writes them;
* ``*.json``: an array of categories without ``kind`` (``data/categories.json``);
* ``*.md``: one commentary, its fields as YAML front matter between ``---`` lines and the
  Markdown after them as ``body_markdown``;
* a folder: every ``.json`` in or below it, then every ``.jsonl``, then every ``.md``, each
  group in path order; other files (images, the database itself) are ignored.

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
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal, cast

import msgspec
import yaml
from tqdm import tqdm

from feedsvc.errors import ConflictError, FeedsvcError, InvalidInputError
from feedsvc.files import open_private
from feedsvc.model import CategoryIn, Commentary, Slug
from feedsvc.service import ImportedCommentary, Service
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
ULID_CHARS = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
SUFFIXES = (".json", ".jsonl", ".md")
_BOM = b"\xef\xbb\xbf"
# Front matter: a first line of ---, YAML, then a line of --- (or ...); the rest is the body.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL | re.MULTILINE)


class CategoryRecord(CategoryIn, kw_only=True, forbid_unknown_fields=True):
    """A category as import reads it: a line of JSON Lines (with ``kind``) or an element of
    a ``.json`` array (without)."""

    slug: Slug
    kind: Literal["category"] | None = None


_decode_commentary = msgspec.json.Decoder(ImportedCommentary).decode
_decode_category = msgspec.json.Decoder(CategoryRecord).decode
_decode_array = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_stored = msgspec.json.Decoder(Commentary).decode
_decode_rows = msgspec.msgpack.Decoder(list[tuple[ImportRow, bool] | str]).decode
_encode = msgspec.json.Encoder().encode


# --- what the readers yield ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CategoryEntry:
    where: str
    record: CategoryRecord


@dataclass(frozen=True, slots=True)
class CommentaryEntry:
    """A commentary record as JSON, validated and built later (maybe in another process)."""

    where: str
    line: bytes


@dataclass(frozen=True, slots=True)
class BadEntry:
    where: str
    reason: str


Entry = CategoryEntry | CommentaryEntry | BadEntry


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


# --- finding and reading files ------------------------------------------------------------


def collect_files(paths: Sequence[str | Path]) -> list[Path]:
    """Expand the paths given to ``feedsvc import`` into the files to read, in order.

    Raises:
        InvalidInputError: a path does not exist or is a file of an unknown kind.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += _folder_files(path)
        elif path.is_file():
            if path.suffix not in SUFFIXES:
                raise InvalidInputError(f"{path}: not a .jsonl, .json or .md file, nor a folder")
            files.append(path)
        else:
            raise InvalidInputError(f"{path}: no such file or folder")
    return files


def _folder_files(folder: Path) -> list[Path]:
    """Every .json, then .jsonl, then .md file in or below ``folder``, hidden ones left out."""
    found: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root, n) for n in names if not n.startswith(".") and Path(n).suffix in SUFFIXES]
    return sorted(found, key=lambda p: (SUFFIXES.index(p.suffix), p.as_posix()))


def count_records(path: Path) -> int:
    """About how many records ``path`` holds, cheaply (for the progress bar's total)."""
    if path.suffix == ".jsonl":
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    return 1 if path.suffix == ".md" else 0


def read_file(path: Path) -> Iterator[Entry]:
    """The records of one file: categories parsed, commentaries as JSON, or a BadEntry."""
    if path.suffix == ".jsonl":
        yield from _read_jsonl(path)
    elif path.suffix == ".json":
        yield from _read_category_array(path)
    else:
        yield _read_markdown(path)


def _read_jsonl(path: Path) -> Iterator[Entry]:
    try:
        with path.open("rb") as f:
            for lineno, raw in enumerate(f, 1):
                line = raw.removeprefix(_BOM).strip() if lineno == 1 else raw.strip()
                if line:
                    yield parse_line(f"{path}:{lineno}", line)
    except OSError as e:
        yield BadEntry(f"{path}:1", f"cannot read the file: {e.strerror or e}")


def parse_line(where: str, line: bytes) -> Entry:
    """One JSON Lines record: a category when it has ``"kind"``, else a commentary."""
    if b'"kind"' not in line:
        return CommentaryEntry(where, line)
    try:
        return CategoryEntry(where, _decode_category(line))
    except msgspec.DecodeError as e:  # ValidationError included
        return BadEntry(where, str(e))


def _read_category_array(path: Path) -> Iterator[Entry]:
    try:
        items = _decode_array(path.read_bytes().removeprefix(_BOM))
    except OSError as e:
        yield BadEntry(f"{path}:1", f"cannot read the file: {e.strerror or e}")
        return
    except msgspec.DecodeError as e:
        yield BadEntry(f"{path}:1", f"expected an array of categories: {e}")
        return
    for i, raw in enumerate(items, 1):
        where = f"{path}: item {i}"
        try:
            yield CategoryEntry(where, _decode_category(raw))
        except msgspec.DecodeError as e:
            yield BadEntry(where, str(e))


def _read_markdown(path: Path) -> Entry:
    where = f"{path}:1"
    try:
        text = path.read_text("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        return BadEntry(where, f"cannot read the file: {e}")
    match = _FRONT_MATTER.match(text)
    if match is None:
        return BadEntry(where, "no front matter: the file must start with a line '---'")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        return BadEntry(f"{path}:{line}", f"front matter is not valid YAML: {getattr(e, 'problem', None) or e}")
    try:
        return CommentaryEntry(where, markdown_json(meta if meta is not None else {}, text[match.end() :]))
    except InvalidInputError as e:
        return BadEntry(where, e.message)


def markdown_json(meta: Any, body: str) -> bytes:
    """The commentary of a Markdown file as a JSON record, from its front matter and body.

    Dates YAML turned into ``date``/``datetime`` objects become ISO text again, so the record
    is validated exactly like a line of JSON Lines.

    Raises:
        InvalidInputError: the front matter is not a mapping, holds the body, holds a date
            and time without a UTC offset, or holds values JSON cannot carry.
    """
    if not isinstance(meta, dict):
        raise InvalidInputError("the front matter must be a mapping of field: value")
    for key in ("body_markdown", "body_html"):
        if key in meta:
            raise InvalidInputError(f"the body goes after the front matter, not in `{key}`")
    for name, value in _walk(meta):
        if isinstance(value, datetime) and value.tzinfo is None:
            raise InvalidInputError(f"`{name}` needs a UTC offset, e.g. 2026-03-10T08:00:00Z or +03:00")
    try:
        return _encode({**meta, "body_markdown": body.strip("\r\n") if body.strip() else None})
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"the front matter holds a value JSON cannot carry: {e}") from None


def _walk(value: Any, name: str = "$") -> Iterator[tuple[str, Any]]:
    """Every value nested in parsed YAML, with its path (``period.start``)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{name}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{name}[{i}]")
    else:
        yield name.removeprefix("$."), value


# --- building commentaries (here or in worker processes) -----------------------------------


Prepared = tuple[Commentary, bool, bool]
"""A commentary ready to store, whether its record had an id, and whether its slug may be
suffixed to be unique."""


def prepare(service: Service, record: ImportedCommentary, now: datetime) -> tuple[Commentary, bool]:
    """Build the commentary ``service.import_commentary`` would store, and whether its slug
    may be suffixed to be unique. Raises InvalidInputError for an invalid record."""
    return service.prepare_import(record, now=now)


def prepare_lines(service: Service, lines: Sequence[bytes], now: datetime) -> list[Prepared | str]:
    """Validate and build each JSON record; a string says why one cannot be imported."""
    out: list[Prepared | str] = []
    for line in lines:
        try:
            record = _decode_commentary(line)
            item, unique_slug = prepare(service, record, now)
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


RowOutcome = tuple[ImportRow, bool] | str
"""What becomes of a record for a SQLite store: its row and whether it had an id, or why
it cannot be imported."""


def prepare_rows(service: Service, lines: Sequence[bytes], now: datetime) -> list[RowOutcome]:
    """``prepare_lines``, each commentary turned into the row a ``RowImport`` store will store."""
    outcomes = prepare_lines(service, lines, now)
    rows = iter(import_rows((o[0], o[2]) for o in outcomes if not isinstance(o, str)))
    return [o if isinstance(o, str) else (next(rows), o[1]) for o in outcomes]


_worker_service: Service | None = None
"""The Service of a worker process, made on its first job (building never uses the store)."""


def _service_in_worker() -> Service:
    global _worker_service
    if _worker_service is None:
        _worker_service = Service(cast(Store, None), base_url="http://worker.invalid")
    return _worker_service


def prepare_in_worker(lines: Sequence[bytes], now: datetime) -> list[tuple[bytes, bool, bool] | str]:
    """``prepare_lines`` in a worker process; commentaries come back as JSON, the cheapest
    way across the process boundary that keeps each datetime's offset."""
    return [
        outcome if isinstance(outcome, str) else (_encode(outcome[0]), outcome[1], outcome[2])
        for outcome in prepare_lines(_service_in_worker(), lines, now)
    ]


def prepare_rows_in_worker(lines: Sequence[bytes], now: datetime) -> bytes:
    """``prepare_rows`` in a worker process, as MessagePack (one bytes object to pickle)."""
    return encode_rows(prepare_rows(_service_in_worker(), lines, now))


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
            built = prepare_lines(self.service, lines, now) if self._rows is None else prepare_rows(
                self.service, lines, now
            )
            await self._take(wheres, built)
            return
        job = prepare_in_worker if self._rows is None else prepare_rows_in_worker
        future: asyncio.Future[PreparedChunk] = asyncio.get_running_loop().run_in_executor(
            self.pool, job, lines, now
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
