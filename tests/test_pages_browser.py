"""Every page type, in English, Belarusian and Russian, as a reader's browser shows it.

``feedsvc demo`` loads the sample data into a fresh SQLite file and ``feedsvc serve`` serves
it on a free port with no public URL, so every link points at the address served, as
`make run` does. Debian's chromium, driven over the DevTools protocol (tests/test_browser.py),
opens each page on a desktop and on a 390-pixel phone: the page speaks its language, logs
no error, and axe-core (npm, tests/node/axe, injected through the protocol) finds no
violation. Screenshots go to tests/output/pages/. Lighthouse (npm, tests/node/lighthouse,
pointed at the same chromium) scores home, a commentary, a category and a digest at least
95 for accessibility, best practices and SEO; its reports go there too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import lxml.html
import pytest

from tests.test_browser import OUTPUT, Browser, Tab, chromium_path
from tests.test_lifecycle import NO_RATE_LIMITS, free_port, wait_until_ready

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
NODE = Path(__file__).parent / "node"
SHOTS = OUTPUT / "pages"
LANGS = ("en", "be", "ru")
LIGHTHOUSE_PAGES = ("home", "commentary", "category", "digest")
LIGHTHOUSE_MIN = 0.95
VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}


def npm_tool(name: str) -> Path:
    """tests/node/NAME with its locked packages installed (``npm ci`` on a fresh clone)."""
    folder = NODE / name
    if not (folder / "node_modules").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed for the page checks (Debian: apt-get install npm)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(folder)], check=True, timeout=600)
    return folder / "node_modules"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo, served as `make run` serves it; its base URL."""
    tmp = tmp_path_factory.mktemp("pages")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env.update({
        "FEEDSVC_DATABASE_URL": f"sqlite:///{tmp / 'feedsvc.db'}", "FEEDSVC_LOG_FORMAT": "json",
        "FEEDSVC_MEDIA_DIR": str(REPO / "data" / "media"),
        "FEEDSVC_SITE_LINKS": "About=/en/categories/foreign-policy",
        "FEEDSVC_FOOTER_NOTE": "© 2026 Demo Institute",
        **NO_RATE_LIMITS,
    })
    subprocess.run(
        [sys.executable, "-m", "feedsvc", "demo", "--data", str(REPO / "data")],
        env=env, cwd=tmp, check=True, capture_output=True, timeout=300,
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "serve", "--port", str(port)],
            env={**env, "FEEDSVC_PORT": str(port)}, cwd=tmp, stdout=subprocess.DEVNULL, stderr=sink,
        )
    try:
        wait_until_ready(base, proc, log)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def page_urls(base: str) -> dict[str, dict[str, str]]:
    """Per language, one URL of every page type, found by following the API as a reader
    would follow links."""
    out: dict[str, dict[str, str]] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for lang in LANGS:
            items = client.get("/api/v1/commentaries", params={"lang": lang, "limit": 50}).json()["items"]
            item = next(c for c in items if c["tags"] and c["authors"] and c["image"])
            published = item["published_at"]
            word = max(item["title"].split(), key=len).strip("«»:,.?!—")
            digest = client.get("/api/v1/digests", params={"lang": lang, "limit": 1}).json()["items"][0]
            page = lxml.html.fromstring(client.get(item["url"]).content)
            [author] = page.xpath("//article//a[contains(@href, '/authors/')][1]/@href")[:1]
            out[lang] = {
                "home": f"{base}/" if lang == "en" else f"{base}/?lang={lang}",
                "commentary": item["url"],
                "language": f"{base}/{lang}/",
                "archive": f"{base}/{lang}/{published[:4]}/{published[5:7]}/",
                "category": f"{base}/{lang}/categories/{item['category']}",
                "tag": f"{base}/{lang}/tags/{quote(item['tags'][0].lower(), safe='')}",
                "author": str(author),
                "search": f"{base}/{lang}/search?q={quote(word)}",
                "digest": digest["url"],
                "error": f"{base}/{lang}/no/such-page",
            }
    return out


@pytest.fixture(scope="module")
def urls(demo: str) -> dict[str, dict[str, str]]:
    return page_urls(demo)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    chromium = chromium_path()
    b = Browser(chromium, tmp_path_factory.mktemp("chromium-pages"))
    try:
        yield b
    finally:
        b.close()


def goto(tab: Tab, url: str) -> None:
    """Navigate and wait for this navigation's load (Tab.goto would take an earlier one's)."""
    seen = len(tab.browser.events)
    tab.call("Page.navigate", url=url)
    tab.browser.wait_event(
        lambda e: e.get("sessionId") == tab.session and e["method"] == "Page.loadEventFired"
        and tab.browser.events.index(e) >= seen,
        what=f"load of {url}",
    )


AXE_RUN = """
axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => ({
  id: v.id, impact: v.impact, help: v.help,
  nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ': ' + n.failureSummary)})))
"""


@pytest.mark.parametrize("lang", LANGS)
def test_every_page_type_reads_in_its_language_with_no_accessibility_violation(
    browser: Browser, urls: dict[str, dict[str, str]], lang: str
) -> None:
    axe = (npm_tool("axe") / "axe-core" / "axe.min.js").read_text()
    failures: dict[str, Any] = {}
    for viewport, (width, height) in VIEWPORTS.items():
        tab = Tab(browser, width=width, height=height)
        if viewport == "phone":
            tab.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=2, mobile=True)
        try:
            for kind, url in urls[lang].items():
                goto(tab, url)
                tab.screenshot(SHOTS / f"{lang}-{kind}-{viewport}.png")
                assert tab.eval("document.documentElement.lang") == lang, (kind, url)
                # Nothing wider than the screen: no sideways scrolling on a phone.
                assert tab.eval("document.documentElement.scrollWidth <= window.innerWidth"), (kind, viewport, url)
                # Every page leads home, and its h1 says what it is.
                assert tab.eval("!!document.querySelector('header a.brand[href]')"), (kind, url)
                assert tab.eval("document.querySelectorAll('h1').length") == 1, (kind, url)
                if viewport == "desktop":
                    tab.eval(axe)
                    violations = tab.eval(AXE_RUN)
                    if violations:
                        failures[f"{kind} {url}"] = violations
            problems = [p for p in tab.problems() if "404" not in p or "no/such-page" not in p]
            assert problems == [], problems
        finally:
            tab.close()
    assert failures == {}, json.dumps(failures, indent=1, ensure_ascii=False)


def test_lighthouse_scores_the_main_pages_at_least_95(urls: dict[str, dict[str, str]]) -> None:
    chromium = chromium_path()
    lighthouse = npm_tool("lighthouse") / ".bin" / "lighthouse"
    SHOTS.mkdir(parents=True, exist_ok=True)
    scores: dict[str, dict[str, float]] = {}
    for kind in LIGHTHOUSE_PAGES:
        report = SHOTS / f"lighthouse-{kind}.json"
        subprocess.run(
            [
                str(lighthouse), urls["en"][kind], "--quiet", "--output=json", f"--output-path={report}",
                "--only-categories=accessibility,best-practices,seo", "--form-factor=desktop",
                "--screenEmulation.disabled", "--throttling-method=provided",
                "--chrome-flags=--headless --no-sandbox --disable-gpu",
            ],
            env={**os.environ, "CHROME_PATH": chromium}, check=True, capture_output=True, timeout=300,
        )
        result = json.loads(report.read_text())
        scores[kind] = {name: category["score"] for name, category in result["categories"].items()}
        failed = {
            name: [a["title"] for a in result["audits"].values() if a.get("score") is not None and a["score"] < 1
                   and a["id"] in {r["id"] for r in category["auditRefs"] if r["weight"] > 0}]
            for name, category in result["categories"].items()
            if category["score"] < LIGHTHOUSE_MIN
        }
        assert not failed, (kind, scores[kind], failed)
    (SHOTS / "lighthouse-scores.json").write_text(json.dumps(scores, indent=1))
    print("lighthouse:", json.dumps(scores))
