"""The newsletter's sign-up as a reader does it, in headless Chromium: the form's script
solves the proof of work with the browser's own SHA-256, the mail arrives at a real SMTP
server, and the confirmation page's button (not its link) confirms."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import LiveServer
from tests.mailsink import Sink, smtp  # noqa: F401  (a fixture)
from tests.test_browser import Browser, Tab, chromium_path

pytestmark = pytest.mark.slow


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    b = Browser(chromium_path(), tmp_path / "chromium-profile")
    yield b
    b.close()


def state(db: Path, email: str) -> str | None:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT state FROM subscribers WHERE email = ?", (email,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def test_a_reader_signs_up_in_russian_and_confirms_with_the_button(
    tmp_path: Path, smtp: Sink, browser: Browser  # noqa: F811
) -> None:
    with LiveServer(
        tmp_path, mail_from="Commentaries <news@example.org>", smtp_port=smtp.port, smtp_tls="none",
        newsletter_proof_bits=12,
    ) as server:
        db = tmp_path / "feedsvc.db"
        tab = Tab(browser)
        tab.goto(f"{server.url}/newsletter?lang=ru")
        assert tab.eval("document.documentElement.lang") == "ru"
        tab.eval("document.getElementById('email').value = 'Reader@Example.org'")
        tab.eval("document.querySelector('input[name=cadence][value=each]').click()")
        tab.eval("document.querySelector('#newsletter button').click()")
        sent = tab.poll("document.getElementById('status').textContent.startsWith('Проверьте почту') || null", 20)
        assert sent is True
        assert tab.problems() == []
        deadline = time.monotonic() + 10
        while not smtp.received:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        [mail] = smtp.messages()
        assert smtp.received[0][0] == ["reader@example.org"]
        body = mail.get_body(("plain",))
        assert body is not None
        link = re.search(r"http://127\.0\.0\.1:\d+/newsletter/confirm/\S+", body.get_content())  # type: ignore[attr-defined]
        assert link
        assert state(db, "reader@example.org") == "pending"

        tab.goto(link.group(0))  # opening the link confirms nothing
        assert state(db, "reader@example.org") == "pending"
        tab.eval("document.querySelector('form button').click()")
        assert tab.poll("document.querySelector('h1') && document.querySelector('h1').textContent === "
                        "'Подписка подтверждена' || null", 10) is True
        assert state(db, "reader@example.org") == "active"
        tab.close()
