"""``--help`` of the commands users run: their own options first and explained, settings last."""

from __future__ import annotations

import argparse
import re
from dataclasses import MISSING, Field, fields
from typing import Any

import pytest

from sli_provider.cli import _parser
from sli_provider.config import Settings
from sli_provider.config.flags import SETTINGS_TITLE, CommandHelpFormatter, shown_default
from tests.helpers import cli

COMMANDS = [
    ["preview"],
    ["evaluate"],
    ["run"],
    ["history"],
    ["history", "import"],
    ["history", "list"],
    ["history", "invalidate"],
]
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
    return [
        a
        for a in parser._actions
        if a.option_strings and id(a) not in grouped and not isinstance(a, argparse._HelpAction)
    ]


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


@pytest.mark.parametrize(
    "f", [f for f in fields(Settings) if not f.metadata["setting"].secret], ids=lambda f: f.name
)
def test_each_setting_flag_shows_its_default_or_explains_it(f: Field[Any]) -> None:
    """The settings' argparse default is None (the environment fills them in later), so the
    formatter cannot show it: the help text carries the setting's own default instead."""
    text = " ".join(_subparser(["serve"]).format_help().split())
    flag = "--" + f.name.replace("_", "-")
    entry = text.split(f" {flag} ", 1)[1].split(" --", 1)[0]
    default = shown_default(f)
    if default is not None:  # argparse may wrap a value at a hyphen: compare without spaces
        assert f"(default:{default})".replace(" ", "") in entry.replace(" ", ""), entry
    value = f.default if f.default is not MISSING else None
    if value not in (None, "") and f.default_factory is MISSING:
        assert "default" in entry, entry


def test_setting_defaults_read_as_the_environment_spells_them() -> None:
    by_name = {f.name: f for f in fields(Settings)}
    shown = {
        name: shown_default(by_name[name])
        for name in ("port", "query_timeout_seconds", "runner_enabled", "log_level", "nats_url")
    }
    assert shown == {
        "port": "8080",
        "query_timeout_seconds": "30",
        "runner_enabled": "true",
        "log_level": "INFO",
        "nats_url": None,
    }


def test_path_settings_have_a_path_metavar() -> None:
    text = _subparser(["serve"]).format_help()
    assert "--journal-path PATH" in text and "--k6-operator-kubeconfig PATH" in text


def test_check_help_gives_its_exit_codes() -> None:
    text = " ".join(_subparser(["check"]).format_help().split())
    assert "exit codes: 0 clean (prints ok: ...), 1 problems found, 2 a file cannot be read" in text


@pytest.mark.parametrize("path", [["preview"], ["evaluate"], ["run"]], ids=" ".join)
def test_the_commands_users_script_give_their_exit_codes(path: list[str]) -> None:
    text = " ".join(_subparser(path).format_help().split())
    assert "exit codes: 0 " in text and ", 2 " in text, text[-800:]
    assert text.index("exit codes:") < text.index("Secrets have no flag")


def test_the_top_level_help_describes_every_command() -> None:
    parser = _parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    description = parser.description or ""
    assert all(name in description for name in commands.choices), description


@pytest.mark.parametrize("command", ["run", "evaluate", "preview"])
def test_a_commands_help_lists_only_the_settings_it_uses_one_line_each(command: str) -> None:
    shown = cli(command, "--help", env={"COLUMNS": "100"}).stdout
    lines = shown.splitlines()
    assert len(lines) <= 90, len(lines)
    for absent in (
        "--nats-",
        "--journal-",
        "--port",
        "--host",
        "--k6-operator-",
        "--max-parallel",
        "--runner-enabled",
        "--preview-token",
        "NATS_URL",
        "K6_OPERATOR",
    ):
        assert absent not in shown, absent
    settings = shown[shown.index(SETTINGS_TITLE) :].split("\n\n")[0].splitlines()[1:]
    assert all(line.startswith("  --") for line in settings), settings  # one line each
    flags = {line.split()[0] for line in settings}
    assert {"--prometheus-url", "--prometheus-password-file", "--sli-config-dir"} <= flags
    k6 = {"--k6-binary", "--k6-binaries", "--prometheus-remote-write-url"}
    assert k6 <= flags if command == "run" else not k6 & flags
    assert ("KEPTN_API_TOKEN_FILE" in shown) and "PREVIEW_TOKEN" not in shown


def test_serve_help_keeps_every_setting_and_other_commands_still_take_them() -> None:
    text = _subparser(["serve"]).format_help()
    assert "--nats-url" in text and "--k6-operator-enabled" in text and "--port" in text
    args = _parser().parse_args(
        [
            "evaluate",
            "--slo",
            "s",
            "--project",
            "p",
            "--stage",
            "s",
            "--service",
            "v",
            "--values",
            "x",
            "--port",
            "9",
        ]
    )
    assert args.port == "9"  # hidden from evaluate's help, accepted all the same
