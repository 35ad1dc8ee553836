"""create_app: the composition root. Builds the store, service and Litestar app, and wires
them: routes (feedsvc.http.routes), dependencies, lifespan, error handlers and the layers
around the app (feedsvc.http.middleware, the rate limiter, the fast path, observe). No
import-time state, so tests build as many apps as they like, each with its own store."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router

from feedsvc import __version__
from feedsvc.bodies import BodyRenderer
from feedsvc.config import Settings
from feedsvc.digest import Schedule
from feedsvc.errors import FeedsvcError
from feedsvc.feeds.pages import PageCache
from feedsvc.feeds.publisher import FeedPublisher
from feedsvc.feeds.sitemaps import Sitemaps
from feedsvc.http import observe
from feedsvc.http.apicache import ApiPages
from feedsvc.http.common import provide_query
from feedsvc.http.cost import gate, route_names
from feedsvc.http.errorpages import html_errors
from feedsvc.http.errors import feedsvc_error_handler, http_error_handler, internal_error_handler
from feedsvc.http.fastpath import CachedFeeds, serve_cached_feeds
from feedsvc.http.front import Front
from feedsvc.http.middleware import harden, head_as_get, host_allowed
from feedsvc.http.openapi import NamedEnums, operation_id
from feedsvc.http.ratelimit import RateLimiter
from feedsvc.http.routes import api, apidocs, discovery, embeds, feeds, newsletter, ops, reading, writes
from feedsvc.http.routes import pages as page_routes
from feedsvc.http.routes import webhooks as webhook_routes
from feedsvc.http.shed import Shed
from feedsvc.http.wire import ClientLimits
from feedsvc.model import Commentary
from feedsvc.newsletter.compose import signer_from
from feedsvc.newsletter.issues import Issues
from feedsvc.newsletter.mailer import SmtpMailer
from feedsvc.newsletter.sending import IssueSender
from feedsvc.newsletter.subscribers import Newsletter
from feedsvc.push.targets import TargetPolicy
from feedsvc.push.webhooks import WebhookRegistry, WebhookSender
from feedsvc.push.websub import HubNotifier
from feedsvc.service import Service
from feedsvc.store import Store, open_store

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


def create_app(settings: Settings, store: Store | None = None) -> Litestar:
    """Build the application. The app opens ``store`` on start-up and closes it on shutdown;
    without one it opens the store ``settings.database_url`` names."""
    store = store if store is not None else open_store(settings.database_url, timeout=settings.database_timeout)
    bodies = BodyRenderer(workers=MARKDOWN_WORKERS, timeout=MARKDOWN_TIMEOUT, max_waiting=MARKDOWN_MAX_WAITING)
    service = Service(
        store, base_url=settings.base_url, require_if_match=settings.require_if_match, bodies=bodies,
        digest_schedule=Schedule(settings.timezone, settings.digest_hour),
    )
    publisher = FeedPublisher(
        service,
        title=settings.title,
        description=settings.description,
        feed_limit=settings.feed_limit,
        hubs=[settings.websub_hub] if settings.websub_hub else [],
        tag_authority=settings.tag_authority,
        primary_lang=settings.primary_language,
        stale_max_age=settings.stale_max_age,
    )

    sitemaps = Sitemaps(service, publication=settings.title)
    pages = PageCache(service)

    notifier = HubNotifier(settings.websub_hub) if settings.websub_hub else None
    if notifier is not None:
        hub = notifier

        async def ping_hub(before: Commentary | None, after: Commentary | None) -> None:
            hub.notify(
                await publisher.urls_affected(before, after) + await publisher.digest_urls_affected(before, after)
            )

        service.listeners.append(ping_hub)

        async def ping_digest_hub() -> None:
            # Digests are published by the clock: no write tells the hub about them.
            hub.notify(await publisher.digest_urls_affected(None, None))

        service.digest_listeners.append(ping_digest_hub)

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

    # The newsletter: off until FEEDSVC_MAIL_FROM names its sender.
    mailer = SmtpMailer(settings)
    mail = Newsletter(
        store, mailer, base_url=settings.base_url, site=settings.title, sender=settings.mail_from,
        proof_bits=settings.newsletter_proof_bits, signer=signer_from(settings),
    )
    issues = Issues(mail, service, mailer)
    mail_sender = IssueSender(
        store, issues, mailer, rate=settings.newsletter_rate, concurrency=settings.newsletter_concurrency,
        retry_delay=settings.newsletter_retry_delay, max_attempts=settings.newsletter_max_attempts,
        auto=settings.newsletter_send == "auto", poll_interval=settings.webhook_poll_interval,
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await store.open()
        bodies.start()
        if notifier is not None:
            await notifier.start()
        await sender.start()
        await mail_sender.start()
        try:
            yield
        finally:
            await sender.stop()
            await mail_sender.stop()
            await mail.drain()
            if notifier is not None:
                await notifier.stop(timeout=SHUTDOWN_DRAIN_SECONDS)
            await bodies.close()
            await store.close()

    async def provide_service() -> Service:
        return service

    async def provide_publisher() -> FeedPublisher:
        return publisher

    async def provide_sitemaps() -> Sitemaps:
        return sitemaps

    async def provide_pages() -> PageCache:
        return pages

    async def provide_settings() -> Settings:
        return settings

    async def provide_webhooks() -> WebhookRegistry:
        return webhooks

    async def provide_newsletter() -> Newsletter:
        return mail

    async def provide_issues() -> Issues:
        return issues

    async def provide_mail_sender() -> IssueSender:
        return mail_sender

    app = Litestar(
        route_handlers=[
            *api.HANDLERS,
            *writes.HANDLERS,
            *webhook_routes.HANDLERS,
            *newsletter.HANDLERS,
            *feeds.HANDLERS,
            *page_routes.HANDLERS,
            *reading.HANDLERS,
            *discovery.HANDLERS,
            *apidocs.HANDLERS,
            *embeds.HANDLERS,
            *ops.HANDLERS,
            create_static_files_router(path="/media", directories=[settings.media_dir], include_in_schema=False),
        ],
        dependencies={
            "service": Provide(provide_service, use_cache=True),
            "publisher": Provide(provide_publisher, use_cache=True),
            "sitemaps": Provide(provide_sitemaps, use_cache=True),
            "settings": Provide(provide_settings, use_cache=True),
            "pages": Provide(provide_pages, use_cache=True),
            "webhooks": Provide(provide_webhooks, use_cache=True),
            "newsletter": Provide(provide_newsletter, use_cache=True),
            "issues": Provide(provide_issues, use_cache=True),
            "mail_sender": Provide(provide_mail_sender, use_cache=True),
            "filters": Provide(provide_query),
        },
        state=State(
            {
                "service": service, "publisher": publisher, "sitemaps": sitemaps, "settings": settings, "pages": pages,
                "notifier": notifier, "metrics": metrics, "api_pages": ApiPages(),
                "newsletter": mail, "issues": issues,
                "mail_sender": mail_sender,
            }
        ),
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
            expose_headers=[
                "ETag",
                "Last-Modified",
                "Link",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "RateLimit-Policy",
            ],
            allow_credentials=False,
            max_age=86400,
        ),
        openapi_config=OpenAPIConfig(
            title="feedsvc",
            version=__version__,
            description="Analytical commentaries as RSS 2.0, Atom 1.0, JSON Feed 1.1 and a JSON API.",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http", scheme="bearer", description="A token from `feedsvc token create`."
                    )
                }
            ),
            path="/schema",
            # Client generators name their functions after these: `list_commentaries`, not
            # `ApiV1CommentariesListCommentaries`.
            operation_id_creator=operation_id,
            # The reference UI loads its scripts from this server (feedsvc.http.routes.apidocs),
            # pinned by the lock's hashes: nothing fetched from a CDN runs on the origin where
            # editors paste write tokens.
            render_plugins=[apidocs.swagger_plugin(), JsonRenderPlugin(), YamlRenderPlugin()],
        ),
        # The model's enumerations as components of the OpenAPI document (feedsvc.http.openapi).
        plugins=[NamedEnums()],
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
    cached_feeds = CachedFeeds(publisher, settings)
    # Past the fast path, every request does work: at most so many at once (feedsvc.http.shed).
    shed = Shed.from_settings(settings)
    app.state["shed"] = shed
    app.asgi_handler = head_as_get(limiter.wrap(serve_cached_feeds(shed.wrap(app.asgi_handler), cached_feeds)))
    # URLs beyond the bounds are refused before any work, rate limits included; the same
    # pass decides each request's cost class (feedsvc.http.cost).
    app.asgi_handler = gate(app.asgi_handler, route_names(app))
    # Unknown hosts are refused before they cost a rate-limit token (issue 7).
    cors = (
        [(k.lower().encode(), v.encode()) for k, v in app.cors_config.simple_headers.items()] if app.cors_config else []
    )
    app.asgi_handler = harden(app.asgi_handler, settings.allowed_hosts, cors)
    # Browsers see every error (the refusals above included) as a page with the same status.
    app.asgi_handler = html_errors(app.asgi_handler, settings)
    # Outermost: request ids, access log and metrics see every answer, refusals included.
    app.asgi_handler = observe.observe(app.asgi_handler, metrics, log_requests=settings.access_log)
    # The same answers once more, below ASGI, for `feedsvc serve`'s protocol (feedsvc.http.front).
    app.state["front"] = Front(
        cached_feeds, limiter, metrics,
        allowed_hosts=settings.allowed_hosts, host_allowed=host_allowed, log_requests=settings.access_log,
        cors_headers=cors, limits=ClientLimits.from_settings(settings), shed=shed,
    )
    return app
