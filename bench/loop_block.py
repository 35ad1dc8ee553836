"""Feed polls and /healthz while the heaviest bodies are written.

Serves the sample data with ``feedsvc serve`` on 127.0.0.1 (the code of ``--src``, so an
older checkout can be measured the same way), polls ``/feed.rss`` and ``/healthz`` from a
few threads, and reports their latency (p50, p99, max) before any write and while each
heavy body is POSTed, with each write's status and time::

    .venv/bin/python -m bench.loop_block                      # this checkout
    git archive main | tar -x -C /tmp/old && .venv/bin/python -m bench.loop_block --src /tmp/old

Bounded: 4 polling threads at most 20 requests/s each, loopback only; each write waits
``--write-timeout`` seconds at most; the server is stopped at exit.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
_formatting = "".join(f'<b title="{i}">' for i in range(49))
HEAVY: list[tuple[str, dict[str, Any]]] = [
    ("body_html: 88,000 unclosed <div>", {"body_html": "<div>" * 88_000}),
    ("body_markdown: '![' x 440,000", {"body_markdown": "![" * 440_000}),
    ("body_markdown: 860 KiB of <div>", {"body_markdown": "<div>" * 172_000}),
    (
        "body_html: formatting at the depth limit, 880 KB",
        {"body_html": ((_formatting + "x" + "</b>" * 49) * 900)[:880_000]},
    ),
    (
        "body_markdown: a long real-shaped article, 550 KB",
        {
            "body_markdown": (
                "## A heading\n\nPlain words, with `code` and https://example.org.\n\n- one\n- two\n\n> quoted\n\n"
            )
            * 5_000
        },
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stats(values: list[float]) -> str:
    if not values:
        return "no answers"
    ordered = sorted(values)
    def p(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000

    return f"n={len(ordered):4d} p50 {p(0.5):7.1f} ms  p99 {p(0.99):7.1f} ms  max {ordered[-1] * 1000:7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, default=ROOT, help="the feedsvc checkout to serve")
    parser.add_argument("--baseline", type=float, default=5.0, help="seconds of polling before the writes")
    parser.add_argument("--write-timeout", type=float, default=150.0)
    parser.add_argument("--only", type=int, default=len(HEAVY), help="the first N heavy bodies only")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="feedsvc-loop-"))
    port = _free_port()
    env = {
        **os.environ, "PYTHONPATH": str(args.src.resolve()), "FEEDSVC_DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite'}",
        "FEEDSVC_PORT": str(port), "FEEDSVC_HOST": "127.0.0.1", "FEEDSVC_ACCESS_LOG": "false",
        "FEEDSVC_RATE_LIMIT_FEEDS": "0", "FEEDSVC_RATE_LIMIT_WRITE": "0", "FEEDSVC_RATE_LIMIT_READ": "0",
        "FEEDSVC_MEDIA_DIR": str(ROOT / "data" / "media"),
    }
    feedsvc = [sys.executable, "-m", "feedsvc"]
    subprocess.run([*feedsvc, "demo", "--data", str(ROOT / "data")], env=env, check=True, capture_output=True, cwd=tmp)
    token = (
        subprocess.run(
            [*feedsvc, "token", "create", "--name", "bench", "--scope", "write"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    server = subprocess.Popen(
        [*feedsvc, "serve"],
        env=env,
        cwd=tmp,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        phase = ["baseline"]
        samples: dict[tuple[str, str], list[float]] = {}
        stop = threading.Event()

        def poll(path: str) -> None:
            with httpx.Client(base_url=base, timeout=args.write_timeout) as client:
                while not stop.is_set():
                    started = time.perf_counter()
                    client.get(path)
                    samples.setdefault((phase[0], path), []).append(time.perf_counter() - started)
                    stop.wait(0.05)

        threads = [
            threading.Thread(target=poll, args=(p,), daemon=True)
            for p in ("/feed.rss", "/feed.rss", "/feed.rss", "/healthz")
        ]
        for t in threads:
            t.start()
        time.sleep(args.baseline)
        record = json.loads((ROOT / "data" / "commentaries.jsonl").read_text().splitlines()[0])
        outcomes = []
        with httpx.Client(
            base_url=base, timeout=args.write_timeout, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            for i, (what, fields) in enumerate(HEAVY[: args.only]):
                phase[0] = what
                body = {k: v for k, v in record.items() if not k.startswith("body_")} | {"slug": f"heavy-{i}"} | fields
                started = time.perf_counter()
                try:
                    status = str(client.post("/api/v1/commentaries", json=body).status_code)
                except httpx.TimeoutException:
                    status = "timeout"
                outcomes.append((what, status, time.perf_counter() - started))
                time.sleep(0.5)  # let the polls see the state after the write too
        stop.set()
        for t in threads:
            t.join(timeout=args.write_timeout)
        print(f"server: {args.src}")
        for name in ["baseline"] + [w for w, _ in HEAVY[: args.only]]:
            print(f"{name}")
            for path in ("/feed.rss", "/healthz"):
                print(f"    {path:10s} {_stats(samples.get((name, path), []))}")
        for what, status, seconds in outcomes:
            print(f"write {status:>7s} in {seconds:7.2f} s  {what}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
