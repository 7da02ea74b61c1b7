"""`sli-provider run --k6 NAME_OR_PATH`, and the automatic choice without it, with real k6 builds."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from devkit.k6binaries import extension_k6
from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer
from tests.helpers import run_script

FAKER_SCRIPT = """
import http from 'k6/http';
import faker from 'k6/x/faker';
export const options = { vus: 1, iterations: 3 };
export default function () {
  console.log('VISITOR=' + faker.person.firstName());
  http.get(__ENV.TARGET_URL + '/');
}
"""
SLO = "objectives:\n  - sli: http_reqs_total\n    pass: [{criteria: ['=3']}]\ntotal_score: {pass: '100%'}\n"


@pytest.fixture(scope="module")
def faker_k6(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extension_k6(tmp_path_factory.mktemp("xk6"))


async def run_cli(
    tmp_path: Path,
    prometheus: PrometheusServer,
    target: TargetServer,
    *extra: str,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return await run_script(
        tmp_path,
        ("faker.js", FAKER_SCRIPT),
        SLO,
        target.url,
        "--no-store",
        *extra,
        cwd=tmp_path,
        env={
            "PATH": os.environ.get("PATH", ""),
            "PROMETHEUS_URL": prometheus.url,
            "SLI_CONFIG_DIR": str(tmp_path),
            **(env or {}),
        },
    )


async def test_run_with_a_path_to_an_extension_build(
    prometheus: PrometheusServer, target: TargetServer, tmp_path: Path, faker_k6: Path
) -> None:
    result = await run_cli(tmp_path, prometheus, target, "--k6", str(faker_k6))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["result"] == "pass"
    assert "VISITOR=" in result.stderr  # the faker extension ran


async def test_run_without_k6_chooses_the_configured_build_that_provides_the_imports(
    prometheus: PrometheusServer, target: TargetServer, tmp_path: Path, faker_k6: Path
) -> None:
    result = await run_cli(tmp_path, prometheus, target, env={"K6_BINARIES": f"faker={faker_k6}"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "VISITOR=" in result.stderr


@pytest.mark.parametrize(
    ("k6", "expected"),
    [
        ("default", "k6 'default' lacks k6/x/faker; no k6 was started"),
        ("/bin/echo", "--k6: k6 binary '/bin/echo' (/bin/echo) does not answer 'version' like k6"),
    ],
)
async def test_run_with_a_k6_that_cannot_run_the_script_says_why(
    k6: str, expected: str, prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    result = await run_cli(tmp_path, prometheus, target, "--k6", k6)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "VISITOR=" not in result.stderr
