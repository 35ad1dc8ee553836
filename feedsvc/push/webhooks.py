"""Webhooks (issue 4, part 6): each public change, POSTed to subscribers, signed.

**The change log is the outbox.** Every write already appends its change in the same
transaction as the write itself, so nothing more is written for webhooks when a commentary
changes, and nothing can be lost between the write and its event. Each subscription keeps
a ``position``: the sequence number of the last change it delivered or skipped. It starts at
the newest change when the subscription is registered, and moves only after the receiver
answered 2xx, so a crash or a restart resumes with the first unacknowledged event: delivery
is at least once, and the event id (``evt_<seq>``) lets a receiver drop a repeat.

**One at a time, in order.** A sender leases a subscription in the database before
delivering to it (several nodes on one PostgreSQL, or several workers on one SQLite file,
never deliver to one subscription at once), then walks the public changes after its
position: those its events and filters exclude are skipped, the others are POSTed one by
one. A failure stops the walk; the subscription waits with exponential backoff (doubling
from ``retry_delay``, with jitter, at most ``max_retry_delay``, longer if the receiver asks
with ``Retry-After``), and is disabled after a ``410 Gone`` or ``max_failures`` failures in
a row. Filters see the commentary as the change left it, and for updates and deletions also
as it was before (its latest earlier public change), so that a subscriber of a category
learns when a commentary leaves it.

**Signed as Standard Webhooks** (https://www.standardwebhooks.com/): ``webhook-id``,
``webhook-timestamp`` (seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">``, with the per-subscription secret ``whsec_<base64 key>``.

**Never in a writer's way.** A write only wakes the sender (a Service listener); the sender
runs in the background, also polls for changes written by other nodes, and stops on
shutdown leaving unacknowledged events where they are. Requests go only where
``feedsvc.push.targets`` allows, checked again at each connection; no redirects are followed,
each attempt is bounded in time, and at most ``MAX_RESPONSE_BYTES`` of an answer are read.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import random
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpcore
import httpx
import msgspec
from ulid import ULID

from feedsvc import __version__
from feedsvc.errors import FeedsvcError
from feedsvc.model import (
    WEBHOOK_EVENTS,
    Change,
    Commentary,
    CreatedWebhook,
    DeliveryError,
    NewWebhook,
    Webhook,
    normalize_lang,
)
from feedsvc.push.targets import GuardedBackend, RefusedTarget, TargetPolicy
from feedsvc.store import Store, WebhookRecord

log = logging.getLogger("feedsvc.webhooks")

Present = Callable[[list[Commentary]], Awaitable[list[Commentary]]]
"""Turns stored commentaries into what the public API shows (absolute links, ``url``)."""
Clock = Callable[[], datetime]

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MAX_RESPONSE_BYTES = 4096
"""Of a receiver's answer, at most this much is read (the start shows in ``last_error``)."""
ERROR_TEXT = 300
"""Characters of a receiver's answer kept in ``last_error``."""
BATCH = 100
"""Changes read from the log per query."""
CONCURRENCY = 8
"""Subscriptions one sender delivers to at the same time (each one in order)."""
STOP_GRACE = 2.0
"""On shutdown, seconds an attempt under way gets to finish before it is abandoned (its
event stays unacknowledged and goes out again after the restart)."""

_encode = msgspec.json.Encoder().encode


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- signing and payloads ---------------------------------------------------------------------


def new_secret() -> tuple[bytes, str]:
    """A signing key and the form a subscriber is shown once: ``whsec_`` + base64."""
    key = secrets.token_bytes(SECRET_BYTES)
    return key, SECRET_PREFIX + base64.b64encode(key).decode()


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class DeletedCommentary(msgspec.Struct, kw_only=True):
    """The ``data`` of a ``commentary.deleted`` event."""

    id: str
    lang: str | None
    category: str | None
    deleted_at: datetime


class Event(msgspec.Struct, kw_only=True):
    """The JSON body of one delivery."""

    type: str
    """``commentary.created``, ``commentary.updated`` or ``commentary.deleted``."""
    id: str
    """``evt_<seq>``, also sent as ``webhook-id``: the same for every attempt and subscriber."""
    seq: int
    """The change's sequence number: events of one subscription come in this order."""
    timestamp: datetime
    """When the change was written."""
    data: Commentary | DeletedCommentary
    """The commentary as ``GET /api/v1/changes`` shows it; for a deletion, what it was."""


def _matches(hook: Webhook, item: Commentary | None) -> bool:
    if item is None:
        return False
    return (not hook.categories or item.category in hook.categories) and (
        not hook.languages or item.lang in hook.languages
    )


# --- registrations -------------------------------------------------------------------------------


class WebhookRegistry:
    """The use cases behind ``/api/v1/webhooks``: register, list, read, delete."""

    def __init__(self, store: Store, policy: TargetPolicy, *, clock: Clock = utcnow) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock

    async def register(self, new: NewWebhook, *, owner: str) -> CreatedWebhook:
        """Check the target (400 or 422 naming ``url``) and store the subscription; the
        answer carries its secret, which is never shown again."""
        url = str(await self.policy.check_url(new.url))
        key, shown = new_secret()
        now = self.clock()
        hook = Webhook(
            id=str(ULID.from_datetime(now)),
            url=url,
            events=[e for e in WEBHOOK_EVENTS if e in new.events],
            categories=list(dict.fromkeys(new.categories)),
            languages=list(dict.fromkeys(normalize_lang(lang) for lang in new.languages)),
            description=" ".join(new.description.split()) or None if new.description else None,
            created_at=now,
            state="active",
            position=0,
        )
        stored = await self.store.add_webhook(hook, secret=key, owner=owner)
        return CreatedWebhook(**msgspec.structs.asdict(stored), secret=shown)

    async def list(self) -> list[Webhook]:
        return await self.store.get_webhooks()

    async def get(self, id: str) -> Webhook:
        return await self.store.get_webhook(id)

    async def delete(self, id: str) -> None:
        await self.store.delete_webhook(id)


# --- delivery ------------------------------------------------------------------------------------


class Attempt(msgspec.Struct):
    """The outcome of one POST: ``ok``, or the error and what the receiver asked."""

    ok: bool
    error: str = ""
    status: int | None = None
    retry_after: float | None = None


class WebhookSender:
    """Delivers events to every active subscription, in the background (see the module)."""

    def __init__(
        self,
        store: Store,
        present: Present,
        policy: TargetPolicy,
        *,
        timeout: float = 10.0,
        retry_delay: float = 10.0,
        max_retry_delay: float = 3600.0,
        max_failures: int = 20,
        poll_interval: float = 5.0,
        refresh: Callable[[], Awaitable[object]] | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self.present = present
        self.refresh = refresh
        """Called before each look at the outbox: the service's ``state``, which makes due
        scheduled commentaries public, so that their events go out on time even when
        nobody reads."""
        self.timeout = timeout
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.max_failures = max_failures
        self.poll_interval = poll_interval
        self.clock = clock
        self.owner = secrets.token_hex(8)
        """This sender's name in leases: unique per process and start."""
        # A lease outlives the slowest attempt, so that it never runs out mid-delivery; a
        # sender that dies holding one delays that subscription this long at most.
        self.lease = timedelta(seconds=max(60.0, 3 * timeout))
        self._pool = httpcore.AsyncConnectionPool(
            network_backend=GuardedBackend(policy), max_connections=CONCURRENCY * 2, keepalive_expiry=30.0
        )
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._retry_at: datetime | None = None

    def wake(self) -> None:
        """Look for new events now (after a write). Never blocks, never raises."""
        if self._wake is not None:
            self._wake.set()

    async def start(self) -> None:
        self._stopping = False
        self._wake = asyncio.Event()
        self._wake.set()  # events written while no sender ran
        self._task = asyncio.create_task(self._run(), name="webhook-sender")

    async def stop(self) -> None:
        """Stop: let attempts under way finish for STOP_GRACE seconds, abandon the rest
        (unacknowledged, they go out again later), and give up this sender's leases."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._deliveries:
            _, pending = await asyncio.wait(self._deliveries, timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        try:
            await self.store.release_webhooks(self.owner)
        except FeedsvcError as e:
            log.warning("webhook leases not released (they run out by themselves): %s", e)
        await self._pool.aclose()

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            try:
                if self.refresh is not None:
                    await self.refresh()
                await self._claim()
            except FeedsvcError as e:
                log.warning("webhook sender cannot read the outbox: %s", e)
            except Exception:  # a bug must not stop every later delivery; the next look retries
                log.exception("webhook sender failed; it looks again after the poll interval")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that lands while it cancels its own waiter (gh-86296), and stop() then waited
            # forever on a sender polling with no pause (seen in CI, a retry due at once).
            try:
                async with asyncio.timeout(self._pause()):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _pause(self) -> float:
        """Seconds until the next look: the poll interval, or sooner when a retry is due."""
        pause = self.poll_interval
        if self._retry_at is not None:
            until = (self._retry_at - self.clock()).total_seconds()
            self._retry_at = None if until <= 0 else self._retry_at
            pause = min(pause, max(until, 0.0))
        return pause

    async def _claim(self) -> None:
        free = CONCURRENCY - len(self._deliveries)
        if free <= 0:
            return
        now = self.clock()
        records = await self.store.claim_webhooks(owner=self.owner, now=now, lease_until=now + self.lease, limit=free)
        for record in records:
            task = asyncio.create_task(self._deliver(record), name=f"webhook-{record.webhook.id}")
            self._deliveries.add(task)
            task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task[None]) -> None:
        self._deliveries.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery crashed", exc_info=task.exception())
        self.wake()  # a slot is free, and changes may have come meanwhile

    async def _deliver(self, record: WebhookRecord) -> None:
        """Walk the changes after the subscription's position while this sender holds it."""
        hook = record.webhook
        position, failures = hook.position, hook.consecutive_failures
        try:
            while not self._stopping:
                changes, resume = await self.store.get_changes(position, BATCH)
                for change in changes:
                    if self._stopping:
                        return
                    body = await self._event(hook, change)
                    if body is None:
                        continue  # the position moves past it with the next advance
                    attempt = await self._post(hook.url, record.secret, f"evt_{change.seq}", body)
                    if not attempt.ok:
                        await self._failed(hook.id, failures + 1, attempt)
                        return
                    now = self.clock()
                    if not await self.store.advance_webhook(
                        hook.id, owner=self.owner, position=change.seq, delivered_at=now, lease_until=now + self.lease
                    ):
                        return  # deleted, or leased elsewhere after all
                    position, failures = change.seq, 0
                if resume <= position:
                    break
                now = self.clock()
                if not await self.store.advance_webhook(
                    hook.id, owner=self.owner, position=resume, delivered_at=None, lease_until=now + self.lease
                ):
                    return
                position = resume
            await self.store.release_webhooks(self.owner, hook.id)
        except FeedsvcError as e:
            # The lease runs out by itself; delivery resumes from the stored position.
            log.warning("webhook %s: delivery paused by a storage error: %s", hook.id, e)

    async def _event(self, hook: Webhook, change: Change) -> bytes | None:
        """The body to deliver for ``change``, or None when the subscription does not want it."""
        if change.op not in hook.events:
            return None
        before: Commentary | None = None
        if change.op == "deleted" or (change.op == "updated" and not _matches(hook, change.commentary)):
            before = await self.store.get_last_public_doc(change.id, change.seq)
        filtered = bool(hook.categories or hook.languages)
        if filtered and not (_matches(hook, change.commentary) or _matches(hook, before)):
            return None
        data: Commentary | DeletedCommentary
        if change.commentary is not None:
            data = (await self.present([change.commentary]))[0]
        else:
            data = DeletedCommentary(
                id=change.id,
                lang=before.lang if before else None,
                category=before.category if before else None,
                deleted_at=change.at,
            )
        event = Event(
            type=f"commentary.{change.op}", id=f"evt_{change.seq}", seq=change.seq, timestamp=change.at, data=data
        )
        return _encode(event)

    async def _post(self, url: str, key: bytes, msg_id: str, body: bytes) -> Attempt:
        """One signed POST, bounded in time and in what is read back."""
        target = httpx.URL(url)
        timestamp = int(self.clock().timestamp())
        headers = [
            (b"Host", target.netloc),
            (b"User-Agent", f"feedsvc/{__version__} webhooks".encode()),
            (b"Content-Type", b"application/json"),
            (b"Content-Length", str(len(body)).encode()),
            (b"webhook-id", msg_id.encode()),
            (b"webhook-timestamp", str(timestamp).encode()),
            (b"webhook-signature", sign(key, msg_id, timestamp, body).encode()),
        ]
        request = httpcore.Request(
            "POST",
            httpcore.URL(scheme=target.raw_scheme, host=target.raw_host, port=target.port, target=target.raw_path),
            headers=headers,
            content=body,
            extensions={"timeout": dict.fromkeys(("connect", "read", "write", "pool"), self.timeout)},
        )
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._pool.handle_async_request(request)
                try:
                    answer = b""
                    async for chunk in response.aiter_stream():
                        answer += chunk
                        if len(answer) >= MAX_RESPONSE_BYTES:
                            break
                finally:
                    await response.aclose()
        except RefusedTarget as e:
            return Attempt(False, f"refused: {e}")
        except TimeoutError:
            return Attempt(False, f"no answer within {self.timeout:g} s")
        except (
            httpcore.TimeoutException,
            httpcore.NetworkError,
            httpcore.ProtocolError,
            httpcore.UnsupportedProtocol,
        ) as e:
            return Attempt(False, f"{type(e).__name__}: {e or 'connection failed'}")
        except Exception as e:  # whatever else goes wrong with a receiver is one failed attempt
            log.warning("webhook POST to %s failed unexpectedly", url, exc_info=True)
            return Attempt(False, f"{type(e).__name__}: {e}")
        status = response.status
        if 200 <= status < 300:
            return Attempt(True, status=status)
        text = answer[:ERROR_TEXT].decode("utf-8", "replace").strip()
        message = f"the receiver answered {status}" + (f": {text}" if text else "")
        if 300 <= status < 400:
            message += " (redirects are not followed)"
        return Attempt(False, message, status, _retry_after(response.headers))

    async def _failed(self, id: str, failures: int, attempt: Attempt) -> None:
        """Record the ``failures``-th failed attempt in a row; back off, or disable."""
        now = self.clock()
        disable = None
        if attempt.status == 410:
            disable = "the receiver answered 410 Gone"
        elif failures >= self.max_failures:
            disable = f"{failures} failed deliveries in a row"
        delay = min(self.retry_delay * 2 ** min(failures - 1, 30), self.max_retry_delay)
        delay *= random.uniform(0.5, 1.0)  # jitter: subscribers that failed together retry apart
        if attempt.retry_after is not None:
            delay = min(max(delay, attempt.retry_after), self.max_retry_delay)
        next_attempt = now + timedelta(seconds=delay)
        error = DeliveryError(at=now, message=attempt.error, status=attempt.status)
        if await self.store.fail_webhook(id, owner=self.owner, error=error, next_attempt=next_attempt, disable=disable):
            if disable:
                log.warning("webhook %s disabled: %s (last error: %s)", id, disable, attempt.error)
            else:
                log.info("webhook %s: delivery failed (%s); retry in %.1f s", id, attempt.error, delay)
                if self._retry_at is None or next_attempt < self._retry_at:
                    self._retry_at = next_attempt


def _retry_after(headers: list[tuple[bytes, bytes]]) -> float | None:
    """Seconds a ``Retry-After`` header asks for (the delay form only)."""
    for name, value in headers:
        if name.lower() == b"retry-after" and value.strip().isdigit():
            return float(value.strip())
    return None
