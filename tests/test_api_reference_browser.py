"""The API reference at /schema renders in a real browser with the network cut off: Debian's
chromium, headless, resolving no host name but 127.0.0.1 (where the feedsvc under test
answers); the page must still show the operations, and the DevTools
network log must show no request for anything but that server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live import LiveServer
from tests.test_browser import OUTPUT, SCREENS, Browser, Tab, chromium_path

pytestmark = pytest.mark.slow

OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
"""Every host but 127.0.0.1 fails to resolve, as on a machine with no network."""
LOCAL = ("data:", "blob:")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("live"))
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def offline_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = Browser(chromium_path(), tmp_path_factory.mktemp("chromium-profile"), OFFLINE)
    yield b
    b.close()


def test_the_api_reference_renders_its_operations_with_no_outside_request(
    offline_browser: Browser, server: LiveServer
) -> None:
    tab = Tab(offline_browser)
    try:
        tab.call("Network.enable")
        tab.goto(f"{server.url}/schema")
        try:
            operations = tab.poll("document.querySelectorAll('.opblock').length", timeout=30)
        except TimeoutError:
            tab.screenshot(OUTPUT / "api-reference-offline.png")
            shown = tab.eval("document.body.innerText.slice(0, 300)")
            raise AssertionError(f"no operations shown: {shown!r}, problems: {tab.problems()}") from None
        tab.screenshot(OUTPUT / "api-reference-offline.png")
        SCREENS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(SCREENS / "api-reference-offline.png")

        assert operations > 20, "Swagger UI showed no operations"
        paths = tab.eval("Array.from(document.querySelectorAll('.opblock-summary-path')).map(e => e.textContent)")
        assert "/api/v1/commentaries" in [p.replace("\u200b", "") for p in paths]
        assert "feedsvc" in str(tab.eval("document.querySelector('.info .title')?.textContent"))
        requested = [e["params"]["request"]["url"] for e in tab.events("Network.requestWillBeSent")]
        assert f"{server.url}/schema/assets/swagger-ui-bundle.js" in requested
        assert [u for u in requested if not u.startswith((server.url + "/", *LOCAL))] == []
        failed = [e["params"] for e in tab.events("Network.loadingFailed")]
        assert failed == [], failed
    finally:
        tab.close()


def test_the_home_page_links_to_the_api_reference(offline_browser: Browser, server: LiveServer) -> None:
    tab = Tab(offline_browser)
    try:
        tab.goto(f"{server.url}/")
        hrefs = tab.eval("Array.from(document.querySelectorAll('a')).map(a => a.href)")
        assert f"{server.url}/schema" in hrefs
    finally:
        tab.close()
