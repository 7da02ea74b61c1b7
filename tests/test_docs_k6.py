"""The docs: the k6 command line for users who run k6 themselves, and no path that is not there."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from sli_provider.k6.invocation import RemoteWriteTarget, RunTags, build_invocation
from sli_provider.runner.workloads import keptn_script_env

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(
    ["README.md", "chart/README.md", "bench/README.md", "tests/gate_cases/README.md"]
    + [str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")]
)
# Repository paths begin with one of these; anything else (k6/sli.yaml, /etc/...) is a Keptn
# resource or a path inside a container. "docs" is there so that a link to a page that is not
# there is caught even while docs/ holds no file in git.
_TOP = sorted(
    {
        p.split("/")[0]
        for p in subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
        ).stdout.split()
    }
    | {"docs"}
)
_GENERATED = {"demo-output/report.html"}  # written by `make demo`


def _section_block(text: str, heading: str) -> str:
    section = text.split(f"\n{heading}\n", 1)[1]
    return section.split("```sh\n", 1)[1].split("\n```", 1)[0]


def test_the_documented_k6_command_is_exactly_what_the_runner_starts() -> None:
    block = _section_block((ROOT / "docs" / "runner.md").read_text(), "## Running k6 yourself")
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
def test_every_repository_path_in_the_docs_exists(doc: str) -> None:
    paths = _repo_paths((ROOT / doc).read_text())
    assert (
        "sli_provider/k6/invocation.py" in paths or doc != "docs/runner.md"
    )  # the scan sees paths
    missing = sorted(p for p in paths - _GENERATED if "<" not in p and not (ROOT / p).exists())
    assert missing == [], f"{doc} names files that do not exist"


def test_the_path_scan_would_catch_a_missing_file() -> None:
    assert _repo_paths("see `docs/k6-metrics.md` and sli_provider/k6/invocation.py.") == {
        "docs/k6-metrics.md",
        "sli_provider/k6/invocation.py",
    }


def _anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def _anchors_of(page: Path) -> set[str]:
    return _anchors(page.read_text()) if page.exists() else set()


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_in_the_docs_leads_to_a_page_and_heading(doc: str) -> None:
    source = ROOT / doc
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", source.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        page = (source.parent / path).resolve() if path else source
        heading_missing = anchor and page.suffix == ".md" and anchor not in _anchors_of(page)
        if not page.exists() or heading_missing:
            broken.append(target)
    assert broken == [], f"{doc} links to pages or headings that do not exist"


def test_the_link_check_knows_githubs_anchors() -> None:
    assert _anchors("# A gate in CI, Argo Rollouts and Flagger\n## k6's thresholds\n") == {
        "a-gate-in-ci-argo-rollouts-and-flagger",
        "k6s-thresholds",
    }
