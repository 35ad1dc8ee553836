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
"""

from __future__ import annotations

import logging
import re
import sys
import time
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
    daemon managers replace it), flushing each line."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


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
    root.setLevel(numeric)
    # aiosqlite logs every statement with its parameters at DEBUG: bodies, token ids.
    logging.getLogger("aiosqlite").setLevel(max(numeric, logging.INFO))
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
        server_logger.setLevel(logging.NOTSET)
    return chosen
