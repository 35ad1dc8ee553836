"""The container image, tested without a Docker engine: the Dockerfile says what it must,
and its entry point, run in a virtualenv built the way the image builds one, serves."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_the_image_is_multi_stage_on_a_slim_python() -> None:
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) >= 2
    assert all(re.match(r"python:3\.1[1-9]-slim", f) for f in froms)


def test_dependencies_come_from_the_pinned_lock() -> None:
    runs = " ".join(args for word, args in instructions() if word == "RUN")
    assert "pip install --require-hashes --no-deps -r requirements.lock" in runs
    text = re.sub(r"\\\n", " ", (ROOT / "requirements.lock").read_text())
    lock = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    lock = [line for line in lock if line]
    pin = r"[A-Za-z0-9_.\-]+==[^\s]+(?:\s+--hash=sha256:[0-9a-f]{64})+"
    assert lock and all(re.fullmatch(pin, line) for line in lock)
    locked = {re.split("==", line)[0].lower().replace("_", "-") for line in lock}
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in declared:
        name = re.split(r"[<>=\[ ]", requirement)[0].lower().replace("_", "-")
        assert name in locked, f"{name} is a dependency but not in requirements.lock"


def test_the_runtime_stage_runs_as_a_user_with_data_as_a_volume_and_a_healthcheck() -> None:
    stage = final_stage()
    users = [args for word, args in stage if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    volumes = " ".join(args for word, args in stage if word == "VOLUME")
    assert "/data" in volumes
    health = " ".join(args for word, args in stage if word == "HEALTHCHECK")
    assert "/healthz" in health
    entry = [args for word, args in stage if word == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]) == ["feedsvc", "serve"]


def test_configuration_is_only_feedsvc_variables() -> None:
    env_text = " ".join(args for word, args in final_stage() if word == "ENV")
    names = set(re.findall(r"([A-Z_]+)=", env_text))
    assert {n for n in names if not n.startswith("FEEDSVC_")} <= {"PATH", "PYTHONUNBUFFERED"}
    assert {"FEEDSVC_DATABASE_URL", "FEEDSVC_HOST"} <= names


def _env_of_final_stage(data_dir: Path, port: int) -> dict[str, str]:
    env_text = " ".join(args for word, args in final_stage() if word == "ENV")
    env = {k: v for k, v in re.findall(r"(FEEDSVC_[A-Z_]+)=(\S+)", env_text)}
    # The image's paths, moved under the test's folder; the rest exactly as the image has it.
    env = {k: v.replace("/srv/feedsvc/data", str(data_dir)) for k, v in env.items()}
    env.update(FEEDSVC_HOST="127.0.0.1", FEEDSVC_PORT=str(port))
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_the_entry_point_serves_from_a_virtualenv_built_like_the_image(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
    subprocess.run([*pip, "--require-hashes", "-r", str(ROOT / "requirements.lock")], check=True, timeout=600)
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "feedsvc", source / "feedsvc", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([*pip, str(source)], check=True, timeout=600)
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data, ignore=shutil.ignore_patterns("*.db*"))

    port = _free_port()
    env = {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "PYTHONUNBUFFERED": "1", **_env_of_final_stage(data, port)}
    entry = json.loads([args for word, args in final_stage() if word == "ENTRYPOINT"][-1])
    log = tmp_path / "server.log"
    server = subprocess.Popen(entry, env=env, cwd=tmp_path, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the entry point did not answer /healthz within 30 s"
                time.sleep(0.3)
        health = json.loads([a for w, a in final_stage() if w == "HEALTHCHECK"][-1].split("CMD", 1)[1])
        probe = subprocess.run(health, env=env, timeout=10, check=False)
        assert probe.returncode == 0
        assert (data / "feedsvc.db").exists()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    # uvicorn finishes in-flight work, then re-raises SIGTERM so the exit status tells why.
    assert server.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log.read_text()
