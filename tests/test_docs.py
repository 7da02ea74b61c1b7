"""The README documents every setting and every built-in SLI (the docs cannot drift)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from sli_provider.config import Settings
from sli_provider.sli.builtin import load_builtin_templates

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_is_in_the_readme_table() -> None:
    missing = [
        f.metadata["setting"].env
        for f in fields(Settings)
        if f"`{f.metadata['setting'].env}`" not in README.split("## Settings", 1)[1]
    ]
    assert missing == []


def test_every_builtin_sli_is_documented() -> None:
    table = README.split("### Built-in SLIs", 1)[1].split("###", 1)[0]
    missing = []
    for name in load_builtin_templates():
        suffix = name.rpartition("_")[2]
        if f"`{name}`" not in table and f"`_{suffix}`" not in table:
            missing.append(name)
    assert missing == []
