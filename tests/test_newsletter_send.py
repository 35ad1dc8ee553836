"""Sending an issue to every subscriber (issue 16): the durable queue in the store, on both
stores, through a real SMTP server on loopback. Each (issue, subscriber) is mailed once
however often the issue is sent and however many senders run; refusals are retried or
suspend the address; and a real ``feedsvc serve`` process SIGKILLed twice mid-batch leaves
every subscriber with exactly one message."""

from __future__ import annotations

import asyncio
import collections
import email
import email.policy
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.config import Settings, load_settings
from feedsvc.newsletter.sending import IssueSender
from tests.conftest import PUBLIC_URL, commentary
from tests.mailsink import Sink, smtp  # noqa: F401  (a fixture)
from tests.test_lifecycle import spawned_server
from tests.test_newsletter import BITS, SENDER

Client = AsyncTestClient[Litestar]
WEEK = {"start": "2026-03-02", "end": "2026-03-08"}
START = __import__("datetime").date(2026, 3, 2)


@pytest.fixture
def settings(any_database_url: str, smtp: Sink) -> Settings:  # noqa: F811
    return load_settings(
        {}, database_url=any_database_url, public_url=PUBLIC_URL, mail_from=SENDER, smtp_port=smtp.port,
        smtp_tls="none", newsletter_proof_bits=BITS, newsletter_rate=1000, newsletter_retry_delay=0.1,
        webhook_poll_interval=0.2,
    )


@pytest.fixture
def sender(client: Client) -> IssueSender:
    found: IssueSender = client.app.state.mail_sender
    return found


async def add(sender: IssueSender, email_: str, *, lang: str = "ru", state: str = "active",
              cadence: str = "weekly") -> None:
    from feedsvc.store import StoredSubscriber

    stored = await sender.store.sign_up(StoredSubscriber(
        id=email_.split("@")[0], email=email_, lang=lang, languages=[lang], categories=[], cadence=cadence,
        state=state, state_reason=None, created_us=1, updated_us=1, confirmed_us=1 if state == "active" else None,
        confirm_nonce=None, confirm_sent_us=1,
    ), resend_after_us=0)
    assert stored is not None


@pytest.fixture
async def week(client: Client, auth: dict[str, str], categories: Any) -> None:
    for lang in ("ru", "en"):
        r = await client.post("/api/v1/commentaries", headers=auth, json=commentary(
            title=f"Week in {lang}", lang=lang, period=WEEK, published_at="2026-03-03T09:00:00+00:00"))
        assert r.status_code == 201, r.text


async def settled(sender: IssueSender, key: str, timeout: float = 20) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = await sender.store.send_counts(key)
        issue = await sender.store.get_issue(key)
        # The issue is marked sent once its sender's round is over, a moment after its last mail.
        if not counts.get("queued") and issue is not None and issue.state == "sent":
            return counts
        assert time.monotonic() < deadline, counts
        await asyncio.sleep(0.05)


def recipients(smtp: Sink) -> collections.Counter[str]:  # noqa: F811
    return collections.Counter(r for rcpt, _ in smtp.received for r in rcpt)


async def test_an_issue_goes_once_to_each_active_weekly_subscriber_of_its_language(
    client: Client, smtp: Sink, sender: IssueSender, week: None, service: Any  # noqa: F811
) -> None:
    for n in range(25):
        await add(sender, f"ru{n}@example.org")
    await add(sender, "en0@example.org", lang="en")
    await add(sender, "pending@example.org", state="pending")
    await add(sender, "gone@example.org", state="unsubscribed")
    await add(sender, "each@example.org", cadence="each")
    editor, _ = await service.create_token("editor", ["commentaries:write"])
    auth = {"Authorization": f"Bearer {editor}"}
    r = await client.post(f"/api/v1/newsletter/digests/{WEEK['start']}/send", json={"lang": "ru"}, headers=auth)
    assert r.status_code == 202, r.text
    assert r.json()["key"] == "digest-2026-03-02-ru"
    assert await settled(sender, "digest-2026-03-02-ru") == {"sent": 25}
    assert recipients(smtp) == {f"ru{n}@example.org": 1 for n in range(25)}
    ids = {email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"] for _, raw in smtp.received}
    assert len(ids) == 25 and all(i.endswith("@feeds.example.org>") for i in ids)

    # Sending again, by hand or by a second node, queues nobody twice.
    again = await client.post(f"/api/v1/newsletter/digests/{WEEK['start']}/send", json={"lang": "ru"}, headers=auth)
    assert again.status_code == 202 and again.json()["sends"] == {"sent": 25}
    await add(sender, "late@example.org")
    await sender.send_issue(START, "ru")
    assert await settled(sender, "digest-2026-03-02-ru") == {"sent": 26}
    await asyncio.sleep(0.3)
    assert len(smtp.received) == 26 and recipients(smtp)["late@example.org"] == 1
    listed = (await client.get("/api/v1/newsletter/issues", headers=auth)).json()
    assert listed[0]["key"] == "digest-2026-03-02-ru" and listed[0]["state"] == "sent"


async def test_two_senders_at_once_mail_each_subscriber_once(
    client: Client, smtp: Sink, sender: IssueSender, week: None  # noqa: F811
) -> None:
    for n in range(300):
        await add(sender, f"r{n}@example.org")
    await sender.store.add_issue(__import__("feedsvc.store", fromlist=["IssueRecord"]).IssueRecord(
        key="digest-2026-03-02-ru", kind="digest", start=START, lang="ru", state="sending", created_us=1,
        queued_us=1))
    assert await sender.store.queue_issue("digest-2026-03-02-ru", now_us=1, host="feeds.example.org") == 300
    # Two more senders beside the app's own, each leasing its batches as another node would.
    one, two = (
        IssueSender(sender.store, sender.issues, sender.mailer, rate=1000, concurrency=4, retry_delay=1,
                    max_attempts=3, auto=False)
        for _ in range(2)
    )
    while sum(await asyncio.gather(one.round(), two.round())):
        pass
    assert await settled(sender, "digest-2026-03-02-ru") == {"sent": 300}
    assert one.sent + two.sent + sender.sent == 300
    assert set(recipients(smtp).values()) == {1} and len(recipients(smtp)) == 300


async def test_a_refusal_for_now_is_retried_and_a_refusal_for_good_suspends(
    client: Client, smtp: Sink, sender: IssueSender, week: None, rows: Any  # noqa: F811
) -> None:
    await add(sender, "later@example.org")
    await add(sender, "nobody@example.org")
    smtp.refuse["later@example.org"] = "451 4.3.0 try again later"
    smtp.refuse["nobody@example.org"] = "550 5.1.1 no such user"
    await sender.send_issue(START, "ru")
    deadline = time.monotonic() + 10
    while rows("SELECT attempts FROM newsletter_sends WHERE subscriber_id = 'later'") == [(0,)]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    del smtp.refuse["later@example.org"]
    assert await settled(sender, "digest-2026-03-02-ru") == {"sent": 1, "failed": 1}
    assert recipients(smtp) == {"later@example.org": 1}
    assert rows("SELECT state, attempts FROM newsletter_sends WHERE subscriber_id = 'later'") == [("sent", 2)]
    assert rows("SELECT state FROM subscribers WHERE id = 'nobody'") == [("suspended",)]


@pytest.mark.parametrize("mode", ["auto", "draft"])
async def test_a_digest_published_now_is_sent_at_once_or_held_as_a_draft(
    any_database_url: str, smtp: Sink, mode: str  # noqa: F811
) -> None:
    from feedsvc.http.app import create_app
    from tests.conftest import CATEGORIES, FakeClock

    app = create_app(load_settings(
        {}, database_url=any_database_url, public_url=PUBLIC_URL, mail_from=SENDER, smtp_port=smtp.port,
        smtp_tls="none", newsletter_send=mode, webhook_poll_interval=0.1,
    ))
    async with AsyncTestClient(app) as client:
        service, sender = app.state.service, app.state.mail_sender
        clock = FakeClock(__import__("datetime").datetime(2026, 3, 20, 12, 0, tzinfo=__import__("datetime").UTC))
        service.clock = sender.clock = clock
        token, _ = await service.create_token("t", ["admin"])
        auth = {"Authorization": f"Bearer {token}"}
        for slug, body in CATEGORIES.items():
            await client.put(f"/api/v1/categories/{slug}", json=body, headers=auth)
        await add(sender, "reader@example.org")
        for period in (WEEK, {"start": "2026-03-16", "end": "2026-03-19"}):  # published 9 March; 20 March, 08:00
            r = await client.post("/api/v1/commentaries", headers=auth, json=commentary(
                lang="ru", period=period, published_at=f"{period['start']}T09:00:00+00:00"))
            assert r.status_code == 201, r.text
        sender.wake()
        deadline = time.monotonic() + 10
        while not await sender.store.get_issues(10):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        [issue] = await sender.store.get_issues(10)  # only the digest published just now, never the archive
        assert issue.key == "digest-2026-03-16-ru"
        if mode == "auto":
            assert await settled(sender, issue.key) == {"sent": 1}
            assert recipients(smtp) == {"reader@example.org": 1}
        else:
            await asyncio.sleep(0.5)
            assert issue.state == "draft" and smtp.received == []
            r = await client.post("/api/v1/newsletter/digests/2026-03-16/send", json={"lang": "ru"}, headers=auth)
            assert r.status_code == 202, r.text
            assert await settled(sender, issue.key) == {"sent": 1}


# --- a real process, killed -------------------------------------------------------------------

SUBSCRIBERS = int(__import__("os").environ.get("FEEDSVC_TEST_NEWSLETTER_SUBSCRIBERS", "2000"))
"""2,000 in the suite (about 40 s); the issue's 20,000 with FEEDSVC_TEST_NEWSLETTER_SUBSCRIBERS=20000."""


@pytest.mark.slow
def test_a_send_killed_twice_mid_batch_ends_with_one_message_each(tmp_path: Path, smtp: Sink) -> None:  # noqa: F811
    env = {
        "FEEDSVC_MAIL_FROM": SENDER, "FEEDSVC_SMTP_PORT": str(smtp.port), "FEEDSVC_SMTP_TLS": "none",
        "FEEDSVC_NEWSLETTER_RATE": "100000", "FEEDSVC_NEWSLETTER_CONCURRENCY": "8",
        "FEEDSVC_WEBHOOK_POLL_INTERVAL": "0.5", "FEEDSVC_PUBLIC_URL": PUBLIC_URL,
    }
    base_env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("FEEDSVC_")}
    full_env = {**base_env, **env, "FEEDSVC_DATABASE_URL": f"sqlite:///{tmp_path / 'feedsvc.db'}"}
    data = Path(__file__).parent.parent / "data"
    subprocess.run([sys.executable, "-m", "feedsvc", "demo", "--data", str(data)], env=full_env, cwd=tmp_path,
                   check=True, capture_output=True, timeout=300)
    db = sqlite3.connect(tmp_path / "feedsvc.db")
    with db:
        db.executemany(
            "INSERT INTO subscribers (id, email, lang, languages, categories, cadence, state, state_reason,"
            " created_us, updated_us, confirmed_us, confirm_nonce, confirm_sent_us)"
            " VALUES (?, ?, 'be', '[\"be\"]', '[]', 'weekly', 'active', NULL, 1, 1, 1, NULL, 1)",
            [(f"s{n:05d}", f"s{n:05d}@example.org") for n in range(SUBSCRIBERS)],
        )
    queued = subprocess.run([sys.executable, "-m", "feedsvc", "newsletter", "send", "2026-03-02", "--lang", "be"],
                            env=full_env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert queued.returncode == 0, queued.stderr
    assert f"{SUBSCRIBERS} mails queued" in queued.stdout

    started = time.monotonic()
    kills = 0
    for kill_at in (SUBSCRIBERS // 4, SUBSCRIBERS // 2, None):
        with spawned_server(tmp_path, env) as server:
            deadline = time.monotonic() + 600
            while True:
                done = len(smtp.received)
                if kill_at is not None and done >= kill_at:
                    server.proc.kill()  # SIGKILL: no shutdown, leases left behind
                    server.proc.wait()
                    kills += 1
                    break
                if kill_at is None:
                    left = db.execute("SELECT count(*) FROM newsletter_sends WHERE state = 'queued'").fetchone()[0]
                    if left == 0:
                        break
                assert server.proc.poll() is None, server.log.read_text()[-2000:]
                assert time.monotonic() < deadline, f"{done} mails after 600 s"
                time.sleep(0.05)
    elapsed = time.monotonic() - started
    time.sleep(0.5)

    per_recipient = recipients(smtp)
    ids: dict[str, set[str]] = collections.defaultdict(set)
    for rcpt, raw in smtp.received:
        message_id = raw.split(b"\r\nMessage-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
        for r in rcpt:
            ids[r].add(message_id)
    repeats = sum(per_recipient.values()) - len(per_recipient)
    print(f"\n{SUBSCRIBERS} subscribers, {kills} SIGKILLs: {len(smtp.received)} deliveries in {elapsed:.1f} s "
          f"({len(smtp.received) / elapsed:.0f}/s), {repeats} repeated deliveries (same Message-ID)")
    assert kills == 2
    assert len(per_recipient) == SUBSCRIBERS  # none skipped
    assert all(len(found) == 1 for found in ids.values())  # one message each (a repeat is the same message)
    assert repeats <= 2 * 8  # at most the mails in flight at each kill
    assert db.execute("SELECT state, count(*) FROM newsletter_sends GROUP BY state").fetchall() == [
        ("sent", SUBSCRIBERS)
    ]
    db.close()
