"""Supply chain: one hash-checked lock for the runtime, one for the tests on top of it, and
the environment the tests run in is exactly what they pin.

``requirements.lock`` (the image) and ``requirements-dev.lock`` (CI and developers: the
runtime pins plus test and dev tools) are written by ``make lock`` (uv pip compile
--generate-hashes) and installed with ``pip install --require-hashes --no-deps``. The lock
had drifted from what the tests installed (uvicorn 0.54 against 0.55, ...) so the image ran
other versions than CI; these tests keep the three in step.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent
RUNTIME = ROOT / "requirements.lock"
DEV = ROOT / "requirements-dev.lock"
NOT_LOCKED = {"feedsvc", "pip", "setuptools", "wheel"}
"""What may be installed without being in a lock: the project itself and pip's own tools."""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(lock: Path) -> dict[str, str]:
    """name -> version of every requirement; each must be pinned and carry sha256 hashes."""
    text = re.sub(r"\\\n", " ", lock.read_text())
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9_.\-]*)==(\S+?)((?:\s+--hash=sha256:[0-9a-f]{64})+)", line)
        assert match, f"{lock.name}: not a pinned, hash-checked requirement: {line[:80]}"
        name = canonical(match[1])
        assert name not in pins, f"{lock.name}: {name} twice"
        pins[name] = match[2]
    assert pins
    return pins


def installed() -> dict[str, str]:
    return {canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}


def declared(*groups: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for group in groups:
        requirements += project["optional-dependencies"][group]
    return {canonical(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in requirements}


def test_each_lock_says_how_it_is_regenerated_and_make_lock_does_it() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lock:", makefile, re.MULTILINE) and "uv pip compile" in makefile
    for lock in (RUNTIME, DEV):
        head = lock.read_text().splitlines()[:2]
        assert "uv pip compile pyproject.toml" in head[1] and "--generate-hashes" in head[1]
        assert f"-o {lock.name}" in head[1]


def test_the_runtime_lock_holds_the_runtime_dependencies_and_no_test_tools() -> None:
    runtime = parse(RUNTIME)
    assert declared() <= runtime.keys()
    # Litestar declares polyfactory (and so Faker) for generated OpenAPI examples only.
    assert not {"faker", "polyfactory"} & runtime.keys()
    # websockets is a test tool and also what uvicorn[standard] serves WebSockets with.
    test_only = declared("test", "dev") - declared() - {"websockets"}
    assert test_only and not test_only & runtime.keys(), "test or dev tools in the runtime lock"


def test_the_dev_lock_is_the_runtime_lock_plus_the_tools() -> None:
    runtime, dev = parse(RUNTIME), parse(DEV)
    assert {name: dev.get(name) for name in runtime} == runtime
    assert declared("test", "dev") <= dev.keys()


def test_the_installed_set_is_the_lock() -> None:
    """What the tests run on is what the locks pin: the image (runtime lock) runs the same
    versions as CI, and nothing else slipped in."""
    have, dev = installed(), parse(DEV)
    runtime = parse(RUNTIME)
    assert {name: have.get(name) for name in runtime} == runtime
    assert {name: have.get(name) for name in dev} == dev
    assert set(have) - set(dev) <= NOT_LOCKED, f"installed but in no lock: {sorted(set(have) - set(dev) - NOT_LOCKED)}"
