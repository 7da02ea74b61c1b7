"""The docs name every setting and every built-in SLI exactly (they cannot drift from the code).

docs/settings.md carries the settings table, checked against the ``Settings`` metadata: every
setting by its exact name, each plain default as ``--help`` shows it. The built-in SLI table
appears in the README (for newcomers) and in docs/builtin-slis.md (the reference); both are
checked against the packaged templates."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from sli_provider.config import Settings
from sli_provider.config.flags import shown_default
from sli_provider.sli.builtin import load_builtin_templates

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_PAGE = (ROOT / "docs" / "settings.md").read_text()
_CODE = re.compile(r"`([^`]+)`")


def first_column(text: str, heading: str) -> list[list[str]]:
    """The backticked names in the first cell of each row of the first table under ``heading``."""
    section = text.split(f"\n{heading}\n", 1)[1]
    rows = []
    for line in section.split("\n|", 1)[1].split("\n\n", 1)[0].splitlines():
        first_cell = line.strip().strip("|").split("|", 1)[0]
        names = _CODE.findall(first_cell)
        if names:  # the header and the |---| line have none
            rows.append(names)
    return rows


def test_every_setting_is_in_the_settings_page_by_its_exact_name() -> None:
    documented = [name for row in first_column("\n" + SETTINGS_PAGE, "# Settings") for name in row]
    settings = [f.metadata["setting"].env for f in fields(Settings)]
    assert sorted(documented) == sorted(settings)


@pytest.mark.parametrize(
    ("doc", "heading"),
    [("README.md", "## Built-in SLIs"), ("docs/builtin-slis.md", "## The built-ins")],
)
def test_every_builtin_sli_is_documented_by_its_exact_name(doc: str, heading: str) -> None:
    """A cell may shorten names after the first: `http_req_duration_p50`, `_p90` is ..._p90."""
    documented = []
    for row in first_column((ROOT / doc).read_text(), heading):
        full = ""
        for name in row:
            if name.startswith("_"):
                assert full, f"{name!r} shortens no full name before it in its cell"
                name = full.rpartition("_")[0] + name
            full = name
            documented.append(name)
    assert sorted(documented) == sorted(load_builtin_templates())


def test_the_settings_table_gives_each_plain_default_as_help_shows_it() -> None:
    """The table's second column and ``--help`` (flags.shown_default) cannot disagree."""
    documented: dict[str, str] = {}
    for line in SETTINGS_PAGE.splitlines():
        if line.startswith("| `"):
            first, default = (cell.strip() for cell in line.strip("|").split("|")[:2])
            for name in _CODE.findall(first):
                documented[name] = default
    for f in fields(Settings):
        default = shown_default(f)
        if default is not None:
            env = f.metadata["setting"].env
            assert documented[env] == default, env
