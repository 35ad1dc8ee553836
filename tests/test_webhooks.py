"""Webhooks (issue 4, part 6): registration, signed in-order delivery, retries, disabling,
restarts, several nodes, and the refusal of private targets.

Deliveries go to a real HTTP server on 127.0.0.1 (``Receiver``), which verifies every
signature with the ``standardwebhooks`` library, independently of feedsvc's own signing.
Retry delays are set to tens of milliseconds so that a run of failures takes a moment; every
wait polls with a deadline. Runs on SQLite and, when FEEDSVC_TEST_POSTGRES_DSN is set, on
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from standardwebhooks.webhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from feedsvc.config import Settings, load_settings
from feedsvc.http.app import create_app
from feedsvc.model import TokenInfo
from feedsvc.store import TokenRecord
from tests.conftest import CATEGORIES, PUBLIC_URL, assert_error, commentary, page_url

HOOKS = "/api/v1/webhooks"
API = "/api/v1/commentaries"
PUBLIC_TARGET = "https://93.184.215.14/hooks/feedsvc"  # a public address; never contacted
FAST = {
    "webhook_allowed_networks": ["127.0.0.0/8"],
    "webhook_retry_delay": 0.05,
    "webhook_max_retry_delay": 0.2,
    "webhook_poll_interval": 0.1,
    "webhook_timeout": 2.0,
    "webhook_max_failures": 5,
}


@pytest.fixture
def settings(any_database_url: str) -> Settings:
    """Both stores; the receiver's 127.0.0.1 allowed; retries in tens of milliseconds."""
    return load_settings({}, database_url=any_database_url, public_url=PUBLIC_URL, **FAST)


@pytest.fixture
def rows(settings_rows: Any) -> Any:
    return settings_rows


@pytest.fixture
async def token(service: Any) -> str:
    """An editor who also manages webhooks: webhook routes need their own scope."""
    secret, _ = await service.create_token("tests", ["write", "webhooks:manage"])
    return str(secret)


# --- a receiver on 127.0.0.1 -------------------------------------------------------------------


class Receiver:
    """An HTTP server that records every POST and answers from a plan of statuses (then 204).

    Every request's signature is checked with the ``standardwebhooks`` library once a
    secret is known for its path (``secrets``).
    """

    def __init__(self, port: int = 0) -> None:
        self.plan: dict[str, list[int]] = {}
        self.secrets: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.arrived = 0
        self.hold = threading.Event()
        self.hold.set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.arrived += 1
                receiver.hold.wait(10)
                status = receiver._answer(self.path, dict(self.headers), body)
                self.send_response(status)
                text = b"receiver says no" if status >= 300 else b""
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        verified = None
        if path in self.secrets:
            try:
                verified = StandardWebhook(self.secrets[path]).verify(body, headers)
            except WebhookVerificationError:
                pass  # recorded as event=None, answered 400
        with self._lock:
            plan = self.plan.get(path, [])
            status = plan.pop(0) if plan else 204
            if path in self.secrets and verified is None:
                status = 400
            self.requests.append(
                {"path": path, "headers": {k.lower(): v for k, v in headers.items()}, "body": body,
                 "event": verified, "status": status}
            )
        return status

    def events(self, path: str, *, delivered: bool = True) -> list[dict[str, Any]]:
        """The events POSTed to ``path`` (only those answered 2xx when ``delivered``)."""
        with self._lock:
            return [
                json.loads(r["body"]) for r in self.requests
                if r["path"] == path and (not delivered or r["status"] < 300)
            ]

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Any:
    r = Receiver()
    yield r
    r.close()


async def eventually(check: Callable[[], Awaitable[Any]] | Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {check}")
        await asyncio.sleep(0.05)


# --- helpers -------------------------------------------------------------------------------------


async def register(
    client: Any, auth: dict[str, str], receiver: Receiver | None, path: str = "/hook", **fields: Any
) -> dict[str, Any]:
    body = {"url": receiver.url(path) if receiver else PUBLIC_TARGET, **fields}
    r = await client.post(HOOKS, json=body, headers=auth)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    if receiver is not None:
        receiver.secrets[path] = created["secret"]
    return created


async def hook_state(client: Any, auth: dict[str, str], id: str) -> dict[str, Any]:
    r = await client.get(f"{HOOKS}/{id}", headers=auth)
    assert r.status_code == 200, r.text
    state: dict[str, Any] = r.json()
    return state


class Writer:
    """Creates, edits and deletes commentaries through the API, keeping their ETags."""

    def __init__(self, client: Any, auth: dict[str, str]) -> None:
        self.client, self.auth = client, auth
        self.etags: dict[str, str] = {}

    async def create(self, **fields: Any) -> str:
        r = await self.client.post(API, json=commentary(**fields), headers=self.auth)
        assert r.status_code == 201, r.text
        self.etags[r.json()["id"]] = r.headers["etag"]
        return str(r.json()["id"])

    async def update(self, id: str, **fields: Any) -> None:
        r = await self.client.patch(
            f"{API}/{id}", json=fields, headers={**self.auth, "If-Match": self.etags[id],
                                                 "Content-Type": "application/merge-patch+json"}
        )
        assert r.status_code == 200, r.text
        self.etags[id] = r.headers["etag"]

    async def delete(self, id: str) -> None:
        r = await self.client.delete(f"{API}/{id}", headers={**self.auth, "If-Match": self.etags[id]})
        assert r.status_code == 204, r.text


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["data"]["id"]) for e in events]


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """Another feedsvc node (or the same one started again) on the same database."""
    async with AsyncTestClient(create_app(settings), base_url="http://testserver.local") as c:
        yield c


async def node_with_token(client: Any) -> dict[str, str]:
    secret, _ = await client.app.state.service.create_token("webhooks", ["write", "webhooks:manage"])
    return {"Authorization": f"Bearer {secret}"}


async def put_categories(client: Any, auth: dict[str, str]) -> None:
    for slug, body in CATEGORIES.items():
        assert (await client.put(f"/api/v1/categories/{slug}", json=body, headers=auth)).status_code in (200, 201)


# --- registration -------------------------------------------------------------------------------


async def test_registration_answers_the_secret_once_and_never_again(
    client: Any, auth: dict[str, str], rows: Any
) -> None:
    r = await client.post(
        HOOKS,
        json={
            "url": PUBLIC_TARGET,
            "events": ["deleted", "created"],
            "categories": ["economy"],
            "languages": ["EN"],
            "description": " For  Partner X ",
        },
        headers=auth,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["location"] == f"{PUBLIC_URL}{HOOKS}/{created['id']}"
    assert r.headers["cache-control"] == "no-store"
    assert created["secret"].startswith("whsec_")
    key = base64.b64decode(created["secret"].removeprefix("whsec_"))
    assert len(key) == 32
    assert created["url"] == PUBLIC_TARGET
    assert created["events"] == ["created", "deleted"]  # in the log's order, whatever was sent
    assert created["languages"] == ["en"] and created["categories"] == ["economy"]
    assert created["description"] == "For Partner X"
    assert created["state"] == "active" and created["consecutive_failures"] == 0
    assert created["last_error"] is None and created["last_success_at"] is None

    # Stored, so that it can sign; never shown again.
    assert [bytes(r[0]) for r in rows("SELECT secret FROM webhooks")] == [key]
    one = await client.get(f"{HOOKS}/{created['id']}", headers=auth)
    listed = await client.get(HOOKS, headers=auth)
    assert one.status_code == listed.status_code == 200
    assert one.headers["cache-control"] == listed.headers["cache-control"] == "no-store"
    assert "secret" not in one.json() and created["secret"] not in one.text
    assert [h["id"] for h in listed.json()] == [created["id"]] and created["secret"] not in listed.text
    assert one.json() == {k: v for k, v in created.items() if k != "secret"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.org/hook"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://user:password@example.org/hook"}, "url"),
        ({"url": "https://example.org/hook#part"}, "url"),
        ({"url": PUBLIC_TARGET, "events": ["published"]}, "events"),
        ({"url": PUBLIC_TARGET, "events": []}, "events"),
        ({"url": PUBLIC_TARGET, "categories": ["Not A Slug"]}, "categories"),
        ({"url": PUBLIC_TARGET, "languages": ["english!"]}, "languages"),
        ({"url": PUBLIC_TARGET, "secret": "whsec_mine"}, "secret"),
        ({"events": ["created"]}, "url"),
    ],
)
async def test_bad_registrations_are_400_naming_the_field(
    client: Any, auth: dict[str, str], rows: Any, body: dict[str, Any], field: str
) -> None:
    assert_error(await client.post(HOOKS, json=body, headers=auth), 400, field)
    assert rows("SELECT count(*) FROM webhooks")[0][0] == 0


PRIVATE_TARGETS = [
    "http://127.0.0.1/hook",
    "http://localhost:8080/hook",
    "http://[::1]/hook",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "https://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[fe80::1]/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://224.0.0.1/hook",
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://240.0.0.1/hook",  # reserved
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped IPv6
    "http://[::ffff:10.1.2.3]/hook",
    "http://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
    "http://[fd00::1]/hook",  # unique local
    "http://0x7f.1/hook",  # 127.0.0.1 spelled so that only a resolver knows
]


async def test_targets_in_private_ranges_are_refused_by_default(settings: Settings, rows: Any) -> None:
    defaults = load_settings({}, database_url=settings.database_url, public_url=PUBLIC_URL)
    async with running(defaults) as client:
        auth = await node_with_token(client)
        for url in PRIVATE_TARGETS:
            body = assert_error(await client.post(HOOKS, json={"url": url}, headers=auth), 422, "url")
            assert "FEEDSVC_WEBHOOK_ALLOWED_NETWORKS" in body["detail"], body
        assert rows("SELECT count(*) FROM webhooks")[0][0] == 0
        assert (await client.post(HOOKS, json={"url": PUBLIC_TARGET}, headers=auth)).status_code == 201


async def test_a_host_that_cannot_resolve_is_422_not_an_error(client: Any, auth: dict[str, str]) -> None:
    # Found by schemathesis: a DNS label over 63 characters made the resolver raise.
    r = await client.post(HOOKS, json={"url": f"http://{'0' * 900}/hook"}, headers=auth)
    assert "does not resolve" in assert_error(r, 422, "url")["detail"]


async def test_allowed_networks_let_those_ranges_in_and_no_others(client: Any, auth: dict[str, str]) -> None:
    for url in ("http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://[::ffff:127.0.0.1]:9/hook"):
        r = await client.post(HOOKS, json={"url": url}, headers=auth)
        assert r.status_code == 201, (url, r.text)
    for url in ("http://10.0.0.1/hook", "http://[::1]/hook", "http://169.254.169.254/"):
        assert_error(await client.post(HOOKS, json={"url": url}, headers=auth), 422, "url")


async def test_every_route_needs_a_write_token(client: Any, service: Any, auth: dict[str, str], token: str) -> None:
    created = await register(client, auth, None)
    routes = [("post", HOOKS, {"url": PUBLIC_TARGET}), ("get", HOOKS, None),
              ("get", f"{HOOKS}/{created['id']}", None), ("delete", f"{HOOKS}/{created['id']}", None)]
    # A stored token without the write scope (as in test_auth): valid, but not allowed.
    token_id, secret = token.split("_", 2)[1:]
    record = await service.store.get_token(token_id)
    reader = TokenInfo(id="0000000000bb", name="reader", scopes=["read"], created_at=record.info.created_at)
    await service.store.add_token(TokenRecord(info=reader, salt=record.salt, digest=record.digest))
    for method, path, body in routes:
        kwargs = {"json": body} if body else {}
        assert_error(await getattr(client, method)(path, **kwargs), 401)
        r = await getattr(client, method)(
            path, headers={"Authorization": f"Bearer fsv_0000000000bb_{secret}"}, **kwargs
        )
        assert_error(r, 403)
    assert [h["id"] for h in (await client.get(HOOKS, headers=auth)).json()] == [created["id"]]

    assert (await client.delete(f"{HOOKS}/{created['id']}", headers=auth)).status_code == 204
    assert_error(await client.get(f"{HOOKS}/{created['id']}", headers=auth), 404)
    assert_error(await client.delete(f"{HOOKS}/{created['id']}", headers=auth), 404)
    assert (await client.get(HOOKS, headers=auth)).json() == []


# --- delivery -----------------------------------------------------------------------------------


async def test_events_arrive_signed_in_order_through_failures_with_filters_respected(
    client: Any, auth: dict[str, str], categories: Any, receiver: Receiver
) -> None:
    everything = await register(client, auth, receiver, "/all")
    filtered = await register(
        client, auth, receiver, "/economy-en", events=["created", "updated", "deleted"],
        categories=["economy"], languages=["en"],
    )
    created_only = await register(client, auth, receiver, "/created", events=["created"])
    receiver.plan["/all"] = [500, 500, 503]  # the first event fails three times, then goes through
    w = Writer(client, auth)

    a = await w.create(title="Alpha", category="economy")
    b = await w.create(title="Bravo", category="foreign-policy")
    c = await w.create(title="Charlie", category="economy", lang="ru")
    await w.update(a, summary="Alpha, revised.")
    await w.update(b, summary="Bravo, revised.")
    d = await w.create(title="Delta", category="economy")
    await w.update(d, category="regional-security")  # leaves the filter: its subscribers learn it
    await w.update(d, summary="Delta, elsewhere now.")  # no longer theirs
    await w.delete(d)  # nor is its deletion
    await w.delete(a)  # but this one is
    await w.delete(b)
    await w.create(title="Echo", status="draft", category="economy")  # never public: no event

    expected_all = [
        ("commentary.created", a), ("commentary.created", b), ("commentary.created", c),
        ("commentary.updated", a), ("commentary.updated", b), ("commentary.created", d),
        ("commentary.updated", d), ("commentary.updated", d), ("commentary.deleted", d),
        ("commentary.deleted", a), ("commentary.deleted", b),
    ]
    await eventually(lambda: len(receiver.events("/all")) >= len(expected_all))
    await eventually(lambda: len(receiver.events("/economy-en")) >= 5)
    await eventually(lambda: len(receiver.events("/created")) >= 4)

    events = receiver.events("/all")
    assert kinds(events) == expected_all
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [e["id"] for e in events] == [f"evt_{s}" for s in seqs]
    # The three failed attempts carried the first event, identical but for the time signed.
    attempts = [r for r in receiver.requests if r["path"] == "/all"]
    assert [r["status"] for r in attempts[:4]] == [500, 500, 503, 204]
    assert {r["headers"]["webhook-id"] for r in attempts[:4]} == {f"evt_{seqs[0]}"}
    assert len({r["body"] for r in attempts[:4]}) == 1
    assert all(r["event"] is not None for r in receiver.requests)  # every signature verified

    assert kinds(receiver.events("/economy-en")) == [
        ("commentary.created", a), ("commentary.updated", a), ("commentary.created", d),
        ("commentary.updated", d), ("commentary.deleted", a),
    ]
    assert kinds(receiver.events("/created")) == [
        ("commentary.created", a), ("commentary.created", b), ("commentary.created", c), ("commentary.created", d),
    ]

    # Payloads: the commentary as the change log shows it; a deletion says what it was.
    first = events[0]
    assert first["data"]["title"] == "Alpha" and first["data"]["url"] == page_url(first["data"])
    log = (await client.get("/api/v1/changes", params={"limit": 100})).json()["items"]
    by_seq = {c["seq"]: c for c in log}
    for event in events:
        change = by_seq[event["seq"]]
        assert event["timestamp"] == change["at"]
        if event["type"] == "commentary.deleted":
            assert set(event["data"]) == {"id", "lang", "category", "deleted_at"}
            assert event["data"]["deleted_at"] == change["at"]
        else:
            assert event["data"] == change["commentary"]
    assert [e["data"] for e in events if e["type"] == "commentary.deleted"][1] == {
        "id": a, "lang": "en", "category": "economy", "deleted_at": by_seq[events[9]["seq"]]["at"],
    }
    headers = attempts[-1]["headers"]
    assert headers["content-type"] == "application/json" and headers["user-agent"].startswith("feedsvc/")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60

    # The state shows where delivery stands, and the error it got past.
    head = max(seqs)
    state = await eventually(lambda: _settled(client, auth, everything["id"], head))
    assert state["state"] == "active" and state["consecutive_failures"] == 0
    assert state["last_success_at"] is not None and state["next_attempt_at"] is None
    assert state["last_error"]["status"] == 503 and "receiver says no" in state["last_error"]["message"]
    assert (await hook_state(client, auth, filtered["id"]))["last_error"] is None
    # The draft's change is past every position too (skipped, not pending).
    for id in (filtered["id"], created_only["id"]):
        await eventually(lambda id=id: _settled(client, auth, id, head + 1))


async def _settled(client: Any, auth: dict[str, str], id: str, position: int) -> dict[str, Any] | None:
    state = await hook_state(client, auth, id)
    return state if state["position"] >= position else None


async def test_a_scheduled_commentary_is_announced_when_it_falls_due_though_nobody_reads(
    client: Any, auth: dict[str, str], categories: Any, receiver: Receiver
) -> None:
    await register(client, auth, receiver, "/hook")
    due = datetime.now(UTC) + timedelta(seconds=1)
    id = await Writer(client, auth).create(title="Scheduled", published_at=due.isoformat())
    events = await eventually(lambda: receiver.events("/hook"))
    assert kinds(events) == [("commentary.created", id)]
    assert datetime.fromisoformat(events[0]["timestamp"]) >= due


async def test_a_410_disables_the_subscription_at_once(
    client: Any, auth: dict[str, str], categories: Any, receiver: Receiver
) -> None:
    gone = await register(client, auth, receiver, "/gone")
    healthy = await register(client, auth, receiver, "/healthy")
    receiver.plan["/gone"] = [410]
    w = Writer(client, auth)
    await w.create(title="One")

    state = await eventually(lambda: _disabled(client, auth, gone["id"]))
    assert "410" in state["disabled_reason"] and state["disabled_at"] is not None
    assert state["last_error"]["status"] == 410 and state["consecutive_failures"] == 1
    assert state["next_attempt_at"] is None

    # Later events reach the healthy subscriber, never the disabled one.
    await w.create(title="Two")
    await eventually(lambda: len(receiver.events("/healthy")) == 2)
    assert len([r for r in receiver.requests if r["path"] == "/gone"]) == 1
    assert (await hook_state(client, auth, healthy["id"]))["state"] == "active"


async def _disabled(client: Any, auth: dict[str, str], id: str) -> dict[str, Any] | None:
    state = await hook_state(client, auth, id)
    return state if state["state"] == "disabled" else None


async def test_a_run_of_failures_disables_it_with_the_last_error_visible(
    client: Any, auth: dict[str, str], categories: Any, receiver: Receiver
) -> None:
    hook = await register(client, auth, receiver, "/down")
    receiver.plan["/down"] = [500] * 100
    await Writer(client, auth).create(title="Never acknowledged")

    seen_backoff = False
    while True:  # watch it fail: between attempts a retry is scheduled
        state = await hook_state(client, auth, hook["id"])
        if state["state"] == "disabled":
            break
        if state["consecutive_failures"] and state["next_attempt_at"]:
            seen_backoff = True
        await asyncio.sleep(0.02)
    assert seen_backoff
    assert state["consecutive_failures"] == FAST["webhook_max_failures"]
    assert state["disabled_reason"] == "5 failed deliveries in a row"
    assert state["last_error"]["status"] == 500
    assert state["last_error"]["message"] == "the receiver answered 500: receiver says no"
    assert state["last_success_at"] is None
    assert len([r for r in receiver.requests if r["path"] == "/down"]) == 5


async def test_a_restart_in_the_middle_loses_no_event(settings: Settings) -> None:
    # Failures must not disable it before the restart: this receiver stays down a while.
    patient = load_settings({}, database_url=settings.database_url, public_url=PUBLIC_URL,
                            **{**FAST, "webhook_max_failures": 1000})
    with socket.socket() as s:  # a port nobody listens on yet: the receiver is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with running(patient) as first:
        auth = await node_with_token(first)
        await put_categories(first, auth)
        hook = await register(first, auth, None, url=f"http://127.0.0.1:{port}/hook")
        w = Writer(first, auth)
        ids = [await w.create(title=f"Before the restart {n}") for n in range(3)]
        await w.update(ids[0], summary="Changed before the restart.")
        await w.delete(ids[1])
        state = await eventually(lambda: _failing(first, auth, hook["id"], 2))
        assert state["last_error"]["status"] is None and "Connect" in state["last_error"]["message"]

    receiver = Receiver(port)
    receiver.secrets["/hook"] = hook["secret"]
    try:
        async with running(patient) as second:
            auth = await node_with_token(second)
            w.client, w.auth = second, auth
            ids.append(await w.create(title="After the restart"))
            expected = [("commentary.created", ids[0]), ("commentary.created", ids[1]), ("commentary.created", ids[2]),
                        ("commentary.updated", ids[0]), ("commentary.deleted", ids[1]), ("commentary.created", ids[3])]
            await eventually(lambda: len(receiver.events("/hook")) >= len(expected))
            assert kinds(receiver.events("/hook")) == expected
            assert all(r["event"] is not None for r in receiver.requests)
            state = await hook_state(second, auth, hook["id"])
            assert state["consecutive_failures"] == 0 and state["last_success_at"] is not None
    finally:
        receiver.close()


async def _failing(client: Any, auth: dict[str, str], id: str, failures: int) -> dict[str, Any] | None:
    state = await hook_state(client, auth, id)
    return state if state["consecutive_failures"] >= failures else None


async def test_two_nodes_on_one_database_deliver_each_event_once_in_order(
    settings: Settings, client: Any, auth: dict[str, str], categories: Any, receiver: Receiver
) -> None:
    await register(client, auth, receiver, "/hook")
    async with running(settings) as other:
        other_auth = await node_with_token(other)
        writers = [Writer(client, auth), Writer(other, other_auth)]
        written = []
        for n in range(12):  # writes through both nodes: both senders wake
            written.append(await writers[n % 2].create(title=f"Event {n}"))
        await eventually(lambda: len(receiver.events("/hook")) >= len(written))
        # Give a double delivery, if there were one, the time to show.
        await writers[0].create(title="Last")
        await eventually(lambda: len(receiver.events("/hook")) >= len(written) + 1)
    events = receiver.events("/hook")
    assert [e["data"]["id"] for e in events] == [*written, events[-1]["data"]["id"]]
    assert len(receiver.requests) == len(events)


async def test_a_receiver_that_hangs_never_holds_up_a_write(
    client: Any, auth: dict[str, str], categories: Any, receiver: Receiver
) -> None:
    hook = await register(client, auth, receiver, "/slow")
    receiver.hold.clear()  # the receiver takes the request and answers nothing for now
    w = Writer(client, auth)
    await w.create(title="First")
    await eventually(lambda: receiver.arrived >= 1)
    started = time.monotonic()
    for n in range(3):
        await w.create(title=f"Written while the receiver hangs {n}")
    assert time.monotonic() - started < 1.5
    receiver.hold.set()
    await eventually(lambda: len(receiver.events("/slow")) >= 4)
    assert (await hook_state(client, auth, hook["id"]))["state"] == "active"


async def test_the_target_is_checked_again_when_delivering(settings: Settings, receiver: Receiver) -> None:
    async with running(settings) as node:  # allows 127.0.0.0/8
        auth = await node_with_token(node)
        await put_categories(node, auth)
        hook = await register(node, auth, receiver, "/hook")
    # The same database served with the default policy: 127.0.0.1 is no longer allowed.
    strict = load_settings({}, database_url=settings.database_url, public_url=PUBLIC_URL,
                           **{**FAST, "webhook_allowed_networks": []})
    async with running(strict) as node:
        auth = await node_with_token(node)
        await Writer(node, auth).create(title="Must not reach 127.0.0.1")
        state = await eventually(lambda: _failing(node, auth, hook["id"], 1))
    assert state["last_error"]["message"] == "refused: 127.0.0.1 is a loopback address"
    assert state["last_error"]["status"] is None
    assert receiver.requests == []
