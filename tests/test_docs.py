"""The manual builds strictly, documents every setting once, and the README stays a front door."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import msgspec
import pytest

from feedsvc.config import ENV_PREFIX, Settings

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
CONFIGURATION = (DOCS / "configuration.md").read_text()
SETTINGS = {f"{ENV_PREFIX}{name.upper()}": name for name in Settings.__struct_fields__}
# Named in the manual but not feedsvc settings: the test suite's database and fuzzing run.
NOT_SETTINGS = {
    "FEEDSVC_TEST_POSTGRES_DSN", "FEEDSVC_TEST_FUZZ_EXAMPLES", "FEEDSVC_TEST_FUZZ_SEED",
    "FEEDSVC_TEST_SCHEMATHESIS_EXAMPLES", "FEEDSVC_TEST_SCHEMATHESIS_SEED", "FEEDSVC_TEST_OUTAGE_SECONDS",
    "FEEDSVC_TEST_RYW_PAIRS", "FEEDSVC_TEST_OVERLOAD",
}


def build(docs_dir: Path, site_dir: Path, config: Path = ROOT / "mkdocs.yml") -> subprocess.CompletedProcess[str]:
    """Run ``mkdocs build --strict`` as `make docs` does, into ``site_dir``."""
    text = config.read_text().replace("docs_dir: docs", f"docs_dir: {docs_dir}")
    local = site_dir.parent / "mkdocs.yml"
    local.write_text(text)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(local), "-d", str(site_dir)],
        check=False, capture_output=True, text=True, env=env, timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    result = build(DOCS, out)
    assert result.returncode == 0, result.stdout + result.stderr
    # --strict aborts on warnings; anything else it says (a page outside nav, a link it
    # could not check) is a warning too, and must not pass unnoticed.
    assert "WARNING" not in result.stderr, result.stderr
    return out


def test_the_manual_builds_strictly(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "configuration.html").is_file()


@pytest.mark.parametrize(
    ("addition", "complaint"),
    [
        ("[a page that is not there](missing.md)", "missing.md"),
        ("[an anchor that is not there](reading.md#no-such-heading)", "no-such-heading"),
    ],
)
def test_a_broken_link_fails_the_build(tmp_path: Path, addition: str, complaint: str) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    with (docs / "feeds.md").open("a") as page:
        page.write(f"\n{addition}\n")
    result = build(docs, tmp_path / "site")
    assert result.returncode != 0
    assert complaint in result.stderr


def test_a_page_missing_from_the_navigation_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    (docs / "orphan.md").write_text("# Nobody links here\n")
    result = build(docs, tmp_path / "site")
    assert result.returncode != 0
    assert "orphan.md" in result.stderr


class _Assets(HTMLParser):
    """Collects the URLs a browser would load by itself: scripts, styles, images, frames."""

    LOADS = frozenset({("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src"), ("source", "src")})

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if (tag, name) in self.LOADS and value is not None:
                if tag == "link" and ("rel", "canonical") in attrs:
                    continue
                self.urls.append(value)


def test_the_manual_loads_nothing_from_outside_the_site(site: Path) -> None:
    outside: set[str] = set()
    for page in site.rglob("*.html"):
        parser = _Assets()
        parser.feed(page.read_text())
        outside |= {url for url in parser.urls if re.match(r"(https?:)?//", url)}
    for sheet in site.rglob("*.css"):
        outside |= set(re.findall(r"""url\(["']?((?:https?:)?//[^)"']+)""", sheet.read_text()))
        outside |= set(re.findall(r"""@import\s+["']?((?:https?:)?//[^"';]+)""", sheet.read_text()))
    assert outside == set()


def _configuration_rows() -> list[list[str]]:
    """The rows of the settings table: cells of every table line that starts with a variable."""
    rows = []
    for line in CONFIGURATION.splitlines():
        if line.startswith(f"| `{ENV_PREFIX}"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_every_setting_is_in_the_configuration_table_exactly_once() -> None:
    named = [row[0].strip("`") for row in _configuration_rows()]
    assert sorted(named) == sorted(SETTINGS), "each FEEDSVC_* setting once, and only settings"


def _shown(default: object) -> str | None:
    """How the table writes a default; None when it describes it in words (unset, empty)."""
    if default is None or default == ():
        return None
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def test_the_configuration_table_shows_each_default() -> None:
    defaults = {field.name: field.default for field in msgspec.structs.fields(Settings)}
    for variable, default_cell, _meaning in _configuration_rows():
        expected = _shown(defaults[SETTINGS[variable.strip("`")]])
        if expected is None:
            assert not default_cell.startswith("`"), (variable, default_cell)
        else:
            assert default_cell == f"`{expected}`", (variable, default_cell)


def test_the_manual_and_the_readme_name_only_settings_that_exist() -> None:
    texts = [README, *(page.read_text() for page in DOCS.rglob("*.md"))]
    # A name followed by `*` stands for a family (`FEEDSVC_RATE_LIMIT_*`), not a setting.
    named = set().union(*(re.findall(rf"{ENV_PREFIX}[A-Z_]++(?!\*)", text) for text in texts)) - NOT_SETTINGS
    assert named - set(SETTINGS) == set()


def test_the_readme_is_a_front_door_with_the_two_commands_at_the_top() -> None:
    assert len(README.splitlines()) <= 200
    top = "\n".join(README.splitlines()[:30])
    makefile = (ROOT / "Makefile").read_text()
    for target in ("run", "test"):
        assert f"make {target}" in top
        assert re.search(rf"^{target}:", makefile, re.MULTILINE)


def test_the_readme_links_only_to_pages_that_exist() -> None:
    for target in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (ROOT / target).is_file(), target
