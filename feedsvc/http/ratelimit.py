"""Polite polling: per-client rate limits, as pure ASGI middleware (issue 4, part 5).

Every request has a cost (feedsvc.http.cost decides it, once, from the decoded URL): a
bucket it is charged to and a weight, the tokens it takes. Each (client, bucket) pair has
a bucket:

    (probes, /healthz and /readyz, have none: never limited)
    feeds    feeds, HTML pages, the embed views, static files, /schema, CORS
             preflights, and every answer that is a 304. A poll of a feed at its own
             address takes 1 token; a page, an embed view or a feed with filters or an
             archive cursor (a render, usually) takes ``RENDER_WEIGHT``
    read     the JSON API (/api/...)
    search   any GET with a non-empty ``q`` (full-text search), API or feed; ``?%71=`` is ``q=``
    subscribe  newsletter sign-ups (``POST /api/v1/subscriptions``), always per address
    write    every other method but GET, HEAD and OPTIONS

The RateLimit headers count tokens (the draft's "quota units"), so they stay exact when a
request takes several.

The buckets follow GCRA (the generic cell rate algorithm): a token bucket of ``burst``
tokens refilled at ``count`` per period, kept as one number per bucket, the "theoretical
arrival time" after which the bucket is full again. A full bucket needs no record at all,
so idle clients cost nothing. Rates are settings in the form ``COUNT/UNIT[,BURST]``
(``20/s,200``, ``10/min``; ``0`` switches a class off).

A conditional request (``If-None-Match`` / ``If-Modified-Since``) to the API spends a
``feeds`` token and only needs the class bucket to be non-empty; if the answer turns out
not to be a 304 it is charged to its class afterwards. A 304 therefore costs as little as
a feed, and a client cannot escape the API budget with made-up validators.

The client is the token id when the request carries a bearer token this process has seen
authenticate (``fsv_<id>_...``; the id is not secret and is read without touching the
database), else the connection's address (an IPv6 address by its /64). Only a token seen
to be valid counts, so a client cannot get a fresh budget per request by inventing token
ids. Failed authentications (401 and 403 answers) are counted per address in a separate
bucket; when it is empty, writes and requests carrying credentials from that address get
429 until it refills.

Buckets live in this process (bounded: idle buckets are swept, the least recently used
go first beyond ``MAX_BUCKETS``) or, when ``FEEDSVC_REDIS_URL`` is set, in Redis, updated
by one Lua script per request (EVALSHA) on Redis' clock, so that several nodes share one
budget. When Redis cannot be reached the limiter fails open: requests are served without
limits or RateLimit headers, and a warning is logged at most once a minute.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import msgspec
from litestar.enums import ScopeType

from feedsvc.config import Settings
from feedsvc.errors import InvalidInputError
from feedsvc.http.cost import FEEDS, POLL, PROBE, READ, SEARCH, SUBSCRIBE, WRITE, Cost, cost_of
from feedsvc.http.errors import ErrorBody

if TYPE_CHECKING:
    from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

log = logging.getLogger("feedsvc.ratelimit")

AUTH = "auth"

MAX_BUCKETS = 100_000
"""In-memory buckets kept at most; beyond it the least recently used (nearly full) go."""
SWEEP_SECONDS = 60.0
"""How often the in-memory store drops the buckets that have refilled completely."""
MAX_VERIFIED_TOKENS = 10_000
"""Token ids remembered as valid, for keying budgets by token."""
REDIS_TIMEOUT_SECONDS = 0.25
"""Connect and socket timeout for Redis; past it the request is served unlimited."""
REDIS_PAUSE_SECONDS = 2.0
"""After a Redis failure, requests skip Redis (and are served unlimited) this long."""
WARN_EVERY_SECONDS = 60.0

_UNITS = {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*(?:,\s*(\d+)\s*)?$")
_TOKEN_ID = re.compile(rb"^fsv_([A-Za-z0-9]{1,32})_.")


# --- rates --------------------------------------------------------------------------------


class Rate(NamedTuple):
    """``requests`` per ``period`` seconds, with bursts of up to ``burst``."""

    requests: int
    period: float
    burst: int

    @property
    def interval(self) -> float:
        """Seconds one token takes to come back."""
        return self.period / self.requests

    @property
    def window(self) -> int:
        """Seconds an empty bucket takes to fill (the ``w`` of RateLimit-Policy)."""
        return max(1, math.ceil(self.burst * self.interval))


def parse_rate(text: str, setting: str) -> Rate | None:
    """Read ``COUNT/UNIT[,BURST]`` (unit ``s``, ``min`` or ``h``; burst defaults to COUNT);
    ``0`` means no limit (None). InvalidInputError names ``setting`` otherwise."""
    if text.strip() == "0":
        return None
    match = _RATE.match(text.lower())
    if not match or match.group(2) not in _UNITS or int(match.group(1)) < 1:
        raise InvalidInputError(f"{setting} must look like '20/s,200' or '10/min' (or 0 for no limit), not {text!r}")
    requests = int(match.group(1))
    burst = int(match.group(3)) if match.group(3) else requests
    if burst < 1:
        raise InvalidInputError(f"{setting}: the burst must be at least 1")
    return Rate(requests, _UNITS[match.group(2)], burst)


# --- bucket stores ------------------------------------------------------------------------

TAKE, CHECK, FORCE = 0, 1, 2
"""Operations on a bucket: TAKE a token (refused when none is left), CHECK that one is
left without taking it, FORCE-take one after the fact (never refused; stops at empty)."""


class Op(NamedTuple):
    key: str
    rate: Rate
    mode: int
    weight: int = 1
    """Tokens the operation takes (or checks are there)."""


class Verdict(NamedTuple):
    allowed: bool
    remaining: int
    reset: float
    """Seconds until the bucket is full again."""
    retry_after: float
    """Seconds until a token is back (0 when allowed)."""


class BucketStore(Protocol):
    async def apply(self, ops: list[Op]) -> list[Verdict] | None:
        """Apply ``ops`` atomically: TAKEs happen only if every TAKE and CHECK is allowed;
        FORCEs always happen. None when the store is unavailable (serve unlimited)."""

    async def close(self) -> None: ...


def _gcra(tat: float, now: float, rate: Rate, mode: int, weight: int = 1) -> tuple[float, Verdict]:
    """One bucket step of ``weight`` tokens; ``tat`` is when the bucket is full again.
    Returns the new tat."""
    interval = rate.interval
    cost = weight * interval
    cap = rate.burst * interval
    tat = max(tat, now)
    new, allowed = tat, True
    if mode == TAKE:
        new = tat + cost
        if new - now > cap + 1e-9:
            new, allowed = tat, False
    elif mode == CHECK:
        allowed = tat + cost - now <= cap + 1e-9
    else:
        new = min(tat + cost, now + cap)
    remaining = math.floor((cap - (new - now)) / interval + 1e-9)
    retry = 0.0 if allowed else tat + cost - now - cap
    return new, Verdict(allowed, max(0, remaining), new - now, retry)


class MemoryBuckets:
    """Buckets in this process: a dict of full-again times, in least-recently-used order."""

    def __init__(self, *, max_buckets: int = MAX_BUCKETS, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_buckets = max_buckets
        self.clock = clock
        self.tats: OrderedDict[str, float] = OrderedDict()
        self._next_sweep = clock() + SWEEP_SECONDS

    async def apply(self, ops: list[Op]) -> list[Verdict]:
        return self.apply_now(ops)

    def apply_now(self, ops: list[Op]) -> list[Verdict]:
        """``apply`` without a coroutine: nothing here waits (feedsvc.http.front needs that)."""
        now = self.clock()
        if now >= self._next_sweep:
            self.sweep(now)
        steps = [_gcra(self.tats.get(op.key, now), now, op.rate, op.mode, op.weight) for op in ops]
        ok = all(v.allowed for _, v in steps)
        for op, (new, _) in zip(ops, steps, strict=True):
            if op.mode == FORCE or (ok and op.mode == TAKE):
                self.tats[op.key] = new
                self.tats.move_to_end(op.key)
        while len(self.tats) > self.max_buckets:
            self.tats.popitem(last=False)
        return [v for _, v in steps]

    def sweep(self, now: float) -> None:
        """Forget the buckets that are full again: they behave exactly like absent ones."""
        for key in [k for k, tat in self.tats.items() if tat <= now]:
            del self.tats[key]
        self._next_sweep = now + SWEEP_SECONDS

    async def close(self) -> None:
        self.tats.clear()


# GCRA over several buckets at once, on Redis' own clock (microseconds), so that every node
# agrees. ARGV holds (interval_us, burst, mode, weight) per key; returns (allowed, remaining,
# reset_us, retry_us) per key. Numbers are written with %.0f: Lua's default formatting
# keeps 14 digits, too few for microseconds since 1970.
LUA_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ok, news, out = true, {}, {}
for i = 1, #KEYS do
  local interval, burst, mode = tonumber(ARGV[4*i-3]), tonumber(ARGV[4*i-2]), tonumber(ARGV[4*i-1])
  local cost = interval * tonumber(ARGV[4*i])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  local cap = burst * interval
  local new, allowed = tat, 1
  if mode == 0 then
    new = tat + cost
    if new - now > cap then new, allowed = tat, 0 end
  elseif mode == 1 then
    if tat + cost - now > cap then allowed = 0 end
  else
    new = math.min(tat + cost, now + cap)
  end
  if allowed == 0 then ok = false end
  news[i] = new
  out[4*i-3] = allowed
  out[4*i-2] = math.floor((cap - (new - now)) / interval)
  out[4*i-1] = new - now
  out[4*i] = (allowed == 1) and 0 or (tat + cost - now - cap)
end
for i = 1, #KEYS do
  local mode = tonumber(ARGV[4*i-1])
  if mode == 2 or (ok and mode == 0) then
    redis.call('SET', KEYS[i], string.format('%.0f', news[i]), 'PX', math.ceil((news[i] - now) / 1000) + 1)
  end
end
return out
"""


class RedisBuckets:
    """Buckets in Redis, shared by every node that names the same server and prefix."""

    def __init__(self, url: str, *, prefix: str) -> None:
        try:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError as e:  # pragma: no cover - redis is a dependency
            raise InvalidInputError("FEEDSVC_REDIS_URL needs the redis package: pip install 'redis>=5'") from e
        self.prefix = prefix
        self.client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        self.script = self.client.register_script(LUA_GCRA)
        self._paused_until = 0.0
        self._warned_at = -math.inf

    async def apply(self, ops: list[Op]) -> list[Verdict] | None:
        now = time.monotonic()
        if now < self._paused_until:
            return None
        args: list[Any] = []
        for op in ops:
            args += [max(1, round(op.rate.interval * 1e6)), op.rate.burst, op.mode, op.weight]
        try:
            raw = await self.script(keys=[self.prefix + op.key for op in ops], args=args)
        except Exception as e:  # noqa: BLE001 - any failure of Redis means "serve unlimited"
            self._paused_until = now + REDIS_PAUSE_SECONDS
            if now - self._warned_at >= WARN_EVERY_SECONDS:
                self._warned_at = now
                log.warning("rate limits are off: Redis is unavailable (%s: %s)", type(e).__name__, e)
            return None
        return [
            Verdict(bool(raw[i]), max(0, int(raw[i + 1])), int(raw[i + 2]) / 1e6, int(raw[i + 3]) / 1e6)
            for i in range(0, len(raw), 4)
        ]

    async def close(self) -> None:
        await self.client.aclose()


# --- the middleware -----------------------------------------------------------------------


def client_address(scope: Scope) -> str:
    """The connection's address as the server saw it; IPv6 by its /64, which one host
    usually holds whole. Behind a reverse proxy this is the proxy, unless the server
    rewrites it (uvicorn does from X-Forwarded-For for FORWARDED_ALLOW_IPS)."""
    return address_of(scope.get("client"))


def address_of(client: tuple[str, int] | None) -> str:
    """``client_address`` of an ASGI ``client`` pair."""
    host = client[0] if client else "unknown"
    if ":" in host:
        try:
            ip = ipaddress.IPv6Address(host)
        except ValueError:
            return host
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return host


_encode_error = msgspec.json.Encoder().encode


class RateLimiter:
    """Per-client budgets for every request; ``wrap`` puts it around an ASGI app.

    Args:
        settings: the ``rate_limit_*`` and ``redis_*`` settings.
        cors_headers: headers for a 429 to a cross-origin request (it is answered before the
            app's CORS layer, and a script must be able to read it).
        store: a bucket store; by default Redis when ``redis_url`` is set, else in memory.
    """

    def __init__(
        self, settings: Settings, *, cors_headers: Mapping[str, str] | None = None, store: BucketStore | None = None
    ) -> None:
        self.rates: dict[str, Rate | None] = {
            FEEDS: parse_rate(settings.rate_limit_feeds, "FEEDSVC_RATE_LIMIT_FEEDS"),
            READ: parse_rate(settings.rate_limit_read, "FEEDSVC_RATE_LIMIT_READ"),
            SEARCH: parse_rate(settings.rate_limit_search, "FEEDSVC_RATE_LIMIT_SEARCH"),
            WRITE: parse_rate(settings.rate_limit_write, "FEEDSVC_RATE_LIMIT_WRITE"),
            SUBSCRIBE: parse_rate(settings.rate_limit_subscribe, "FEEDSVC_RATE_LIMIT_SUBSCRIBE"),
            AUTH: parse_rate(settings.rate_limit_auth_failures, "FEEDSVC_RATE_LIMIT_AUTH_FAILURES"),
        }
        if store is None:
            store = (
                RedisBuckets(settings.redis_url, prefix=settings.redis_prefix)
                if settings.redis_url
                else MemoryBuckets()
            )
        self.store = store
        self.cors_headers = [(k.lower().encode(), v.encode()) for k, v in (cors_headers or {}).items()]
        self.verified: OrderedDict[str, None] = OrderedDict()
        self.enabled = any(rate is not None for rate in self.rates.values())

    async def close(self) -> None:
        await self.store.close()

    def charge_poll_now(self, cost: Cost, client: tuple[str, int] | None) -> list[tuple[bytes, bytes]] | None:
        """What ``wrap`` does for a GET of a feed that carries no credentials, done without
        awaiting (for feedsvc.http.front): take the client's ``feeds`` token and return the
        RateLimit headers to add (none when feeds are not limited). ``cost`` is what
        feedsvc.http.cost.classify says of the request. None when only ``wrap`` can answer:
        the request is not a poll, the buckets are shared (Redis), or the token was refused
        (a refused TAKE changes no bucket, so ``wrap`` then refuses the same request with
        its 429)."""
        if cost != POLL:
            return None
        rate = self.rates[FEEDS]
        if not self.enabled or rate is None:
            return []
        store = self.store
        if not isinstance(store, MemoryBuckets):
            return None
        op = Op(f"{FEEDS}:a:{address_of(client)}", rate, TAKE, cost.weight)
        verdict = store.apply_now([op])[0]
        return _headers(op, verdict) if verdict.allowed else None

    def wrap(self, app: ASGIApp) -> ASGIApp:
        if not self.enabled:
            return app

        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            await self._handle(app, scope, receive, send)

        return middleware

    async def _handle(self, app: ASGIApp, scope: HTTPScope, receive: Receive, send: Send) -> None:
        cost = cost_of(scope)
        if cost == PROBE:  # an orchestrator's probe: refusing it would restart a busy process
            await app(scope, receive, send)
            return
        method = scope["method"]
        token_id: str | None = None
        has_credentials = conditional = has_origin = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                has_credentials = True
                scheme, _, rest = value.strip().partition(b" ")
                match = _TOKEN_ID.match(rest.strip()) if scheme.lower() == b"bearer" else None
                token_id = match.group(1).decode() if match else None
            elif name in (b"if-none-match", b"if-modified-since"):
                conditional = method in ("GET", "HEAD")
            elif name == b"origin":
                has_origin = True
        cls, weight = cost.bucket, cost.weight
        address = client_address(scope)
        # Sign-ups are counted per address even with a token: a token is no licence to mail strangers.
        verified = token_id is not None and token_id in self.verified and cls != SUBSCRIBE
        client = f"t:{token_id}" if verified else f"a:{address}"
        rates = self.rates
        cls_rate, feeds_rate, auth_rate = rates[cls], rates[FEEDS], rates[AUTH]
        # A conditional API request only checks its class bucket; it is charged there once
        # the answer is known not to be a 304.
        deferred = conditional and cls != FEEDS and cls_rate is not None
        cls_key, auth_key = f"{cls}:{client}", f"{AUTH}:a:{address}"

        ops: list[Op] = []
        if deferred and feeds_rate is not None:
            ops.append(Op(f"{FEEDS}:{client}", feeds_rate, TAKE))
        if cls_rate is not None:
            ops.append(Op(cls_key, cls_rate, CHECK if deferred else TAKE, weight))
        if auth_rate is not None and (has_credentials or cls in (WRITE, SUBSCRIBE)):
            ops.append(Op(auth_key, auth_rate, CHECK))
        if not ops:
            await app(scope, receive, send)
            return

        verdicts = await self.store.apply(ops)
        if verdicts is None:  # the store is unavailable: fail open
            await app(scope, receive, send)
            return
        for op, verdict in zip(ops, verdicts, strict=True):
            if not verdict.allowed:
                await self._refuse(send, op, verdict, has_origin)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                after: list[Op] = []
                if deferred and status != 304:
                    after.append(Op(cls_key, cls_rate, FORCE, weight))  # type: ignore[arg-type]
                if status in (401, 403) and auth_rate is not None:
                    after.append(Op(auth_key, auth_rate, FORCE))
                if status == 401 and token_id is not None:
                    self.verified.pop(token_id, None)  # revoked or expired since
                later = await self.store.apply(after) if after else []
                extra: list[tuple[bytes, bytes]] = []
                if deferred and status != 304:
                    extra = _headers(after[0], later[0]) if later else []
                elif ops[0].key != auth_key:  # the feeds bucket for a 304, else the class's
                    extra = _headers(ops[0], verdicts[0])
                if extra:
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await app(scope, receive, send_with_headers)
        self._learn(scope, token_id)

    def _learn(self, scope: Scope, token_id: str | None) -> None:
        """Remember a token id the app authenticated (the write guard leaves the token's
        record in the request state), so its budget follows the token from now on."""
        if token_id is None:
            return
        info = (scope.get("state") or {}).get("token")
        if info is not None and getattr(info, "id", None) == token_id:
            self.verified[token_id] = None
            self.verified.move_to_end(token_id)
            if len(self.verified) > MAX_VERIFIED_TOKENS:
                self.verified.popitem(last=False)

    async def _refuse(self, send: Send, op: Op, verdict: Verdict, has_origin: bool) -> None:
        retry = max(1, math.ceil(verdict.retry_after))
        cls = op.key.split(":", 1)[0]
        if cls == AUTH:
            detail = f"too many failed authentications from this address; retry in {retry} s"
        else:
            detail = f"rate limit for {cls} requests exceeded; retry in {retry} s"
        body = _encode_error(ErrorBody(status_code=429, detail=detail, extra={"policy": cls, "retry_after": retry}))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"retry-after", str(retry).encode()),
            *_headers(op, verdict),
            *(self.cors_headers if has_origin else []),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _headers(op: Op, verdict: Verdict) -> list[tuple[bytes, bytes]]:
    """The RateLimit header fields of draft-ietf-httpapi-ratelimit-headers-07 for a bucket."""
    rate = op.rate
    return [
        (b"ratelimit-limit", str(rate.burst).encode()),
        (b"ratelimit-remaining", str(verdict.remaining).encode()),
        (b"ratelimit-reset", str(math.ceil(verdict.reset - 1e-6) if verdict.reset > 0 else 0).encode()),
        (b"ratelimit-policy", f'{rate.burst};w={rate.window};policy="{op.key.split(":", 1)[0]}"'.encode()),
    ]
