"""A mail as it leaves: headers around the rendered words, then the DKIM signature.

Every list mail carries what Gmail and Yahoo ask of bulk senders since February 2024:
``List-Unsubscribe`` with an https link (RFC 8058's one-click target) and a mailto,
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``, a ``List-Id``, and a ``Message-ID``
on the public host; the DKIM signature covers all of them, so that no relay can alter the
unsubscribe link unseen. The message is turned into bytes once, signed, and sent byte for
byte.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from urllib.parse import quote

import dkim

from feedsvc.config import Settings
from feedsvc.errors import InvalidInputError
from feedsvc.render.newsletter import MailParts

SIGNED_HEADERS = (
    "From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "List-Id", "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
"""What the DKIM signature covers (each header present is signed; the list headers too)."""


class Signer:
    """DKIM signing (rsa-sha256, relaxed/relaxed) with one key, selector and domain."""

    def __init__(self, key: bytes, *, selector: str, domain: str) -> None:
        self.key = key
        self.selector = selector
        self.domain = domain

    @classmethod
    def from_file(cls, path: str, *, selector: str, domain: str) -> Signer:
        try:
            key = Path(path).read_bytes()
        except OSError as e:
            raise InvalidInputError(f"FEEDSVC_DKIM_KEY_FILE: {e}") from None
        if b"PRIVATE KEY" not in key:
            raise InvalidInputError(f"FEEDSVC_DKIM_KEY_FILE: {path} holds no PEM private key")
        return cls(key, selector=selector, domain=domain)

    def sign(self, message: bytes) -> bytes:
        present = {line.split(b":", 1)[0].strip().lower() for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")}
        headers = [h.lower().encode() for h in SIGNED_HEADERS if h.lower().encode() in present]
        signature = dkim.sign(
            message, self.selector.encode(), self.domain.encode(), self.key, include_headers=headers,
            canonicalize=(b"relaxed", b"relaxed"),
        )
        return bytes(signature) + message


class Composer:
    """Builds and signs the newsletter's mails for one sender and public host."""

    def __init__(self, *, sender: str, site: str, host: str, signer: Signer | None) -> None:
        self.sender = sender
        self.envelope_sender = parseaddr(sender)[1]
        self.site = site
        self.host = host
        self.signer = signer

    def message_id(self) -> str:
        return f"<{secrets.token_hex(12)}@{self.host}>"

    def compose(
        self, parts: MailParts, *, to: str, now: datetime, unsubscribe: str | None, message_id: str | None = None
    ) -> bytes:
        """The mail to ``to``, signed when a key is set. With ``unsubscribe`` (the
        subscriber's one-click URL) it is a list mail and carries the list headers."""
        message = EmailMessage(policy=SMTP)
        message["From"] = self.sender
        message["To"] = formataddr(("", to))
        message["Subject"] = parts.subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = message_id or self.message_id()
        if unsubscribe is None:
            message["Auto-Submitted"] = "auto-generated"
        else:
            token = unsubscribe.rsplit("/", 1)[-1]
            mailto = f"mailto:{self.envelope_sender}?subject={quote('unsubscribe ' + token)}"
            message["List-Id"] = f"{self.site} <newsletter.{self.host}>"
            message["List-Unsubscribe"] = f"<{unsubscribe}>, <{mailto}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            message["Precedence"] = "bulk"
        message.set_content(parts.text)
        message.add_alternative(parts.html, subtype="html")
        message["Content-Language"] = parts.lang  # after the body: set_content drops Content-* headers
        data = message.as_bytes(policy=SMTP)
        return self.signer.sign(data) if self.signer is not None else data


def signer_from(settings: Settings) -> Signer | None:
    """The signer the ``dkim_*`` settings describe, or None when no key is set."""
    if settings.dkim_key_file is None:
        return None
    domain = settings.dkim_domain or parseaddr(settings.mail_from or "")[1].rpartition("@")[2]
    if not domain:
        raise InvalidInputError("FEEDSVC_DKIM_DOMAIN: set it, or FEEDSVC_MAIL_FROM to take the domain from")
    return Signer.from_file(settings.dkim_key_file, selector=settings.dkim_selector, domain=domain)
