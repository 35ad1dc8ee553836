"""create_app: the composition root. Builds the store, service and Litestar app; no
import-time state, so tests build as many apps as they like, each with its own store."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import msgspec
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from feedsvc import __version__
from feedsvc.bodies import BodyRenderer
from feedsvc.config import Settings
from feedsvc.errors import FeedsvcError
from feedsvc.feeds.publisher import FeedPublisher
from feedsvc.http import cost, digests, embed, fastpath, feeds, front, observe, pages, read, write
from feedsvc.http import webhooks as webhook_routes
from feedsvc.http.errors import ErrorBody, feedsvc_error_handler, http_error_handler, internal_error_handler
from feedsvc.http.ratelimit import RateLimiter
from feedsvc.model import Commentary
from feedsvc.push.targets import TargetPolicy
from feedsvc.push.webhooks import WebhookRegistry, WebhookSender
from feedsvc.push.websub import HubNotifier
from feedsvc.service import Service

# On shutdown, queued hub pings get this long to go out before the process exits.
SHUTDOWN_DRAIN_SECONDS = 5.0
# Markdown renders off the event loop in this many processes per server process: writes are
# rare and rate-limited, and one worker renders even a 900 KB article within seconds.
MARKDOWN_WORKERS = 1
# Seconds one Markdown render may run before its worker is killed: a realistic 900 KB
# article takes about 3 s (so 20 s leaves room on a loaded machine); the worst body within
# feedsvc.structure's limits takes under 1 s.
MARKDOWN_TIMEOUT = 20.0
# Markdown renders queued or running at once per server process; more get a 503. A burst of
# writes waits its turn; the bound caps the bodies held meanwhile (64 x 900 KB at most).
MARKDOWN_MAX_WAITING = 64
from feedsvc.store import Store, open_store


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
    extra=[{"message": "the Host header names no allowed host", "key": "Host", "source": "header"}],
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


def create_app(settings: Settings, store: Store | None = None) -> Litestar:
    """Build the application. The app opens ``store`` on start-up and closes it on shutdown;
    without one it opens the store ``settings.database_url`` names."""
    store = store if store is not None else open_store(settings.database_url)
    bodies = BodyRenderer(workers=MARKDOWN_WORKERS, timeout=MARKDOWN_TIMEOUT, max_waiting=MARKDOWN_MAX_WAITING)
    service = Service(store, base_url=settings.base_url, require_if_match=settings.require_if_match, bodies=bodies)
    publisher = FeedPublisher(
        service,
        title=settings.title,
        description=settings.description,
        feed_limit=settings.feed_limit,
        hubs=[settings.websub_hub] if settings.websub_hub else [],
        tag_authority=settings.tag_authority,
    )

    notifier = HubNotifier(settings.websub_hub) if settings.websub_hub else None
    if notifier is not None:
        hub = notifier

        async def ping_hub(before: Commentary | None, after: Commentary | None) -> None:
            hub.notify(await publisher.urls_affected(before, after) + await publisher.digest_urls_affected(before, after))

        service.listeners.append(ping_hub)

    metrics = observe.Metrics(store, publisher, notifier)
    metrics.time_store(store)

    # Webhooks (issue 4, part 6): a write only wakes the sender; it delivers in the background.
    policy = TargetPolicy(settings.webhook_allowed_networks)
    webhooks = WebhookRegistry(store, policy)
    sender = WebhookSender(
        store,
        functools.partial(service.present, translations=False),
        policy,
        timeout=settings.webhook_timeout,
        retry_delay=settings.webhook_retry_delay,
        max_retry_delay=settings.webhook_max_retry_delay,
        max_failures=settings.webhook_max_failures,
        poll_interval=settings.webhook_poll_interval,
        refresh=service.state,
    )

    async def wake_sender(before: Commentary | None, after: Commentary | None) -> None:
        sender.wake()

    service.listeners.append(wake_sender)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await store.open()
        bodies.start()
        if notifier is not None:
            await notifier.start()
        await sender.start()
        try:
            yield
        finally:
            await sender.stop()
            if notifier is not None:
                await notifier.stop(timeout=SHUTDOWN_DRAIN_SECONDS)
            await bodies.close()
            await store.close()

    async def provide_service() -> Service:
        return service

    async def provide_publisher() -> FeedPublisher:
        return publisher

    async def provide_settings() -> Settings:
        return settings

    async def provide_webhooks() -> WebhookRegistry:
        return webhooks

    app = Litestar(
        route_handlers=[
            *read.HANDLERS,
            *write.HANDLERS,
            *webhook_routes.HANDLERS,
            *feeds.HANDLERS,
            *digests.HANDLERS,
            *pages.HANDLERS,
            *embed.HANDLERS,
            *observe.HANDLERS,
            create_static_files_router(path="/media", directories=[settings.media_dir], include_in_schema=False),
        ],
        dependencies={
            "service": Provide(provide_service, use_cache=True),
            "publisher": Provide(provide_publisher, use_cache=True),
            "settings": Provide(provide_settings, use_cache=True),
            "webhooks": Provide(provide_webhooks, use_cache=True),
            "filters": Provide(read.provide_query),
        },
        state=State({"service": service, "publisher": publisher, "settings": settings, "notifier": notifier, "metrics": metrics}),
        lifespan=[lifespan],
        exception_handlers={
            FeedsvcError: feedsvc_error_handler,
            HTTPException: http_error_handler,
            Exception: internal_error_handler,
        },
        cors_config=CORSConfig(
            allow_origins=["*"],
            allow_methods=["GET", "HEAD", "OPTIONS"],
            allow_headers=["If-None-Match", "If-Modified-Since"],
            expose_headers=["ETag", "Last-Modified", "Link", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy"],
            allow_credentials=False,
            max_age=86400,
        ),
        openapi_config=OpenAPIConfig(
            title="feedsvc",
            version=__version__,
            description="Analytical commentaries as RSS 2.0, Atom 1.0, JSON Feed 1.1 and a JSON API.",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", description="A token from `feedsvc token create`.")
                }
            ),
            path="/schema",
            # The schema only: no documentation UI. Litestar's UIs load unpinned scripts from
            # CDNs, and this origin is where editors paste write tokens; a UI run locally can
            # read /schema/openapi.json (it allows any origin).
            render_plugins=[JsonRenderPlugin(), YamlRenderPlugin()],
        ),
        request_max_body_size=settings.max_body_bytes,
        debug=False,
        logging_config=None,  # feedsvc.logs configures logging once per process, not per app
    )
    # Litestar routes HEAD only to explicit @head handlers; wrapping the handler that sits
    # before routing gives every GET route a HEAD twin with identical headers.
    # Rate limits sit outside routing and CORS: a refused request costs no more (issue 4).
    limiter = RateLimiter(settings, cors_headers=app.cors_config.simple_headers if app.cors_config else None)
    app.state["rate_limiter"] = limiter
    app.state["webhook_sender"] = sender
    app.on_shutdown.append(limiter.close)
    # Polls of current cached feeds are answered before routing, inside every layer that
    # must see them (feedsvc.http.fastpath).
    cached_feeds = fastpath.CachedFeeds(publisher, settings)
    app.asgi_handler = head_as_get(limiter.wrap(fastpath.serve_cached_feeds(app.asgi_handler, cached_feeds)))
    # URLs beyond the bounds are refused before any work, rate limits included; the same
    # pass decides each request's cost class (issue 19, feedsvc.http.cost).
    app.asgi_handler = cost.gate(app.asgi_handler)
    # Unknown hosts are refused before they cost a rate-limit token (issue 7).
    cors = [(k.lower().encode(), v.encode()) for k, v in app.cors_config.simple_headers.items()] if app.cors_config else []
    app.asgi_handler = harden(app.asgi_handler, settings.allowed_hosts, cors)
    # Outermost: request ids, access log and metrics see every answer, refusals included.
    app.asgi_handler = observe.observe(app.asgi_handler, metrics, log_requests=settings.access_log)
    # The same answers once more, below ASGI, for `feedsvc serve`'s protocol (feedsvc.http.front).
    app.state["front"] = front.Front(
        cached_feeds, limiter, metrics,
        allowed_hosts=settings.allowed_hosts, host_allowed=host_allowed, log_requests=settings.access_log,
        cors_headers=cors,
    )
    return app

