"""Every embed example the manual and the README show, pasted into a partner's page as a
partner would, on the demo data: Debian's chromium, headless, with feedsvc on one
127.0.0.1 port and the partner's site on another (another origin).

The snippets are read from docs/partners.md and README.md (every ```html block), so the
documentation cannot drift from what works. Each goes into a 300px sidebar of a page with
its own font and colours, at a desktop and a phone width: commentaries must be visible, an
iframe must be sized to its content (no inner scroll bar, no overflow of the sidebar), and
the script form must take the page's font and colours. Screenshots go to
tests/output/embed-docs/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import lxml.html
import pytest

from tests.live import LiveServer
from tests.test_browser import Browser, Tab, chromium_path

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED = [ROOT / "docs" / "partners.md", ROOT / "README.md"]
DOCUMENTED_BASE = "http://127.0.0.1:8000"
"""The address the examples name: `make run`'s."""
OUTPUT = Path(__file__).parent / "output" / "embed-docs"
WIDTHS = {"desktop": 1280, "phone": 390}
SIDEBAR = 300
PARTNER_FONT = "Georgia, serif"
PARTNER_COLOUR = "rgb(59, 47, 47)"


def documented_examples() -> list[tuple[str, str]]:
    """(name, snippet) for every ```html block of the documents."""
    out = []
    for path in DOCUMENTED:
        blocks = re.findall(r"^```html\n(.*?)^```", path.read_text(), flags=re.M | re.S)
        out += [(f"{path.stem}-{n}", block) for n, block in enumerate(blocks, start=1)]
    return out


EXAMPLES = documented_examples()


def partner_page(snippet: str) -> bytes:
    """A partner's article page: its own font and colours, the snippet in a 300px sidebar."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>A partner's page</title></head>
<body style="margin:0;font-family:{PARTNER_FONT};font-size:17px;color:{PARTNER_COLOUR};background:#fbf7ef">
<div style="display:flex;flex-wrap:wrap;gap:24px;padding:16px">
  <main style="flex:1 1 320px;min-width:0">
    <h1 style="margin-top:0">Regional news, our way</h1>
    <p>A partner's own article text, in the partner's own serif font and warm colours. The
    commentaries in the sidebar should look as if they belonged here.</p>
  </main>
  <aside id="sidebar" style="flex:0 0 {SIDEBAR}px;width:{SIDEBAR}px;max-width:100%;min-width:0">
    <h2 style="font-size:18px;margin-top:0">Latest analysis</h2>
{snippet}
  </aside>
</div>
</body></html>
""".encode()


class PartnerSite:
    """The partner's static site on a second 127.0.0.1 port: one page per example."""

    def __init__(self, feedsvc: str) -> None:
        pages = {
            f"/{name}.html": partner_page(snippet.replace(DOCUMENTED_BASE, feedsvc)) for name, snippet in EXAMPLES
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="partner-site", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("live"), media_dir=ROOT / "data" / "media") as server:
        server.load_demo()
        yield server


@pytest.fixture(scope="module")
def partner(live: LiveServer) -> Iterator[PartnerSite]:
    site = PartnerSite(live.url)
    yield site
    site.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = Browser(chromium_path(), tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def test_the_documents_show_both_forms() -> None:
    snippets = [s for _, s in EXAMPLES]
    assert any("<iframe" in s for s in snippets) and any("data-feedsvc-embed" in s for s in snippets)
    assert any("data-thumbnails" in s for s in snippets) and any("--feedsvc-accent" in s for s in snippets)
    assert all(DOCUMENTED_BASE in s for s in snippets)


FRAME = "document.querySelector('#sidebar iframe')"
SIDEBAR_BOX = "document.querySelector('#sidebar').getBoundingClientRect()"


def check_iframe(tab: Tab, live: LiveServer) -> None:
    """Items shown, the iframe as tall as its content (resized from the height written in
    the snippet), nothing scrolling inside it, nothing wider than the sidebar."""
    frame = tab.frame(f"{live.url}/embed")
    frame.poll("document.readyState === 'complete' && document.querySelectorAll('.feedsvc-item').length > 0")
    written = int(tab.eval(f"{FRAME}.getAttribute('height')"))
    tab.poll(f"{FRAME}.style.height !== ''")
    # The frame's content height, once it stops changing (a late image can add a few pixels).
    tab.poll(
        f"Math.abs({FRAME}.getBoundingClientRect().height - "
        f"{frame.eval('Math.ceil(document.documentElement.getBoundingClientRect().height)')}) <= 1"
    )
    content = frame.eval("Math.ceil(document.documentElement.getBoundingClientRect().height)")
    shown = tab.eval(f"{FRAME}.getBoundingClientRect().height")
    assert abs(shown - content) <= 1 and content != written, (shown, content, written)
    inner = frame.eval(
        "({sh: document.documentElement.scrollHeight, ih: window.innerHeight,"
        " sw: document.documentElement.scrollWidth, iw: window.innerWidth})"
    )
    assert inner["sh"] <= inner["ih"] and inner["sw"] <= inner["iw"], inner
    box = tab.eval(f"(() => {{ const f = {FRAME}.getBoundingClientRect(), s = {SIDEBAR_BOX};"
                   " return {f: [f.left, f.right], s: [s.left, s.right]}; })()")
    assert box["s"][0] <= box["f"][0] and box["f"][1] <= box["s"][1] + 0.5, box
    titles = frame.eval("Array.from(document.querySelectorAll('.feedsvc-title')).map(a => a.textContent)")
    assert all(titles)


def check_script(tab: Tab, snippet: str) -> None:
    """Items shown in the partner's font and colours (or the accent the example sets), no
    overflow of the sidebar, thumbnails loaded where asked for."""
    count = tab.eval("document.querySelectorAll('[data-feedsvc-embed]').length")
    assert count == len(re.findall(r"<div [^>]*data-feedsvc-embed", snippet))
    tab.poll("Array.from(document.querySelectorAll('[data-feedsvc-embed]'))"
             ".every(e => e.getAttribute('data-feedsvc-ready') === 'done')")
    for n in range(count):
        widget = f"document.querySelectorAll('[data-feedsvc-embed]')[{n}]"
        seen = tab.eval(f"""(() => {{
          const w = {widget}, s = document.querySelector('#sidebar');
          const title = w.querySelector('.feedsvc-title'), summary = w.querySelector('.feedsvc-summary');
          const style = e => getComputedStyle(e);
          const wb = w.getBoundingClientRect(), sb = s.getBoundingClientRect();
          return {{
            items: w.querySelectorAll('.feedsvc-item').length,
            titleFont: style(title).fontFamily, summaryFont: style(summary).fontFamily,
            sidebarFont: style(s).fontFamily, titleColour: style(title).color,
            summaryColour: style(summary).color, sidebarColour: style(s).color,
            widgetBox: [wb.left, wb.right], sidebarBox: [sb.left, sb.right],
            scroll: [w.scrollWidth, w.clientWidth],
            thumbs: Array.from(w.querySelectorAll('img.feedsvc-thumb')).map(i => ({{
              loaded: i.complete && i.naturalWidth > 0, alt: i.alt,
              right: i.getBoundingClientRect().right}})),
          }};
        }})()""")
        assert seen["items"] > 0, seen
        assert seen["titleFont"] == seen["summaryFont"] == seen["sidebarFont"], seen
        assert seen["summaryColour"] == seen["sidebarColour"] == PARTNER_COLOUR, seen
        accent = re.search(r"--feedsvc-accent:\s*(#[0-9a-f]{6})", snippet)
        if accent:
            r, g, b = (int(accent.group(1)[i:i + 2], 16) for i in (1, 3, 5))
            assert seen["titleColour"] == f"rgb({r}, {g}, {b})", seen
        else:
            assert seen["titleColour"] == PARTNER_COLOUR, seen
        assert seen["sidebarBox"][0] <= seen["widgetBox"][0] and seen["widgetBox"][1] <= seen["sidebarBox"][1] + 0.5
        assert seen["scroll"][0] <= seen["scroll"][1], seen
        if "data-thumbnails" in snippet:
            tab.poll(f"Array.from({widget}.querySelectorAll('img.feedsvc-thumb'))"
                     ".every(i => i.complete && i.naturalWidth > 0)")
            assert seen["thumbs"] and all(t["alt"] for t in seen["thumbs"]), seen
            assert all(t["right"] <= seen["sidebarBox"][1] + 0.5 for t in seen["thumbs"]), seen
        else:
            assert seen["thumbs"] == [], seen


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize(("name", "snippet"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_documented_example_on_a_partner_page(
    name: str, snippet: str, width: str, browser: Browser, live: LiveServer, partner: PartnerSite
) -> None:
    tab = Tab(browser, width=WIDTHS[width], height=1000)
    try:
        tab.goto(f"{partner.url}/{name}.html")
        if "<iframe" in snippet:
            check_iframe(tab, live)
        if "data-feedsvc-embed" in snippet:
            check_script(tab, snippet)
        assert [p for p in tab.problems() if "/favicon.ico" not in p] == []
        tab.screenshot(OUTPUT / f"{name}-{width}.png")
    finally:
        tab.close()


def test_the_documented_empty_state_is_what_the_demo_says(live: LiveServer) -> None:
    """docs/partners.md quotes the empty state of a filter that matches nothing on the demo
    data; the embed says exactly that."""
    text = (ROOT / "docs" / "partners.md").read_text()
    section = text[text.index("## When nothing matches"):]
    query = re.search(r"`(category=[^`]+)`", section)
    assert query
    quoted = [line.removeprefix("> ").strip() for line in section.splitlines() if line.startswith("> ")]
    with live.writer() as http:
        page = http.get(f"/embed?{query.group(1)}")
    assert page.status_code == 200
    said = [p.text_content() for p in lxml.html.fromstring(page.text).xpath("//p[@class='feedsvc-empty']")]
    assert said == quoted
