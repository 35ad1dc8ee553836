"""``feedsvc subscribers …`` and ``feedsvc newsletter …``: the newsletter's commands.

Apart from feedsvc.cli, whose helpers they use, so that neither module grows past what one
reader takes in; ``build_parser`` adds them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec

from feedsvc.cli import _when, opened, run_async
from feedsvc.config import Settings
from feedsvc.http.common import parse_start
from feedsvc.newsletter.compose import signer_from
from feedsvc.newsletter.issues import Issues
from feedsvc.newsletter.mailer import SmtpMailer
from feedsvc.newsletter.sending import IssueSender
from feedsvc.newsletter.subscribers import Newsletter


@asynccontextmanager
async def sender_of(settings: Settings) -> AsyncIterator[IssueSender]:
    """An issue sender on the opened store, used here only to queue and to report: the
    server processes (``feedsvc serve``) deliver what is queued."""
    async with issues_of(settings) as issues:
        yield IssueSender(
            issues.service.store, issues, issues.mailer, rate=settings.newsletter_rate,
            concurrency=settings.newsletter_concurrency, retry_delay=settings.newsletter_retry_delay,
            max_attempts=settings.newsletter_max_attempts, auto=False,
        )


@asynccontextmanager
async def issues_of(settings: Settings) -> AsyncIterator[Issues]:
    """The newsletter on the opened store ``settings`` names (subscribers' data needs no sender)."""
    async with opened(settings) as service:
        mailer = SmtpMailer(settings)
        newsletter = Newsletter(
            service.store, mailer, base_url=settings.base_url, site=settings.title, sender=settings.mail_from,
            proof_bits=settings.newsletter_proof_bits, signer=signer_from(settings), clock=service.clock,
        )
        yield Issues(newsletter, service, mailer)


async def cmd_subscribers_list(args: argparse.Namespace, settings: Settings) -> int:
    """Every subscriber (or those in one state): id, address, state, language, cadence."""
    rows = [("ID", "EMAIL", "STATE", "LANG", "CADENCE", "CREATED")]
    async with issues_of(settings) as issues:
        cursor: str | None = None
        while True:
            page = await issues.newsletter.page(state=args.state, cursor=cursor, limit=1000)
            rows += [(s.id, s.email, s.state, s.lang, s.cadence, _when(s.created_at)) for s in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print("\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows))
    return 0


async def cmd_subscribers_export(args: argparse.Namespace, settings: Settings) -> int:
    """Everything kept about one subscriber (by id or address), as JSON on stdout."""
    async with issues_of(settings) as issues:
        found = await issues.newsletter.export(args.ref)
    sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(found)) + b"\n")
    return 0


async def cmd_subscribers_erase(args: argparse.Namespace, settings: Settings) -> int:
    """Delete everything kept about one subscriber (by id or address)."""
    async with issues_of(settings) as issues:
        gone = await issues.newsletter.erase(args.ref)
    print(f"erased subscriber {gone.id} ({gone.email})")
    return 0


async def cmd_newsletter_preview(args: argparse.Namespace, settings: Settings) -> int:
    """The newsletter of a published digest on stdout: its HTML, its text, or the whole mail."""
    async with issues_of(settings) as issues:
        sys.stdout.buffer.write(await issues.preview(parse_start(args.start), args.lang, args.format))
    return 0


async def cmd_newsletter_send_test(args: argparse.Namespace, settings: Settings) -> int:
    """Send the newsletter of a published digest to one address."""
    async with issues_of(settings) as issues:
        await issues.send_test(parse_start(args.start), args.lang, args.to)
    print(f"sent the {args.lang} newsletter of {args.start} to {args.to}")
    return 0


async def cmd_newsletter_send(args: argparse.Namespace, settings: Settings) -> int:
    """Queue the newsletter of a published digest for every subscriber of its language."""
    async with sender_of(settings) as sender:
        issue, count = await sender.send_issue(parse_start(args.start), args.lang)
    print(f"issue {issue.key}: {count} mails queued; the server sends them (feedsvc newsletter status)")
    return 0


async def cmd_newsletter_status(args: argparse.Namespace, settings: Settings) -> int:
    """Each issue, newest first: its state and how many mails are queued, sent, failed."""
    rows: list[tuple[str, ...]] = [("ISSUE", "STATE", "QUEUED", "SENT", "FAILED")]
    async with sender_of(settings) as sender:
        for issue in await sender.store.get_issues(100):
            counts = await sender.store.send_counts(issue.key)
            rows.append((issue.key, issue.state, *(str(counts.get(s, 0)) for s in ("queued", "sent", "failed"))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print("\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows))
    return 0


def add_newsletter_commands(sub: Any, db: argparse.ArgumentParser) -> None:
    """Add ``subscribers`` and ``newsletter`` to the subcommands ``sub``."""
    p = sub.add_parser("subscribers", help="the newsletter's subscribers: list, export or erase one")
    subs = p.add_subparsers(dest="subscribers_command", required=True, metavar="ACTION")
    t = subs.add_parser("list", parents=[db], help="list subscribers")
    t.add_argument("--state", choices=["pending", "active", "unsubscribed", "suspended"])
    t.set_defaults(command=run_async(cmd_subscribers_list))
    t = subs.add_parser("export", parents=[db], help="print everything kept about one subscriber as JSON")
    t.add_argument("ref", metavar="ID_OR_EMAIL")
    t.set_defaults(command=run_async(cmd_subscribers_export))
    t = subs.add_parser("erase", parents=[db], help="delete everything kept about one subscriber")
    t.add_argument("ref", metavar="ID_OR_EMAIL")
    t.set_defaults(command=run_async(cmd_subscribers_erase))

    p = sub.add_parser("newsletter", help="preview the newsletter of a digest, or send it to one address")
    news = p.add_subparsers(dest="newsletter_command", required=True, metavar="ACTION")
    for name, helptext, command in (
        ("preview", "print the newsletter of a published digest", cmd_newsletter_preview),
        ("send-test", "send the newsletter of a published digest to one address", cmd_newsletter_send_test),
    ):
        t = news.add_parser(name, parents=[db], help=helptext)
        t.add_argument("start", metavar="START", help="the digest's first day, YYYY-MM-DD")
        t.add_argument("--lang", choices=["en", "be", "ru"], default="en")
        if name == "preview":
            t.add_argument("--format", choices=["html", "text", "eml"], default="html")
        else:
            t.add_argument("--to", required=True, metavar="ADDRESS")
        t.set_defaults(command=run_async(command))
    t = news.add_parser("send", parents=[db], help="queue the newsletter of a published digest for its subscribers")
    t.add_argument("start", metavar="START", help="the digest's first day, YYYY-MM-DD")
    t.add_argument("--lang", choices=["en", "be", "ru"], default="en")
    t.set_defaults(command=run_async(cmd_newsletter_send))
    t = news.add_parser("status", parents=[db], help="each issue with its mails queued, sent and failed")
    t.set_defaults(command=run_async(cmd_newsletter_status))
