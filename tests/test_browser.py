"""Both embeds in a real browser: Debian's chromium, headless, driven over the Chrome
DevTools Protocol (a websocket; no browser download, no Playwright).

feedsvc runs under uvicorn on one 127.0.0.1 port with data seeded over HTTP, including a
commentary whose title, summary and body carry script, event-handler and ``javascript:``
payloads; a partner page on a second port embeds the iframe (``/embed``) and the script
(``/embed.js``). The payloads must neither run nor show as markup, in either embed.
Screenshots of each theme, and of pages in Belarusian and Russian, go to tests/output/ (and
/tmp/feedsvc-screens/).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from feedsvc.render.embed import iframe
from feedsvc.render.messages import MESSAGES, Messages
from feedsvc.service import Service
from tests.conftest import CATEGORIES, commentary, page_url
from tests.live import LiveServer

pytestmark = pytest.mark.slow

OUTPUT = Path(__file__).parent / "output"
SCREENS = Path("/tmp/feedsvc-screens")
IN_CI = os.environ.get("CI", "").lower() == "true"

HOSTILE_TITLE = (
    '<script>window.__pwned=1</script> <img src=x onerror="window.__pwned=1"> '
    '" onmouseover="window.__pwned=1" Hostile title'
)
HOSTILE_SUMMARY = '<img src=x onerror="window.__pwned=1"> <svg onload="window.__pwned=1"> summary'
HOSTILE_BODY = (
    '<p>Body <script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'
    '<a href="javascript:window.__pwned=1">click</a></p>'
)
SEED = [
    ("Border tensions ease after talks", "regional-security", "en", "improved",
     "Both sides agreed to reopen two crossings and to meet again within a month."),
    ("Вонкавая палітыка: тыдзень перамоваў", "foreign-policy", "be", "unchanged",
     "Агляд дыпламатычных кантактаў за тыдзень."),
    ("Санкции и транзит: что изменилось", "foreign-policy", "ru", "worsened",
     "Новые ограничения затронули транзит через регион."),
    ("Grain corridor: prices after the deal", "economy", "en", None,
     "Export volumes recovered faster than expected."),
]


# --- the browser --------------------------------------------------------------------------


def chromium_path() -> str:
    """Debian's chromium, installed with apt-get when missing. Skips with the reason if it
    cannot be installed, except in CI, where the browser tests must run."""
    path = shutil.which("chromium")
    if path:
        return path
    reason = ""
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=300, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
            check=True,
            capture_output=True,
            timeout=600,
            env=env,
        )
    except (OSError, subprocess.SubprocessError) as e:
        stderr = getattr(e, "stderr", b"") or b""
        reason = f"{e} {stderr.decode(errors='replace')[-500:]}"
    path = shutil.which("chromium")
    if path:
        return path
    message = f"chromium is not installed and `apt-get install chromium` failed: {reason}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


class CDPError(Exception):
    pass


class Browser:
    """Headless chromium and one websocket to it; commands are answered in order, and the
    events that arrive meanwhile are kept for the tests to look through."""

    def __init__(self, executable: str, profile: Path, *extra_args: str) -> None:
        self.proc = subprocess.Popen(
            [
                executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--no-default-browser-check", "--hide-scrollbars", "--force-color-profile=srgb",
                f"--user-data-dir={profile}", "--remote-debugging-port=0", *extra_args, "about:blank",
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._stack = contextlib.ExitStack()
        try:
            # Entered as a context manager: the form every websockets version accepts quietly.
            self.ws: ClientConnection = self._stack.enter_context(
                connect(self._devtools_url(), max_size=None, open_timeout=10)
            )
        except BaseException:
            self.close()
            raise
        self.events: list[dict[str, Any]] = []
        self._next_id = 0

    def _devtools_url(self) -> str:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 20
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline().decode(errors="replace")
            if not line and self.proc.poll() is not None:
                break
            seen.append(line)
            if line.startswith("DevTools listening on "):
                # Keep draining stderr so that chromium never blocks on a full pipe.
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()
                return line.removeprefix("DevTools listening on ").strip()
        self.close()
        raise RuntimeError("chromium did not start: " + "".join(seen[-20:]))

    def send(self, method: str, session: str | None = None, **params: Any) -> int:
        """Send a command without waiting for its answer; returns its id."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        return self._next_id

    def call(self, method: str, session: str | None = None, timeout: float = 15, **params: Any) -> dict[str, Any]:
        msg_id = self.send(method, session, **params)
        deadline = time.monotonic() + timeout
        while True:
            data = self._receive(deadline, method)
            if data.get("id") == msg_id:
                if "error" in data:
                    raise CDPError(f"{method}: {data['error']}")
                result: dict[str, Any] = data.get("result", {})
                return result

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no answer to {waiting_for}")
        data: dict[str, Any] = json.loads(self.ws.recv(timeout=remaining))
        if "method" in data:
            self.events.append(data)
            if data["method"] == "Target.attachedToTarget":
                # An out-of-process frame (chromium isolates sandboxed iframes) waits for us:
                # listen to it from its first line, then let it run.
                child = data["params"]["sessionId"]
                for method in Session.DOMAINS:
                    self.send(f"{method}.enable", child)
                self.send("Target.setAutoAttach", child, autoAttach=True, waitForDebuggerOnStart=True, flatten=True)
                self.send("Runtime.runIfWaitingForDebugger", child)
        return data

    def wait_event(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15, what: str = "event"
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for event in self.events[checked:]:
                if predicate(event):
                    return event
            checked = len(self.events)
            self._receive(deadline, what)

    def close(self) -> None:
        try:
            if hasattr(self, "_stack"):
                self._stack.close()
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=10)
            if self.proc.stderr is not None:
                self.proc.stderr.close()


class Session:
    """A flat CDP session: a page, or a frame chromium runs in a process of its own."""

    DOMAINS = ("Page", "Runtime", "Log")

    def __init__(self, browser: Browser, session: str, context: int | None = None) -> None:
        self.browser = browser
        self.session = session
        self.context = context
        """An execution context to evaluate in (a same-process frame's main world)."""

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.call(method, self.session, **params)

    def events(self, method: str) -> list[dict[str, Any]]:
        return [e for e in self.browser.events if e.get("sessionId") == self.session and e["method"] == method]

    def eval(self, expression: str) -> Any:
        params: dict[str, Any] = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        if self.context is not None:
            params["contextId"] = self.context
        result = self.call("Runtime.evaluate", **params)
        if "exceptionDetails" in result:
            raise CDPError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def poll(self, expression: str, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"never true: {expression}")
            time.sleep(0.05)

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions and error log entries (CSP
        violations are reported there)."""
        out = [
            " ".join(str(a.get("value", a.get("description", ""))) for a in e["params"]["args"])
            for e in self.events("Runtime.consoleAPICalled")
            if e["params"]["type"] in ("error", "warning", "assert")
        ]
        out += [str(e["params"]["exceptionDetails"]) for e in self.events("Runtime.exceptionThrown")]
        out += [
            f"{e['params']['entry']['source']}: {e['params']['entry']['text']} ({e['params']['entry'].get('url', '')})"
            for e in self.events("Log.entryAdded")
            if e["params"]["entry"]["level"] == "error"
            or (
                e["params"]["entry"]["level"] == "warning"
                and e["params"]["entry"]["source"] in ("security", "javascript")
            )
        ]
        return out


class Tab(Session):
    """A new page target."""

    def __init__(self, browser: Browser, width: int = 1280, height: int = 1000) -> None:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        super().__init__(browser, browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"])
        self.target = target
        for domain in self.DOMAINS:
            self.call(f"{domain}.enable")
        self.call("Target.setAutoAttach", autoAttach=True, waitForDebuggerOnStart=True, flatten=True)
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.browser.wait_event(
            lambda e: e.get("sessionId") == self.session and e["method"] == "Page.loadEventFired", what=f"load of {url}"
        )

    def frame(self, url_prefix: str) -> Session:
        """The (first) iframe whose URL starts with ``url_prefix``, wherever chromium runs it."""
        deadline = time.monotonic() + 10
        while True:
            for event in self.events("Target.attachedToTarget"):
                if event["params"]["targetInfo"]["type"] == "iframe":
                    # Its URL is not known yet when it attaches: ask the frame itself.
                    frame = Session(self.browser, event["params"]["sessionId"])
                    if str(frame.eval("location.href")).startswith(url_prefix):
                        return frame
            tree = self.call("Page.getFrameTree")["frameTree"]
            for child in tree.get("childFrames", []):
                if child["frame"]["url"].startswith(url_prefix):

                    def main_world(e: dict[str, Any], frame_id: str = child["frame"]["id"]) -> bool:
                        aux = (
                            e["params"]["context"].get("auxData", {})
                            if e["method"] == "Runtime.executionContextCreated"
                            else {}
                        )
                        return (
                            e.get("sessionId") == self.session
                            and aux.get("frameId") == frame_id
                            and bool(aux.get("isDefault"))
                        )

                    event = self.browser.wait_event(main_world, what="the iframe's execution context")
                    return Session(self.browser, self.session, event["params"]["context"]["id"])
            if time.monotonic() > deadline:
                raise AssertionError(f"no frame loaded {url_prefix}: {tree}")
            time.sleep(0.05)

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.browser.call("Target.closeTarget", targetId=self.target)


# --- the servers --------------------------------------------------------------------------


def partner_page(feedsvc: str, theme: str) -> bytes:
    """A partner's page as our snippets tell partners to write it: the iframe, and the
    script with two configured elements (one naming the feedsvc explicitly). It has no
    CSP of its own, so anything our script let through would run."""
    frame = iframe(f"{feedsvc}/embed?limit=5&theme={theme}", width="100%", height=640, title="Latest commentaries")
    background = "#f3efe6" if theme == "light" else "#20242c"
    colour = "#222" if theme == "light" else "#ddd"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Partner site ({theme})</title></head>
<body style="margin:0;padding:16px 24px;font-family:Georgia,serif;background:{background};color:{colour}">
<h1 style="margin:0 0 12px">A partner's page — {theme} theme</h1>
<div style="display:flex;gap:24px;align-items:flex-start">
  <section style="flex:1"><h2 style="font-size:18px">iframe: /embed</h2>{frame}</section>
  <section style="flex:1"><h2 style="font-size:18px">script: /embed.js</h2>
    <div id="widget" data-feedsvc-embed data-limit="5" data-theme="{theme}"></div>
    <h2 style="font-size:18px">script, foreign policy in Russian</h2>
    <div id="filtered" data-feedsvc-embed data-feedsvc-src="{feedsvc}" data-category="foreign-policy"
         data-lang="ru" data-limit="2" data-theme="{theme}"></div>
  </section>
</div>
<script src="{feedsvc}/embed.js" async></script>
</body></html>
""".encode()


class PartnerSite:
    """A tiny static site on a second 127.0.0.1 port."""

    def __init__(self, feedsvc: str) -> None:
        pages = {f"/{theme}.html": partner_page(feedsvc, theme) for theme in ("light", "dark")}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path)
                if body is None:
                    self.send_response(204 if self.path == "/favicon.ico" else 404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

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


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, list[dict[str, Any]]]]:
    """feedsvc serving seeded data: the commentaries of SEED, then the hostile one (newest)."""
    server = LiveServer(tmp_path_factory.mktemp("live"))
    server.start()
    try:
        service: Service = server.app.state.service
        token, _ = server.run(service.create_token("browser-tests", ["write"]))
        auth = {"Authorization": f"Bearer {token}"}
        published = []
        with httpx.Client(base_url=server.url, headers=auth, timeout=10) as http:
            for slug, body in CATEGORIES.items():
                assert http.put(f"/api/v1/categories/{slug}", json=body).status_code in (200, 201)
            for day, (title, category, lang, trend, summary) in enumerate(SEED, start=1):
                r = http.post("/api/v1/commentaries", json=commentary(
                    title=title, category=category, lang=lang, trend=trend, summary=summary,
                    published_at=f"2026-03-0{day}T09:00:00+00:00",
                ))
                assert r.status_code == 201, r.text
                published.append(r.json())
            refused = http.post("/api/v1/commentaries", json=commentary(canonical_url="javascript:window.__pwned=1"))
            assert refused.status_code == 400, refused.text
            r = http.post("/api/v1/commentaries", json=commentary(
                title=HOSTILE_TITLE, summary=HOSTILE_SUMMARY, body_html=HOSTILE_BODY, body_markdown=None,
                trend="worsened", published_at="2026-03-09T09:00:00+00:00",
            ))
            assert r.status_code == 201, r.text
            published.append(r.json())
        yield server, published
    finally:
        server.stop()


@pytest.fixture(scope="module")
def partner(live: tuple[LiveServer, list[dict[str, Any]]]) -> Iterator[PartnerSite]:
    site = PartnerSite(live[0].url)
    yield site
    site.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = Browser(chromium_path(), tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


# --- the test -----------------------------------------------------------------------------

WIDGET_ITEMS = "Array.from(document.querySelectorAll('#widget .feedsvc-item'))"
ITEM_DATA = """.map(li => {
  const a = li.querySelector('.feedsvc-title');
  return {title: a.textContent, href: a.getAttribute('href'), target: a.getAttribute('target'),
          rel: a.getAttribute('rel'), text: li.innerText, lang: li.getAttribute('lang')};
})"""
MARKUP = (
    "document.querySelectorAll('.feedsvc-item script, .feedsvc-item img, .feedsvc-item svg, .feedsvc-item iframe')"
    ".length"
)
HANDLER_ATTRS = (
    "Array.from(document.querySelectorAll('.feedsvc-item *'))"
    ".flatMap(el => el.getAttributeNames().filter(n => n.startsWith('on')))"
)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_partner_page_embeds(
    theme: str, browser: Browser, live: tuple[LiveServer, list[dict[str, Any]]], partner: PartnerSite
) -> None:
    server, published = live
    newest_first = list(reversed(published))
    expected_titles = [c["title"] for c in newest_first[:5]]
    hostile = newest_first[0]
    assert hostile["title"] == " ".join(HOSTILE_TITLE.split())

    tab = Tab(browser)
    tab.goto(f"{partner.url}/{theme}.html")

    # The script embed: rendered into the partner's own DOM, text only.
    tab.poll("document.querySelector('#widget').getAttribute('data-feedsvc-ready') === 'done'")
    tab.poll("document.querySelector('#filtered').getAttribute('data-feedsvc-ready') === 'done'")
    widget = tab.eval(WIDGET_ITEMS + ITEM_DATA)
    assert [i["title"] for i in widget] == expected_titles
    for item, c in zip(widget, newest_first, strict=False):
        assert item["href"] == c["url"] == page_url(c, server.url)
        assert item["target"] == "_top" and item["rel"] == "noopener"
        assert item["lang"] == c["lang"]
    assert HOSTILE_TITLE.split()[0] in widget[0]["text"]  # the payload shows as visible text
    assert hostile["title"] in widget[0]["text"] and "↘ worsened" in widget[0]["text"]
    assert "Border tensions ease after talks" in tab.eval("document.querySelector('#widget').innerText")
    assert tab.eval(f"document.querySelector('#widget').classList.contains('feedsvc-theme-{theme}')")
    filtered = tab.eval("Array.from(document.querySelectorAll('#filtered .feedsvc-item'))" + ITEM_DATA)
    assert [i["title"] for i in filtered] == ["Санкции и транзит: что изменилось"]
    assert "Внешняя политика" in filtered[0]["text"] and "↘ ухудшение" in filtered[0]["text"]
    assert "3 марта 2026" in filtered[0]["text"]  # the date as the Russian iframe writes it
    assert "9 March 2026" in widget[0]["text"]
    assert tab.eval(MARKUP) == 0 and tab.eval(HANDLER_ATTRS) == []
    assert tab.eval("document.querySelectorAll('style#feedsvc-embed-style').length") == 1

    # The iframe: its own document on feedsvc's origin.
    frame = tab.frame(f"{server.url}/embed")
    frame.poll("document.readyState === 'complete' && document.querySelectorAll('.feedsvc-item').length > 0")
    framed = frame.eval("Array.from(document.querySelectorAll('.feedsvc-item'))" + ITEM_DATA)
    assert [i["title"] for i in framed] == expected_titles
    assert [i["href"] for i in framed] == [c["url"] for c in newest_first[:5]]
    assert all(i["target"] == "_top" and i["rel"] == "noopener" for i in framed)
    assert hostile["title"] in framed[0]["text"]
    assert frame.eval(MARKUP) == 0 and frame.eval(HANDLER_ATTRS) == []
    assert frame.eval("document.documentElement.className") == f"theme-{theme}"

    # Give any payload that slipped through a moment to fire (image errors are async).
    time.sleep(0.3)
    assert tab.eval("typeof window.__pwned") == "undefined"
    assert frame.eval("typeof window.__pwned") == "undefined"
    assert tab.problems() == []
    if frame.session != tab.session:
        assert frame.problems() == []

    for folder in (OUTPUT, SCREENS):
        tab.screenshot(folder / f"embed-{theme}.png")

    if theme == "light":
        # A click in the sandboxed iframe opens the commentary in the top window.
        rect = frame.eval(
            "(() => { const r = document.querySelector('.feedsvc-title').getBoundingClientRect();"
            " return {x: r.left + 8, y: r.top + r.height / 2}; })()"
        )
        offset = tab.eval(
            "(() => { const r = document.querySelector('iframe').getBoundingClientRect();"
            " return {x: r.left, y: r.top}; })()"
        )
        x, y = rect["x"] + offset["x"], rect["y"] + offset["y"]
        for kind in ("mousePressed", "mouseReleased"):
            tab.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        navigated = browser.wait_event(
            lambda e: e.get("sessionId") == tab.session and e["method"] == "Page.frameNavigated"
            and "parentId" not in e["params"]["frame"] and e["params"]["frame"]["url"] == hostile["url"],
            what="the top window to open the commentary",
        )
        assert navigated["params"]["frame"]["url"] == hostile["url"]
        tab.poll("document.readyState === 'complete'")
        assert tab.eval("document.querySelector('h1').textContent") == hostile["title"]
        assert tab.eval("typeof window.__pwned") == "undefined"
        assert (
            tab.eval(
                "document.querySelectorAll('article script, article img[onerror], article [href^=\"javascript\"]')"
                ".length"
            )
            == 0
        )
    tab.close()


@pytest.mark.parametrize("lang", ["be", "ru"])
def test_pages_read_in_their_language(
    lang: str, browser: Browser, live: tuple[LiveServer, list[dict[str, Any]]]
) -> None:
    """A Belarusian and a Russian commentary's page, and the index in each language, as a
    reader sees them: labels, dates and language names in the page's language, no English
    label and no ISO date left (the labels compared with the message catalogue)."""
    server, published = live
    item = next(c for c in published if c["lang"] == lang)
    m = Messages(lang)
    english = [
        texts["en"] for texts in MESSAGES.values() if texts["en"] != texts[lang] and "{" not in texts["en"]
    ]
    tab = Tab(browser)
    for url, name in [(item["url"], f"commentary-{lang}"), (f"{server.url}/?lang={lang}", f"index-{lang}")]:
        tab.goto(url)
        tab.poll("document.readyState === 'complete'")
        assert tab.eval("document.documentElement.lang") == lang
        # What a reader sees, less the snippets to copy (code) and format names ("JSON Feed").
        text = tab.eval(
            "(() => { const b = document.body.cloneNode(true);"
            " b.querySelectorAll('pre').forEach(p => p.remove()); return b.textContent; })()"
        ).replace("JSON Feed", "")
        for label in english:
            assert label not in text, (url, label)
        assert not re.search(r"\d{4}-\d{2}-\d{2}", text), url
        assert m("follow") in text or m("latest") in text
        # A page opened in the top window also makes the browser ask for /favicon.ico, which
        # feedsvc does not serve (when it asks varies from run to run); nothing else may fail.
        assert [p for p in tab.problems() if "/favicon.ico" not in p] == []
        for folder in (OUTPUT, SCREENS):
            tab.screenshot(folder / f"page-{name}.png")
    tab.close()
