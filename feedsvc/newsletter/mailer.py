"""Mail out over SMTP (aiosmtplib): TLS, authentication, and what a refusal means.

A ``Mailer`` takes a finished message and hands it to the configured server, one SMTP
conversation per message. A refusal is ``MailError``: ``permanent`` when the server said
5xx about the recipient (the address does not exist: retrying cannot help), else
temporary (4xx, the connection, TLS, a timeout).
"""

from __future__ import annotations

import ssl
from typing import Protocol

import aiosmtplib

from feedsvc.config import Settings
from feedsvc.errors import UpstreamError


class MailError(UpstreamError):
    """The server did not take a message."""

    def __init__(self, message: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class Mailer(Protocol):
    async def send(self, message: bytes, *, sender: str, recipients: list[str]) -> None:
        """Hand ``message`` (as signed: sent byte for byte) to the server for ``recipients``,
        with ``sender`` as the envelope's return path. MailError."""


class SmtpMailer:
    """Sends through the SMTP server the ``smtp_*`` settings name."""

    def __init__(self, settings: Settings) -> None:
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.mode = settings.smtp_tls
        self.username = settings.smtp_username
        self.password = settings.smtp_password
        self.timeout = settings.smtp_timeout
        self.tls_context = ssl.create_default_context(cafile=settings.smtp_ca_file)

    async def send(self, message: bytes, *, sender: str, recipients: list[str]) -> None:
        start_tls = {"auto": None, "starttls": True, "tls": False, "none": False}[self.mode]
        try:
            await aiosmtplib.send(
                message,
                sender=sender,
                recipients=recipients,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.mode == "tls",
                start_tls=start_tls,
                tls_context=self.tls_context if self.mode != "none" else None,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as e:
            codes = [r.code for r in e.recipients]
            raise MailError(
                "; ".join(f"{r.code} {r.message}" for r in e.recipients),
                permanent=all(500 <= c < 600 for c in codes),
                code=codes[0] if codes else None,
            ) from None
        except aiosmtplib.SMTPAuthenticationError as e:
            # Our credentials, not the recipient: every message waits until they are fixed.
            raise MailError(f"SMTP authentication failed: {e.code} {e.message}", permanent=False, code=e.code) from None
        except aiosmtplib.SMTPResponseException as e:
            # A 5xx to the message itself (its size, its content) is permanent too.
            raise MailError(f"{e.code} {e.message}", permanent=500 <= e.code < 600, code=e.code) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
            raise MailError(f"{type(e).__name__}: {e}", permanent=False) from None
