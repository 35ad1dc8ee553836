"""Bearer tokens: who may write, and how a refused write looks. Reads need no token."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest

from feedsvc.errors import InvalidInputError
from feedsvc.model import TokenInfo
from feedsvc.store import TokenRecord
from tests.conftest import assert_error, commentary

API = "/api/v1/commentaries"
SOME_ID = "01J00000000000000000000000"

# (method, path, body): every write route.
WRITES: list[tuple[str, str, Any]] = [
    ("POST", API, commentary()),
    ("PUT", f"{API}/{SOME_ID}", commentary()),
    ("PATCH", f"{API}/{SOME_ID}", {"title": "x"}),
    ("DELETE", f"{API}/{SOME_ID}", None),
    ("PUT", "/api/v1/categories/arms-control", {"names": {"en": "Arms control"}}),
]


async def write(client: Any, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return await client.request(method, path, json=body, headers={"If-Match": "*", **headers})


def assert_401(response: Any) -> None:
    assert_error(response, 401)
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), response.headers
    assert 'realm="feedsvc"' in challenge


async def test_every_write_without_authorization_is_401_with_a_bearer_challenge(
    client: Any, categories: Any, stored_counts: Any, rows: Any, subtests: Any
) -> None:
    before, category_rows = stored_counts(), rows("SELECT * FROM categories")
    for method, path, body in WRITES:
        with subtests.test(f"{method} {path}"):
            assert_401(await write(client, method, path, body, {}))
    assert stored_counts() == before
    assert rows("SELECT * FROM categories") == category_rows


async def test_authorization_in_another_scheme_or_malformed_is_401(
    client: Any, categories: Any, token: str, stored_counts: Any, subtests: Any
) -> None:
    token_id, secret = token.split("_", 2)[1:]
    headers = [
        ("basic scheme", "Basic dGVzdHM6c2VjcmV0"),
        ("basic scheme carrying the token", f"Basic {token}"),
        ("token scheme", f"Token {token}"),
        ("scheme without a token", "Bearer"),
        ("scheme and spaces", "Bearer    "),
        ("the token without a scheme", token),
        ("not our format", "Bearer abc"),
        ("prefix only", "Bearer fsv_"),
        ("no secret part", f"Bearer fsv_{token_id}"),
        ("wrong prefix", f"Bearer xyz_{token_id}_{secret}"),
        ("unknown id", f"Bearer fsv_000000000000_{secret}"),
        ("right id, wrong secret", f"Bearer fsv_{token_id}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"),
        ("right id, truncated secret", f"Bearer fsv_{token_id}_{secret[:10]}"),
        ("two tokens", f"Bearer {token} {token}"),
    ]
    before = stored_counts()
    for case, value in headers:
        with subtests.test(case):
            assert_401(await client.post(API, json=commentary(), headers={"Authorization": value}))
    assert stored_counts() == before


async def test_the_scheme_name_is_case_insensitive(client: Any, categories: Any, token: str) -> None:
    r = await client.post(API, json=commentary(), headers={"Authorization": f"bearer {token}"})
    assert r.status_code == 201, r.text


async def test_a_revoked_token_is_401_and_other_tokens_keep_working(
    client: Any, service: Any, categories: Any, token: str, stored_counts: Any
) -> None:
    other, _ = await service.create_token("other", ["write"])
    await service.revoke_token(token.split("_")[1])
    before = stored_counts()
    assert_401(await client.post(API, json=commentary(), headers={"Authorization": f"Bearer {token}"}))
    assert stored_counts() == before
    r = await client.post(API, json=commentary(), headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 201


async def test_a_token_expires_at_its_time(client: Any, service: Any, categories: Any, clock: Any) -> None:
    secret, info = await service.create_token("short-lived", ["write"], expires_in=timedelta(seconds=30))
    assert info.expires_at == clock.now + timedelta(seconds=30)
    headers = {"Authorization": f"Bearer {secret}"}

    clock.advance(seconds=29)
    assert (await client.post(API, json=commentary(title="Before"), headers=headers)).status_code == 201
    clock.advance(seconds=1)
    assert_401(await client.post(API, json=commentary(title="At"), headers=headers))
    clock.advance(days=1)
    r = await client.post(API, json=commentary(title="After"), headers=headers)
    assert_401(r)
    assert "expired" in r.json()["detail"]


async def test_an_admin_token_may_write(client: Any, service: Any, categories: Any) -> None:
    secret, info = await service.create_token("admin", ["admin"])
    assert info.scopes == ["admin"]
    r = await client.post(API, json=commentary(), headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 201, r.text


async def test_the_service_refuses_to_make_tokens_with_unknown_or_no_scopes(service: Any) -> None:
    for scopes in (["read"], ["write", "superuser"], []):
        with pytest.raises(InvalidInputError):
            await service.create_token("bad", scopes)


async def test_a_valid_token_without_the_write_scope_is_403(
    client: Any, service: Any, categories: Any, token: str, stored_counts: Any
) -> None:
    # The service makes only write/admin tokens; a stored "read" token (from an older or
    # newer version) shares the salted hash of an existing token under another id.
    token_id, secret = token.split("_", 2)[1:]
    record = await service.store.get_token(token_id)
    read_info = TokenInfo(id="0000000000aa", name="reader", scopes=["read"], created_at=record.info.created_at)
    await service.store.add_token(TokenRecord(info=read_info, salt=record.salt, digest=record.digest))
    before = stored_counts()

    r = await client.post(API, json=commentary(), headers={"Authorization": f"Bearer fsv_0000000000aa_{secret}"})
    assert_error(r, 403)
    assert "insufficient_scope" in r.headers["www-authenticate"]
    assert stored_counts() == before

    # On a public read the same token is simply not needed: the public view, no drafts.
    draft = await client.post(
        API, json=commentary(status="draft", title="Hidden draft"), headers={"Authorization": f"Bearer {token}"}
    )
    reader = {"Authorization": f"Bearer fsv_0000000000aa_{secret}"}
    assert (await client.get(f"{API}/{draft.json()['id']}", headers=reader)).status_code == 404
    assert (await client.get(API, headers=reader)).status_code == 200


async def test_a_token_in_the_url_is_refused_even_when_valid(
    client: Any, categories: Any, token: str, auth: dict[str, str], stored_counts: Any, subtests: Any
) -> None:
    before = stored_counts()
    for name in ("access_token", "token", "api_key"):
        with subtests.test(name):
            assert_401(await client.post(f"{API}?{name}={token}", json=commentary()))
            # Even beside a valid header: the token has leaked into logs and must not work.
            assert_401(await client.post(f"{API}?{name}={token}", json=commentary(), headers=auth))
    assert stored_counts() == before


async def test_tokens_are_stored_only_as_salted_hashes(service: Any, token: str, rows: Any) -> None:
    second, _ = await service.create_token("second", ["write"])
    stored = rows("SELECT id, name, scopes, salt, digest FROM tokens")
    assert len(stored) == 2
    for secret_form in (token, second):
        secret = secret_form.split("_", 2)[2]
        for row in stored:
            for value in row:
                as_bytes = value if isinstance(value, bytes) else str(value).encode()
                assert secret.encode() not in as_bytes
                assert secret_form.encode() not in as_bytes
                assert hashlib.sha256(secret.encode()).digest() != as_bytes
    salts = [row[3] for row in stored]
    assert len(set(salts)) == 2 and all(len(s) >= 16 for s in salts)


async def test_reads_need_no_token(client: Any, auth: dict[str, str], categories: Any, subtests: Any) -> None:
    created = (await client.post(API, json=commentary(), headers=auth)).json()
    for path in (
        API, f"{API}/{created['id']}", f"{API}/{created['slug']}?lang=en", "/api/v1/categories",
        "/api/v1/categories/regional-security", "/api/v1/tags", "/api/v1/authors", "/api/v1/changes",
    ):
        with subtests.test(path):
            r = await client.get(path)
            assert r.status_code == 200, r.text


async def test_a_draft_is_visible_by_id_to_a_writer_only(
    client: Any, auth: dict[str, str], categories: Any, service: Any
) -> None:
    draft = (await client.post(API, json=commentary(status="draft"), headers=auth)).json()
    assert (await client.get(f"{API}/{draft['id']}", headers=auth)).json()["status"] == "draft"
    assert (await client.get(f"{API}/{draft['slug']}?lang=en", headers=auth)).status_code == 200
    assert_error(await client.get(f"{API}/{draft['id']}"), 404)
    assert_error(await client.get(f"{API}/{draft['slug']}?lang=en"), 404)
    # A token that is not valid does not fall back to the public view: it is refused.
    assert_401(await client.get(f"{API}/{draft['id']}", headers={"Authorization": "Bearer fsv_000000000000_x"}))


async def test_a_writer_gets_a_private_uncacheable_view(client: Any, auth: dict[str, str], categories: Any) -> None:
    draft = (await client.post(API, json=commentary(status="draft"), headers=auth)).json()
    r = await client.get(f"{API}/{draft['id']}", headers=auth)
    assert "no-store" in r.headers["cache-control"] and "public" not in r.headers["cache-control"]
