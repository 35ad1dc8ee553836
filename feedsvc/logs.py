"""Logging: one JSON object per line on stderr, or readable text when stderr is a terminal.

``configure_logging`` is called by the ``feedsvc`` command (and by ``app_from_env`` in each
server worker process); importing this module changes nothing. Everything goes through the
standard ``logging`` module, the server's own loggers (uvicorn's, granian's) included, so
one formatter shapes every line. The access log is the ``feedsvc.access`` logger at INFO
(see feedsvc.http.observe): ``FEEDSVC_LOG_LEVEL=WARNING`` silences it.

A JSON line has ``time`` (UTC, milliseconds), ``level``, ``logger`` and ``message``; an
access line adds ``method``, ``route``, ``path``, ``status``, ``duration_ms``, ``bytes``,
``request_id`` and ``client``; any other line written while a request is served carries
that request's ``request_id``; an exception adds ``exc`` (the traceback). Token-shaped
strings (``fsv_...``) are masked in every message, whatever logged it.

Once ``configure_logging`` has run, access lines skip the ``logging`` machinery: the serving
path appends a tuple to an ``AccessWriter`` (well under a microsecond), and a thread of its
own formats them in batches (msgspec) and writes them to the same stderr, in the same
shape, at least every ``FLUSH_SECONDS``, before any other log line, and at exit. A
LogRecord, a formatter and a flushed write per request cost about 39 µs of CPU, more than a
cached feed. Without ``configure_logging`` (feedsvc embedded in an application that set up
logging its own way) access lines stay ordinary ``feedsvc.access`` records.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from contextvars import ContextVar
from typing import Any, Literal, TextIO

import msgspec

from feedsvc.errors import InvalidInputError

REQUEST_ID: ContextVar[str | None] = ContextVar("feedsvc_request_id", default=None)
"""The id of the request being served in this context (set by the observe middleware)."""

SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi", "granian", "_granian")
"""Loggers of the ASGI servers: their handlers are removed so they reach ours through the
root. Their access loggers are left alone: ``feedsvc serve`` turns them off, ours replaces them."""

_TOKEN = re.compile(r"fsv_[A-Za-z0-9_\-]*")
_encode = msgspec.json.Encoder().encode


def redact(text: str) -> str:
    """``text`` with every feedsvc token (``fsv_<id>_<secret>``) replaced by ``fsv_[redacted]``."""
    return _TOKEN.sub("fsv_[redacted]", text) if "fsv_" in text else text


_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def _timestamp(created: float) -> str:
    """``2026-03-20T12:00:00.123Z``; the part up to the second is formatted once a second."""
    global _second
    seconds = int(created)
    if _second[0] != seconds:
        _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{_second[1]}.{int((created - seconds) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        fields = getattr(record, "http", None)
        if fields is not None:
            out.update(fields)
        else:
            request_id = REQUEST_ID.get()
            if request_id is not None:
                out["request_id"] = request_id
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exc"] = redact(record.exc_text)
        return _encode(out).decode()


class TextFormatter(logging.Formatter):
    """``HH:MM:SS.mmm LEVEL logger: message [request id]`` for people at a terminal (an
    access line: ``... GET /feed.rss 200 18213B 0.61ms 127.0.0.1 [request id]``)."""

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        line = f"{clock} {record.levelname:<7} {record.name}: {redact(record.getMessage())}"
        fields = getattr(record, "http", None)
        if fields is not None:
            line += f" {fields.get('client') or '-'} [{fields.get('request_id')}]"
        else:
            request_id = REQUEST_ID.get()
            if request_id is not None:
                line += f" [{request_id}]"
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record (test runners and
    daemon managers replace it), flushing each line, after the access lines still waiting
    (so that the log keeps the order things happened in)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        writer = access_writer
        if writer is not None:
            writer.flush()
        self.stream = sys.stderr
        super().emit(record)


# --- the access log -----------------------------------------------------------------------

AccessEntry = tuple[float, str, str, str, int, int, float, str, "str | None"]
"""What the serving path hands over per request: time (``time.time()``), method, loggable
path, route template, status, bytes sent, seconds taken, request id, client address."""

FLUSH_SECONDS = 0.5
"""The longest an access line waits before it is written."""

BATCH = 4096
"""Pending lines that wake the writer before ``FLUSH_SECONDS`` (bounds memory under load)."""

ACCESS_LOGGER = "feedsvc.access"


class AccessLine(msgspec.Struct):
    """A JSON access line, its keys in the order JsonFormatter writes every line's."""

    time: str
    level: str
    logger: str
    message: str
    method: str
    route: str
    path: str
    status: int
    duration_ms: float
    bytes: int
    request_id: str
    client: str | None


_lines_encoder = msgspec.json.Encoder()


def format_json(entries: list[AccessEntry]) -> str:
    """The entries as JSON lines, each ending with a newline."""
    lines = []
    for created, method, path, route, status, sent, elapsed, request_id, client in entries:
        ms = elapsed * 1000
        lines.append(AccessLine(
            _timestamp(created), "INFO", ACCESS_LOGGER, redact(f"{method} {path} {status} {sent}B {ms:.2f}ms"),
            method, route, path, status, round(ms, 3), sent, request_id, client,
        ))
    return _lines_encoder.encode_lines(lines).decode()


def format_text(entries: list[AccessEntry]) -> str:
    """The entries as TextFormatter writes an access record, each ending with a newline."""
    out = []
    for created, method, path, _route, status, sent, elapsed, request_id, client in entries:
        clock = time.strftime("%H:%M:%S", time.localtime(created)) + f".{int(created % 1 * 1000):03d}"
        message = redact(f"{method} {path} {status} {sent}B {elapsed * 1000:.2f}ms")
        out.append(f"{clock} INFO    {ACCESS_LOGGER}: {message} {client or '-'} [{request_id}]\n")
    return "".join(out)


class AccessWriter:
    """Access lines queued by the event loop, written to stderr in batches by a thread.

    ``add`` is all the serving path pays: a deque append (thread-safe against the writer's
    pops) and a length check. ``flush`` may be called from any thread; a lock keeps two
    batches from interleaving."""

    def __init__(self, text: bool = False, *, thread: bool = True) -> None:
        self.text = text
        self.pending: deque[AccessEntry] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = not thread  # without a thread (bench.access_log), only flush() writes
        self._thread = self._start() if thread else threading.current_thread()

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="feedsvc-access-log", daemon=True)
        thread.start()
        return thread

    def add(self, entry: AccessEntry) -> None:
        """Queue one line."""
        pending = self.pending
        pending.append(entry)
        if len(pending) >= BATCH:
            self._wake.set()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        """Write every queued line now."""
        with self._lock:
            pending = self.pending
            if not pending:
                return
            entries = [pending.popleft() for _ in range(len(pending))]
            data = format_text(entries) if self.text else format_json(entries)
            stream = sys.stderr
            try:
                stream.write(data)
                stream.flush()
            except (OSError, ValueError):  # stderr closed or gone: as logging's handlers do, go on
                pass

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stopped = True
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.flush()

    def _after_fork(self) -> None:
        # A forked child has the queue and lock as they were but not the thread.
        self.pending = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        if not self._stopped:
            self._thread = self._start()


access_writer: AccessWriter | None = None
"""The writer ``configure_logging`` installed, which feedsvc.http.observe hands lines to."""


def set_access_writer(writer: AccessWriter | None) -> AccessWriter | None:
    """Install ``writer`` (None: access lines go through ``logging`` again); return the one
    it replaces, flushed and stopped."""
    global access_writer
    old, access_writer = access_writer, writer
    if old is not None and old is not writer:
        old.close()
    return old


def _flush_at_exit() -> None:
    if access_writer is not None:
        access_writer.close()


def _restart_after_fork() -> None:
    if access_writer is not None:
        access_writer._after_fork()


atexit.register(_flush_at_exit)
os.register_at_fork(after_in_child=_restart_after_fork)


def resolve_format(name: str, stream: TextIO | None = None) -> Literal["json", "text"]:
    """``json`` or ``text``; ``auto`` is text when ``stream`` (stderr) is a terminal."""
    if name == "auto":
        stream = stream if stream is not None else sys.stderr
        try:
            return "text" if stream.isatty() else "json"
        except (AttributeError, ValueError):
            return "json"
    if name in ("json", "text"):
        return name  # type: ignore[return-value]
    raise InvalidInputError(f"FEEDSVC_LOG_FORMAT must be auto, json or text, not {name!r}")


def resolve_level(name: str) -> int:
    """The numeric level for a level name (case-insensitive); InvalidInputError otherwise."""
    level = logging.getLevelNamesMapping().get(name.strip().upper())
    if level is None:
        raise InvalidInputError(
            f"FEEDSVC_LOG_LEVEL must be a logging level (DEBUG, INFO, WARNING, ERROR), not {name!r}"
        )
    return level


def configure_logging(log_format: str = "auto", level: str = "INFO") -> str:
    """Send every log record to stderr in ``log_format`` at ``level`` and above; return the
    format chosen. Idempotent: calling it again replaces the handler it installed."""
    chosen = resolve_format(log_format)
    numeric = resolve_level(level)
    # No line shows thread or process names; not collecting them makes each record cheaper.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, StderrHandler):
            root.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root.addHandler(handler)
    if access_writer is None:
        set_access_writer(AccessWriter(text=chosen == "text"))
    else:
        access_writer.flush()
        access_writer.text = chosen == "text"
    root.setLevel(numeric)
    # aiosqlite logs every statement with its parameters at DEBUG: bodies, token ids.
    logging.getLogger("aiosqlite").setLevel(max(numeric, logging.INFO))
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
        server_logger.setLevel(logging.NOTSET)
    return chosen
