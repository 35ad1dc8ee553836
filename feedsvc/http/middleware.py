"""The ASGI middlewares create_app wraps the app in (besides feedsvc.http.observe, the
rate limiter and the fast path): HEAD on every GET route, and the host check, ``nosniff``
and CORS-for-reads-only of issue 7."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from feedsvc.http.errors import ErrorBody, FieldProblem


def head_as_get(app: ASGIApp) -> ASGIApp:
    """Answer HEAD on every GET route: run the GET, keep its headers, drop its body."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        as_get: Any = {**scope, "method": "GET"}
        try:
            await app(as_get, receive, send_headers_only)
        finally:
            if "path_template" in as_get:  # the route, for the observe middleware outside
                scope["path_template"] = as_get["path_template"]

    return middleware


def _split_host(value: str) -> tuple[str, str | None]:
    """``("example.org", "8000")`` from ``Example.ORG.:8000``; IPv6 literals keep their brackets."""
    value = value.strip().lower()
    port: str | None = None
    if value.startswith("["):
        host, _, rest = value.partition("]")
        host += "]"
        if rest.startswith(":"):
            port = rest[1:]
        elif rest:
            return "", None
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host = value
    return host.rstrip("."), port


def host_allowed(header: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a ``Host`` header names an allowed host. An entry without a port allows that
    host on any port, ``host:port`` only that port, ``*.example.org`` any subdomain, and
    ``*`` anything; names compare case-insensitively, a trailing dot ignored."""
    if "*" in allowed:
        return True
    if not header:
        return False
    host, port = _split_host(header)
    if not host or host.startswith(".") or (port is not None and not port.isdigit()):
        return False
    for entry in allowed:
        want_host, want_port = _split_host(entry)
        if want_port is not None and want_port != port:
            continue
        if want_host == host or (want_host.startswith("*.") and host.endswith(want_host[1:])):
            return True
    return False


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_READ_METHODS = frozenset({"GET", "HEAD"})
_UNKNOWN_HOST = ErrorBody(
    status_code=400,
    detail="unknown host: this server answers only for the hosts in FEEDSVC_ALLOWED_HOSTS",
    extra=[FieldProblem(message="the Host header names no allowed host", key="Host", source="header")],
)


def harden(app: ASGIApp, allowed_hosts: tuple[str, ...], cors_headers: Sequence[tuple[bytes, bytes]] = ()) -> ASGIApp:
    """Issue 7, outside routing: refuse requests for hosts not in ``allowed_hosts`` (when it
    is not empty) with a JSON 400 in the one error shape; send ``nosniff`` on every
    response; keep CORS headers off the answers to writes, so that CORS grants reads only
    (preflights for writes already fail); and put ``cors_headers`` on every answer to a GET
    or HEAD, whether or not it carries ``Origin``.

    A read's answer must not depend on ``Origin``: a shared cache that stored the answer to
    a request without it would otherwise serve partner sites an answer their browsers
    refuse (``embed.js`` broken by one priming request). With ``Access-Control-Allow-Origin:
    *`` on every read there is nothing to vary on, so no ``Vary: Origin``. Litestar's CORS
    middleware still answers preflights; on a read that carries a ``Cookie`` it would echo
    the origin and replace ``Vary`` with ``Origin`` (dropping ``Accept-Encoding``), so reads
    reach the app without cookies, which feedsvc never uses."""
    refusal = msgspec.json.encode(_UNKNOWN_HOST)
    refusal_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(refusal)).encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    cors = list(cors_headers)

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        if allowed_hosts:
            host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
            if not host_allowed(host, allowed_hosts):
                await send({"type": "http.response.start", "status": 400, "headers": refusal_headers})
                body = b"" if scope["method"] == "HEAD" else refusal
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
        method = scope["method"]
        write = method not in _SAFE_METHODS
        read = method in _READ_METHODS
        if read and any(k == b"cookie" for k, _ in scope["headers"]):
            scope = cast(Scope, {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"cookie"]})

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", [])
                    if not ((write or read) and k.lower().startswith(b"access-control-"))
                ]
                if read:
                    headers += cors
                if not any(k.lower() == b"x-content-type-options" for k, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                message = cast(Message, {**message, "headers": headers})  # a copy: the sender may reuse its own
            await send(message)

        await app(scope, receive, send_hardened)

    return middleware
