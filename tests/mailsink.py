"""A real SMTP server on loopback (aiosmtpd) that keeps every message it is given.

Runs in a thread of its own (aiosmtpd's ``Controller``), so the app under test talks to
it over TCP exactly as to a mail relay. ``refuse`` makes it answer a recipient with a
code of the test's choosing; ``down`` is a port nothing listens on.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import socket
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

# aiosmtpd logs every connection at INFO on "mail.log": the tests' output is not the place.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """What the server received: (envelope recipients, raw bytes) per message."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []
        self.refuse: dict[str, str] = {}
        """Recipient -> SMTP answer to RCPT TO (``"550 5.1.1 no such user"``)."""
        self._lock = threading.Lock()
        self.port = 0

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self._lock:
            self.received.append((list(envelope.rcpt_tos), bytes(content)))
        return "250 Message accepted"

    def messages(self) -> list[EmailMessage]:
        with self._lock:
            raw = [content for _, content in self.received]
        return [email.message_from_bytes(r, policy=email.policy.default) for r in raw]  # type: ignore[misc]

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            raw = [content for rcpt, content in self.received if address in rcpt]
        return [email.message_from_bytes(r, policy=email.policy.default) for r in raw]  # type: ignore[misc]

    async def wait(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """The messages once at least ``count`` have arrived (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} messages arrived"
            await asyncio.sleep(0.02)
        return self.messages()


@pytest.fixture
def smtp() -> Iterator[Sink]:
    sink = Sink()
    sink.port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


USER, PASSWORD = "feedsvc", "s3cret-relay-password"


def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), PASSWORD.encode()
    )
    # handled=False: aiosmtpd answers (235, or 535 on a failure) itself.
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_tls(tmp_path: Path) -> Iterator[tuple[Sink, Path]]:
    """A relay as providers run one: STARTTLS required (a certificate for 127.0.0.1 made
    here, whose file is the CA to trust), then AUTH (``USER``, ``PASSWORD``) required."""
    import ssl
    import subprocess

    cert, key = tmp_path / "smtp-cert.pem", tmp_path / "smtp-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink = Sink()
    sink.port = free_port()
    controller = Controller(
        sink, hostname="127.0.0.1", port=sink.port, tls_context=context, require_starttls=True,
        auth_required=True, auth_require_tls=True, authenticator=authenticate,
    )
    controller.start()
    try:
        yield sink, cert
    finally:
        controller.stop()
