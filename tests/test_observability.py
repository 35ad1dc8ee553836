"""What an operator sees: /metrics in the Prometheus text format, request ids, one log line
per request (JSON, or text on a terminal) that never carries a token or a body."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from feedsvc import logs
from feedsvc.cli import main
from feedsvc.config import Settings, load_settings
from feedsvc.errors import InvalidInputError
from feedsvc.http.app import create_app
from feedsvc.http.observe import log_access, loggable_path, request_id_from
from feedsvc.logs import REQUEST_ID, JsonFormatter, TextFormatter, configure_logging, redact, resolve_format
from tests.conftest import PUBLIC_URL, commentary

pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    """Metrics, logs and request ids do not depend on the store: SQLite only (see ``sqlite_settings``)."""
    return sqlite_settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def metrics_auth(client: AsyncTestClient[Litestar]) -> dict[str, str]:
    """Prometheus' credentials: a token with the metrics:read scope, made once per app."""
    state = client.app.state
    if "metrics_token" not in state:
        state["metrics_token"], _ = await state.service.create_token("prometheus", ["metrics:read"])
    return {"Authorization": f"Bearer {state['metrics_token']}"}


async def scrape(client: AsyncTestClient[Litestar]) -> Samples:
    r = await client.get("/metrics", headers=await metrics_auth(client))
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- metrics ------------------------------------------------------------------------------


async def test_requests_are_counted_by_route_template_method_and_status(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/api/v1/commentaries/01NOSUCHCOMMENTARY0000000")).status_code == 404
    assert (await client.get("/api/v1/commentaries/another-missing-one")).status_code == 404
    assert (await client.head("/api/v1/commentaries/a-third")).status_code == 404
    first = await client.get("/feed.rss")
    assert first.status_code == 200
    again = await client.get("/feed.rss", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    # Five segments: up to four, a path has the shape of a page for people (feedsvc.paths).
    assert (await client.get("/no/such/deeper/page/here")).status_code == 404

    samples = await scrape(client)
    requests = "feedsvc_http_requests_total"
    # One series for both ids: the template, never the raw path.
    assert value(samples, requests, route="/api/v1/commentaries/{id}", method="GET", status="404") == 2
    assert value(samples, requests, route="/api/v1/commentaries/{id}", method="HEAD", status="404") == 1
    assert value(samples, requests, route="/feed.rss", method="GET", status="200") == 1
    assert value(samples, requests, route="/feed.rss", method="GET", status="304") == 1
    assert value(samples, requests, route="unmatched", method="GET", status="404") == 1
    assert not any("missing" in str(labels) or "such" in str(labels) for _, labels in samples)
    assert value(samples, "feedsvc_http_not_modified_total") == 1
    assert value(samples, "feedsvc_http_request_duration_seconds_count", route="/feed.rss") == 2
    assert value(samples, "feedsvc_http_request_duration_seconds_bucket", route="/feed.rss", le="+Inf") == 2
    assert value(samples, "feedsvc_http_requests_in_progress") == 1  # the scrape itself


async def test_feed_cache_change_sequence_and_store_timings(
    client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any
) -> None:
    r = await client.post("/api/v1/commentaries", json=commentary(), headers=auth)
    assert r.status_code == 201, r.text
    assert (await client.get("/feed.rss")).status_code == 200  # rendered
    assert (await client.get("/feed.rss")).status_code == 200  # from the cache
    r = await client.put("/api/v1/categories/economy", json={"names": {"en": "Economics"}}, headers=auth)
    assert r.status_code == 200
    # A change that moves the sequence but not this view: the cached bytes are kept.
    assert (await client.get("/categories/foreign-policy/feed.atom")).status_code == 200
    assert (await client.get("/categories/foreign-policy/feed.atom")).status_code == 200
    r = await client.put("/api/v1/categories/economy", json={"names": {"en": "Economy"}}, headers=auth)
    assert (await client.get("/categories/foreign-policy/feed.atom")).status_code == 200

    samples = await scrape(client)
    assert value(samples, "feedsvc_feed_renders_total") == 2
    assert value(samples, "feedsvc_feed_cache_hits_total") == 2
    assert value(samples, "feedsvc_feed_cache_revalidations_total") == 1
    state = await client.app.state.service.store.get_state()
    assert value(samples, "feedsvc_change_sequence") == state.seq > 0
    assert value(samples, "feedsvc_database_up") == 1
    assert value(samples, "feedsvc_db_operation_duration_seconds_count", operation="get_state") >= 5
    assert value(samples, "feedsvc_db_operation_duration_seconds_count", operation="add_commentary") == 1
    assert value(samples, "feedsvc_db_operation_duration_seconds_sum", operation="add_commentary") > 0
    # Operations never called add no series.
    assert ("feedsvc_db_operation_duration_seconds_count", (("operation", "revoke_token"),)) not in samples
    assert value(samples, "feedsvc_build_info", version=__import__("feedsvc").__version__) == 1
    assert value(samples, "process_resident_memory_bytes") > 0


async def test_websub_outcomes_are_exported_when_a_hub_is_configured(db_path: Any) -> None:
    settings = load_settings({}, database_url=f"sqlite:///{db_path}", public_url=PUBLIC_URL, websub_hub="https://hub.example.org/")
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        stats = app.state.notifier.stats
        stats.sent, stats.failed, stats.retried = 4, 1, 3
        samples = await scrape(client)
    assert value(samples, "feedsvc_websub_pings_total", outcome="sent") == 4
    assert value(samples, "feedsvc_websub_pings_total", outcome="failed") == 1
    assert value(samples, "feedsvc_websub_retries_total") == 3


async def test_without_a_hub_there_are_no_websub_series(client: AsyncTestClient[Litestar]) -> None:
    assert not any(name.startswith("feedsvc_websub") for name, _ in await scrape(client))


async def test_each_app_counts_its_own_requests(settings: Settings, client: AsyncTestClient[Litestar]) -> None:
    other = create_app(settings)
    async with AsyncTestClient(other) as second:
        for _ in range(3):
            assert (await second.get("/healthz")).status_code == 200
        theirs = await scrape(second)
    assert (await client.get("/healthz")).status_code == 200
    ours = await scrape(client)
    assert value(theirs, "feedsvc_http_requests_total", route="/healthz", method="GET", status="200") == 3
    assert value(ours, "feedsvc_http_requests_total", route="/healthz", method="GET", status="200") == 1


async def test_unknown_methods_share_one_label(client: AsyncTestClient[Litestar]) -> None:
    for method in ("BREW", "WHEN"):
        await client.request(method, "/healthz")
    samples = await scrape(client)
    methods = {dict(labels).get("method") for name, labels in samples if name == "feedsvc_http_requests_total"}
    assert "BREW" not in methods and "WHEN" not in methods and "other" in methods


# --- request ids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("abc-123_X.y", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("has space", False),
        ("semi;colon", False),
        ("", False),
        ("ünïcode", False),  # sent as UTF-8 bytes
    ],
)
async def test_a_valid_request_id_is_echoed_and_anything_else_replaced(
    client: AsyncTestClient[Litestar], sent: str, kept: bool
) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": sent.encode("utf-8")})
    echoed = r.headers["x-request-id"]
    if kept:
        assert echoed == sent
    else:
        assert echoed != sent and len(echoed) == 16 and int(echoed, 16) >= 0


async def test_every_response_gets_a_fresh_request_id(client: AsyncTestClient[Litestar]) -> None:
    paths = ("/healthz", "/healthz", "/nowhere", "/feed.rss")
    ids = {(await client.get(path)).headers["x-request-id"] for path in paths}
    assert len(ids) == 4


def test_request_id_from_headers() -> None:
    assert request_id_from([(b"accept", b"*/*"), (b"x-request-id", b"req-1")]) == "req-1"
    assert request_id_from([]) != request_id_from([])


# --- access log ---------------------------------------------------------------------------


def json_lines(err: str) -> list[dict[str, Any]]:
    lines = [line for line in err.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def logged(capsys: pytest.CaptureFixture[str]) -> str:
    """Everything written to stderr so far, the access lines still queued included."""
    if logs.access_writer is not None:
        logs.access_writer.flush()
    return capsys.readouterr().err


def access_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The access lines written to stderr (JSON) so far."""
    return [line for line in json_lines(logged(capsys)) if line["logger"] == "feedsvc.access"]


async def test_one_json_line_per_request_with_the_fields_an_operator_needs(
    client: AsyncTestClient[Litestar], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "INFO")
    capsys.readouterr()
    r = await client.get("/feed.rss?lang=en", headers={"X-Request-ID": "trace-42"})
    assert r.status_code == 200
    access = access_lines(capsys)
    assert len(access) == 1
    line = access[0]
    assert set(line) == {
        "time", "level", "logger", "message", "method", "route", "path", "status", "duration_ms", "bytes",
        "request_id", "client",
    }
    assert line["level"] == "INFO" and line["time"].endswith("Z")
    assert (line["method"], line["route"], line["path"], line["status"]) == (
        "GET",
        "/feed.rss",
        "/feed.rss?lang=en",
        200,
    )
    assert line["bytes"] == int(r.headers["content-length"]) > 0 and line["duration_ms"] > 0
    assert line["request_id"] == "trace-42" == r.headers["x-request-id"]
    assert line["client"] == "testclient"


async def test_tokens_and_bodies_never_reach_the_log(
    client: AsyncTestClient[Litestar], token: str, categories: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "DEBUG")
    capsys.readouterr()
    secret_title = "A title that only the body holds"
    headers = {"Authorization": f"Bearer {token}"}
    r = await client.post("/api/v1/commentaries", json=commentary(title=secret_title), headers=headers)
    assert r.status_code == 201
    await client.get(f"/api/v1/commentaries?token={token}&access_token=plain-secret&limit=5")
    await client.get(f"/feed.rss?cursor={token}")
    await client.get(f"/api/v1/commentaries/{token}")
    await client.get("/api/v1/commentaries", headers={"Authorization": "Bearer fsv_bad_guess"})
    # Everything the server side logged, at DEBUG; httpx's lines are this test's client.
    lines = [
        line for line in json_lines(logged(capsys)) if not line["logger"].startswith(("httpx", "httpcore"))
    ]
    err = "\n".join(json.dumps(line) for line in lines)
    assert token not in err and token.split("_", 2)[2] not in err
    assert "plain-secret" not in err and "fsv_bad_guess" not in err
    assert secret_title not in err and "Bearer" not in err
    access = [line for line in lines if line["logger"] == "feedsvc.access"]
    assert len(access) == 5
    assert access[0]["method"] == "POST" and access[0]["status"] == 201
    assert access[1]["path"] == "/api/v1/commentaries?token=[redacted]&access_token=[redacted]&limit=5"
    assert access[2]["path"] == "/feed.rss?cursor=fsv_[redacted]"
    assert access[3]["path"] == "/api/v1/commentaries/fsv_[redacted]"


async def test_the_access_log_can_be_switched_off(db_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings({}, database_url=f"sqlite:///{db_path}", public_url=PUBLIC_URL, access_log=False)
    configure_logging("json", "INFO")
    async with AsyncTestClient(create_app(settings)) as client:
        capsys.readouterr()
        r = await client.get("/healthz")
        assert "x-request-id" in r.headers
        samples = await scrape(client)
    assert "feedsvc.access" not in logged(capsys)
    assert value(samples, "feedsvc_http_requests_total", route="/healthz", method="GET", status="200") == 1


async def test_a_level_above_info_silences_the_access_log(
    client: AsyncTestClient[Litestar], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "WARNING")
    capsys.readouterr()
    await client.get("/healthz")
    assert logged(capsys) == ""


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_queued_access_line_is_the_line_a_logging_record_gives(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("GET", "/x", b"token=fsv_1_2&a=1", "/x", 200, 512, 0.0123456, "r-1", ("192.0.2.1", 5000))
    configure_logging(log_format, "INFO")
    logs.set_access_writer(None)  # feedsvc embedded in an application: a logging record
    logged(capsys)
    log_access(*args)
    through_logging = capsys.readouterr().err
    logs.set_access_writer(logs.AccessWriter(text=log_format == "text"))
    log_access(*args)
    queued = logged(capsys)
    assert queued.count("\n") == through_logging.count("\n") == 1
    if log_format == "json":
        record, line = json.loads(through_logging), json.loads(queued)
        assert list(line) == list(record) and {**line, "time": None} == {**record, "time": None}
        assert line["path"] == "/x?token=[redacted]&a=1" and line["duration_ms"] == 12.346
    else:  # HH:MM:SS.mmm, then the same words
        assert queued[12:] == through_logging[12:]
        assert queued[12:].startswith(" INFO    feedsvc.access: GET /x?token=[redacted]&a=1 200 512B 12.35ms 192.0.2.1")


async def test_access_lines_are_written_within_a_second_without_being_asked(
    client: AsyncTestClient[Litestar], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "INFO")
    logged(capsys)
    await client.get("/healthz")
    sent = time.monotonic()
    err = ""
    while "feedsvc.access" not in err and time.monotonic() - sent < 3:
        await asyncio.sleep(0.02)
        err += capsys.readouterr().err
    assert "feedsvc.access" in err
    assert time.monotonic() - sent < logs.FLUSH_SECONDS + 0.5  # a loaded machine's slack


async def test_other_lines_come_after_the_access_lines_before_them(
    client: AsyncTestClient[Litestar], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json", "INFO")
    logged(capsys)
    await client.get("/healthz", headers={"X-Request-ID": "first"})
    logging.getLogger("feedsvc.test").warning("in between")
    await client.get("/healthz", headers={"X-Request-ID": "second"})
    lines = [line for line in json_lines(logged(capsys)) if line["logger"].startswith("feedsvc")]
    assert [line.get("request_id") or line["message"] for line in lines] == ["first", "in between", "second"]


@pytest.mark.parametrize(
    ("path", "query", "logged"),
    [
        ("/feed.rss", b"", "/feed.rss"),
        ("/x", b"a=1&token=abc&b=2", "/x?a=1&token=[redacted]&b=2"),
        ("/x", b"API_KEY=abc", "/x?API_KEY=[redacted]"),
        ("/x", b"access%5Ftoken=abc", "/x?access%5Ftoken=[redacted]"),
        ("/x", b"q=fsv_0123_secret-value&token", "/x?q=fsv_[redacted]&token"),
        ("/x", b"a" * 3000, "/x?" + "a" * 1997 + "…"),
    ],
)
def test_loggable_path(path: str, query: bytes, logged: str) -> None:
    assert loggable_path(path, query) == logged


# --- formats ------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_text_on_a_terminal_and_json_otherwise() -> None:
    assert resolve_format("auto", Terminal()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"
    with pytest.raises(InvalidInputError):
        resolve_format("xml")


def record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("feedsvc.test", logging.WARNING, __file__, 1, message, args, None)
    rec.__dict__.update(extra)
    return rec


def test_formats_carry_the_request_id_of_the_request_being_served() -> None:
    context = REQUEST_ID.set("req-7")
    try:
        line = json.loads(JsonFormatter().format(record("storage failure for %s", "fsv_1_2")))
        text = TextFormatter().format(record("storage failure"))
    finally:
        REQUEST_ID.reset(context)
    assert line["request_id"] == "req-7" and line["level"] == "WARNING" and line["logger"] == "feedsvc.test"
    assert line["message"] == "storage failure for fsv_[redacted]"
    assert "WARNING" in text and "feedsvc.test: storage failure [req-7]" in text
    assert "request_id" not in json.loads(JsonFormatter().format(record("outside a request")))


def test_exceptions_are_one_json_line_with_the_traceback() -> None:
    try:
        raise RuntimeError("boom fsv_9_secret")
    except RuntimeError:
        rec = logging.LogRecord("feedsvc.http", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info())
    out = JsonFormatter().format(rec)
    assert "\n" not in out
    line = json.loads(out)
    assert "Traceback" in line["exc"] and "RuntimeError: boom fsv_[redacted]" in line["exc"]


def test_text_lines_for_people() -> None:
    rec = record("%s %s %d", "GET", "/feed.rss", 200, http={"method": "GET", "client": "192.0.2.1", "request_id": "r1"})
    assert TextFormatter().format(rec).endswith("WARNING feedsvc.test: GET /feed.rss 200 192.0.2.1 [r1]")
    assert redact("no token here") == "no token here"


def test_server_loggers_go_through_the_same_handler(capsys: pytest.CaptureFixture[str]) -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    uvicorn_error.addHandler(logging.StreamHandler(io.StringIO()))
    uvicorn_error.propagate = False
    configure_logging("json", "INFO")
    capsys.readouterr()
    uvicorn_error.info("Application shutdown complete.")
    line = json_lines(capsys.readouterr().err)[0]
    assert line == {**line, "logger": "uvicorn.error", "message": "Application shutdown complete."}
    assert uvicorn_error.handlers == [] and uvicorn_error.propagate


def test_a_bad_log_level_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    monkeypatch.setenv("FEEDSVC_LOG_LEVEL", "LOUD")
    assert main(["migrate", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"]) == 1
    assert "FEEDSVC_LOG_LEVEL" in capsys.readouterr().err
