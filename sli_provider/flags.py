"""The settings on the command line: a ``--flag`` for each, but never for a secret."""

from __future__ import annotations

import argparse
from dataclasses import fields

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per setting but the secrets; the default is taken from the environment later.

    A secret gets a ``--<name>-file`` flag instead: a path in ``ps`` gives nothing away.
    """
    for f in fields(Settings):
        setting: Setting = f.metadata["setting"]
        flag = "--" + f.name.replace("_", "-")
        if not setting.secret:
            parser.add_argument(
                flag, dest=f.name, default=None, help=f"{setting.help} [{setting.env}]"
            )
            continue
        parser.add_argument(
            flag, action=_RefusedSecretFlag, nargs="?", metavar=setting.env,
            dest=f"refused_{f.name}", default=argparse.SUPPRESS, help=argparse.SUPPRESS,
        )  # fmt: skip
        if not has_own_file_setting(setting):
            parser.add_argument(
                flag + "-file", dest=f"{f.name}_file", default=None, metavar="PATH",
                help=f"file holding the {setting.help}, read once at start [{setting.file_env}]",
            )  # fmt: skip
    parser.epilog = secrets_help()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def secrets_help() -> str:
    """The ``--help`` epilog: which settings are secret, and where they may come from."""
    lines = [
        "Every setting is an environment variable (in brackets above); a flag wins over it.",
        "Secrets have no flag (flags show in ps); give them in the environment, or in a file",
        "whose path is in the _FILE variable:",
    ]
    for f in fields(Settings):
        setting: Setting = f.metadata["setting"]
        if setting.secret:
            how = "re-read when it changes" if has_own_file_setting(setting) else "read once"
            lines.append(f"  {setting.env:<24} or {setting.file_env} ({how})")
    return "\n".join(lines)
