"""Bodies beyond the structural limits are refused before any sanitising or rendering, with
a 400 naming the field and the limit; real articles are far inside them; Markdown renders
in worker processes that are killed past their time; bidi controls never reach a page.
(The event loop stays free while the heaviest bodies are processed: test_event_loop.py.)"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from feedsvc.bodies import BodyRenderer
from feedsvc.errors import BusyError, InvalidInputError, UnprocessableError
from feedsvc.model import CategoryIn
from feedsvc.service import Service
from feedsvc.store.sqlite import SqliteStore
from feedsvc.structure import (
    MAX_BRACKETS,
    MAX_DELIMITERS,
    MAX_DEPTH,
    MAX_TAG_CHARS,
    MAX_TAGS,
    check_html,
    check_markdown,
)
from feedsvc.transfer import import_files
from tests.conftest import assert_error, commentary

DATA = Path(__file__).parent.parent / "data"

# (what, the body field and its value, the limit named)
BEYOND = [
    ("88,000 unclosed <div> (the review's 429 KiB body)", "body_html", "<div>" * 88_000, "depth"),
    ("one element nested too deep", "body_html", "<div>" * (MAX_DEPTH + 1) + "x", "depth"),
    ("unclosed formatting elements reopened in every paragraph", "body_html",
     "<p>" + "".join(f'<b title="{i}">' for i in range(MAX_DEPTH)) + "</p>" + "<p>x</p>" * 10, "depth"),
    ("end tags the parser ignores (<span><div></span>)", "body_html", "<span><div></span>" * MAX_DEPTH, "depth"),
    ("formatting moved, not closed (<b><div></b>)", "body_html", "<b><div></b>" * MAX_DEPTH, "depth"),
    ("too many tags", "body_html", "<br>" * (MAX_TAGS + 1), "tags"),
    ("one tag with thousands of attributes", "body_html",
     "<b " + " ".join(f"a{i}" for i in range(MAX_TAG_CHARS // 3)) + ">x</b>", "tag_chars"),
    ("a '>' inside a quoted value does not end the tag", "body_html",
     '<b title=">" ' + "a " * MAX_TAG_CHARS + ">x</b>", "tag_chars"),
    ("860 KiB of <div> in Markdown (the review's 110 s)", "body_markdown", "<div>" * 172_000, "tags"),
    ("'![' x 440,000 in Markdown (the review's 13.8 s)", "body_markdown", "![" * 440_000, "brackets"),
    ("too many link brackets", "body_markdown", "[x](" * (MAX_BRACKETS + 1), "brackets"),
    ("too many emphasis delimiters", "body_markdown", "*a_" * (MAX_DELIMITERS // 2 + 1), "delimiters"),
    # Counted on the HTML markdown-it writes (in the worker), where code is text.
    ("raw HTML nested too deep in Markdown", "body_markdown", "<div>\n" * (MAX_DEPTH + 1), "depth"),
]


@pytest.mark.parametrize(("field", "body", "limit"), [c[1:] for c in BEYOND], ids=[c[0] for c in BEYOND])
async def test_a_body_beyond_a_limit_is_a_400_naming_the_field_and_the_limit(
    client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any, field: str, body: str, limit: str
) -> None:
    other = "body_markdown" if field == "body_html" else "body_html"
    started = time.process_time()
    response = await client.post("/api/v1/commentaries", json=commentary(**{field: body, other: None}), headers=auth)
    error = assert_error(response, 400, field)
    assert f"({limit})" in error["detail"], error
    # Refused before the sanitiser's or markdown-it's worst case: well under a second.
    assert time.process_time() - started < 5


def test_real_articles_are_far_inside_the_limits() -> None:
    """Every sample article passes with room to spare, and so does a long article of the
    usual shapes (headings, lists, tables, links), sloppy HTML with unclosed <p>, <li>
    and <td> included."""
    records = [json.loads(line) for line in (DATA / "commentaries.jsonl").read_text().splitlines()]
    markdown = [p.read_text() for p in sorted((DATA / "markdown").glob("*.md"))]
    assert len(records) >= 40 and markdown
    for record in records:
        if record.get("body_html"):
            check_html(record["body_html"], "body_html")
        else:
            check_markdown(record["body_markdown"], "body_markdown")
    for source in markdown:
        check_markdown(source, "body_markdown")
    section = (
        "<h2>Section</h2><p>Some <a href='https://example.org/x'>linked</a> text with <em>emphasis</em>.</p>"
        "<ul><li>one</li><li>two <code>x</code></li></ul><table><tr><td>1</td><td>2</td></tr></table>"
    )
    check_html(section * 3_000, "body_html")  # 600 KB, 54,000 tags
    check_html("<p>a" * 20_000 + "<ul>" + "<li><p>b" * 5_000 + "</ul><table>" + "<tr><td>a<td>b" * 5_000, "body_html")
    check_markdown(
        "## Section\n\nSome [link](https://example.org/x) *and* **more**.\n\n- a\n- b\n\n" * 2_000, "body_markdown"
    )
    check_markdown("```java\n" + "List<String> xs = new ArrayList<String>();\n" * 500 + "```\n", "body_markdown")


@pytest.mark.parametrize("workers", [0, 1])
async def test_the_import_reports_a_body_beyond_a_limit_per_record(tmp_path: Path, workers: int) -> None:
    good = commentary(slug="fine", body_markdown="A paragraph.")
    deep = commentary(slug="deep", body_markdown=None, body_html="<div>" * 88_000)
    brackets = commentary(slug="brackets", body_markdown="![" * 440_000)
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (good, deep, brackets)))
    store = SqliteStore(str(tmp_path / "db.sqlite"))
    await store.open()
    try:
        await store.put_category(
            "regional-security", CategoryIn(names={"en": "Regional security"}), now=datetime.now(UTC)
        )
        result = await import_files(Service(store, base_url="http://127.0.0.1"), [path], workers=workers)
        assert (result.imported, result.failed) == (1, 2), result.failures
        failures = sorted(result.failures)
        assert "in.jsonl:2: body_html" in failures[0] and "(depth)" in failures[0]
        assert "in.jsonl:3: body_markdown" in failures[1] and "(brackets)" in failures[1]
        assert (await store.get_commentary_by_slug("en", "fine", public_only=False)).slug == "fine"
    finally:
        await store.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_markdown_render_past_its_time_is_killed_and_its_worker_replaced() -> None:
    """A 422 naming the field; the worker that ran it is gone, not left rendering; the next
    render works."""
    renderer = BodyRenderer(workers=1, timeout=0.2, inline_below=0)
    renderer.start()
    try:
        assert await renderer.render(None, "*warm*") == "<p><em>warm</em></p>"  # the worker started
        (worker,) = multiprocessing.active_children()
        # Within every limit, 550 KB: about 1.5 s of work.
        slow = (
            "## A heading\n\nPlain words, with `code` and https://example.org.\n\n- one\n- two\n\n> quoted\n\n" * 5_000
        )
        with pytest.raises(UnprocessableError) as refused:
            await renderer.render(None, slow)
        assert refused.value.extra["field"] == "body_markdown"
        deadline = time.monotonic() + 10
        while _alive(worker.pid or 0) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not _alive(worker.pid or 0)
        assert await renderer.render(None, "again") == "<p>again</p>"
        # A body the worker refuses comes back as the same 400 as one refused here.
        with pytest.raises(InvalidInputError) as deep:
            await renderer.render(None, "<div>\n" * (MAX_DEPTH + 1))
        assert deep.value.extra["field"] == "body_markdown" and "(depth)" in deep.value.message
    finally:
        await renderer.close()
    assert not multiprocessing.active_children()


async def test_renders_beyond_the_queue_bound_are_refused_busy() -> None:
    """A 503 for a render that would wait behind ``max_waiting`` others, not an unbounded queue."""
    renderer = BodyRenderer(workers=1, timeout=30, max_waiting=1, inline_below=0)
    renderer.start()
    try:
        slow = asyncio.create_task(renderer.render(None, "## A heading\n\nPlain `words`.\n\n- one\n\n" * 5_000))
        await asyncio.sleep(0.05)
        with pytest.raises(BusyError):
            await renderer.render(None, "waits")
        assert (await slow).startswith("<h2>A heading</h2>")
        assert await renderer.render(None, "now") == "<p>now</p>"
    finally:
        await renderer.close()


BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


async def test_bidi_controls_never_reach_the_page_or_the_feeds(
    client: AsyncTestClient[Litestar], auth: dict[str, str], categories: Any
) -> None:
    """The review's finding: an override in a title or a name was shown on pages. Legitimate
    direction survives: the marks in a title, and dir= on body elements."""
    body = commentary(
        title="Report\u202eexe.txt \u200fשלום\u200f",
        authors=[{"name": "Anna\u2067 Kovalenko\u2069", "affiliation": "Vistula\u202b Centre\u202c"}],
        tags=["bor\u202eder"],
        source={"name": "Wire\u202d service"},
        body_markdown=None,
        body_html='<p dir="rtl">שלום \u202eworld</p><p dir="sideways">x</p>',
    )
    response = await client.post("/api/v1/commentaries", json=body, headers=auth)
    assert response.status_code == 201, response.text
    item = response.json()
    assert item["title"] == "Reportexe.txt \u200fשלום\u200f"
    assert item["authors"] == [{"name": "Anna Kovalenko", "affiliation": "Vistula Centre"}]
    assert item["tags"] == ["border"]
    assert item["body_html"] == '<p dir="rtl">שלום world</p><p>x</p>'
    for path in (
        f"/commentaries/{item['id']}",
        "/feed.rss",
        "/feed.atom",
        "/feed.json",
        f"/api/v1/commentaries/{item['id']}",
    ):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert "Reportexe.txt" in page.text or "Reportexe.txt" in json.dumps(page.json()), path
        assert not set(BIDI) & set(page.text), path
