"""Partners generate clients from /schema/openapi.json: openapi-python-client and
openapi-typescript (with openapi-fetch) each make one from a real feedsvc serving the demo
data, without a warning for any JSON operation, and each generated client lists, pages,
creates and patches a commentary through real HTTP.

openapi-python-client runs in a venv of its own (its httpx pin clashes with the test
lock's), installed from the hash-checked ``tests/tools/openapi-python-client.lock`` into
``build/``; the TypeScript tools come from ``tests/node/openapi/package-lock.json``.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import LiveServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "tests" / "tools" / "openapi-python-client.lock"
NODE = ROOT / "tests" / "node" / "openapi"
IN_CI = os.environ.get("CI", "").lower() == "true"

# What openapi-python-client cannot read, by design: it makes functions for JSON, text and
# bytes only. The XML feeds and sitemaps are for feed readers and crawlers, not for clients.
XML_TYPES = ("application/rss+xml", "application/atom+xml", "application/xml")


def unavailable(message: str) -> None:
    """Skip with ``message`` where a tool cannot be installed; in CI it must be."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def run(*args: str | Path, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def python_generator() -> Path:
    """The ``openapi-python-client`` command, from a venv built once per version of the lock."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
    home = ROOT / "build" / f"openapi-python-client-{digest}"
    command = home / "bin" / "openapi-python-client"
    home.parent.mkdir(parents=True, exist_ok=True)
    # Another test process may be building it too (a venv cannot be moved into place).
    with open(home.parent / f"{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / ".complete").exists():
            shutil.rmtree(home, ignore_errors=True)
            venv.create(home, with_pip=True)
            done = run(home / "bin" / "python", "-m", "pip", "install", "-q", "--require-hashes", "--no-deps",
                       "-r", LOCK)
            if done.returncode != 0:
                unavailable(f"could not install openapi-python-client: {done.stderr[-1000:]}")
            (home / ".complete").touch()
    return command


def node_tools() -> Path:
    """``tests/node/openapi`` with its locked packages installed (``npm ci`` when missing)."""
    if not (NODE / "node_modules" / ".bin" / "openapi-typescript").exists():
        if shutil.which("npm") is None:
            unavailable("npm is not installed")
        done = run("npm", "ci", "--no-audit", "--no-fund", "--prefix", NODE, timeout=600)
        if done.returncode != 0:
            unavailable(f"npm ci failed: {done.stderr[-1000:]}")
    return NODE


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("live")) as server:
        server.load_demo()
        yield server


@pytest.fixture(scope="module")
def document(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The OpenAPI document as a partner downloads it."""
    with live.writer() as http:
        r = http.get("/schema/openapi.json")
    assert r.status_code == 200, r.text
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_bytes(r.content)
    return path


@pytest.fixture(scope="module")
def token(live: LiveServer) -> str:
    value, _ = live.run(live.service.create_token("client-generator", ["commentaries:write"]))
    return str(value)


def generate(document: Path, package: Path, *options: str | Path) -> subprocess.CompletedProcess[str]:
    """openapi-python-client's ``generate``, its venv's bin first on PATH so that it formats
    the client with its own ruff."""
    command = python_generator()
    return subprocess.run(
        [str(command), "generate", "--path", str(document), "--meta", "none", "--output-path", str(package),
         *map(str, options)],
        cwd=package.parent, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": f"{command.parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )


def warnings_of(output: str) -> list[str]:
    """openapi-python-client's warnings, one block each ("WARNING parsing GET /x …",
    "Unable to parse schema …"), up to the next one."""
    starts = [m.start() for m in re.finditer(r"^(WARNING parsing|Unable to)", output, re.M)]
    return [output[a:b].strip() for a, b in zip(starts, [*starts[1:], len(output)], strict=True)]


@pytest.fixture(scope="module")
def python_client(document: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A client package generated from the document, and what the generator said."""
    package = tmp_path_factory.mktemp("python-client") / "feedsvc_client"
    done = generate(document, package)
    assert done.returncode == 0, done.stdout + done.stderr
    return package, done.stdout + done.stderr


def test_python_client_is_generated_without_warnings_for_json_operations(python_client: tuple[Path, str]) -> None:
    package, output = python_client
    for warning in warnings_of(output):
        # Only the XML feeds and sitemaps are left out, each for its media type alone.
        assert warning.startswith("WARNING parsing GET /"), warning
        assert "Unsupported content_type" in warning and any(t in warning for t in XML_TYPES), warning
    assert "Unable to" not in output
    models = {p.stem for p in (package / "models").glob("*.py")}
    # One enumeration per enum of the document, not one per value and place.
    assert {"trend", "status", "change_op", "webhook_state", "error_body", "field_problem"} <= models
    assert not [m for m in models if "trend_type" in m]
    for operation in ("list_commentaries", "get_category", "get_translations"):
        assert (package / "api" / "read" / f"{operation}.py").exists()
    assert (package / "api" / "feeds" / "feed_json.py").exists()


def test_python_client_with_the_documented_config_has_no_warning_at_all(
    document: Path, tmp_path: Path
) -> None:
    """docs/reading.md's config makes the XML feeds and sitemaps text: nothing left out."""
    reading = (ROOT / "docs" / "reading.md").read_text()
    [config] = re.findall(r"^```yaml\n(.*?)^```", reading[reading.index("## Generating a client"):], flags=re.M | re.S)
    (tmp_path / "opc.yaml").write_text(config)
    done = generate(document, tmp_path / "feedsvc_client", "--config", tmp_path / "opc.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stdout + done.stderr and "Unable to" not in done.stdout + done.stderr
    feed = (tmp_path / "feedsvc_client" / "api" / "feeds" / "feed_rss.py").read_text()
    assert "response.text" in feed


def test_python_client_lists_pages_creates_and_patches(
    python_client: tuple[Path, str], live: LiveServer, token: str
) -> None:
    package, _ = python_client
    sys.path.insert(0, str(package.parent))
    try:
        client_mod: Any = importlib.import_module("feedsvc_client")
        read: Any = importlib.import_module("feedsvc_client.api.read.list_commentaries")
        create: Any = importlib.import_module("feedsvc_client.api.write.create_commentary")
        patch: Any = importlib.import_module("feedsvc_client.api.write.patch_commentary")
        models: Any = importlib.import_module("feedsvc_client.models")
    finally:
        sys.path.remove(str(package.parent))

    anonymous = client_mod.Client(base_url=live.url)
    first = read.sync(client=anonymous, limit=2)
    assert isinstance(first, models.Page) and len(first.items) == 2
    second = read.sync(client=anonymous, limit=2, cursor=first.next_cursor)
    assert isinstance(second, models.Page) and len(second.items) == 2
    assert not {c.id for c in first.items} & {c.id for c in second.items}
    assert first.items[0].published_at >= second.items[0].published_at

    worsened = read.sync(client=anonymous, trend=models.Trend.WORSENED, limit=100)
    assert worsened.items and {c.trend for c in worsened.items} == {models.Trend.WORSENED}

    editor = client_mod.AuthenticatedClient(base_url=live.url, token=token)
    body = models.NewCommentary(
        title="Generated Python client publishes",
        lang="en",
        category="regional-security",
        authors=[models.Author(name="Client Generator")],
        body_markdown="Published through **openapi-python-client**.",
        trend=models.Trend.WORSENED,
    )
    created = create.sync_detailed(client=editor, body=body)
    assert created.status_code == 201, created.content
    assert isinstance(created.parsed, models.Commentary)
    assert created.parsed.trend == models.Trend.WORSENED

    patched = patch.sync_detailed(
        id=created.parsed.id,
        client=editor,
        body=models.CommentaryPatch(title="Generated Python client patches", trend=models.Trend.IMPROVED),
        if_match=created.headers["ETag"],
    )
    assert patched.status_code == 200, patched.content
    assert patched.parsed.title == "Generated Python client patches"
    assert patched.parsed.trend == models.Trend.IMPROVED and patched.parsed.version > created.parsed.version
    newest = read.sync(client=anonymous, limit=1)
    assert newest.items[0].id == created.parsed.id and newest.items[0].title == "Generated Python client patches"

    # An error is parsed too: every problem, with the values there are.
    refused = create.sync_detailed(client=editor, body=models.NewCommentary.from_dict(
        {**body.to_dict(), "category": "sports"}
    ))
    assert refused.status_code == 400
    assert isinstance(refused.parsed, models.ErrorBody)
    (problem,) = refused.parsed.extra
    assert isinstance(problem, models.FieldProblem) and problem.key == "category"
    assert "regional-security" in problem.allowed


def test_typescript_client_is_generated_and_lists_pages_creates_and_patches(
    document: Path, live: LiveServer, token: str
) -> None:
    folder = node_tools()
    generated = folder / "generated"
    shutil.rmtree(generated, ignore_errors=True)
    done = run(folder / "node_modules" / ".bin" / "openapi-typescript", document, "-o", generated / "schema.d.ts")
    assert done.returncode == 0, done.stdout + done.stderr
    said = (done.stdout + done.stderr).lower()
    assert "warn" not in said and "error" not in said, said
    # tsc checks client.ts against the generated types: the request bodies, the If-Match
    # header and the Trend enum (a wrong trend must be a type error there).
    compiled = run(folder / "node_modules" / ".bin" / "tsc", "-p", folder)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    ran = run("node", generated / "js" / "client.js", live.url, token, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    seen = json.loads(ran.stdout)
    assert len(seen["first"]) == 2 and len(seen["second"]) == 2 and not set(seen["first"]) & set(seen["second"])
    assert seen["created"]["title"] == "Generated TypeScript client publishes"
    assert seen["created"]["trend"] == "worsened"
    assert seen["patched"] == {**seen["patched"], "id": seen["created"]["id"],
                               "title": "Generated TypeScript client patches", "trend": "improved"}
    assert seen["refused"]["status"] == 400
    assert [p["key"] for p in seen["refused"]["problems"]] == ["trend"]
    assert seen["refused"]["problems"][0]["allowed"] == ["improved", "worsened", "unchanged"]
