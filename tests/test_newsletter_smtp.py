"""The mail server as providers run one (issue 16): STARTTLS required, with a certificate
feedsvc must check, then authentication. feedsvc speaks both; a wrong password or a refusal
to upgrade sends nothing and says what the server answered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from feedsvc.config import load_settings
from feedsvc.http.app import create_app
from tests.conftest import PUBLIC_URL, commentary
from tests.mailsink import PASSWORD, USER, Sink, smtp_tls  # noqa: F401  (a fixture)
from tests.test_newsletter import SENDER

WEEK = {"start": "2026-03-02", "end": "2026-03-08"}


@pytest.mark.parametrize(
    ("tls", "password", "delivered", "status", "said"),
    [
        ("starttls", PASSWORD, True, 200, ""),
        ("auto", PASSWORD, True, 200, ""),  # the server offers STARTTLS: it is used
        ("starttls", "wrong", False, 502, "535"),
        ("none", PASSWORD, False, 502, "AUTH"),  # no password goes over plain text
    ],
)
async def test_a_test_send_through_a_relay_that_requires_starttls_and_auth(
    db_path: Path, smtp_tls: tuple[Sink, Path], tls: str, password: str, delivered: bool, status: int,  # noqa: F811
    said: str,
) -> None:
    sink, cert = smtp_tls
    app = create_app(load_settings(
        {}, database_url=f"sqlite:///{db_path}", public_url=PUBLIC_URL, mail_from=SENDER, smtp_port=sink.port,
        smtp_tls=tls, smtp_ca_file=str(cert), smtp_username=USER, smtp_password=password,
    ))
    async with AsyncTestClient(app) as client:
        service: Any = app.state.service
        token, _ = await service.create_token("t", ["admin"])
        auth = {"Authorization": f"Bearer {token}"}
        assert (await client.put("/api/v1/categories/regional-security", json={"names": {"en": "Security"}},
                                 headers=auth)).status_code in (200, 201)
        r = await client.post("/api/v1/commentaries", headers=auth, json=commentary(period=WEEK))
        assert r.status_code == 201, r.text
        r = await client.post(f"/api/v1/newsletter/digests/{WEEK['start']}/test",
                              json={"to": "editor@example.org"}, headers=auth)
        assert r.status_code == status, r.text
        assert [rcpt for rcpt, _ in sink.received] == ([["editor@example.org"]] if delivered else [])
        assert said in r.text  # what went wrong, as the server (or the client) said it


async def test_a_server_whose_certificate_is_not_trusted_gets_nothing(
    db_path: Path, smtp_tls: tuple[Sink, Path]  # noqa: F811
) -> None:
    sink, _ = smtp_tls
    app = create_app(load_settings(
        {}, database_url=f"sqlite:///{db_path}", public_url=PUBLIC_URL, mail_from=SENDER, smtp_port=sink.port,
        smtp_tls="starttls", smtp_username=USER, smtp_password=PASSWORD,  # the system's CAs only
    ))
    async with AsyncTestClient(app) as client:
        service: Any = app.state.service
        token, _ = await service.create_token("t", ["admin"])
        auth = {"Authorization": f"Bearer {token}"}
        await client.put("/api/v1/categories/regional-security", json={"names": {"en": "Security"}}, headers=auth)
        await client.post("/api/v1/commentaries", headers=auth, json=commentary(period=WEEK))
        r = await client.post(f"/api/v1/newsletter/digests/{WEEK['start']}/test",
                              json={"to": "editor@example.org"}, headers=auth)
        assert r.status_code == 502 and "CERTIFICATE_VERIFY_FAILED" in r.json()["detail"].upper().replace(" ", "_")
        assert sink.received == []
