"""``--help`` of the commands users run: their own options first and explained, settings last."""

from __future__ import annotations

import argparse
import re

import pytest

from sli_provider.cli import _parser
from sli_provider.flags import SETTINGS_TITLE, CommandHelpFormatter

COMMANDS = [["preview"], ["evaluate"], ["run"], ["history"], ["history", "import"],
            ["history", "list"], ["history", "invalidate"]]  # fmt: skip
_NO_DEFAULT = (None, False, "", [], argparse.SUPPRESS)


def _subparser(path: list[str]) -> argparse.ArgumentParser:
    parser = _parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def _own_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    settings = [g for g in parser._action_groups if g.title == SETTINGS_TITLE]
    grouped = {id(a) for g in settings for a in g._group_actions}
    return [a for a in parser._actions if a.option_strings and id(a) not in grouped
            and not isinstance(a, argparse._HelpAction)]  # fmt: skip


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_own_options_first_each_described_with_readable_metavar_and_default(
    path: list[str],
) -> None:
    parser = _subparser(path)
    text = parser.format_help()
    usage = text.split("\n\n")[0]
    # The settings: a heading after the command's own options, not in the usage line.
    assert "--prometheus-url" not in usage and "--nats-queue-group" not in usage
    if path[0] != "history":
        assert text.index("options:") < text.index(SETTINGS_TITLE)
        assert "--SETTING VALUE ..." in usage
    # Metavars named after the option, not after an internal dest (G_PROJECT, Q_START, H_ID).
    assert not re.search(r"\b[GQH]_[A-Z]+", text), text
    formatter = CommandHelpFormatter(parser.prog)
    own = _own_options(parser)
    assert own
    for action in own:
        assert action.help and action.help != argparse.SUPPRESS, action.option_strings
        shown = formatter._get_help_string(action)
        if action.default not in _NO_DEFAULT or action.dest == "history":
            assert "default" in shown, (action.option_strings, shown)


def test_serve_lists_the_settings_as_its_own_options() -> None:
    text = _subparser(["serve"]).format_help()
    assert "--prometheus-url URL" in text and SETTINGS_TITLE not in text
