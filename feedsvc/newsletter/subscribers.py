"""Subscribers' use cases: sign up, confirm, unsubscribe, export, erase.

A sign-up is accepted the same way whatever becomes of it (a new address, a known one, a
honeypot filled in, a mailbox mailed too recently): the answer never tells whether an
address is subscribed. Only a sign-up that stored something sends a confirmation mail,
and nothing else is ever sent to an address that was not confirmed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from feedsvc import cursors
from feedsvc.errors import InvalidCursorError, InvalidInputError, NotFoundError
from feedsvc.model import Challenge, NewSubscription, Subscriber, SubscriberPage, from_us, to_us
from feedsvc.newsletter import links
from feedsvc.newsletter.addresses import normalize_address
from feedsvc.newsletter.compose import Composer, Signer
from feedsvc.newsletter.mailer import Mailer, MailError
from feedsvc.render.messages import Messages
from feedsvc.render.newsletter import confirmation_mail
from feedsvc.store import Store, StoredSubscriber

log = logging.getLogger("feedsvc.newsletter")

CONFIRM_DAYS = 7
"""How long a confirmation link works."""
RESEND_AFTER = timedelta(hours=1)
"""One confirmation mail per mailbox per this long, however many sign-ups name it."""
CHALLENGE_TTL = timedelta(minutes=30)
"""How long a proof-of-work challenge can be solved and used."""
MAX_PAGE = 1000


def subscriber_view(sub: StoredSubscriber) -> Subscriber:
    """What the API and the export show of a stored subscriber (no nonce, no throttle)."""
    return Subscriber(
        id=sub.id, email=sub.email, lang=sub.lang, languages=sub.languages, categories=sub.categories,
        cadence=sub.cadence,  # type: ignore[arg-type]
        state=sub.state,  # type: ignore[arg-type]
        state_reason=sub.state_reason, created_at=from_us(sub.created_us), updated_at=from_us(sub.updated_us),
        confirmed_at=from_us(sub.confirmed_us) if sub.confirmed_us is not None else None,
    )


class Newsletter:
    """The newsletter's subscribers, on one store, mailing through ``mailer``.

    Off (every call raises NotFoundError) when ``sender`` is None."""

    def __init__(
        self,
        store: Store,
        mailer: Mailer,
        *,
        base_url: str,
        site: str,
        sender: str | None,
        proof_bits: int,
        signer: Signer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.mailer = mailer
        self.base_url = base_url.rstrip("/")
        self.site = site
        self.sender = sender
        self.proof_bits = proof_bits
        self.clock = clock
        self.host = urlsplit(self.base_url).hostname or "localhost"
        self.composer = Composer(sender=sender or "", site=site, host=self.host, signer=signer)
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self.sender is not None

    def check_enabled(self) -> None:
        if self.sender is None:
            raise NotFoundError("the newsletter is not set up on this server (FEEDSVC_MAIL_FROM)")

    async def _key(self) -> bytes:
        return links.newsletter_key(await self.store.get_secret())

    # --- signing up -------------------------------------------------------------------

    async def challenge(self) -> Challenge:
        self.check_enabled()
        expires = self.clock() + CHALLENGE_TTL
        token = links.new_challenge(await self._key(), int(expires.timestamp()))
        return Challenge(challenge=token, bits=self.proof_bits, expires_at=expires.replace(microsecond=0))

    async def subscribe(self, new: NewSubscription) -> None:
        """Take a sign-up; InvalidInputError for a refused address, proof or category.
        Returns before the confirmation mail is sent (``drain`` waits for it)."""
        self.check_enabled()
        if new.website:
            log.info("newsletter sign-up with the honeypot filled in: ignored")
            return
        email = normalize_address(new.email)
        now = self.clock()
        if self.proof_bits:
            links.check_proof(
                await self._key(), new.proof.challenge, new.email, new.proof.nonce,
                bits=self.proof_bits, now_s=int(now.timestamp()),
            )
        if new.categories:
            known = {c.slug for c in await self.store.get_categories()}
            unknown = sorted(set(new.categories) - known)
            if unknown:
                raise InvalidInputError(f"unknown categories: {', '.join(unknown)}", field="categories")
        languages: list[str] = list(dict.fromkeys(new.languages))
        now_us = to_us(now)
        sub = StoredSubscriber(
            id=secrets.token_hex(8), email=email, lang=languages[0], languages=languages,
            categories=sorted(set(new.categories)), cadence=new.cadence, state="pending", state_reason=None,
            created_us=now_us, updated_us=now_us, confirmed_us=None, confirm_nonce=secrets.token_hex(8),
            confirm_sent_us=now_us,
        )
        stored = await self.store.sign_up(sub, resend_after_us=to_us(now - RESEND_AFTER))
        if stored is None:
            log.info("newsletter sign-up of a known address: no mail sent")
            return
        task = asyncio.create_task(self._send_confirmation(stored))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_confirmation(self, sub: StoredSubscriber) -> None:
        nonce = sub.confirm_nonce or ""
        now = self.clock()
        expires = int((now + timedelta(days=CONFIRM_DAYS)).timestamp())
        link = f"{self.base_url}/newsletter/confirm/{links.confirm_link(await self._key(), sub.id, nonce, expires)}"
        parts = confirmation_mail(site=Messages(sub.lang).site_name(self.site), lang=sub.lang, link=link,
                                  days=CONFIRM_DAYS)
        message = self.composer.compose(parts, to=sub.email, now=now, unsubscribe=None)
        try:
            await self.mailer.send(message, sender=self.composer.envelope_sender, recipients=[sub.email])
        except MailError as e:
            log.warning("confirmation mail to subscriber %s not sent: %s", sub.id, e.message)
            await self.store.reopen_confirmation(sub.id, nonce=nonce)
        except Exception:
            log.exception("confirmation mail to subscriber %s not sent", sub.id)
            await self.store.reopen_confirmation(sub.id, nonce=nonce)

    async def drain(self) -> None:
        """Wait for the confirmation mails under way (shutdown, tests)."""
        while self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)

    # --- the links in mails -----------------------------------------------------------

    async def pending_confirmation(self, token: str) -> StoredSubscriber | None:
        """The subscriber a confirmation link would confirm, changing nothing; None when the
        link is not genuine, expired, used, or replaced by a later sign-up."""
        self.check_enabled()
        opened = links.open_confirm_link(await self._key(), token, int(self.clock().timestamp()))
        if opened is None:
            return None
        try:
            sub = await self.store.get_subscriber(opened[0])
        except NotFoundError:
            return None
        return sub if sub.state == "pending" and sub.confirm_nonce == opened[1] else None

    async def confirm(self, token: str) -> StoredSubscriber | None:
        """Confirm through a link (once); None as ``pending_confirmation``."""
        self.check_enabled()
        opened = links.open_confirm_link(await self._key(), token, int(self.clock().timestamp()))
        if opened is None:
            return None
        return await self.store.confirm_subscriber(opened[0], nonce=opened[1], now_us=to_us(self.clock()))

    async def subscriber_of_link(self, token: str) -> StoredSubscriber | None:
        """The subscriber an unsubscribe link names, changing nothing; None when the link is
        not genuine or the subscriber was erased."""
        self.check_enabled()
        id = links.open_unsubscribe_link(await self._key(), token)
        if id is None:
            return None
        try:
            return await self.store.get_subscriber(id)
        except NotFoundError:
            return None

    async def unsubscribe_link(self, sub: StoredSubscriber) -> str:
        return f"{self.base_url}/newsletter/unsubscribe/{links.unsubscribe_link(await self._key(), sub.id)}"

    async def unsubscribe(self, token: str) -> StoredSubscriber | None:
        """Unsubscribe through a link, at once (any number of times); None as ``subscriber_of_link``."""
        sub = await self.subscriber_of_link(token)
        if sub is None:
            return None
        if sub.state == "unsubscribed":
            return sub
        try:
            return await self.store.set_subscriber_state(
                sub.id, state="unsubscribed", reason="unsubscribed through a link", now_us=to_us(self.clock())
            )
        except NotFoundError:
            return None

    # --- the subscribers' data ----------------------------------------------------------

    async def find(self, ref: str) -> StoredSubscriber:
        """A subscriber by id or by address; NotFoundError."""
        if "@" in ref:
            try:
                email = normalize_address(ref)
            except InvalidInputError:
                raise NotFoundError(f"no subscriber {ref}") from None
            found = await self.store.find_subscriber(email)
            if found is None:
                raise NotFoundError(f"no subscriber {ref}")
            return found
        return await self.store.get_subscriber(ref)

    async def export(self, ref: str) -> Subscriber:
        """Everything kept about one subscriber."""
        return subscriber_view(await self.find(ref))

    async def erase(self, ref: str) -> Subscriber:
        """Delete everything kept about one subscriber; return what was kept."""
        sub = await self.find(ref)
        await self.store.erase_subscriber(sub.id)
        log.info("subscriber %s erased", sub.id)
        return subscriber_view(sub)

    async def page(self, *, state: str | None, cursor: str | None, limit: int) -> SubscriberPage:
        """Subscribers by id, ``limit`` at a time; ``cursor`` from the previous page."""
        key = await self.store.get_secret()
        after = ""
        if cursor:
            payload = cursors.unsign(key, cursor, "cursor")
            if not payload.startswith(b"subscribers:"):
                raise InvalidCursorError(field="cursor")
            after = payload[len(b"subscribers:") :].decode()
        limit = max(1, min(limit, MAX_PAGE))
        rows = await self.store.get_subscribers(state=state, after=after, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = cursors.sign(key, b"subscribers:" + rows[-1].id.encode()) if more and rows else None
        return SubscriberPage(items=[subscriber_view(s) for s in rows], next_cursor=next_cursor)
