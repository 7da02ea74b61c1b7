"""k6-operator's k6 command lines (``pkg/types/k6cli.go``, ``TestRunSpec.Argv``, ``runner.go``).

The operator validates the argv before anything runs (an argument that is neither a flag nor a
flag's value puts the TestRun in stage ``error``), passes the initializer's ``k6 archive`` only
the arguments archive understands, and starts each runner with ``runner_command``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devkit.k6multi import operator_args

# Stands for the script path in a runner command until the pod's volume is known.
SCRIPT_PLACEHOLDER = "\0script\0"


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


def runner_command(
    spec: Mapping[str, Any], index: int, count: int, name: str, address: str
) -> list[str]:
    """Runner ``index`` of ``count``, without the binary: ``run [--quiet] [segment flags] <argv>
    <script> --address=<address> [--paused] --tag instance_id=<i> --tag testrun_name=<name>``."""
    flags = operator_args(index, count, name, address)
    segments = [f for f in flags if f.startswith("--execution-segment")]
    tags = [f for f in flags if not f.startswith(("--execution-segment", "--address=", "--paused"))]
    command = ["run"]
    if parse_bool(spec.get("quiet"), default=True):
        command.append("--quiet")
    command += [*segments, *runner_argv(spec), SCRIPT_PLACEHOLDER, f"--address={address}"]
    if parse_bool(spec.get("paused"), default=True):
        command.append("--paused")
    return [*command, *tags]


def parse_bool(value: Any, *, default: bool) -> bool:
    """Go's ``strconv.ParseBool`` as the operator uses it: unparsable reads as false, empty
    keeps the default."""
    if value in (None, ""):
        return default
    return str(value) in ("1", "t", "T", "TRUE", "true", "True")


def parse_inspect(output: bytes) -> dict[str, Any] | None:
    """The JSON of ``k6 inspect --execution-requirements`` in a container's output, if any."""
    text = output.decode("utf-8", errors="replace")
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
