"""The home page, each weekly digest's page and how a commentary's page is rendered (its
address is feedsvc.http.routes.reading's), OPML, the feed stylesheet and the icon."""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from feedsvc.config import Settings
from feedsvc.digest import digest_name
from feedsvc.feeds.publisher import FeedPublisher
from feedsvc.feeds.views import ALL_LANGUAGES, FORMATS, FeedSpec
from feedsvc.http.common import HTML, Lang, Start, digest_lang, parse_start, responses
from feedsvc.http.conditional import conditional
from feedsvc.http.routes.embeds import index_snippets
from feedsvc.http.routes.site import PageCacheDep, from_cache, page_response, site_of
from feedsvc.model import Commentary
from feedsvc.paths import home_path
from feedsvc.query import Query
from feedsvc.render.browser import stylesheet
from feedsvc.render.html import FeedLink, commentary_page, digest_page, subscribe_section
from feedsvc.render.listing import Home, home_page
from feedsvc.render.messages import Messages, capitalised
from feedsvc.render.opml import Subscription, SubscriptionGroup, opml


def feed_link(publisher: NamedDependency[FeedPublisher], spec: FeedSpec, title: str | None = None) -> FeedLink:
    """A feed in every format; named ``title`` on the page (a label in the page's language)
    or else by the feed's own title."""
    return FeedLink(title=title or spec.title, urls={fmt: publisher.feed_url(spec, fmt) for fmt in FORMATS})


async def all_feeds(
    publisher: NamedDependency[FeedPublisher], m: Messages | None = None
) -> tuple[FeedLink, list[FeedLink], list[FeedLink]]:
    """The site feed, one feed per category (both in the primary language), and per
    language its commentary feed and its digest feed, in every format; named by their own
    titles, or with ``m`` as a page in its language names them."""
    base = Query(limit=publisher.feed_limit)
    primary = publisher.primary_lang
    site = feed_link(
        publisher, publisher.site_spec(base), m("everything_in", language=m.language(primary)) if m else None
    )
    categories = [
        feed_link(publisher, publisher.category_spec(c, base), c.name(m.tag) if m else None)
        for c in (await publisher.categories()).values()
    ]
    languages = [
        link
        for lang in sorted(await publisher.languages())
        for link in (
            feed_link(publisher, publisher.lang_spec(lang, base), capitalised(m.language(lang)) if m else None),
            feed_link(
                publisher, publisher.digest_spec(lang), f"{digest_name(m.tag)} ({m.language(lang)})" if m else None,
            ),
        )
    ]
    return site, categories, languages


async def subscriptions(publisher: FeedPublisher) -> list[SubscriptionGroup]:
    """What /feeds.opml lists (feedsvc.render.opml says why): per language with a public
    commentary, the primary one first, its commentary feed and its digest feed; the
    primary language's at their site-wide addresses (``/feed.rss``, ``/digest.rss``)."""
    base = Query(limit=publisher.feed_limit)
    primary = publisher.primary_lang
    langs = sorted((c.name for c in await publisher.service.get_languages()), key=lambda lang: (lang != primary, lang))
    groups = []
    for lang in langs:
        specs = (
            (publisher.site_spec(base), publisher.digest_spec(None))
            if lang == primary
            else (publisher.lang_spec(lang, base), publisher.digest_spec(lang))
        )
        groups.append(
            SubscriptionGroup(
                lang=lang,
                feeds=[
                    Subscription(spec.title, publisher.feed_url(spec, "rss"), publisher.base_url + spec.html_path)
                    for spec in specs
                ],
            )
        )
    return groups


@get(
    "/",
    summary="The home page: the latest commentaries, this week's digest, each category, every feed",
    tags=["pages"],
    include_in_schema=True,
    media_type=HTML,
    responses=responses(304, 503),
)
async def index(
    request: Request[Any, Any, Any],
    publisher: NamedDependency[FeedPublisher],
    settings: NamedDependency[Settings],
    pages: PageCacheDep,
    lang: Annotated[
        str | None,
        QueryParameter(description="BCP 47 tag: the language of labels and latest commentaries.", max_length=35),
    ] = None,
) -> Response[Any]:
    if (hit := await from_cache(request, pages, settings)) is not None:
        return hit
    lang = digest_lang(lang)
    page_lang = lang or publisher.primary_lang

    async def render() -> str:
        service = publisher.service
        m = Messages(lang)
        site_feed, category_feeds, language_feeds = await all_feeds(publisher, m)
        latest = await service.list_commentaries(Query(limit=10, lang=lang))
        head, subscribe = subscribe_section(
            lang=lang, base_url=publisher.base_url,
            site=site_feed, categories=category_feeds, languages=language_feeds,
            extra=[
                feed_link(publisher, publisher.digest_spec(None), digest_name(m.tag)),
                feed_link(publisher, publisher.all_spec(Query(limit=publisher.feed_limit)), m("all_commentaries")),
                feed_link(
                    publisher, publisher.digest_spec(ALL_LANGUAGES),
                    m("digest_all_languages", digest=digest_name(m.tag)),
                ),
            ],
            snippets=await index_snippets(service, settings, latest.items, lang),
        )
        categories = await publisher.categories()
        by_category = []
        for category in categories.values():
            items = await service.list_commentaries(Query(limit=3, lang=page_lang, categories=(category.slug,)))
            if items.items:
                by_category.append((category, items.items))
        digests = await service.list_digests(lang=page_lang, limit=1)
        others = sorted(other for other in await publisher.languages() if other != page_lang)
        view = Home(
            lang=m.tag, latest=latest.items, by_category=by_category,
            digest=digests.items[0] if digests.items else None,
            categories=categories,
            subscribe_html=subscribe, head=head,
            alternates=[(o, publisher.base_url + home_path(o, publisher.primary_lang)) for o in others],
        )
        return home_page(await site_of(publisher, settings), view)

    return await page_response(request, pages, settings, render)


@get(
    "/feeds.opml",
    summary="The feeds to subscribe to as OPML, one folder per language, for import into a feed reader",
    tags=["pages"],
    media_type="text/x-opml",
    responses=responses(304, 503),
)
async def feeds_opml(
    request: Request[Any, Any, Any], publisher: NamedDependency[FeedPublisher], settings: NamedDependency[Settings]
) -> Response[str]:
    text = opml(settings.title, await subscriptions(publisher))
    return conditional(
        request, text.encode(), media_type="text/x-opml",
        cache_control=f"public, max-age={settings.cache_max_age}",
    )


def _static(name: str) -> bytes:
    return resources.files("feedsvc.render").joinpath("static", name).read_bytes()


@get(
    "/feed.xsl",
    summary="The stylesheet that makes feeds readable in a browser",
    tags=["pages"],
    include_in_schema=False,
)
async def feed_xsl(request: Request[Any, Any, Any], settings: NamedDependency[Settings]) -> Response[bytes]:
    return conditional(request, stylesheet(), media_type="text/xsl", cache_control="public, max-age=86400")


@get("/icon.svg", summary="The feeds' icon", tags=["pages"], include_in_schema=False)
async def icon(request: Request[Any, Any, Any]) -> Response[bytes]:
    return conditional(request, _static("icon.svg"), media_type="image/svg+xml", cache_control="public, max-age=86400")


@get(
    "/digests/{start:str}",
    summary="A weekly digest's readable page",
    tags=["pages"],
    media_type="text/html",
    responses=responses(304, 400, 404, 503),
)
async def digest_html(
    request: Request[Any, Any, Any],
    publisher: NamedDependency[FeedPublisher],
    settings: NamedDependency[Settings],
    pages: PageCacheDep,
    start: Start,
    lang: Lang = None,
) -> Response[str]:
    if (hit := await from_cache(request, pages, settings)) is not None:
        return hit
    service = publisher.service
    digest = await service.get_digest(parse_start(start), lang=digest_lang(lang))

    async def render() -> str:
        versions = await service.get_digests_of(digest.period.start)
        name = digest_name(digest.lang)
        feeds = [
            feed_link(publisher, publisher.digest_spec(digest.lang), name),
            feed_link(
                publisher, publisher.digest_spec(ALL_LANGUAGES),
                Messages(digest.lang)("digest_all_languages", digest=name),
            ),
        ]
        older, newer = await service.digest_neighbours(digest)
        return digest_page(
            await site_of(publisher, settings), digest,
            others=[d for d in versions if d.lang != digest.lang], feeds=feeds,
            categories=await publisher.categories(), older=older, newer=newer,
        )

    return await page_response(request, pages, settings, render)


async def render_commentary(publisher: FeedPublisher, settings: Settings, item: Commentary) -> str:
    """A commentary's page: its feeds, oEmbed link and related commentaries."""
    service = publisher.service
    category = (await publisher.categories()).get(item.category) or await service.get_category(item.category)
    base = Query(limit=publisher.feed_limit)
    m = Messages(item.lang)
    feeds = [
        feed_link(
            publisher, publisher.category_spec(category, Query(limit=publisher.feed_limit, lang=item.lang)),
            category.name(item.lang),
        ),
        feed_link(publisher, publisher.lang_spec(item.lang, base), m("everything_in", language=m.language(item.lang))),
        feed_link(publisher, publisher.all_spec(base), m("all_commentaries")),
    ]
    oembed = f"{publisher.base_url}/oembed?" + urlencode({"url": service.page_url(item), "format": "json"})
    related = await service.get_related(item.id)
    return commentary_page(
        await site_of(publisher, settings), item, category=category, feeds=feeds, oembed_url=oembed, related=related,
    )


HANDLERS = [
    index,
    feeds_opml,
    feed_xsl,
    icon,
    digest_html,
]
