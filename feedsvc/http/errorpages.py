"""Error pages for browsers: the same status, as a page in the reader's language.

Every refusal and error of the app is a JSON body in one shape (feedsvc.http.errors), made
wherever it happens: the URL bounds, the host check, the rate limiter, the handlers. A
browser that meets one (its ``Accept`` ranks ``text/html`` above JSON, as a navigation's
does) gets instead a page that says what happened in words, with the status code and a way
home; this layer, just inside ``observe``, rewrites those answers and no others, so every
other client, API clients above all, gets the JSON body byte for byte as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import msgspec
from litestar.enums import ScopeType

from feedsvc.config import Settings
from feedsvc.http.common import PAGE_HEADERS
from feedsvc.render.layout import Site
from feedsvc.render.listing import error_page
from feedsvc.render.messages import LANGUAGES

if TYPE_CHECKING:
    from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

_REPLACED = {b"content-type", b"content-length", b"content-encoding", *(k.lower().encode() for k in PAGE_HEADERS)}


def wants_html(accept: str | None) -> bool:
    """Whether an ``Accept`` value prefers a page to JSON: it names ``text/html`` and ranks
    it above ``application/json`` (browsers send ``text/html,...,*/*;q=0.8``; API clients
    send JSON, ``*/*`` or nothing)."""
    if not accept or "text/html" not in accept.lower():
        return False
    ranks: dict[str, float] = {}
    for part in accept.lower().split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranks[kind] = max(q, ranks.get(kind, 0.0))
    html = ranks.get("text/html", 0.0)
    return html > 0 and html > ranks.get("application/json", 0.0)


def error_language(scope: Scope, primary: str) -> str:
    """The page's own language (its first path segment or ``?lang=``) when the catalogue
    has it, else the publication's."""
    first = str(scope.get("path", "")).strip("/").split("/")[0].lower()
    if first in LANGUAGES:
        return first
    for pair in scope.get("query_string", b"").decode("latin-1").split("&"):
        name, _, value = pair.partition("=")
        if name == "lang" and value.lower() in LANGUAGES:
            return value.lower()
    return primary


def html_errors(app: ASGIApp, settings: Settings) -> ASGIApp:
    """``app`` with its JSON errors shown to browsers as pages (see the module docstring)."""
    site = Site(
        title=settings.title, description=settings.description, base_url=settings.base_url,
        primary_lang=settings.primary_language, links=tuple(settings.links), footer_note=settings.footer_note or "",
    )

    async def with_error_pages(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        accept = next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"accept"), None)
        if not wants_html(accept):
            await app(scope, receive, send)
            return
        start: HTTPResponseStartEvent | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = {k.lower(): v for k, v in message.get("headers", [])}
                if message["status"] >= 400 and headers.get(b"content-type", b"").startswith(b"application/json"):
                    start = message
                    return
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                await send_page(start, b"".join(chunks))
                return
            await send(message)

        async def send_page(start: HTTPResponseStartEvent, body: bytes) -> None:
            try:
                detail = str(msgspec.json.decode(body).get("detail", "")) if body else ""
            except (msgspec.DecodeError, AttributeError):
                detail = ""
            status = int(start["status"])
            page = error_page(site, error_language(scope, settings.primary_language), status, detail).encode()
            headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", []) if k.lower() not in _REPLACED]
            headers += [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(page)).encode()),
                (b"cache-control", b"no-store"),
                *((k.lower().encode(), v.encode()) for k, v in PAGE_HEADERS.items()),
            ]
            await send(cast("HTTPResponseStartEvent", {**start, "headers": headers}))
            head = cast(str, scope.get("method", "GET")) == "HEAD"
            await send({"type": "http.response.body", "body": b"" if head else page, "more_body": False})

        await app(scope, receive, capture)

    return with_error_pages
