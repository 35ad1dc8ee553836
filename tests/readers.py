"""Real feed readers, subscribed as a new user would: through a running feedsvc's
``/feeds.opml``.

Each ``read_*`` function takes the server's base URL and a fresh working folder, subscribes
to every feed of the OPML with one reader, fetches once, and returns what that reader
stored, per subscription (the feed URL as the OPML gives it), in one plain shape:

``Entry`` (a dict)
    ``id`` the GUID/id as the reader keeps it; ``title``; ``link``; ``authors``: the author
    names the reader shows, one string per author it recognised; ``summary``: the
    teaser/summary text it keeps (``None`` when it keeps none); ``content``: the body it
    shows (HTML or text, as it keeps it); ``enclosures``: ``[{"url", "type", "length"}]``.

rss2email is different: it sends mail, so :func:`read_rss2email` returns the mails
(``Mail``: ``subject``, ``from``, ``text``, ``feed``, ``id``) per subscription.

newsboat is a Debian binary (``newsboat_missing()`` says when it is not installed); the
Python readers are test dependencies. Nothing here knows feedsvc's internals: only what
goes over HTTP.
"""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import sqlite3
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypedDict
from xml.etree import ElementTree

import feedparser
import httpx

IN_CI = os.environ.get("CI", "").lower() == "true"


class Enclosure(TypedDict):
    url: str
    type: str | None
    length: int | None


class Entry(TypedDict):
    id: str
    title: str | None
    link: str | None
    authors: list[str]
    summary: str | None
    content: str | None
    enclosures: list[Enclosure]


class Mail(TypedDict):
    subject: str
    sender: str
    text: str
    feed: str
    id: str


class Subscription(TypedDict):
    title: str
    url: str
    group: str | None


# --- the OPML -----------------------------------------------------------------------------


def fetch_opml(base_url: str) -> bytes:
    response = httpx.get(f"{base_url}/feeds.opml", timeout=30)
    response.raise_for_status()
    return response.content


def subscriptions(base_url: str) -> list[Subscription]:
    """The feeds ``/feeds.opml`` lists, in document order, with the title of the outline
    that groups each (``None`` at the top level)."""
    root = ElementTree.fromstring(fetch_opml(base_url))
    found: list[Subscription] = []

    def walk(node: ElementTree.Element, group: str | None) -> None:
        for outline in node.findall("outline"):
            url = outline.get("xmlUrl")
            title = outline.get("title") or outline.get("text") or ""
            if url:
                found.append({"title": title, "url": url, "group": group})
            walk(outline, title if not url else group)

    body = root.find("body")
    assert body is not None, "an OPML document has a body"
    walk(body, None)
    return found


# --- feedparser ---------------------------------------------------------------------------


def _feedparser_entry(e: Any) -> Entry:
    content = e.get("content")
    return {
        "id": e.get("id", ""),
        "title": e.get("title"),
        "link": e.get("link"),
        "authors": [a["name"] for a in e.get("authors", []) if a.get("name")],
        "summary": e.get("summary"),
        "content": content[0]["value"] if content else None,
        "enclosures": [
            {"url": x.get("href", ""), "type": x.get("type"), "length": _int(x.get("length"))}
            for x in e.get("enclosures", [])
        ],
    }


def read_feedparser(base_url: str, urls: list[str] | None = None) -> dict[str, list[Entry]]:
    """Every feed of the OPML (or ``urls``) through feedparser, fetched by feedparser."""
    out = {}
    for url in urls if urls is not None else [s["url"] for s in subscriptions(base_url)]:
        parsed = feedparser.parse(url)
        assert parsed.get("status") == 200, f"feedparser fetching {url}: {parsed.get('status')}"
        out[url] = [_feedparser_entry(e) for e in parsed.entries]
    return out


# --- the reader library -------------------------------------------------------------------


def read_reader(base_url: str, workdir: Path, urls: list[str] | None = None) -> dict[str, list[Entry]]:
    """Every feed of the OPML (or ``urls``) through the ``reader`` library (lemon24/reader):
    added, updated once, and read back from its database. Called again with the same
    ``workdir``, it updates the feeds subscribed before, as a reader polls."""
    from reader import make_reader

    workdir.mkdir(parents=True, exist_ok=True)
    reader = make_reader(str(workdir / "reader.sqlite"))
    try:
        feeds = urls if urls is not None else [s["url"] for s in subscriptions(base_url)]
        for url in feeds:
            reader.add_feed(url, exist_ok=True)
        # scheduled=False: poll now, as it would at its next scheduled update (it schedules
        # by the real clock, hours ahead, and a test moves the server's clock instead).
        for result in reader.update_feeds_iter(scheduled=False):
            assert not isinstance(result.value, Exception), f"reader updating {result.url}: {result.value!r}"
        out: dict[str, list[Entry]] = {}
        for url in feeds:
            out[url] = [
                {
                    "id": e.id,
                    "title": e.title,
                    "link": e.link,
                    "authors": [a.name for a in e.authors if a.name],
                    "summary": e.summary,
                    "content": e.content[0].value if e.content else None,
                    "enclosures": [{"url": x.href, "type": x.type, "length": x.length} for x in e.enclosures],
                }
                for e in reader.get_entries(feed=url)
            ]
        return out
    finally:
        reader.close()


# --- newsboat -----------------------------------------------------------------------------


def newsboat_missing() -> str | None:
    """Why newsboat cannot run here, or ``None``. In CI it must run (``.ci/run`` installs it)."""
    if shutil.which("newsboat"):
        return None
    return "newsboat is not installed (apt-get install newsboat)"


def _newsboat(workdir: Path, *args: str) -> str:
    env = {"HOME": str(workdir), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "dumb", "LANG": "C.UTF-8"}
    files = ["-C", str(workdir / "config"), "-u", str(workdir / "urls"), "-c", str(workdir / "cache.db")]
    done = subprocess.run(
        ["newsboat", *files, *args], env=env, cwd=workdir, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"newsboat {' '.join(args)}: {done.returncode} {done.stderr or done.stdout}"
    return done.stdout


def read_newsboat(base_url: str, workdir: Path) -> dict[str, list[Entry]]:
    """newsboat, headless: ``-i feeds.opml`` (its own OPML import), ``-x reload``, then its
    cache read with sqlite3. newsboat keys items by GUID across all feeds, so an item that
    two subscriptions carry is stored once, under one of them.

    ``authors`` is newsboat's one author string (it keeps one per item); ``summary`` is
    ``None`` (it keeps only the text it shows, in ``content``); an enclosure is what it
    recorded, if anything. Called again with the same ``workdir``, it reloads the feeds
    subscribed before, as a reader polls.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "urls").exists():
        (workdir / "config").write_text("")
        (workdir / "urls").write_text("")
        opml = workdir / "feeds.opml"
        opml.write_bytes(fetch_opml(base_url))
        _newsboat(workdir, "-i", str(opml))
    _newsboat(workdir, "-x", "reload")
    out: dict[str, list[Entry]] = {
        line.split()[0]: [] for line in (workdir / "urls").read_text().splitlines() if line.strip()
    }
    with sqlite3.connect(workdir / "cache.db") as db:
        rows = db.execute(
            "SELECT feedurl, guid, title, url, author, content, enclosure_url, enclosure_type"
            " FROM rss_item WHERE deleted = 0 ORDER BY pubDate DESC, id"
        ).fetchall()
    for feedurl, guid, title, url, author, content, enclosure_url, enclosure_type in rows:
        out.setdefault(feedurl, []).append({
            "id": guid,
            "title": title,
            "link": url,
            "authors": [author] if author else [],
            "summary": None,
            "content": content,
            "enclosures": [{"url": enclosure_url, "type": enclosure_type, "length": None}] if enclosure_url else [],
        })
    return out


def newsboat_unread(workdir: Path) -> int:
    """``newsboat -x print-unread`` after :func:`read_newsboat` in the same folder."""
    return int(_newsboat(workdir, "-x", "print-unread").split()[0])


# --- rss2email ----------------------------------------------------------------------------

_SENDMAIL = """#!/bin/sh
# rss2email's sendmail: each message goes to a file of its own.
exec cat > "{mail}/$(date +%s%N)-$$.eml"
"""


def read_rss2email(base_url: str, workdir: Path) -> dict[str, list[Mail]]:
    """rss2email (its defaults: plain-text mail) subscribed with ``r2e opmlimport``, run
    once with a sendmail that writes files; the mails it sent, per subscription.

    Called again with the same ``workdir`` it runs again as subscribed before (no new
    import), as a mailer polls: what it returns are all the mails it has sent."""
    mail = workdir / "mail"
    mail.mkdir(parents=True, exist_ok=True)
    sendmail = workdir / "sendmail"
    config = workdir / "r2e.cfg"
    r2e = [_r2e(), "-c", str(config), "-d", str(workdir / "r2e.json")]
    steps = [["run"]]
    if not config.exists():
        sendmail.write_text(_SENDMAIL.format(mail=mail))
        sendmail.chmod(0o755)
        config.write_text(
            "[DEFAULT]\nto = reader@example.org\nfrom = feeds@example.org\n"
            f"email-protocol = sendmail\nsendmail = {sendmail}\n"
        )
        opml = workdir / "feeds.opml"
        opml.write_bytes(fetch_opml(base_url))
        steps.insert(0, ["opmlimport", str(opml)])
    env = {**os.environ, "HOME": str(workdir)}
    for args in steps:
        done = subprocess.run([*r2e, *args], env=env, capture_output=True, text=True, timeout=300,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"r2e {args[0]}: {done.returncode} {done.stderr}"
    out: dict[str, list[Mail]] = {}
    for path in sorted(mail.iterdir()):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(("plain", "html"))
        feed = str(message["X-RSS-Feed"])
        out.setdefault(feed, []).append({
            "subject": str(message["Subject"]),
            "sender": str(message["From"]),
            "text": body.get_content() if body is not None else "",
            "feed": feed,
            "id": str(message["X-RSS-ID"]),
        })
    return out


def _r2e() -> str:
    """The ``r2e`` script installed next to this Python."""
    found = Path(sys.executable).parent / "r2e"
    return str(found) if found.exists() else "r2e"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
