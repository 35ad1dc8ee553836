"""The README documents every setting, and the commands it tells a new user to run exist."""

from __future__ import annotations

import re
from pathlib import Path

from feedsvc.config import ENV_PREFIX, Settings

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme() -> None:
    missing = [f"{ENV_PREFIX}{name.upper()}" for name in Settings.__struct_fields__ if f"{ENV_PREFIX}{name.upper()}" not in README]
    assert missing == []


def test_the_readme_names_only_settings_that_exist() -> None:
    named = set(re.findall(rf"{ENV_PREFIX}[A-Z_]+", README)) - {"FEEDSVC_TEST_POSTGRES_DSN"}
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.__struct_fields__}
    assert named - known == set()


def test_the_two_set_up_commands_are_in_the_readme_and_the_makefile() -> None:
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    for target in ("run", "test"):
        assert f"make {target}" in README
        assert re.search(rf"^{target}:", makefile, re.MULTILINE)
