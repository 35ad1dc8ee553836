"""create_app: the composition root. Builds the store, service and Litestar app; no
import-time state, so tests build as many apps as they like, each with its own store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from litestar import Litestar
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from feedsvc import __version__
from feedsvc.config import Settings
from feedsvc.errors import FeedsvcError
from feedsvc.feeds import FeedPublisher
from feedsvc.http import embed, feeds, pages, read, write
from feedsvc.http.errors import feedsvc_error_handler, http_error_handler, internal_error_handler
from feedsvc.model import Commentary
from feedsvc.push.websub import HubNotifier
from feedsvc.service import Service

# On shutdown, queued hub pings get this long to go out before the process exits.
SHUTDOWN_DRAIN_SECONDS = 5.0
from feedsvc.store import Store, open_store


def head_as_get(app: ASGIApp) -> ASGIApp:
    """Answer HEAD on every GET route: run the GET, keep its headers, drop its body."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await app({**scope, "method": "GET"}, receive, send_headers_only)  # type: ignore[typeddict-item]

    return middleware


def create_app(settings: Settings, store: Store | None = None) -> Litestar:
    """Build the application. The app opens ``store`` on start-up and closes it on shutdown;
    without one it opens the store ``settings.database_url`` names."""
    store = store if store is not None else open_store(settings.database_url)
    service = Service(store, base_url=settings.base_url, require_if_match=settings.require_if_match)
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
            hub.notify(await publisher.urls_affected(before, after))

        service.listeners.append(ping_hub)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await store.open()
        if notifier is not None:
            await notifier.start()
        try:
            yield
        finally:
            if notifier is not None:
                await notifier.stop(timeout=SHUTDOWN_DRAIN_SECONDS)
            await store.close()

    async def provide_service() -> Service:
        return service

    async def provide_publisher() -> FeedPublisher:
        return publisher

    async def provide_settings() -> Settings:
        return settings

    app = Litestar(
        route_handlers=[
            *read.HANDLERS,
            *write.HANDLERS,
            *feeds.HANDLERS,
            *pages.HANDLERS,
            *embed.HANDLERS,
            create_static_files_router(path="/media", directories=[settings.media_dir], include_in_schema=False),
        ],
        dependencies={
            "service": Provide(provide_service, use_cache=True),
            "publisher": Provide(provide_publisher, use_cache=True),
            "settings": Provide(provide_settings, use_cache=True),
            "filters": Provide(read.provide_query),
        },
        state=State({"service": service, "publisher": publisher, "settings": settings, "notifier": notifier}),
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
            expose_headers=["ETag", "Last-Modified", "Link", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"],
            allow_credentials=False,
            max_age=86400,
        ),
        allowed_hosts=AllowedHostsConfig(allowed_hosts=list(settings.allowed_hosts)) if settings.allowed_hosts else None,
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
        ),
        request_max_body_size=settings.max_body_bytes,
        debug=False,
    )
    # Litestar routes HEAD only to explicit @head handlers; wrapping the handler that sits
    # before routing gives every GET route a HEAD twin with identical headers.
    app.asgi_handler = head_as_get(app.asgi_handler)
    return app

