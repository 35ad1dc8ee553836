"""The ``feedsvc`` command: serve, import, export, backup, restore, token, migrate, demo,
migrate-data.

Settings come from ``FEEDSVC_*`` environment variables; a flag overrides its variable
(``--database-url`` overrides ``FEEDSVC_DATABASE_URL``). Exit codes: 0 success, 1 an
error (printed as ``feedsvc: <message>`` on stderr) or an import with failed records,
2 a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedsvc import __version__
from feedsvc.config import Settings, load_settings
from feedsvc.datamove import BATCH_SIZE, migrate_data, report_lines
from feedsvc.digest import Schedule
from feedsvc.errors import FeedsvcError, InvalidInputError, StorageError
from feedsvc.importformats import collect_files
from feedsvc.logs import configure_logging, resolve_level
from feedsvc.model import SCOPES, TokenInfo
from feedsvc.service import Service
from feedsvc.store import Store, as_backup, open_store, restore_backup
from feedsvc.transfer import ImportResult, export_jsonl, export_to_path, import_files

if TYPE_CHECKING:
    from litestar import Litestar

Command = Callable[[argparse.Namespace, Settings], int]
AsyncCommand = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def run_async(command: AsyncCommand) -> Command:
    """A command that runs ``command`` in its own event loop."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        return asyncio.run(command(args, settings))

    return run


# --- wiring -------------------------------------------------------------------------------


def app_from_env() -> Litestar:
    """The ASGI app for ``uvicorn --factory``: settings from the environment of the process,
    where ``feedsvc serve`` has put its flags, so every worker process sees the same ones."""
    from feedsvc.http.app import create_app

    settings = load_settings(os.environ)
    configure_logging(settings.log_format, settings.log_level)  # a worker process starts afresh
    app = create_app(settings)
    # What start-up made (modules, routes, the app: most of the heap) lives as long as the
    # serving process: out of the cyclic collector's sight, each full collection walks only
    # what came since (feedsvc.http.uvicorn_front freezes crowds of connections the same way).
    gc.collect()
    gc.freeze()
    return app


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    overrides = {name: getattr(args, name, None) for name in ("database_url", "public_url", "host", "port", "workers")}
    return load_settings(os.environ, **overrides)


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[Service]:
    """A Service on the opened (and migrated) store ``settings`` names; closed on exit."""
    store = open_store(settings.database_url)
    await store.open()
    try:
        yield Service(
            store, base_url=settings.base_url, require_if_match=settings.require_if_match,
            digest_schedule=Schedule(settings.timezone, settings.digest_hour),
        )
    finally:
        await store.close()


def sqlite_path(settings: Settings) -> str | None:
    """The file of the SQLite database ``settings`` names; None for PostgreSQL."""
    return sqlite_file(settings.database_url)


def sqlite_file(url: str) -> str | None:
    """The file of an SQLite database URL; None for PostgreSQL."""
    if url.startswith(("postgresql://", "postgres://")):
        return None
    return url.removeprefix("sqlite:///")


def require_database(settings: Settings) -> None:
    """Refuse to create an empty SQLite file as a side effect of reading a missing one."""
    path = sqlite_path(settings)
    if path is not None and not os.path.exists(path):
        raise InvalidInputError(f"no database at {path} (set FEEDSVC_DATABASE_URL or --database-url)")


# --- commands -----------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Check the port is free and (migrate) the database once, then run uvicorn on
    ``app_from_env``."""
    check_port_free(settings.host, settings.port)
    asyncio.run(_check_database(settings))
    import uvicorn

    for name in ("database_url", "public_url", "host", "port", "workers"):
        value = getattr(args, name)
        if value is not None:
            os.environ[f"FEEDSVC_{name.upper()}"] = str(value)
    raise_open_files_limit(settings.max_connections)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    source = "FEEDSVC_PUBLIC_URL" if settings.public_url else "the address served; set FEEDSVC_PUBLIC_URL to change it"
    print(
        f"feedsvc {__version__} serving http://{host}:{settings.port}; links use {settings.base_url} ({source})",
        flush=True,
    )
    from feedsvc.http.uvicorn_front import FrontProtocol

    uvicorn.run(
        "feedsvc.cli:app_from_env",
        factory=True,
        http=FrontProtocol,  # polls of current cached feeds answered as they arrive
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        timeout_graceful_shutdown=settings.shutdown_timeout,
        # uvicorn's loggers go through feedsvc.logs; its access log gives way to ours.
        log_config=None,
        log_level=resolve_level(settings.log_level),
        access_log=False,
    )
    return 0


def raise_open_files_limit(connections: int) -> None:
    """Let the process hold ``connections`` sockets besides its files and database
    connections: raise the soft open-files limit to the hard one (as nginx's
    ``worker_rlimit_nofile`` does), and say so when even that is too low. Past the limit
    the kernel refuses new connections before feedsvc can answer them."""
    import logging
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    needed = connections + 64  # database connections, files, the listening socket
    if soft != resource.RLIM_INFINITY and soft < needed:
        logging.getLogger("feedsvc").warning(
            "the open-files limit (%d) is below FEEDSVC_MAX_CONNECTIONS + 64 (%d): raise it (ulimit -n)", soft, needed
        )


def check_port_free(host: str, port: int) -> None:
    """InvalidInputError, naming the settings to change, when ``host``:``port`` cannot be
    listened on (in use, or an address this machine does not have); uvicorn would only
    log the bare OS error. Bound as uvicorn binds (SO_REUSEADDR), then let go at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise InvalidInputError(
                    f"port {port} on {host} is already in use (another feedsvc or another server): stop it, "
                    f"or choose another port with FEEDSVC_PORT={port + 1} or --port {port + 1}"
                ) from None
            raise InvalidInputError(
                f"cannot listen on {host}:{port} ({e.strerror}): check FEEDSVC_HOST / --host and FEEDSVC_PORT / --port"
            ) from None


async def _check_database(settings: Settings) -> None:
    """Open and close the store: fails fast on a bad URL and migrates before workers start."""
    async with opened(settings):
        pass


async def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """Import files and folders; print the summary; 1 if any record failed."""
    files = collect_files(args.paths)
    async with opened(settings) as service:
        result = await import_files(service, files, progress=sys.stderr.isatty())
    return print_result(result)


def print_result(result: ImportResult) -> int:
    """Print an import's summary and reasons; return the exit code it deserves."""
    print("\n".join(result.summary_lines()))
    return 1 if result.failed else 0


async def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """Export everything as JSON Lines to a file or, for ``-``, stdout."""
    require_database(settings)
    async with opened(settings) as service:
        if args.path == "-":
            await export_jsonl(service.store, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            categories, commentaries = await export_to_path(service.store, Path(args.path))
            print(f"exported {categories} categories and {commentaries} commentaries to {args.path}", file=sys.stderr)
    return 0


async def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    """Create a token; print a line about it, then the token alone on the last line."""
    if args.expires_days is not None and args.expires_days < 1:
        raise InvalidInputError("--expires-days must be at least 1")
    expires = timedelta(days=args.expires_days) if args.expires_days else None
    async with opened(settings) as service:
        secret, info = await service.create_token(args.name, args.scope, expires_in=expires)
    if "write" in info.scopes:
        print("note: 'write' is the scope of tokens made before scopes were split; it allows commentaries:write "
              "and categories:write, not webhooks (webhooks:manage)", file=sys.stderr)
    until = f"expires {_when(info.expires_at)}" if info.expires_at else "never expires"
    print(f"token {info.id} {info.name!r}, scopes {','.join(info.scopes)}, {until}; shown only now:")
    print(secret)
    return 0


async def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print every token as a table, newest first."""
    async with opened(settings) as service:
        tokens = await service.list_tokens()
    print("\n".join(token_table(tokens)) if tokens else "no tokens")
    return 0


def token_table(tokens: Sequence[TokenInfo]) -> list[str]:
    """Rows of id, name, scopes, created, expires, revoked, in aligned columns."""
    rows = [("ID", "NAME", "SCOPES", "CREATED", "EXPIRES", "REVOKED")]
    rows += [
        (t.id, t.name, ",".join(t.scopes), _when(t.created_at), _when(t.expires_at), _when(t.revoked_at))
        for t in tokens
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ") if value else "-"


async def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke a token by id; it stops working at once. The revocation is read back, by the
    service and then once more through a store opened afresh, so that success is printed
    only for what the database kept (StorageError otherwise)."""
    async with opened(settings) as service:
        info = await service.revoke_token(args.id)
    async with opened(settings) as service:
        again = next((t for t in await service.list_tokens() if t.id == info.id), None)
    if again is None or again.revoked_at is None:
        raise StorageError(
            f"token {info.id} still reads as not revoked after the revocation: the database did not keep it"
            " and the token still works (look for triggers in the database; `feedsvc backup` lists them)"
        )
    print(f"revoked token {info.id} {info.name!r} at {_when(info.revoked_at)}")
    return 0


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply pending migrations (opening the store does) and print the schema version."""
    async with opened(settings) as service:
        current, expected = await service.store.schema_status()
    state = "up to date" if current == expected else f"this feedsvc expects {expected}"
    print(f"schema version {current} ({state})")
    return 0


async def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    """A consistent copy of a live SQLite database, checked as a restore will check it."""
    path = sqlite_path(settings)
    if path is None:
        print("feedsvc: backup only copies SQLite databases; use pg_dump for PostgreSQL", file=sys.stderr)
        return 1
    require_database(settings)
    target = Path(args.path)
    if target.exists() and os.path.samefile(target, path):
        raise InvalidInputError("the backup target is the database itself")
    async with opened(settings) as service:
        store = as_backup(service.store)
        if store is None:
            raise InvalidInputError("this database backend has no backup")
        left_out = await store.backup(target)
    print(f"backup written to {target} ({target.stat().st_size} bytes)")
    if left_out:
        print(
            "feedsvc: the database holds what feedsvc's migrations do not make, which a restore of"
            f" this backup leaves out: {', '.join(left_out)}",
            file=sys.stderr,
        )
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    """Replace the SQLite database with the rows of a backup, copied into a database made
    by feedsvc's own migrations (feedsvc.store.sqlite.backup). Refused while anything has
    the database open; the previous database is kept beside it as ``NAME.pre-restore``."""
    path = sqlite_path(settings)
    if path is None:
        print("feedsvc: restore only replaces SQLite databases; use pg_restore or psql for PostgreSQL", file=sys.stderr)
        return 1
    source, target = Path(args.path), Path(path)
    restored, latest = restore_backup(str(target), source)
    if restored.damaged is not None:
        print(f"feedsvc: the database replaced was damaged ({restored.damaged})", file=sys.stderr)
    if restored.left_out:
        print(
            "feedsvc: left out of the restore, as feedsvc's migrations do not make them: "
            f"{', '.join(restored.left_out)}",
            file=sys.stderr,
        )
    migrated = f", migrated to {latest}" if restored.version < latest else ""
    print(f"restored {target} from {source} (schema {restored.version}{migrated})")
    if restored.kept is not None:
        print(f"the previous database is kept as {restored.kept}")
    return 0


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Import the sample data once; leave a database that has commentaries alone."""
    async with opened(settings) as service:
        if await has_commentaries(service.store):
            print("database not empty; demo data not loaded")
            return 0
        if not Path(args.data).is_dir():
            raise InvalidInputError(f"no demo data folder at {args.data} (give one with --data)")
        files = collect_files([args.data])
        result = await import_files(service, files, progress=sys.stderr.isatty())
    return print_result(result)


async def cmd_migrate_data(args: argparse.Namespace, settings: Settings) -> int:
    """Copy one database into another store and verify both (feedsvc.datamove); 1 when the
    copy does not verify or the target has changes of its own."""
    if not 1 <= args.batch_size <= 10_000:
        # A batch's commentaries are read with one query: SQLite takes 32,766 parameters.
        raise InvalidInputError("--batch-size must be between 1 and 10000")
    if args.source == args.target:
        raise InvalidInputError("--from and --to name the same database")
    path = sqlite_file(args.source)
    if path is not None and not os.path.exists(path):
        raise InvalidInputError(f"no database at {path} (--from)")
    source, target = open_store(args.source), open_store(args.target)
    await source.open()
    try:
        await target.open()
        try:
            outcome = await migrate_data(
                source, target, batch_size=args.batch_size, progress=not args.quiet and sys.stderr.isatty()
            )
        finally:
            await target.close()
    finally:
        await source.close()
    copied = outcome.copied
    if copied.changes:
        rate = copied.changes / copied.seconds if copied.seconds else 0.0
        print(
            f"copied {copied.changes} changes ({copied.commentaries} commentaries written,"
            f" {copied.removed} removed) in {copied.seconds:.1f} s, {rate:.0f} changes/s"
        )
    else:
        print(f"nothing to copy: the target holds every change up to {outcome.target.seq}")
    print("\n".join(report_lines(outcome)))
    if not outcome.verified:
        different = [k for k in outcome.source.kinds if outcome.source.kinds[k] != outcome.target.kinds[k]]
        print(f"feedsvc: verification failed: {', '.join(different)} differ; run again", file=sys.stderr)
        return 1
    print(f"verified: the target holds the same data as the source, up to change {outcome.source.seq}")
    return 0


async def has_commentaries(store: Store) -> bool:
    """Whether the store holds any commentary at all, drafts included."""
    # The generator left at its first item holds no connection between chunks; the event
    # loop closes it.
    async for _ in store.iter_all_commentaries():
        return True
    return False


# --- arguments ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; each subcommand stores the function that runs it as ``command``."""
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--database-url", metavar="URL", help="overrides FEEDSVC_DATABASE_URL")
    parser = argparse.ArgumentParser(prog="feedsvc", description="Analytical commentaries as feeds and a JSON API.")
    parser.add_argument("--version", action="version", version=f"feedsvc {__version__}")
    sub = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", parents=[db], help="run the HTTP server")
    p.add_argument("--host", help="overrides FEEDSVC_HOST")
    p.add_argument("--port", type=int, help="overrides FEEDSVC_PORT")
    p.add_argument("--workers", type=int, help="overrides FEEDSVC_WORKERS")
    p.add_argument("--public-url", metavar="URL", help="overrides FEEDSVC_PUBLIC_URL")
    p.set_defaults(command=cmd_serve)

    p = sub.add_parser("import", parents=[db], help="import .jsonl, .json, .md files or folders")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(command=run_async(cmd_import))

    p = sub.add_parser("export", parents=[db], help="export everything as JSON Lines")
    p.add_argument("path", nargs="?", default="-", metavar="PATH", help="a file, or - for stdout (default)")
    p.set_defaults(command=run_async(cmd_export))

    p = sub.add_parser("token", help="create, list and revoke API tokens")
    tokens = p.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    t = tokens.add_parser(
        "create", parents=[db], help="create a token and print it once",
        description="Create a token allowed what its scopes name (give --scope once per scope) and print it "
        "alone on the last line, once. Scopes: " + "; ".join(f"{name}: {what}" for name, what in SCOPES.items()) + ".",
    )
    t.add_argument("--name", required=True)
    t.add_argument("--scope", action="append", required=True, choices=list(SCOPES), metavar="SCOPE",
                   help="one of " + ", ".join(SCOPES) + " (repeatable)")
    t.add_argument("--expires-days", type=int, metavar="N")
    t.set_defaults(command=run_async(cmd_token_create))
    t = tokens.add_parser("list", parents=[db], help="list tokens")
    t.set_defaults(command=run_async(cmd_token_list))
    t = tokens.add_parser("revoke", parents=[db], help="revoke a token by id")
    t.add_argument("id", metavar="ID")
    t.set_defaults(command=run_async(cmd_token_revoke))

    from feedsvc.newsletter_cli import add_newsletter_commands  # it reads this module's helpers

    add_newsletter_commands(sub, db)

    p = sub.add_parser("migrate", parents=[db], help="apply schema migrations and print the version")
    p.set_defaults(command=run_async(cmd_migrate))

    p = sub.add_parser("backup", parents=[db], help="copy the SQLite database to PATH")
    p.add_argument("path", metavar="PATH")
    p.set_defaults(command=run_async(cmd_backup))

    p = sub.add_parser("restore", parents=[db], help="replace the SQLite database with a checked backup")
    p.add_argument("path", metavar="PATH", help="a file written by `feedsvc backup`")
    p.set_defaults(command=cmd_restore)

    p = sub.add_parser("demo", parents=[db], help="load the sample data into an empty database")
    p.add_argument("--data", default="data", metavar="DIR", help="the sample data folder (default: ./data)")
    p.set_defaults(command=run_async(cmd_demo))

    p = sub.add_parser(
        "migrate-data",
        help="copy a whole database to another store (SQLite to PostgreSQL), then verify it",
        description="Copy everything (commentaries of every status, categories, tokens, the change"
        " log with its numbers, the signing secret) from one database to another, then count and"
        " checksum both sides; exit status 1 when they differ. Safe to re-run: a second run copies"
        " only the changes made in the source since (or finishes an interrupted copy), and a target"
        " that has taken writes of its own is refused untouched. The target's schema is migrated"
        " first.",
        epilog="Idempotency keys are not copied: they are kept for 24 hours only, and a POST retried"
        " after the move is stored anew.",
    )
    p.add_argument(
        "--from", dest="source", required=True, metavar="URL", help="sqlite:///PATH, a path, or postgresql://"
    )
    p.add_argument(
        "--to", dest="target", required=True, metavar="URL", help="postgresql://… (?schema=NAME), or sqlite:///PATH"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=BATCH_SIZE,
        metavar="N",
        help=f"changes copied per transaction of the target (default {BATCH_SIZE})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")
    p.set_defaults(command=run_async(cmd_migrate_data))
    return parser


def exit_now_if_stuck(code: int) -> int:
    """``code``, after making sure a failed command exits: a thread a driver started and
    left running (aiosqlite's are not daemons) would keep the process alive after its
    error was printed, so the process ends at once, output flushed, when one is left."""
    import logging
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors
        return e.code if isinstance(e.code, int) else 2
    command: Command = args.command
    try:
        settings = settings_from(args)
        configure_logging(settings.log_format, settings.log_level)
        return command(args, settings)
    except FeedsvcError as e:
        print(f"feedsvc: {e.message}", file=sys.stderr)
        return exit_now_if_stuck(1) if argv is None else 1  # argv None: this is the process itself
    except BrokenPipeError:
        # stdout was closed early (`feedsvc export | head`): stay quiet, also at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:
        print(f"feedsvc: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
