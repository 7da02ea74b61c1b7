"""k6-operator's reading of a TestRun's k6 arguments (``pkg/types/k6cli.go``, ``TestRunSpec.Argv``).

The operator validates the argv before anything runs (an argument that is neither a flag nor a
flag's value puts the TestRun in stage ``error``) and passes the initializer's ``k6 archive``
only the arguments archive understands.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class InvalidArguments(ValueError):
    pass


@dataclass
class ParsedCLI:
    archive_args: list[str] = field(default_factory=list)
    has_cloud_out: bool = False


def argv_of(spec: Mapping[str, Any]) -> list[str]:
    """``.spec.args`` if not empty, else ``.spec.arguments`` split on whitespace."""
    args = spec.get("args") or []
    if args:
        return [str(a) for a in args]
    return str(spec.get("arguments") or "").split()


def runner_argv(spec: Mapping[str, Any]) -> list[str]:
    """What the runner container's k6 gets: ``args`` exactly, ``arguments`` through ``sh -c``."""
    args = spec.get("args") or []
    if args:
        return [str(a) for a in args]
    return shlex.split(str(spec.get("arguments") or ""))


def parse_cli(argv: Sequence[str]) -> ParsedCLI:
    cli = ParsedCLI()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            raise InvalidArguments(f"encountered an invalid value for k6 CLI argument: `{arg}`")
        end = _value_end(i + 1, argv)
        if arg.startswith(("--log-output", "--block-hostnames", "--blacklist-ip", "--user-agent")):
            pass
        elif arg in ("-o", "--out"):
            if i + 1 < end and argv[i + 1] == "cloud":
                cli.has_cloud_out = True
        elif arg in ("-l", "--linger", "--no-usage-report", "--verbose", "-v"):
            pass
        else:
            cli.archive_args += argv[i:end]
        i = end
    return cli


def _value_end(start: int, argv: Sequence[str]) -> int:
    end = start
    while end < len(argv):
        if argv[end] == "":
            if end == start:
                end += 1
            break
        if argv[end].startswith("-"):
            break
        end += 1
    return end
