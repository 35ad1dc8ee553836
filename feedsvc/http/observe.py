"""What an operator sees of each request: a request id, an access-log line, metrics.

``observe(app, metrics)`` is pure ASGI middleware, the outermost layer of the app, so it
sees every answer (rate-limit refusals and errors included) at the cost of a few
microseconds: no Litestar request object, no dependency injection. Per request it

* takes the id from ``X-Request-ID`` when that is 1-128 characters of ``[A-Za-z0-9._-]``,
  else makes one (16 hex digits), and echoes it in the ``X-Request-ID`` response header;
* logs one line to the ``feedsvc.access`` logger (format: feedsvc.logs): never a header
  or a body, and the query string with the values of credential-like keys and anything
  shaped like a token (``fsv_...``) masked;
* counts the request by route template (``/api/v1/commentaries/{id}``, never the raw
  path, so the number of series stays bounded; ``unmatched`` when no route answered: a
  404, a 405, or a refusal before routing such as a 429), method and status, and times it.

``GET /metrics`` (feedsvc.http.routes.ops) serves ``Metrics.registry`` in the Prometheus text format to a bearer token
with the ``metrics:read`` scope (or ``admin``): route names, error rates and store timings
tell an attacker what hurts, so they are not public. Each app has a
registry of its own, so tests build many apps; with several server workers each process
counts its own requests and a scrape reaches one of them (docs/operating.md, "Metrics").
"""

from __future__ import annotations

import inspect
import logging
import random
import re
from bisect import bisect_left
from collections.abc import Callable, Coroutine, Iterable
from itertools import accumulate
from time import perf_counter, time
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from litestar.enums import ScopeType
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from feedsvc import __version__, logs
from feedsvc.errors import FeedsvcError
from feedsvc.http.shed import STATUS as SHED_STATUS
from feedsvc.logs import REQUEST_ID, redact
from feedsvc.store import Store

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from feedsvc.feeds.publisher import FeedPublisher
    from feedsvc.push.websub import HubNotifier

log = logging.getLogger("feedsvc.http")
access_log = logging.getLogger("feedsvc.access")

CONTENT_TYPE = "text/plain; version=0.0.4"
"""The classic text format (Litestar adds ``charset=utf-8``): every Prometheus version reads
it, and the metric names here need none of the newer format's escaping."""

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SECRET_KEYS = frozenset({
    "token", "access_token", "refresh_token", "id_token", "api_key", "apikey", "key", "secret",
    "client_secret", "password", "passwd", "auth", "authorization", "signature", "sig",
})
"""Query-string keys whose values never reach a log line."""
MAX_LOGGED_PATH = 2000

_random_bits = random.getrandbits
_valid_request_id = re.compile(rb"[A-Za-z0-9._-]{1,128}").fullmatch
STORE_OPERATIONS = tuple(
    name for name, member in inspect.getmembers(Store, inspect.iscoroutinefunction) if not name.startswith("_")
)
"""The Store protocol's coroutine methods, those of every capability it unites: what
``Metrics.time_store`` times."""


class _StatsCollector(Collector):
    """Counters the feed cache and the WebSub notifier keep themselves, read at scrape time."""

    def __init__(self, publisher: FeedPublisher, notifier: HubNotifier | None) -> None:
        self.publisher = publisher
        self.notifier = notifier

    def collect(self) -> Iterable[Metric]:
        feeds = self.publisher.stats
        yield CounterMetricFamily(
            "feedsvc_feed_cache_hits", "Feed documents served from the cache, nothing changed since.", value=feeds.hits
        )
        yield CounterMetricFamily(
            "feedsvc_feed_cache_revalidations",
            "Cache misses where the change was elsewhere: the cached document was kept.",
            value=feeds.revalidated,
        )
        yield CounterMetricFamily(
            "feedsvc_feed_renders", "Cache misses that rendered the document again.", value=feeds.renders
        )
        yield CounterMetricFamily(
            "feedsvc_feed_cache_early_hits",
            "Cache hits answered before routing (current canonical feeds without a query string).",
            value=feeds.early,
        )
        yield CounterMetricFamily(
            "feedsvc_feed_cache_stale",
            "Cached feed documents served, marked stale, while the database could not be reached.",
            value=feeds.stale,
        )
        if self.notifier is not None:
            hub = self.notifier.stats
            pings = CounterMetricFamily(
                "feedsvc_websub_pings", "WebSub publish pings by final outcome.", labels=["outcome"]
            )
            pings.add_metric(["sent"], hub.sent)
            pings.add_metric(["failed"], hub.failed)
            yield pings
            yield CounterMetricFamily(
                "feedsvc_websub_retries", "WebSub ping attempts that failed and were retried.", value=hub.retried
            )


class _Requests(Collector):
    """Requests by route template, method and status, and their durations, kept as plain
    numbers and turned into metric families at scrape time. Through prometheus-client's
    labelled children a request cost about 2.4 µs (a lock per counter, per histogram bucket):
    a tenth of a cached feed poll's whole cost (feedsvc.http.front). Only the event loop's
    thread records and scrapes, so nothing here needs a lock."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        # Per route: a count per bucket of REQUEST_BUCKETS, then beyond the last, then the sum.
        self.durations: dict[str, list[float]] = {}
        self.not_modified = 0

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        key = (route, method if method in METHODS else "other", status)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        slots = self.durations.get(route)
        if slots is None:
            slots = self.durations[route] = [0.0] * (len(REQUEST_BUCKETS) + 2)
        slots[bisect_left(REQUEST_BUCKETS, seconds)] += 1
        slots[-1] += seconds
        if status == 304:
            self.not_modified += 1

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "feedsvc_http_requests", "HTTP requests by route template, method and status.",
            labels=["route", "method", "status"],
        )
        for (route, method, status), n in sorted(self.counts.items()):
            requests.add_metric([route, method, str(status)], n)
        yield requests
        duration = HistogramMetricFamily(
            "feedsvc_http_request_duration_seconds",
            "Time from the request reaching the app to the last byte of its answer, by route template.",
            labels=["route"],
        )
        for route, slots in sorted(self.durations.items()):
            cumulative = list(accumulate(slots[:-1]))
            # cumulative ends with the +Inf count, which has no bound: the shorter bounds stop the zip.
            buckets = [(repr(b), n) for b, n in zip(REQUEST_BUCKETS, cumulative, strict=False)]
            duration.add_metric([route], [*buckets, ("+Inf", cumulative[-1])], sum_value=slots[-1])
        yield duration
        yield CounterMetricFamily(
            "feedsvc_http_not_modified", "Answers that were 304 Not Modified.", value=self.not_modified
        )


class Metrics:
    """The registry of one app and the instruments the middleware and the store feed."""

    def __init__(self, store: Store, publisher: FeedPublisher, notifier: HubNotifier | None = None) -> None:
        self.store = store
        # Process-wide switch of prometheus-client: no `_created` twin of every counter and
        # histogram series (Prometheus ignores them in the text format anyway).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = _Requests()
        r.register(self.requests)
        self.in_progress = Gauge("feedsvc_http_requests_in_progress", "Requests being answered now.", registry=r)
        self.store_duration = Histogram(
            "feedsvc_db_operation_duration_seconds",
            "Time of each store operation (its queries, and waiting for a connection or the write lock).",
            ["operation"], buckets=STORE_BUCKETS, registry=r,
        )
        self.refused = Counter(
            "feedsvc_http_refused_total",
            "Requests refused, or connections cut, by the server's client limits, by status"
            " (408 timeouts, 414/431 heads too large, 400/501/505 heads RFC 9112 refuses, 503 too many connections).",
            ["status"], registry=r,
        )
        self.change_sequence = Gauge("feedsvc_change_sequence", "The newest change sequence number.", registry=r)
        self.database_up = Gauge("feedsvc_database_up", "1 if the last scrape could read the database.", registry=r)
        info = Gauge("feedsvc_build_info", "Always 1; the feedsvc version as a label.", ["version"], registry=r)
        info.labels(__version__).set(1)
        ProcessCollector(registry=r)
        r.register(_StatsCollector(publisher, notifier))
        self.record = self.requests.record

    def time_store(self, store: Store) -> None:
        """Time every coroutine method of the Store protocol on ``store`` (by wrapping it on
        the instance, so the backends need no hook and stay what they are)."""
        for name in STORE_OPERATIONS:
            method = getattr(store, name, None)
            if method is not None:
                setattr(store, name, _timed(method, self.store_duration, name))

    async def scrape(self) -> bytes:
        """The registry in the Prometheus text format, with the change sequence read now."""
        try:
            state = await self.store.get_state()
        except FeedsvcError as e:
            log.warning("metrics: cannot read the change sequence: %s", e.message)
            self.database_up.set(0)
        else:
            self.change_sequence.set(state.seq)
            self.database_up.set(1)
        return generate_latest(self.registry)


def _timed(
    method: Callable[..., Coroutine[Any, Any, Any]], histogram: Histogram, name: str
) -> Callable[..., Coroutine[Any, Any, Any]]:
    child: Any = None  # made on first use: operations never called add no series

    async def timed(*args: Any, **kwargs: Any) -> Any:
        nonlocal child
        started = perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            if child is None:
                child = histogram.labels(name)
            child.observe(perf_counter() - started)

    return timed


# --- the middleware -----------------------------------------------------------------------


def request_id_from(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-ID`` if it is acceptable, else a new random id."""
    for name, value in headers:
        if name == b"x-request-id":
            if _valid_request_id(value):
                return value.decode("ascii")
            break
    # A correlation id, not a secret: the process's seeded PRNG (reseeded in forked
    # children) instead of os.urandom, a getrandom() system call, 6 % of a 304's time.
    return f"{_random_bits(64):016x}"


def loggable_path(path: str, query_string: bytes) -> str:
    """The path and query for a log line: credential-like values and tokens masked, capped."""
    if query_string:
        parts = []
        for part in query_string.decode("latin-1").split("&"):
            key, sep, _ = part.partition("=")
            if sep and unquote(key).strip().lower() in SECRET_KEYS:
                part = f"{key}=[redacted]"
            parts.append(part)
        path = f"{path}?{'&'.join(parts)}"
    path = redact(path)
    return path if len(path) <= MAX_LOGGED_PATH else path[:MAX_LOGGED_PATH] + "…"


def log_access(
    method: str, path: str, query_string: bytes, route: str, status: int, sent: int, elapsed: float,
    request_id: str, client: tuple[str, int] | None,
) -> None:
    """One access-log line (when the ``feedsvc.access`` logger takes INFO): queued for
    feedsvc.logs' writer thread when feedsvc set up logging, else a logging record."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    path = loggable_path(path, query_string)
    writer = logs.access_writer
    if writer is not None:
        writer.add((time(), method, path, route, status, sent, elapsed, request_id, client[0] if client else None))
        return
    # makeRecord + handle: what .info() does, without walking the stack for a caller
    # nobody reads (a fifth of the cost of the line).
    access_log.handle(access_log.makeRecord(
        access_log.name, logging.INFO, "(access)", 0, "%s %s %d %dB %.2fms",
        (method, path, status, sent, elapsed * 1000), None,
        extra={"http": {
            "method": method, "route": route, "path": path, "status": status,
            "duration_ms": round(elapsed * 1000, 3), "bytes": sent, "request_id": request_id,
            "client": client[0] if client else None,
        }},
    ))


def observe(app: ASGIApp, metrics: Metrics, *, log_requests: bool = True) -> ASGIApp:
    """Wrap ``app``: request id, access log (when ``log_requests``), metrics."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = perf_counter()
        method = scope["method"]
        path = scope["path"]  # routing rewrites it inside mounts (/media/...)
        request_id = request_id_from(scope["headers"])
        echoed = (b"x-request-id", request_id.encode("ascii"))
        status = 0
        sent = 0

        async def send_observed(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), echoed]}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        context = REQUEST_ID.set(request_id)
        metrics.in_progress.inc()
        try:
            await app(scope, receive, send_observed)
        finally:
            elapsed = perf_counter() - started
            metrics.in_progress.dec()
            if not status:
                # Never answered: dropped for a client that had gone (feedsvc.http.shed says
                # 499), else what the server answers when the app starts no response.
                status = int(cast(dict[str, Any], scope).get(SHED_STATUS, 500))
            # Litestar writes the matched route's template into the scope it was given.
            route = scope.get("path_template") or UNMATCHED
            metrics.record(route, method, status, elapsed)
            if log_requests:
                log_access(method, path, scope.get("query_string", b""), route, status, sent, elapsed,
                           request_id, scope.get("client"))
            REQUEST_ID.reset(context)

    middleware.__wrapped__ = app  # type: ignore[attr-defined]  # bench.servers measures without it
    return middleware
