"""How a feed is served: one place.

A poll of ``/feed.rss`` goes through these parts, in this order:

* feedsvc.feeds.views: which views exist (site, category, language and digest feeds in
  RSS, Atom and JSON Feed), their media types, and which are canonical (named by their
  path alone: the ones readers poll).
* feedsvc.feeds.publisher: ``FeedPublisher`` gives a view's document, from its cache while
  nothing the view shows changed (checked against the store's change sequence and the
  view's stamp), else rendered again; it remembers where canonical views were asked for,
  so ``FeedPublisher.cached`` can answer a poll without awaiting anything.
* feedsvc.feeds.fragments: the bytes of each feed item, rendered once and spliced into
  every document that shows it.
* feedsvc.feeds.documents: ``Rendered``, one document's bytes, its ETag and its gzip,
  brotli and HTML-page variants; ``pick_encoding`` chooses among them.

The pure rendering, (view, commentaries) -> bytes, is feedsvc.render. The HTTP side:
feedsvc.http.routes.feeds (the handlers: validators, 304s, the browser page),
feedsvc.http.fastpath (``CachedFeeds``: a poll of a current cached canonical view answered
before routing) and feedsvc.http.front (the same answered in uvicorn's protocol callback,
below ASGI). Knowing "nothing changed" without a query is the store's
(``Store.known_state``, kept by each engine).
"""
