"""The settings on the command line: a ``--flag`` for each, but never for a secret."""

from __future__ import annotations

import argparse
from collections.abc import Collection, Iterable, Mapping
from dataclasses import MISSING, Field, fields
from enum import Enum
from typing import Any

from sli_provider.config import Setting, Settings, has_own_file_setting


class _RefusedSecretFlag(argparse.Action):
    """A secret given as a flag: refused with the way to give it, without echoing the value."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        env = self.metavar
        parser.error(
            f"{option_string} is not accepted: a secret on the command line shows in ps; "
            f"set {env} in the environment, or {env}_FILE to a file holding it"
        )


SETTINGS_TITLE = "service settings (each also an environment variable, in brackets; a flag wins)"
_SETTING_MARK = "_sli_provider_setting"


class CommandHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` that reads well: metavars named after the option (``--project PROJECT``, not
    ``G_PROJECT``), each default shown, and the settings left out of the usage line (they
    have their own section at the end)."""

    def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
        longest = max(action.option_strings, key=len)
        return longest.lstrip("-").replace("-", "_").upper()

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default" in text or default in (None, False, "", [], argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"

    def add_usage(
        self,
        usage: str | None,
        actions: Iterable[argparse.Action],
        groups: Iterable[argparse._MutuallyExclusiveGroup],
        prefix: str | None = None,
    ) -> None:
        own = [a for a in actions if not getattr(a, _SETTING_MARK, False)]
        if len(own) < len(list(actions)):
            own.append(
                argparse.Action([], dest="settings", metavar="--SETTING VALUE ...", nargs="?")
            )
        super().add_usage(usage, own, groups, prefix)


class CompactSettingsHelpFormatter(CommandHelpFormatter):
    """The settings one line each (a command's own options come first, explained at length)."""

    def _format_action(self, action: argparse.Action) -> str:
        if not getattr(action, _SETTING_MARK, False) or action.help == argparse.SUPPRESS:
            return super()._format_action(action)
        invocation = self._format_action_invocation(action)
        return f"  {invocation}  {self._expand_help(action)}\n"


def add_arguments(
    parser: argparse.ArgumentParser,
    *,
    grouped: bool = True,
    shown: Collection[str] | None = None,
    help_for: Mapping[str, str] | None = None,
) -> None:
    """One ``--flag`` per setting but the secrets; the default is taken from the environment later.

    A secret gets a ``--<name>-file`` flag instead: a path in ``ps`` gives nothing away.
    ``grouped``: under their own heading after the command's own options (for every command but
    ``serve``, whose only options they are). ``shown``: the settings the command's help lists,
    one line each (every flag is accepted all the same); None: all of them. ``help_for``: a
    setting's help where the command reads it differently from the service.
    """
    target: argparse._ActionsContainer = (
        parser.add_argument_group(SETTINGS_TITLE) if grouped else parser
    )

    def add(*names: str, **options: Any) -> None:
        action = target.add_argument(*names, **options)
        if grouped:
            setattr(action, _SETTING_MARK, True)

    for f in fields(Settings):
        setting: Setting = f.metadata["setting"]
        flag = "--" + f.name.replace("_", "-")
        hidden = shown is not None and f.name not in shown
        if not setting.secret:
            default = shown_default(f)
            # The argparse default stays None so that the environment can still fill it in.
            default_text = f" (default: {default})" if default is not None else ""
            text = (help_for or {}).get(f.name) or f"{setting.help}{default_text} [{setting.env}]"
            add(
                flag,
                dest=f.name,
                default=None,
                metavar=_metavar(f.name),
                help=argparse.SUPPRESS if hidden else text,
            )
            continue
        add(
            flag,
            action=_RefusedSecretFlag,
            nargs="?",
            metavar=setting.env,
            dest=f"refused_{f.name}",
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )
        if not has_own_file_setting(setting):
            add(
                flag + "-file",
                dest=f"{f.name}_file",
                default=None,
                metavar="PATH",
                help=argparse.SUPPRESS
                if hidden
                else f"file holding the {setting.help}, read once at start [{setting.file_env}]",
            )
    parser.epilog = secrets_help(shown)
    parser.formatter_class = CommandHelpFormatter if shown is None else CompactSettingsHelpFormatter


def _metavar(name: str) -> str:
    if name.endswith(("_file", "_dir", "_binary", "_path", "_kubeconfig")):
        return "PATH"
    return "URL" if name.endswith("_url") else "VALUE"


def shown_default(f: Field[Any]) -> str | None:
    """A setting's default as the environment would spell it (``8080``, ``30``, ``false``), or
    None where there is no plain value (unset, or a default its help text already explains)."""
    setting: Setting = f.metadata["setting"]
    if "default" in setting.help:
        return None
    if f.default is not MISSING:
        value: Any = f.default
    elif f.default_factory is not MISSING:
        value = f.default_factory()
    else:
        return None
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def secrets_help(shown: Collection[str] | None = None) -> str:
    """The ``--help`` epilog: which settings are secret, and where they may come from."""
    lines = [
        "Every setting is an environment variable (in brackets above); a flag wins over it.",
        "Secrets have no flag (flags show in ps); give them in the environment, or in a file",
        "whose path is in the _FILE variable:",
    ]
    for f in fields(Settings):
        setting: Setting = f.metadata["setting"]
        if setting.secret and (shown is None or f.name in shown):
            how = "re-read when it changes" if has_own_file_setting(setting) else "read once"
            lines.append(f"  {setting.env:<24} or {setting.file_env} ({how})")
    return "\n".join(lines)
