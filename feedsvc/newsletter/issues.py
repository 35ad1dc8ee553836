"""The newsletter's issues: the weekly digest as a mail, previewed and sent as a test.

An issue is a published weekly digest (feedsvc.digest: public once its period is over, at
``FEEDSVC_DIGEST_HOUR`` the next day) in one language, written for one subscriber: the
same words in the HTML and the plain-text part, the subscriber's own unsubscribe link in
the footer and the headers.
"""

from __future__ import annotations

import email
import email.policy
from datetime import date
from email.message import EmailMessage

from feedsvc.digest import Digest
from feedsvc.errors import NotFoundError
from feedsvc.model import Image, MailFormat
from feedsvc.newsletter.addresses import normalize_address
from feedsvc.newsletter.mailer import Mailer
from feedsvc.newsletter.subscribers import Newsletter
from feedsvc.render.messages import Messages
from feedsvc.render.newsletter import SHORTER, digest_mail
from feedsvc.service import Service
from feedsvc.store import StoredSubscriber

MAIL_LIMIT = 100_000
"""Bytes a whole mail may take, signature included: Gmail clips a message past about 102 KB."""
PREVIEW_ADDRESS = "reader@example.org"
"""Who a preview is written to."""
Format = MailFormat


class Issues:
    """Digest mails for one newsletter, read through ``service``."""

    def __init__(self, newsletter: Newsletter, service: Service, mailer: Mailer) -> None:
        self.newsletter = newsletter
        self.service = service
        self.mailer = mailer

    async def digest(self, start: date, lang: str) -> tuple[Digest, dict[str, Image]]:
        """The published digest of the period starting on ``start`` in ``lang``, and the
        lead images of its commentaries; NotFoundError when it is not published (yet)."""
        await self.service.state()
        records = await self.service.store.get_digests(
            lang=lang, limit=1, start=start, ended_by=self.service.digests_ended_by()
        )
        if not records:
            raise NotFoundError(f"no published digest of {start} in {lang}")
        record = records[0]
        images: dict[str, Image] = {c.id: c.image for c in record.commentaries if c.image is not None}
        return self.service.digest_of(record), images

    async def message(
        self, start: date, lang: str, *, to: str, subscriber: StoredSubscriber | None,
        found: tuple[Digest, dict[str, Image]] | None = None, message_id: str | None = None,
    ) -> bytes:
        """The signed mail of an issue to ``to``; for ``subscriber`` its own unsubscribe link,
        else (a preview or a test) a link that unsubscribes nobody. Written the longest way
        of ``SHORTER`` that keeps the whole mail within ``MAIL_LIMIT``."""
        self.newsletter.check_enabled()
        if subscriber is not None:
            unsubscribe = await self.newsletter.unsubscribe_link(subscriber)
        else:
            unsubscribe = f"{self.newsletter.base_url}/newsletter/unsubscribe/preview"
        digest, images = found or await self.digest(start, lang)
        site = Messages(lang).site_name(self.newsletter.site)
        message = b""
        for length, most in SHORTER:
            parts = digest_mail(digest, images, site=site, email=to, unsubscribe=unsubscribe,
                                base_url=self.service.base_url, summary_length=length, most=most)
            message = self.newsletter.composer.compose(
                parts, to=to, now=self.newsletter.clock(), unsubscribe=unsubscribe, message_id=message_id
            )
            if len(message) <= MAIL_LIMIT:
                break
        return message

    async def preview(self, start: date, lang: str, format: Format) -> bytes:
        """The issue as an editor checks it: its HTML, its text, or the whole signed mail."""
        if format == "eml":
            return await self.message(start, lang, to=PREVIEW_ADDRESS, subscriber=None)
        message = await self.message(start, lang, to=PREVIEW_ADDRESS, subscriber=None)
        mail = email.message_from_bytes(message, policy=email.policy.default)
        part = mail.get_body((format if format == "html" else "plain",))
        return part.get_content().encode() if isinstance(part, EmailMessage) else b""

    async def send_test(self, start: date, lang: str, to: str) -> None:
        """Send the issue to one address (an editor's), as subscribers would get it. MailError."""
        address = normalize_address(to)
        message = await self.message(start, lang, to=address, subscriber=None)
        await self.mailer.send(message, sender=self.newsletter.composer.envelope_sender, recipients=[address])
