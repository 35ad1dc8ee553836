"""Sending an issue to every subscriber: the durable queue, paced, retried, resumable.

**Queued once.** Sending an issue (by hand, or at once when its digest is published with
``FEEDSVC_NEWSLETTER_SEND=auto``) writes one row per (issue, subscriber) in one statement,
``ON CONFLICT DO NOTHING``: running it twice, or on two nodes, queues nobody twice.

**Sent once.** A sender leases a batch of due rows in the database (two senders, on any
nodes, never hold one row), sends each, and marks it ``sent`` under its lease right after
the server's ``250``. A sender killed mid-batch leaves its leased rows ``queued``: when the
lease runs out another sender (or the restarted one) takes them, so none is skipped. The
one repeat possible is a mail the server accepted in the instant before the kill, before
its row was marked: it goes again with the same ``Message-ID``, which receivers use to drop
it (``tests/test_newsletter_send.py`` counts how often that happens).

**Refusals.** A 4xx, a dropped connection or a timeout is tried again, after
``FEEDSVC_NEWSLETTER_RETRY_DELAY`` seconds doubled per attempt (with jitter), up to
``FEEDSVC_NEWSLETTER_MAX_ATTEMPTS``; a 5xx for the recipient fails the send and suspends
the subscriber (the address does not exist: mailing it again harms the sender's
reputation). A subscriber who unsubscribed or was erased after the issue was queued is not
mailed.

**Paced.** At most ``FEEDSVC_NEWSLETTER_RATE`` mails a second and
``FEEDSVC_NEWSLETTER_CONCURRENCY`` SMTP conversations at once, per server process.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from feedsvc.digest import Digest
from feedsvc.errors import NotFoundError
from feedsvc.model import NEWSLETTER_LANGUAGES, Image, to_us
from feedsvc.newsletter.issues import Issues
from feedsvc.newsletter.mailer import Mailer, MailError
from feedsvc.store import IssueRecord, SendRecord, Store

log = logging.getLogger("feedsvc.newsletter")

LEASE = timedelta(seconds=10)
"""How long a claimed batch is held past its last renewal (every third of it while the
batch is being sent): a killed sender's rows are taken over this long after it died."""
BATCH = 200
AUTO_WINDOW = timedelta(days=2)
"""Only digests published this recently are sent by themselves: turning the newsletter on
never mails the archive."""


def issue_key(start: date, lang: str) -> str:
    return f"digest-{start.isoformat()}-{lang}"


class IssueSender:
    """Sends queued newsletter mails in the background of a server process."""

    def __init__(
        self,
        store: Store,
        issues: Issues,
        mailer: Mailer,
        *,
        rate: float,
        concurrency: int,
        retry_delay: float,
        max_attempts: int,
        auto: bool,
        poll_interval: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.issues = issues
        self.mailer = mailer
        self.interval = 1.0 / rate
        self.concurrency = concurrency
        self.retry_delay = retry_delay
        self.max_attempts = max_attempts
        self.auto = auto
        self.poll_interval = poll_interval
        self.clock = clock
        self.owner = secrets.token_hex(8)
        self.sent = 0
        self.failed = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_slot = 0.0

    @property
    def host(self) -> str:
        return self.issues.newsletter.host

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if self.issues.newsletter.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="feedsvc-newsletter-sender")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None
        try:
            await self.store.release_sends(self.owner)
        except Exception:
            log.exception("newsletter leases not released (they run out by themselves)")

    # --- issues -------------------------------------------------------------------------

    async def send_issue(self, start: date, lang: str) -> tuple[IssueRecord, int]:
        """Queue the issue of a published digest (a draft, or not made yet) for every active
        weekly subscriber of its language; return it and how many sends it has."""
        self.issues.newsletter.check_enabled()
        await self.issues.digest(start, lang)  # NotFoundError unless published
        key = issue_key(start, lang)
        now_us = to_us(self.clock())
        await self.store.add_issue(IssueRecord(
            key=key, kind="digest", start=start, lang=lang, state="sending", created_us=now_us, queued_us=now_us,
        ))
        count = await self.store.queue_issue(key, now_us=now_us, host=self.host)
        self.wake()
        issue = await self.store.get_issue(key)
        assert issue is not None
        return issue, count

    async def publish_due(self) -> None:
        """Make the issue of each newly published digest: queued with ``auto``, else a draft."""
        now = self.clock()
        ended_by = self.issues.service.digests_ended_by()
        for lang in NEWSLETTER_LANGUAGES:
            records = await self.store.get_digests(lang=lang, limit=1, ended_by=ended_by)
            if not records:
                continue
            digest = self.issues.service.digest_of(records[0])
            if digest.published_at < now - AUTO_WINDOW or await self.store.get_issue(
                issue_key(digest.period.start, lang)
            ):
                continue
            if self.auto:
                await self.send_issue(digest.period.start, lang)
            else:
                await self.store.add_issue(IssueRecord(
                    key=issue_key(digest.period.start, lang), kind="digest", start=digest.period.start, lang=lang,
                    state="draft", created_us=to_us(now), queued_us=None,
                ))

    # --- the loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            busy = 0
            try:
                await self.publish_due()
                busy = await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("newsletter sender round failed")
            if not busy:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
                except TimeoutError:
                    pass

    async def round(self) -> int:
        """Claim a batch of due sends and send them; return how many were claimed."""
        now = self.clock()
        claimed = await self.store.claim_sends(
            owner=self.owner, now_us=to_us(now), lease_until_us=to_us(now + LEASE), limit=BATCH
        )
        if not claimed:
            return 0
        digests: dict[str, tuple[Digest, dict[str, Image]] | None] = {}
        queue: asyncio.Queue[SendRecord] = asyncio.Queue()
        for record in claimed:
            queue.put_nowait(record)

        async def worker() -> None:
            while not queue.empty():
                await self._send(queue.get_nowait(), digests)

        async def renew() -> None:
            while True:
                await asyncio.sleep(LEASE.total_seconds() / 3)
                await self.store.extend_sends(self.owner, lease_until_us=to_us(self.clock() + LEASE))

        renewing = asyncio.create_task(renew())
        try:
            await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(claimed)))))
        finally:
            renewing.cancel()
        finished = {record.issue for record in claimed}
        for key in finished:
            if await self.store.finish_issue(key):
                log.info("newsletter issue %s sent: %s", key, await self.store.send_counts(key))
        return len(claimed)

    async def _pace(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)

    async def _send(self, record: SendRecord, digests: dict[str, tuple[Digest, dict[str, Image]] | None]) -> None:
        issue = await self.store.get_issue(record.issue)
        try:
            subscriber = await self.store.get_subscriber(record.subscriber_id)
        except NotFoundError:
            subscriber = None
        if issue is None or subscriber is None or subscriber.state != "active":
            await self._finish(record, "failed", "the subscriber left before it was sent")
            return
        if record.issue not in digests:
            try:
                digests[record.issue] = await self.issues.digest(issue.start, issue.lang)
            except NotFoundError:
                digests[record.issue] = None
        found = digests[record.issue]
        if found is None:
            await self._finish(record, "failed", "the digest is no longer published")
            return
        message = await self.issues.message(
            issue.start, issue.lang, to=subscriber.email, subscriber=subscriber, found=found,
            message_id=record.message_id,
        )
        await self._pace()
        try:
            await self.mailer.send(
                message, sender=self.issues.newsletter.composer.envelope_sender, recipients=[subscriber.email]
            )
        except MailError as e:
            if e.permanent:
                await self._finish(record, "failed", e.message)
                await self.store.set_subscriber_state(
                    subscriber.id, state="suspended", reason=f"the mail server refused the address: {e.message}",
                    now_us=to_us(self.clock()),
                )
            elif record.attempts + 1 >= self.max_attempts:
                await self._finish(record, "failed", e.message)
            else:
                delay = self.retry_delay * 2 ** record.attempts * random.uniform(0.8, 1.2)
                await self._finish(record, "queued", e.message, after=delay)
            return
        await self._finish(record, "sent", None)

    async def _finish(self, record: SendRecord, state: str, error: str | None, after: float = 0.0) -> None:
        now = self.clock()
        await self.store.finish_send(
            record.issue, record.subscriber_id, owner=self.owner, state=state, error=error,
            next_attempt_us=to_us(now + timedelta(seconds=after)), now_us=to_us(now),
        )
        if state == "sent":
            self.sent += 1
        elif state == "failed":
            self.failed += 1
