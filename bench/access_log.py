"""The access log's cost per request, the way it was (a logging record per request) and the
way it is (a tuple queued for a writer thread), in one run.

    python -m bench.access_log                 # about 10 s
    python -m bench.access_log --requests 200000 --repeats 9

``log_access`` is called as the middleware calls it, for a cached ``/feed.rss`` answer.
CPU time is ``time.thread_time`` of the calling thread, so what the event loop pays is
apart from what the writer thread pays later (its formatting and the write, measured by
flushing the queue in the calling thread). The log goes to a temporary file, as with
``feedsvc serve 2>>feedsvc.log``; a terminal or a pipe that blocks would measure its reader.
Best of ``--repeats`` runs; the machine may be shared, and the best run is the one least
disturbed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable

from feedsvc import logs
from feedsvc.http.observe import log_access


def _calls(requests: int) -> Callable[[], None]:
    client = ("127.0.0.1", 50_000)

    def run() -> None:
        for n in range(requests):
            log_access("GET", "/feed.rss", b"", "/feed.rss", 200, 148_213, 0.000412, f"{n:016x}", client)

    return run


def _cpu_us(fn: Callable[[], None], requests: int) -> float:
    started = time.thread_time()
    fn()
    return (time.thread_time() - started) / requests * 1e6


def measure(requests: int, repeats: int) -> dict[str, float]:
    """Microseconds of CPU per request: the serving path before and after, and the writer's share."""
    root = logging.getLogger()
    saved = list(root.handlers), root.level, sys.stderr, logs.access_writer
    sys.stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed below
    run = _calls(requests)
    best: dict[str, float] = {}

    def keep(name: str, value: float) -> None:
        best[name] = min(best.get(name, value), value)

    try:
        logs.configure_logging("json", "INFO")
        writer = logs.access_writer
        assert writer is not None
        for _ in range(repeats):  # interleaved, so that load on the machine hits both alike
            logs.set_access_writer(None)  # as before: a LogRecord through JsonFormatter and StderrHandler
            keep("before: logging record, formatted and written per request", _cpu_us(run, requests))
            writer = logs.AccessWriter(thread=False)  # so that flush() below does the thread's work
            logs.set_access_writer(writer)
            keep("after: serving path (queue a tuple)", _cpu_us(run, requests))
            keep("after: writer thread (format in batch, write)", _cpu_us(writer.flush, requests))
    finally:
        logs.set_access_writer(saved[3])
        sys.stderr.close()
        root.handlers[:], level, sys.stderr = saved[0], saved[1], saved[2]
        root.setLevel(level)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.access_log", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50_000, help="log_access calls per run (default 50,000)")
    parser.add_argument("--repeats", type=int, default=7, help="runs of each; the best is kept (default 7)")
    args = parser.parse_args(argv)
    best = measure(args.requests, args.repeats)
    print(f"# access log CPU per request ({args.requests:,} calls, best of {args.repeats})\n")
    print("| | µs/request |\n| --- | ---: |")
    for name, us in best.items():
        print(f"| {name} | {us:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
