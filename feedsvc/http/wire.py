"""Client limits at the connection, and the request heads HTTP/1.1 tells a server to refuse.

Pure decisions over bytes and header lists, no server library: feedsvc.http.uvicorn_front
applies them in the protocol `feedsvc serve` runs, before the front or the app sees a
request. They are what nginx gives its operators by default, each a setting
(``ClientLimits``, from ``FEEDSVC_*``):

* a request's line and headers must arrive within ``header_timeout`` seconds of its first
  byte (or of the connection, for the first request): a trickled or silent head is cut;
* a request's body must arrive within ``body_timeout`` seconds of its head;
* an idle keep-alive connection is closed after ``keep_alive_timeout`` seconds;
* a header line over ``max_header_line`` bytes, a head over ``max_header_bytes`` or more
  than ``max_headers`` header lines is a 431, found while the bytes arrive (``HeadScanner``),
  before the parser buffers them; a request line longer than the longest URL the app
  answers (feedsvc.http.cost) is a 414;
* past ``max_connections`` connections in one process, an idle connection (nothing sent
  since it connected or since its last answer) is closed to make room, as nginx does; when
  none is idle, the new connection's request is answered 503 with ``Retry-After`` at once,
  without reaching the app.

And RFC 9112's refusals (``refusal``): an HTTP/1.1 request without ``Host``, any request
with two, a ``Host`` that is not ``host[:port]`` is a 400; a major version other than 1
is a 505 (RFC 9110 section 15.6.6; nginx answers the same); a ``Transfer-Encoding`` other
than ``chunked`` alone is a 501 (RFC 9112 section 6.1: ``identity, chunked`` and the
like are codings this server does not implement), and one on an HTTP/1.0 request, or
beside ``Content-Length``, is a 400 (section 6.1 and 6.3: faulty framing, the stuff of
request smuggling).

Every refusal is one short JSON answer in the one error shape, with ``connection: close``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import msgspec

from feedsvc.config import Settings
from feedsvc.http.cost import MAX_PATH_BYTES, MAX_QUERY_BYTES
from feedsvc.http.errors import ErrorBody, FieldProblem

MAX_REQUEST_LINE = MAX_PATH_BYTES + MAX_QUERY_BYTES + 32
"""Longest request line read (method, the longest path and query string the app answers,
the version); longer is a 414 before it is buffered."""


class ClientLimits(NamedTuple):
    """What one client may make the server wait for or hold (see the module docstring)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_header_line: int = 8192
    max_header_bytes: int = 32768
    max_headers: int = 100
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientLimits:
        return cls(
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            keep_alive_timeout=settings.keep_alive_timeout,
            max_header_line=settings.max_header_line,
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            max_connections=settings.max_connections,
        )


class Refusal(NamedTuple):
    """A status and the error body's detail and ``extra`` key (a header name or a part of
    the request)."""

    status: int
    detail: str
    key: str


_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    501: b"Not Implemented",
    503: b"Service Unavailable",
    505: b"HTTP Version Not Supported",
}


def answer(refusal: Refusal, server_lines: bytes = b"", retry_after: int | None = None) -> bytes:
    """The whole HTTP/1.1 response refusing a request: the one error shape, then close."""
    body = msgspec.json.encode(
        ErrorBody(
            status_code=refusal.status,
            detail=refusal.detail,
            extra=[FieldProblem(message=refusal.detail, key=refusal.key, source="header")],
        )
    )
    retry = b"retry-after: %d\r\n" % retry_after if retry_after is not None else b""
    return b"HTTP/1.1 %d %s\r\n%scontent-type: application/json\r\ncontent-length: %d\r\n%s%s\r\n%s" % (
        refusal.status, _REASONS[refusal.status], server_lines, len(body), retry,
        b"connection: close\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\n", body,
    )


class HeadScanner:
    """Counts the bytes of a request head as they arrive, before any parser buffers them.

    ``feed`` takes each chunk read from the connection while a head is expected and says
    whether the head breaks a limit; once the blank line that ends the head is seen it
    stops (``done``) until ``restart``. It never reads body bytes: the protocol feeds it
    only while no body is expected. A head that began inside a chunk the scanner did not
    read (a request pipelined right behind a body) is counted from the next chunk on, so
    a head may pass a bound by at most one read's worth of bytes; never the other way."""

    __slots__ = ("_limits", "_line", "_head", "_headers", "_started", "_cr", "done")

    def __init__(self, limits: ClientLimits) -> None:
        self._limits = limits
        self.restart()

    def restart(self) -> None:
        self._line = 0  # bytes of the line being read
        self._head = 0  # bytes of header lines so far
        self._headers = 0
        self._started = False  # the request line is behind us
        self._cr = False  # the last byte read was a CR
        self.done = False

    @property
    def begun(self) -> bool:
        """Whether any byte of a head (a blank line included) has been read since ``restart``."""
        return self._started or self._line > 0 or self.done

    def feed(self, data: bytes) -> Refusal | None:
        limits = self._limits
        if not self._started and not self._line and data[:1] not in (b"\r", b"\n"):
            # The usual case, a whole head in one read: within every bound when it is no
            # longer than one header line may be and has no more lines than allowed.
            end = data.find(b"\r\n\r\n", 0, limits.max_header_line + 4)
            if end >= 0 and end <= limits.max_header_bytes and data.count(b"\n", 0, end) <= limits.max_headers:
                self.done = True
                return None
        pos, end = 0, len(data)
        while pos < end and not self.done:
            newline = data.find(b"\n", pos)
            stop = end if newline < 0 else newline + 1
            self._line += stop - pos
            if newline >= 0 and (
                self._line == 1 or (self._line == 2 and (self._cr if newline == pos else data[newline - 1] == 13))
            ):  # a blank line
                self._line, self._cr, pos = 0, False, stop
                if self._started:
                    self.done = True  # the head is complete; a body may follow
                continue  # blank lines before a request line are skipped (RFC 9112 section 2.2)
            # The limits count a line without its line end, the total with them.
            if not self._started and self._line > MAX_REQUEST_LINE + 2:
                return Refusal(414, f"the request line is limited to {MAX_REQUEST_LINE} bytes", "request line")
            if self._started and self._line > limits.max_header_line + 2:
                return Refusal(431, f"a header line is limited to {limits.max_header_line} bytes", "header line")
            # A line still arriving may yet be the blank one that ends the head: two bytes' grace.
            if self._started and self._head + self._line > limits.max_header_bytes + (2 if newline < 0 else 0):
                return Refusal(431, f"the headers are limited to {limits.max_header_bytes} bytes", "headers")
            if newline < 0:
                self._cr = data[-1:] == b"\r"
                break
            if self._started:
                self._head += self._line
                self._headers += 1
                if self._headers > limits.max_headers:
                    return Refusal(431, f"a request holds at most {limits.max_headers} header lines", "headers")
            self._started = True
            self._line, self._cr, pos = 0, False, stop
        return None


# RFC 3986's host (an IP literal in brackets, or a reg-name of unreserved characters,
# percent-escapes and sub-delims, which covers IPv4) and an optional port of digits.
_HOST = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?")


def refusal(http_version: str, headers: Sequence[tuple[bytes, bytes]]) -> Refusal | None:
    """What RFC 9112 says to answer a request with this version and these headers (names
    lowercased, as the server parsed them), or None to serve it."""
    if http_version != "1.1" and http_version[:2] != "1.":
        return Refusal(505, f"HTTP/{http_version} is not supported here: use HTTP/1.1", "request line")
    host: bytes | None = None
    codings: list[bytes] = []
    length = False
    for name, value in headers:  # one pass: this runs for every request, feed polls included
        if name == b"host":
            if host is not None:
                return Refusal(400, "a request carries one Host header", "Host")
            host = value
        elif name == b"transfer-encoding":
            codings += (token.strip().lower() for token in value.split(b","))
        elif name == b"content-length":
            length = True
    if host is None:
        if http_version != "1.0":
            return Refusal(400, "an HTTP/1.1 request needs a Host header", "Host")
    elif not _HOST.fullmatch(host):
        return Refusal(400, "the Host header is not a host[:port]", "Host")
    if codings:
        if http_version == "1.0":
            return Refusal(400, "an HTTP/1.0 request cannot carry Transfer-Encoding", "Transfer-Encoding")
        if codings != [b"chunked"]:
            return Refusal(501, "the only Transfer-Encoding accepted is chunked, alone", "Transfer-Encoding")
        if length:
            return Refusal(400, "a request carries Transfer-Encoding or Content-Length, not both", "Content-Length")
    return None
