"""`helm lint` and `helm template` for the chart tests: the helm binary when it is on PATH,
otherwise Helm's own Go engine through the PyPI package helm-python-sdk (no binary needed).

Only the subset of `--set` syntax the tests use is understood: dotted keys, `{a,b}` lists,
booleans and integers; `--set-json KEY=JSON` for lists of objects.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent.parent / "chart"


def available() -> bool:
    if shutil.which("helm"):
        return True
    try:
        import helm_python.chart  # noqa: F401
    except ImportError:
        return False
    return True


def run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """``helm lint [--strict] CHART [--set k=v]...`` or ``helm template NAME CHART [--set]...``."""
    binary = shutil.which("helm")
    if binary:
        return subprocess.run(
            [binary, *args], capture_output=True, text=True, timeout=120, check=False
        )
    return _sdk(list(args))


def render_chart(*args: str) -> list[dict[str, Any]]:
    """``helm template`` of the project's chart with ``args`` (``--set`` ...): its documents."""
    result = run(["template", "t", str(CHART), *args])
    if result.returncode != 0:
        raise RuntimeError(f"helm template failed: {result.stderr}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def deployment_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The pod spec of the chart's one Deployment."""
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def _parse_set(expression: str, values: dict[str, Any]) -> None:
    key, _, raw = expression.partition("=")
    value: Any
    if raw.startswith("{") and raw.endswith("}"):
        value = [item for item in raw[1:-1].split(",") if item]
    elif raw in ("true", "false"):
        value = raw == "true"
    elif re.fullmatch(r"-?\d+", raw):
        value = int(raw)
    else:
        value = raw
    _place(values, key, value)


def _place(values: dict[str, Any], key: str, value: Any) -> None:
    node = values
    *parents, leaf = key.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _sdk(args: list[str]) -> subprocess.CompletedProcess[str]:
    from helm_python.chart import Chart, lint

    command, rest = args[0], args[1:]
    values: dict[str, Any] = {}
    positional: list[str] = []
    strict = False
    i = 0
    while i < len(rest):
        if rest[i] == "--set":
            _parse_set(rest[i + 1], values)
            i += 2
        elif rest[i] == "--set-json":
            key, _, raw = rest[i + 1].partition("=")
            _place(values, key, json.loads(raw))
            i += 2
        elif rest[i] == "--strict":
            strict = True
            i += 1
        else:
            positional.append(rest[i])
            i += 1
    if command == "lint":
        report = lint(positional[0], values, strict=strict)
        messages = report.get("messages", [])
        # Helm's severities: 1 info, 2 warning, 3 error; --strict fails on warnings too.
        bad = [m for m in messages if m.get("severity", 0) >= (2 if strict else 3)]
        text = "\n".join(str(m) for m in messages)
        code = 1 if bad or report.get("errors") else 0
        return subprocess.CompletedProcess(args, code, text, str(report.get("errors") or ""))
    if command == "template":
        name, chart = positional
        try:
            rendered = Chart.load(chart).render(
                values, name=name, namespace="default", is_install=True
            )
        except Exception as exc:  # Helm's template errors (fail, schema) surface as exceptions
            return subprocess.CompletedProcess(args, 1, "", f"Error: {exc}")
        out = "".join(
            f"---\n# Source: {path}\n{text}\n"
            for path, text in sorted(rendered.items())
            if not path.endswith("NOTES.txt") and text.strip()
        )
        return subprocess.CompletedProcess(args, 0, out, "")
    raise ValueError(f"unsupported helm command {command!r}")
