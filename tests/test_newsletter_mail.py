"""The newsletter's mail as mailbox providers judge it (issue 16): the weekly digest in the
subscriber's language, HTML and text from the same data, images by absolute URL with alt
text, under Gmail's clipping size, the list headers of RFC 2369 and RFC 8058, and a DKIM
signature over them that dkimpy's verifier accepts. Mail goes to a real SMTP server on
loopback; the key is made by openssl, as the manual tells publishers to make theirs."""

from __future__ import annotations

import base64
import re
import subprocess
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.config import Settings, load_settings
from feedsvc.newsletter.subscribers import Newsletter
from tests.conftest import PUBLIC_URL, assert_error, commentary
from tests.mailsink import Sink, smtp  # noqa: F401  (a fixture)
from tests.test_newsletter import BITS, confirm_path, sign_up, text_and_html

Client = AsyncTestClient[Litestar]
SENDER = "Каментарыі <news@feeds.example.org>"
SELECTOR = "feedsvc2026"
WEEK = {"start": "2026-03-02", "end": "2026-03-08"}


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A private key file and the DNS TXT record that publishes its public half."""
    folder = tmp_path_factory.mktemp("dkim")
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


@pytest.fixture
def settings(any_database_url: str, smtp: Sink, dkim_key: tuple[Path, bytes]) -> Settings:  # noqa: F811
    return load_settings(
        {}, database_url=any_database_url, public_url=PUBLIC_URL, mail_from=SENDER, smtp_port=smtp.port,
        smtp_tls="none", newsletter_proof_bits=BITS, dkim_key_file=str(dkim_key[0]), dkim_selector=SELECTOR,
    )


def verifies(raw: bytes, record: bytes) -> bool:
    """dkimpy's verifier, with the DNS answer for our selector and nothing else."""

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.feeds.example.org.".encode() else None

    return bool(dkim.verify(raw, dnsfunc=dns))


@pytest.fixture
async def week(client: Client, auth: dict[str, str], categories: Any) -> None:
    """A published week in Russian (one commentary with an image) and in English."""
    for n, (title, lang, image) in enumerate([
        ("Санкции и транзит: что изменилось", "ru", {"url": "/media/transit.jpg", "alt": "Грузовики на границе"}),
        ("Переговоры о границе", "ru", None),
        ("Border talks", "en", None),
    ]):
        r = await client.post("/api/v1/commentaries", headers=auth, json=commentary(
            title=title, lang=lang, image=image, period=WEEK, trend="worsened" if n == 0 else None,
            summary=f"Кратко: {title}." if lang == "ru" else "In short.",
            published_at=f"2026-03-0{n + 3}T09:00:00+00:00",
        ))
        assert r.status_code == 201, r.text


async def test_a_test_send_is_the_digest_in_its_language_signed_over_the_list_headers(
    client: Client, smtp: Sink, service: Any, week: None, dkim_key: tuple[Path, bytes]  # noqa: F811
) -> None:
    editor, _ = await service.create_token("editor", ["commentaries:write"])
    r = await client.post(f"/api/v1/newsletter/digests/{WEEK['start']}/test",
                          json={"lang": "ru", "to": "Editor@Example.org"},
                          headers={"Authorization": f"Bearer {editor}"})
    assert r.status_code == 200, r.text
    [(rcpt, raw)] = [(rcpt, raw) for rcpt, raw in smtp.received]
    assert rcpt == ["editor@example.org"]
    assert verifies(raw, dkim_key[1])
    signature = raw.split(b"\r\n\r\n", 1)[0].decode()
    signed = re.search(r"h=([^;]+);", signature.replace("\r\n", "").replace(" ", ""))
    assert signed
    assert {"from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe",
            "list-unsubscribe-post"} <= set(signed.group(1).lower().split(":"))
    assert b"d=feeds.example.org" in raw and f"s={SELECTOR}".encode() in raw

    [mail] = smtp.messages()
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = [u.strip(" <>") for u in mail["List-Unsubscribe"].split(",")]
    assert https.startswith(f"{PUBLIC_URL}/newsletter/unsubscribe/")
    assert mailto.startswith("mailto:news@feeds.example.org?subject=unsubscribe")
    assert mail["List-Id"].endswith("<newsletter.feeds.example.org>")
    assert re.fullmatch(r"<[0-9a-f]+@feeds\.example\.org>", mail["Message-ID"])
    assert mail["Content-Language"] == "ru"
    text, html = text_and_html(mail)
    for part in (text, html):
        assert "Санкции и транзит: что изменилось" in part and "Переговоры о границе" in part
        assert "Border talks" not in part  # the other language's digest
        assert "Отписаться" in part and "Комментариев за неделю: 2" in part
    assert f'src="{PUBLIC_URL}/media/transit.jpg" alt="Грузовики на границе"' in html
    assert len(raw) < 102_000

    # An altered unsubscribe link no longer verifies: the signature covers it.
    tampered = raw.replace(b"/newsletter/unsubscribe/", b"/newsletter/unsubscribX/", 1)
    assert not verifies(tampered, dkim_key[1])


async def test_the_confirmation_mail_is_signed_too_and_carries_no_list_headers(
    client: Client, smtp: Sink, dkim_key: tuple[Path, bytes]  # noqa: F811
) -> None:
    assert (await sign_up(client, "new@example.org", languages=["be"])).status_code == 202
    [mail] = await smtp.wait(1)
    assert verifies(smtp.received[0][1], dkim_key[1])
    assert mail["List-Unsubscribe"] is None and mail["Auto-Submitted"] == "auto-generated"
    assert "Пацвердзіце падпіску" in mail["Subject"]
    assert confirm_path(mail).startswith("/newsletter/confirm/")


async def test_a_subscriber_unsubscribes_with_the_exact_request_of_its_mails_header(
    client: Client, smtp: Sink, newsletter_and_issues: Any, week: None, rows: Any  # noqa: F811
) -> None:
    newsletter, issues = newsletter_and_issues
    assert (await sign_up(client, "reader@example.org", languages=["ru"])).status_code == 202
    assert (await client.post(confirm_path((await smtp.wait(1))[0]))).status_code == 200
    sub = await newsletter.store.find_subscriber("reader@example.org")
    raw = await issues.message(__import__("datetime").date(2026, 3, 2), "ru", to=sub.email, subscriber=sub)
    mail = __import__("email").message_from_bytes(raw, policy=__import__("email.policy").policy.default)
    https = mail["List-Unsubscribe"].split(",")[0].strip(" <>")
    assert https.startswith(PUBLIC_URL)
    # RFC 8058 3.2: the POST a mailbox provider sends when the reader presses "unsubscribe".
    r = await client.post(https.removeprefix(PUBLIC_URL), content=b"List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    assert rows("SELECT state FROM subscribers WHERE email = 'reader@example.org'") == [("unsubscribed",)]


@pytest.fixture
def newsletter_and_issues(client: Client) -> tuple[Newsletter, Any]:
    return client.app.state.newsletter, client.app.state.issues


async def test_previews_need_an_editor_and_show_each_part(
    client: Client, service: Any, week: None  # noqa: F811
) -> None:
    path = f"/api/v1/newsletter/digests/{WEEK['start']}"
    assert_error(await client.get(path, params={"lang": "ru"}), 401)
    reader, _ = await service.create_token("privacy", ["subscribers:read"])
    assert_error(await client.get(path, params={"lang": "ru"}, headers={"Authorization": f"Bearer {reader}"}), 403)
    editor, _ = await service.create_token("editor", ["commentaries:write"])
    auth = {"Authorization": f"Bearer {editor}"}
    html = await client.get(path, params={"lang": "ru", "format": "html"}, headers=auth)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "Санкции и транзит" in html.text and "script-src" not in html.headers["content-security-policy"]
    text = await client.get(path, params={"lang": "ru", "format": "text"}, headers=auth)
    assert text.headers["content-type"].startswith("text/plain") and "* Санкции и транзит" in text.text
    eml = await client.get(path, params={"lang": "ru", "format": "eml"}, headers=auth)
    assert eml.content.startswith(b"DKIM-Signature:")
    assert_error(await client.get(path, params={"lang": "be"}, headers=auth), 404)  # no Belarusian digest
    assert_error(await client.get("/api/v1/newsletter/digests/2030-01-07", headers=auth), 404)


async def test_a_big_digest_stays_under_gmails_clipping_size(
    client: Client, auth: dict[str, str], categories: Any, newsletter_and_issues: Any
) -> None:
    _, issues = newsletter_and_issues
    for n in range(60):
        r = await client.post("/api/v1/commentaries", headers=auth, json=commentary(
            title=f"Commentary number {n} on a long week of news", period=WEEK, summary="word " * 190,
            image={"url": f"/media/{n}.jpg", "alt": f"Picture {n}"}, published_at="2026-03-03T09:00:00+00:00",
        ))
        assert r.status_code == 201, r.text
    raw = await issues.message(__import__("datetime").date(2026, 3, 2), "en", to="a@example.org", subscriber=None)
    assert len(raw) < 102_000
    mail: EmailMessage = __import__("email").message_from_bytes(raw, policy=__import__("email.policy").policy.default)
    text, html = text_and_html(mail)
    assert html.count("<h2") == 60 and text.count("\n* ") == 60  # every commentary, summaries shortened


def test_the_command_line_previews_the_demos_digest_in_each_part(
    db_path: Path, dkim_key: tuple[Path, bytes], capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from feedsvc.cli import main

    url = f"sqlite:///{db_path}"
    monkeypatch.setenv("FEEDSVC_MAIL_FROM", SENDER)
    monkeypatch.setenv("FEEDSVC_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv("FEEDSVC_DKIM_KEY_FILE", str(dkim_key[0]))
    monkeypatch.setenv("FEEDSVC_DKIM_SELECTOR", SELECTOR)
    assert main(["demo", "--data", str(Path(__file__).parent.parent / "data"), "--database-url", url]) == 0
    capsysbinary.readouterr()
    assert main(["newsletter", "preview", "2026-03-02", "--lang", "be", "--format", "eml", "--database-url", url]) == 0
    raw = capsysbinary.readouterr().out
    assert raw.startswith(b"DKIM-Signature:") and verifies(raw, dkim_key[1])
    assert main(["newsletter", "preview", "2026-03-02", "--lang", "be", "--format", "text", "--database-url", url]) == 0
    text = capsysbinary.readouterr().out.decode()
    assert "Адпісацца адным націскам" in text and "Каментарыяў за тыдзень" in text
    assert "сакавіка 2026" in text.split("\n")[0]  # the digest's title, its date in Belarusian
    assert main(["newsletter", "preview", "2030-01-07", "--lang", "be", "--database-url", url]) == 1
