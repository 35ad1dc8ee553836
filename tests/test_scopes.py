"""Least privilege: each token may do what its scopes name and nothing else.

One table of guarded routes and the scope each needs; one of tokens and what they carry.
Every token is tried on every route, on both engines: a route its scopes allow is not a
401/403, any other is a 403 whose ``WWW-Authenticate`` names the scope needed, and the
stored rows do not move. Tokens made before scopes were split carry ``write``: they keep
publishing and managing categories, and lose the webhook subscriptions.
"""

from __future__ import annotations

from typing import Any

import pytest

from feedsvc.config import Settings, load_settings
from feedsvc.errors import InvalidInputError
from feedsvc.model import SCOPES, TokenInfo
from feedsvc.store import TokenRecord
from tests.conftest import PUBLIC_URL, assert_error, commentary

API = "/api/v1/commentaries"
HOOKS = "/api/v1/webhooks"
SOME_ID = "01J00000000000000000000000"
HOOK_ID = "0000000000000000"
# An address the webhook policy refuses: a route the token may use answers 422, never
# contacting anything.
PRIVATE_TARGET = "http://10.0.0.1/hook"

# (name, method, path, body, the scope the route needs)
ROUTES: list[tuple[str, str, str, Any, str]] = [
    ("publish", "POST", API, commentary(), "commentaries:write"),
    ("replace", "PUT", f"{API}/{SOME_ID}", commentary(), "commentaries:write"),
    ("patch", "PATCH", f"{API}/{SOME_ID}", {"title": "x"}, "commentaries:write"),
    ("delete", "DELETE", f"{API}/{SOME_ID}", None, "commentaries:write"),
    ("put category", "PUT", "/api/v1/categories/arms-control", {"names": {"en": "Arms control"}}, "categories:write"),
    ("subscribe webhook", "POST", HOOKS, {"url": PRIVATE_TARGET}, "webhooks:manage"),
    ("list webhooks", "GET", HOOKS, None, "webhooks:manage"),
    ("read webhook", "GET", f"{HOOKS}/{HOOK_ID}", None, "webhooks:manage"),
    ("delete webhook", "DELETE", f"{HOOKS}/{HOOK_ID}", None, "webhooks:manage"),
    ("metrics", "GET", "/metrics", None, "metrics:read"),
    ("list subscribers", "GET", "/api/v1/subscribers", None, "subscribers:read"),
    ("export subscriber", "GET", "/api/v1/subscribers/nobody@example.org", None, "subscribers:read"),
    ("erase subscriber", "DELETE", "/api/v1/subscribers/0000000000000000", None, "admin"),
]

# (the token's scopes, the scopes of ROUTES it may use)
EVERY = {"commentaries:write", "categories:write", "webhooks:manage", "metrics:read", "subscribers:read", "admin"}
TOKENS: list[tuple[list[str], set[str]]] = [
    (["commentaries:write"], {"commentaries:write"}),
    (["categories:write"], {"categories:write"}),
    (["webhooks:manage"], {"webhooks:manage"}),
    (["metrics:read"], {"metrics:read"}),
    (["subscribers:read"], {"subscribers:read"}),
    (["write"], {"commentaries:write", "categories:write"}),  # tokens from before the split
    (["commentaries:write", "webhooks:manage"], {"commentaries:write", "webhooks:manage"}),
    (["admin"], EVERY),
]


@pytest.fixture
def settings(any_database_url: str) -> Settings:
    """Both stores; room for the table's refusals in the failed-authentication budget."""
    return load_settings(
        {}, database_url=any_database_url, public_url=PUBLIC_URL, rate_limit_auth_failures="100/s,1000"
    )


def test_every_guarded_route_and_every_scope_is_in_the_tables() -> None:
    assert {scope for *_, scope in ROUTES} | {"subscribers:read", "admin", "write"} == set(SCOPES)
    assert {scope for scopes, _ in TOKENS for scope in scopes} == set(SCOPES)


async def test_every_guarded_route_without_a_token_is_401_metrics_included(client: Any, subtests: Any) -> None:
    for name, method, path, body, _ in ROUTES:
        with subtests.test(name):
            r = await client.request(method, path, json=body, headers={"If-Match": "*"})
            assert_error(r, 401)
            assert r.headers["www-authenticate"].startswith('Bearer realm="feedsvc"')
            assert "feedsvc_http_requests_total" not in r.text


async def test_each_token_may_use_exactly_the_routes_its_scopes_name(
    client: Any, service: Any, categories: Any, stored_counts: Any, rows: Any, subtests: Any
) -> None:
    for scopes, allowed in TOKENS:
        secret, _ = await service.create_token("+".join(scopes), scopes)
        headers = {"Authorization": f"Bearer {secret}", "If-Match": "*"}
        for name, method, path, body, needed in ROUTES:
            if needed in allowed:
                continue  # tried below, where its effect is checked
            with subtests.test(f"{'+'.join(scopes)}: {name}"):
                before, hooks = stored_counts(), rows("SELECT id FROM webhooks")
                r = await client.request(method, path, json=body, headers=headers)
                assert_error(r, 403)
                challenge = r.headers["www-authenticate"]
                assert 'error="insufficient_scope"' in challenge and f'scope="{needed}"' in challenge, challenge
                assert r.json()["extra"]["required_scope"] == needed
                assert (stored_counts(), rows("SELECT id FROM webhooks")) == (before, hooks)


async def test_a_route_a_token_is_allowed_answers_as_without_scopes(
    client: Any, service: Any, categories: Any, subtests: Any
) -> None:
    for scopes, allowed in TOKENS:
        secret, _ = await service.create_token("+".join(scopes), scopes)
        headers = {"Authorization": f"Bearer {secret}", "If-Match": "*"}
        for name, method, path, body, needed in ROUTES:
            if needed not in allowed:
                continue
            with subtests.test(f"{'+'.join(scopes)}: {name}"):
                r = await client.request(method, path, json=body, headers=headers)
                # The request got past the guard: what it asked for happened or was refused
                # for its own reasons (no such id, an address the webhook policy refuses).
                assert r.status_code not in (401, 403), r.text
                assert r.status_code < 500, r.text


async def test_a_token_from_before_the_split_keeps_editing_but_not_webhooks(
    client: Any, service: Any, categories: Any, token: str, rows: Any
) -> None:
    # The `token` fixture is made as every token was before: scopes ["write"], stored as is.
    token_id = token.split("_")[1]
    assert (await service.store.get_token(token_id)).info.scopes == ["write"]
    editor = {"Authorization": f"Bearer {token}"}
    manager, _ = await service.create_token("hooks", ["webhooks:manage"])
    hooks = {"Authorization": f"Bearer {manager}"}

    draft = await client.post(API, json=commentary(status="draft"), headers=editor)
    assert draft.status_code == 201, draft.text
    assert (await client.get(f"{API}/{draft.json()['id']}", headers=editor)).json()["status"] == "draft"
    r = await client.put("/api/v1/categories/arms-control", json={"names": {"en": "Arms control"}}, headers=editor)
    assert r.status_code == 201, r.text

    # Webhook subscriptions name who is told about changes, and where: not an editor's.
    created = await client.post(HOOKS, json={"url": "https://93.184.215.14/hooks/feedsvc"}, headers=hooks)
    assert created.status_code == 201, created.text
    hook = created.json()["id"]
    for method, path in (("GET", HOOKS), ("GET", f"{HOOKS}/{hook}"), ("DELETE", f"{HOOKS}/{hook}"), ("POST", HOOKS)):
        r = await client.request(
            method, path, json={"url": "https://93.184.215.14/x"} if method == "POST" else None, headers=editor
        )
        assert_error(r, 403)
        assert 'scope="webhooks:manage"' in r.headers["www-authenticate"]
    assert [row[0] for row in rows("SELECT id FROM webhooks")] == [hook]
    assert [h["id"] for h in (await client.get(HOOKS, headers=hooks)).json()] == [hook]


async def test_only_a_token_with_commentaries_write_sees_drafts(
    client: Any, service: Any, auth: dict[str, str], categories: Any
) -> None:
    draft = (await client.post(API, json=commentary(status="draft"), headers=auth)).json()
    for scopes, sees in (
        (["categories:write"], False),
        (["webhooks:manage"], False),
        (["commentaries:write"], True),
        (["admin"], True),
    ):
        secret, _ = await service.create_token("t", scopes)
        r = await client.get(f"{API}/{draft['id']}", headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == (200 if sees else 404), (scopes, r.text)


async def test_an_unknown_stored_scope_allows_nothing(client: Any, service: Any, token: str, subtests: Any) -> None:
    # A token from a newer version (or a hand-edited row): its scope means nothing here.
    token_id, secret = token.split("_", 2)[1:]
    record = await service.store.get_token(token_id)
    odd = TokenInfo(id="0000000000cc", name="odd", scopes=["webhooks:*"], created_at=record.info.created_at)
    await service.store.add_token(TokenRecord(info=odd, salt=record.salt, digest=record.digest))
    for name, method, path, body, _needed in ROUTES:
        with subtests.test(name):
            r = await client.request(
                method, path, json=body, headers={"Authorization": f"Bearer fsv_0000000000cc_{secret}", "If-Match": "*"}
            )
            assert_error(r, 403)


@pytest.mark.parametrize("scopes", [["nope"], ["write", "webhooks"], [], ["Admin"]])
async def test_the_service_makes_tokens_only_with_known_scopes(service: Any, scopes: list[str]) -> None:
    with pytest.raises(InvalidInputError):
        await service.create_token("bad", scopes)
