"""The newsletter's subscribers (issue 16): double opt-in, one-click unsubscribe, their data.

Everything goes through real parts: the app over HTTP, each store, and a real SMTP server
on loopback (tests/mailsink.py) that receives every mail the app sends. A link scanner
fetching every link in a mail must change nothing; the POST a page's button (or a mailbox
provider, RFC 8058) sends is what confirms or unsubscribes.
"""

from __future__ import annotations

import asyncio
import re
from email.message import EmailMessage
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.config import Settings, load_settings
from feedsvc.newsletter import links
from feedsvc.newsletter.subscribers import Newsletter
from tests.conftest import CLOCK_START, PUBLIC_URL, FakeClock, assert_error
from tests.mailsink import Sink, free_port, smtp  # noqa: F401  (a fixture)

Client = AsyncTestClient[Litestar]
BITS = 8
SENDER = "Commentaries <newsletter@feeds.example.org>"


@pytest.fixture
def settings(any_database_url: str, smtp: Sink) -> Settings:  # noqa: F811
    return load_settings(
        {}, database_url=any_database_url, public_url=PUBLIC_URL, mail_from=SENDER, smtp_port=smtp.port,
        smtp_tls="none", newsletter_proof_bits=BITS,
    )


@pytest.fixture
def newsletter(client: Client) -> Newsletter:
    found: Newsletter = client.app.state.newsletter
    return found


@pytest.fixture
def mail_clock(newsletter: Newsletter) -> FakeClock:
    fake = FakeClock(CLOCK_START)
    newsletter.clock = fake
    return fake


async def sign_up(client: Client, email: str, **fields: Any) -> Any:
    """What the sign-up form's script does: fetch a challenge, solve it, post."""
    challenge = (await client.get("/api/v1/subscriptions/challenge")).json()
    assert challenge["bits"] == BITS
    body = {"email": email, "proof": {"challenge": challenge["challenge"],
                                      "nonce": links.solve(challenge["challenge"], email, BITS)}}
    body.update(fields)
    return await client.post("/api/v1/subscriptions", json=body)


def text_and_html(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()  # type: ignore[attr-defined]


def confirm_path(message: EmailMessage) -> str:
    text, _ = text_and_html(message)
    found = re.search(re.escape(PUBLIC_URL) + r"(/newsletter/confirm/[A-Za-z0-9_.-]+)", text)
    assert found, text
    return found.group(1)


def state_of(rows: Any, email: str) -> str | None:
    found = rows("SELECT state FROM subscribers WHERE email = ?", email)
    return found[0][0] if found else None


# --- double opt-in ------------------------------------------------------------------------


async def test_a_sign_up_is_confirmed_only_by_the_post_of_its_page(
    client: Client, smtp: Sink, rows: Any  # noqa: F811
) -> None:
    r = await sign_up(client, "Reader.One@Example.ORG", languages=["ru", "en"], cadence="weekly")
    assert r.status_code == 202, r.text
    [mail] = await smtp.wait(1)
    assert smtp.received[0][0] == ["reader.one@example.org"]  # stored and mailed normalised
    assert mail["To"] == "reader.one@example.org" and mail["From"] == SENDER
    assert mail["Message-ID"].endswith("@feeds.example.org>")
    text, html = text_and_html(mail)
    assert "Подтвердите подписку" in mail["Subject"]
    assert "Чтобы подтвердить" in text and "Чтобы подтвердить" in html
    assert state_of(rows, "reader.one@example.org") == "pending"

    path = confirm_path(mail)
    for _ in range(3):  # a link scanner, then the subscriber, opening it
        page = await client.get(path)
        assert page.status_code == 200
        assert '<form method=post action="">' in page.text and 'lang="ru"' in page.text
        assert "reader.one@example.org" in page.text
        assert "form-action 'self'" in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "no-referrer"
    assert state_of(rows, "reader.one@example.org") == "pending"

    done = await client.post(path)
    assert done.status_code == 200 and "Подписка подтверждена" in done.text
    assert state_of(rows, "reader.one@example.org") == "active"
    again = await client.post(path)  # single-use
    assert again.status_code == 404
    assert (await client.get(path)).status_code == 404
    assert len(smtp.received) == 1


async def test_a_confirmation_link_altered_or_expired_or_replaced_confirms_nothing(
    client: Client, smtp: Sink, rows: Any, mail_clock: FakeClock  # noqa: F811
) -> None:
    assert (await sign_up(client, "late@example.org")).status_code == 202
    first = confirm_path((await smtp.wait(1))[0])
    body, mac = first.rsplit("/", 1)[1].split(".")
    assert (await client.post(f"/newsletter/confirm/{body}.{mac[::-1]}")).status_code == 404
    assert (await client.post("/newsletter/confirm/garbage")).status_code == 404
    mail_clock.advance(hours=2)  # a second sign-up an hour later replaces the link
    assert (await sign_up(client, "late@example.org")).status_code == 202
    second = confirm_path((await smtp.wait(2))[1])
    assert (await client.post(first)).status_code == 404
    mail_clock.advance(days=8)  # and links expire
    assert (await client.post(second)).status_code == 404
    assert state_of(rows, "late@example.org") == "pending"


# --- unsubscribing ------------------------------------------------------------------------


async def confirmed(client: Client, smtp: Sink, email: str, **fields: Any) -> None:  # noqa: F811
    before = len(smtp.received)
    assert (await sign_up(client, email, **fields)).status_code == 202
    mail = (await smtp.wait(before + 1))[before]
    assert (await client.post(confirm_path(mail))).status_code == 200


async def test_one_click_unsubscribe_is_the_exact_post_a_mailbox_provider_sends(
    client: Client, smtp: Sink, rows: Any, newsletter: Newsletter, mail_clock: FakeClock  # noqa: F811
) -> None:
    await confirmed(client, smtp, "leaver@example.org", languages=["be"])
    sub = await newsletter.store.find_subscriber("leaver@example.org")
    assert sub is not None
    url = await newsletter.unsubscribe_link(sub)
    path = url.removeprefix(PUBLIC_URL)
    page = await client.get(path)  # a scanner: nothing changes
    assert page.status_code == 200 and "Адпісацца" in page.text
    assert state_of(rows, "leaver@example.org") == "active"

    # RFC 8058, section 3.2: a POST with this body and no cookies or credentials.
    r = await client.post(
        path, content=b"List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 200 and 'lang="be"' in r.text and "Вы адпісаліся" in r.text
    assert state_of(rows, "leaver@example.org") == "unsubscribed"
    again = await client.post(path, content=b"List-Unsubscribe=One-Click",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert again.status_code == 200 and state_of(rows, "leaver@example.org") == "unsubscribed"
    assert "/newsletter?lang=be" in again.text  # resubscribing is one link away

    mail_clock.advance(hours=2)
    await confirmed(client, smtp, "leaver@example.org", languages=["be"])
    assert state_of(rows, "leaver@example.org") == "active"
    assert rows("SELECT count(*) FROM subscribers")[0][0] == 1


# --- hostile input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "victim@example.org\r\nBcc: everyone@example.org",
        "victim@example.org\nSubject: hi",
        "Victim <victim@example.org>",
        '"victim"@example.org',
        "victim@example.org, other@example.org",
        "аlice@example.org",  # a Cyrillic а
        "alice@exаmple.org",  # the same in the domain
        "alice@ｅxample.org",  # full-width
        "alice@[127.0.0.1]",
        "alice@localhost",
        "alice@example.org\x00",
    ],
)
async def test_refused_addresses_are_refused_and_never_mailed(
    client: Client, smtp: Sink, rows: Any, address: str  # noqa: F811
) -> None:
    r = await sign_up(client, address)
    assert_error(r, 400, "email")
    await asyncio.sleep(0.1)
    assert smtp.received == [] and rows("SELECT count(*) FROM subscribers")[0][0] == 0


async def test_an_international_domain_is_stored_in_its_ascii_form(
    client: Client, smtp: Sink, rows: Any  # noqa: F811
) -> None:
    assert (await sign_up(client, "chytach@пример.бел")).status_code == 202
    await smtp.wait(1)
    assert smtp.received[0][0] == ["chytach@xn--e1afmkfd.xn--90ais"]
    assert state_of(rows, "chytach@xn--e1afmkfd.xn--90ais") == "pending"


async def test_the_honeypot_and_a_wrong_proof_send_nothing(
    client: Client, smtp: Sink, rows: Any  # noqa: F811
) -> None:
    trapped = await sign_up(client, "robot@example.org", website="http://spam.example")
    assert trapped.status_code == 202  # a robot learns nothing
    challenge = (await client.get("/api/v1/subscriptions/challenge")).json()["challenge"]
    unsolved = next(
        format(n, "x") for n in range(10_000)
        if links.leading_zero_bits(__import__("hashlib").sha256(f"{challenge}:x@example.org:{n:x}".encode()).digest())
        < BITS
    )
    wrong = await client.post("/api/v1/subscriptions",
                              json={"email": "x@example.org", "proof": {"challenge": challenge, "nonce": unsolved}})
    assert_error(wrong, 400, "proof")
    forged = links.new_challenge(b"another key" * 3, 2_000_000_000)
    r = await client.post("/api/v1/subscriptions", json={
        "email": "x@example.org", "proof": {"challenge": forged, "nonce": links.solve(forged, "x@example.org", BITS)}})
    assert_error(r, 400, "proof")
    # The work is bound to the address: one solution does not serve another.
    nonce = links.solve(challenge, "x@example.org", BITS)
    other = await client.post("/api/v1/subscriptions",
                              json={"email": "y@example.org", "proof": {"challenge": challenge, "nonce": nonce}})
    if other.status_code != 400:  # 1 in 2**BITS nonces happen to solve it for y too
        assert links.leading_zero_bits(
            __import__("hashlib").sha256(f"{challenge}:y@example.org:{nonce}".encode()).digest()) >= BITS
    await asyncio.sleep(0.1)
    assert rows("SELECT count(*) FROM subscribers WHERE email IN ('robot@example.org', 'x@example.org')") == [(0,)]
    assert all("robot@example.org" not in rcpt and "x@example.org" not in rcpt for rcpt, _ in smtp.received)


async def test_ten_thousand_sign_ups_from_one_address_are_throttled_and_mail_one_confirmation(
    client: Client, smtp: Sink, rows: Any, settings: Settings  # noqa: F811
) -> None:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the rate limiter is the same on both stores; the race below covers the store's part")
    challenge = (await client.get("/api/v1/subscriptions/challenge")).json()["challenge"]
    body = msgspec.json.encode({"email": "target@example.org", "proof": {
        "challenge": challenge, "nonce": links.solve(challenge, "target@example.org", BITS)}})
    statuses: list[int] = []
    for start in range(0, 10_000, 500):
        answers = await asyncio.gather(*(
            client.post("/api/v1/subscriptions", content=body, headers={"Content-Type": "application/json"})
            for _ in range(start, start + 500)
        ))
        statuses += [a.status_code for a in answers]
    assert statuses.count(202) == 5 and statuses.count(429) == 9_995  # the burst of rate_limit_subscribe
    await smtp.wait(1)
    await asyncio.sleep(0.2)
    assert len(smtp.received) == 1  # one mailbox, one confirmation an hour
    assert rows("SELECT count(*) FROM subscribers") == [(1,)]


async def test_sign_ups_of_one_address_at_once_store_one_row_and_send_one_mail(
    client: Client, smtp: Sink, rows: Any  # noqa: F811
) -> None:
    answers = await asyncio.gather(*(sign_up(client, "race@example.org") for _ in range(5)))
    assert [a.status_code for a in answers] == [202] * 5
    await smtp.wait(1)
    await asyncio.sleep(0.2)
    assert len(smtp.received) == 1 and rows("SELECT count(*) FROM subscribers") == [(1,)]


async def test_a_confirmation_the_mail_server_refused_can_be_asked_for_again_at_once(
    client: Client, smtp: Sink, rows: Any, newsletter: Newsletter  # noqa: F811
) -> None:
    smtp.refuse["bounce@example.org"] = "450 4.2.1 try later"
    assert (await sign_up(client, "bounce@example.org")).status_code == 202
    for _ in range(100):
        if rows("SELECT confirm_sent_us FROM subscribers") == [(0,)]:
            break
        await asyncio.sleep(0.02)
    assert rows("SELECT confirm_sent_us FROM subscribers") == [(0,)]
    del smtp.refuse["bounce@example.org"]
    assert (await sign_up(client, "bounce@example.org")).status_code == 202
    await smtp.wait(1)


# --- subscribers' data --------------------------------------------------------------------


async def test_addresses_are_read_only_with_the_subscribers_scope_and_erased_by_admin(
    client: Client, smtp: Sink, service: Any, rows: Any  # noqa: F811
) -> None:
    await confirmed(client, smtp, "data@example.org", languages=["en", "be"], cadence="each")
    writer, _ = await service.create_token("editor", ["commentaries:write"])
    reader, _ = await service.create_token("privacy", ["subscribers:read"])
    admin, _ = await service.create_token("root", ["admin"])
    as_writer = {"Authorization": f"Bearer {writer}"}
    as_reader = {"Authorization": f"Bearer {reader}"}

    assert (await client.get("/api/v1/subscribers", headers=as_writer)).status_code == 403
    assert "data@example.org" not in (await client.get("/api/v1/subscribers", headers=as_writer)).text
    listed = (await client.get("/api/v1/subscribers", headers=as_reader)).json()
    assert [s["email"] for s in listed["items"]] == ["data@example.org"]
    export = await client.get("/api/v1/subscribers/DATA@example.org", headers=as_reader)
    assert export.status_code == 200 and export.headers["cache-control"] == "no-store"
    data = export.json()
    assert (data["email"], data["languages"], data["cadence"], data["state"]) == (
        "data@example.org", ["en", "be"], "each", "active")
    assert "confirm_nonce" not in data and data["confirmed_at"] is not None
    assert (await client.delete(f"/api/v1/subscribers/{data['id']}", headers=as_reader)).status_code == 403
    gone = await client.delete(f"/api/v1/subscribers/{data['id']}", headers={"Authorization": f"Bearer {admin}"})
    assert gone.status_code == 204
    assert rows("SELECT count(*) FROM subscribers") == [(0,)]
    assert (await client.get(f"/api/v1/subscribers/{data['id']}", headers=as_reader)).status_code == 404


async def test_without_a_sender_the_newsletter_is_off(any_database_url: str) -> None:
    app = __import__("feedsvc.http.app", fromlist=["create_app"]).create_app(
        load_settings({}, database_url=any_database_url, public_url=PUBLIC_URL)
    )
    async with AsyncTestClient(app) as client:
        assert (await client.get("/api/v1/subscriptions/challenge")).status_code == 404
        assert (await client.get("/newsletter")).status_code == 404


async def test_the_sign_up_page_speaks_the_language_asked_for(client: Client) -> None:
    page = await client.get("/newsletter", params={"lang": "be"})
    assert page.status_code == 200 and 'lang="be"' in page.text and "Падпісацца" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = await client.get("/newsletter.js")
    assert script.status_code == 200 and "crypto.subtle" in script.text
    _ = free_port  # re-exported for other modules


def test_the_command_line_lists_exports_and_erases_one_subscriber(
    db_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from feedsvc.cli import main
    from feedsvc.store import StoredSubscriber, open_store

    url = f"sqlite:///{db_path}"

    async def seed() -> None:
        store = open_store(url)
        await store.open()
        for n, email in enumerate(["one@example.org", "two@example.org"]):
            await store.sign_up(
                StoredSubscriber(
                    id=f"id{n}", email=email, lang="ru", languages=["ru"], categories=[], cadence="weekly",
                    state="pending", state_reason=None, created_us=1, updated_us=1, confirmed_us=None,
                    confirm_nonce="n", confirm_sent_us=1,
                ),
                resend_after_us=0,
            )
        await store.close()

    asyncio.run(seed())
    assert main(["subscribers", "list", "--database-url", url]) == 0
    listed = capsys.readouterr().out
    assert "one@example.org" in listed and "two@example.org" in listed
    assert main(["subscribers", "export", "ONE@example.org", "--database-url", url]) == 0
    exported = msgspec.json.decode(capsys.readouterr().out)
    assert (exported["id"], exported["email"], exported["languages"]) == ("id0", "one@example.org", ["ru"])
    assert main(["subscribers", "erase", "id0", "--database-url", url]) == 0
    assert "erased subscriber id0" in capsys.readouterr().out
    assert main(["subscribers", "export", "id0", "--database-url", url]) == 1
    assert "no subscriber id0" in capsys.readouterr().err
    assert main(["subscribers", "list", "--database-url", url]) == 0
    assert "one@example.org" not in capsys.readouterr().out
