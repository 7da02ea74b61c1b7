"""The READMEs: the k6 command line for users who run k6 themselves, and no path that is not there."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from sli_provider.k6.invocation import RemoteWriteTarget, RunTags, build_invocation
from sli_provider.runner.workloads import keptn_script_env

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", "chart/README.md", "bench/README.md", "tests/gate_cases/README.md"]
# Repository paths begin with one of these; anything else (k6/sli.yaml, /etc/...) is a Keptn
# resource or a path inside a container. "docs" is there because a docs/ link is an easy slip.
_TOP = sorted({p.split("/")[0] for p in subprocess.run(
    ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
).stdout.split()} | {"docs"})  # fmt: skip
_GENERATED = {"demo-output/report.html"}  # written by `make demo`


def _section_block(text: str, heading: str) -> str:
    section = text.split(f"\n{heading}\n", 1)[1]
    return section.split("```sh\n", 1)[1].split("\n```", 1)[0]


def test_readme_k6_command_is_exactly_what_the_runner_starts() -> None:
    block = _section_block((ROOT / "README.md").read_text(), "### Running k6 yourself")
    env: dict[str, str] = {}
    command: list[str] = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            key, _, value = words[1].partition("=")
            env[key] = value
        elif words[:2] == ["k6", "run"]:
            command = words[1:]
    tags = RunTags("shop", "staging", "web", "$KEPTN_CONTEXT")
    invocation = build_invocation(
        script="load.js",
        remote_write=RemoteWriteTarget("http://prometheus.example.org:9090/api/v1/write"),
        tags=tags,
        script_env=keptn_script_env(tags, target_url="https://staging.example.org"),
    )
    assert command == [*invocation.options, invocation.script]
    assert env == dict(invocation.env)


def _repo_paths(text: str) -> set[str]:
    pattern = r"(?<![\w./-])(?:" + "|".join(map(re.escape, _TOP)) + r")(?:/[\w.<>*-]+)*/?"
    found = set()
    for match in re.finditer(pattern, text):
        path = match.group(0).rstrip(".")
        if "/" in path or path in _TOP:
            found.add(path)
    return found


@pytest.mark.parametrize("doc", DOCS)
def test_every_repository_path_in_the_readmes_exists(doc: str) -> None:
    paths = _repo_paths((ROOT / doc).read_text())
    assert "sli_provider/k6/invocation.py" in paths or doc != "README.md"  # the scan sees paths
    missing = sorted(p for p in paths - _GENERATED if "<" not in p and not (ROOT / p).exists())
    assert missing == [], f"{doc} names files that do not exist"


def test_the_path_scan_would_catch_a_missing_file() -> None:
    assert _repo_paths("see `docs/k6-metrics.md` and sli_provider/k6/invocation.py.") == {
        "docs/k6-metrics.md", "sli_provider/k6/invocation.py"}  # fmt: skip
