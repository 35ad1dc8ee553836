"""A process that cannot start says why and exits, promptly and non-zero.

`feedsvc serve`, `migrate` and `token list` are started as real processes on a database
they cannot use: a file that is not a SQLite database, a database path under a file, a
disk with no room for the database (a file-size limit of the process: the writes fail as
on a full disk), a PostgreSQL that refuses connections. Each must print one clear line
naming the database and exit with status 1 within a few seconds. Before, such a process
printed its error and then stayed alive.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import postgres_dsn

pytestmark = pytest.mark.slow

COMMANDS = [["serve", "--port", "0"], ["migrate"], ["token", "list"]]
PROMPTLY = 15.0
"""Seconds a failing command may take, start-up of the interpreter included, on a loaded machine."""


def feedsvc(
    args: list[str], database_url: str, cwd: Path, preexec: Callable[[], None] | None = None
) -> tuple[int, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env.update({"FEEDSVC_DATABASE_URL": database_url, "FEEDSVC_LOG_FORMAT": "text"})
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "feedsvc", *args], env=env, cwd=cwd, capture_output=True, text=True,
            timeout=PROMPTLY, preexec_fn=preexec, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"feedsvc {' '.join(args)} was still running after {PROMPTLY} s: {e.stderr!r}")
    return done.returncode, done.stderr, time.monotonic() - started


def disk_full() -> None:
    """In the child: no file may grow past 8 KiB, and writing past it fails (EFBIG) rather
    than killing the process, as writes on a full disk fail."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once it is closed


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_a_file_that_is_not_a_database(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("These are my notes, not a database.\n" * 200)
    code, err, seconds = feedsvc(args, "sqlite:///notes.db", tmp_path)
    assert code == 1 and seconds < PROMPTLY
    assert "feedsvc: cannot open SQLite database notes.db: file is not a database" in err, err


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_a_database_path_under_a_file(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where a folder should be")
    code, err, _ = feedsvc(args, "sqlite:///data/feedsvc.db", tmp_path)
    assert code == 1
    assert "feedsvc: cannot open SQLite database data/feedsvc.db" in err, err


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
@pytest.mark.parametrize("existing", [False, True], ids=["new database", "existing database"])
def test_a_disk_with_no_room(args: list[str], existing: bool, tmp_path: Path) -> None:
    if existing:
        code, err, _ = feedsvc(["migrate"], "sqlite:///feedsvc.db", tmp_path)
        assert code == 0, err
        for leftover in tmp_path.glob("feedsvc.db-*"):
            leftover.unlink()
    code, err, seconds = feedsvc(args, "sqlite:///feedsvc.db", tmp_path, preexec=disk_full)
    assert code == 1 and seconds < PROMPTLY
    assert "feedsvc: cannot open SQLite database feedsvc.db" in err and "disk" in err, err


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_a_postgresql_that_refuses_connections(args: list[str], tmp_path: Path) -> None:
    postgres_dsn()  # the PostgreSQL half of the suite
    code, err, seconds = feedsvc(args, f"postgresql://postgres@127.0.0.1:{closed_port()}/feedsvc", tmp_path)
    assert code == 1 and seconds < PROMPTLY
    assert err.startswith("feedsvc: ") and "refused" in err.lower(), err
