"""`sli-provider evaluate` and `history` as a user runs them: exit codes, storage, comparison."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devkit.cli import run_sli_provider
from devkit.k6run import LOAD_SCRIPT, LoadRun
from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer
from sli_provider.adapters.history_store import HistoryStore
from sli_provider.k6.invocation import RunTags
from tests.helpers import CLI_SCOPE, cli, scope_args

SLO = """
spec_version: "1.0"
comparison: {compare_with: single_result, include_result_with_score: pass}
objectives:
  - sli: p95
    pass: [{criteria: ["<=+10%", "<600"]}]
    warning: [{criteria: ["<=800"]}]
  - sli: errors
    pass: [{criteria: ["<=0.01"]}]
    key_sli: true
total_score: {pass: "90%", warning: "60%"}
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    slo = tmp_path / "slo.yaml"
    slo.write_text(SLO)
    return {"slo": slo, "history": tmp_path / "history.sqlite3", "dir": tmp_path}


def evaluate_values(
    files: dict[str, Path], values: list[dict[str, Any]], *extra: str
) -> subprocess.CompletedProcess[str]:
    path = files["dir"] / "values.json"
    path.write_text(json.dumps(values))
    return cli(
        "evaluate",
        "--slo",
        str(files["slo"]),
        *CLI_SCOPE,
        "--values",
        str(path),
        "--history",
        str(files["history"]),
        *extra,
    )


def vals(p95: float, errors: float = 0.0) -> list[dict[str, Any]]:
    return [
        {"metric": "p95", "value": p95, "success": True},
        {"metric": "errors", "value": errors, "success": True},
    ]


def test_exit_codes_and_relative_comparison_with_stored_runs(files: dict[str, Path]) -> None:
    """The first run has nothing to compare with (relative criteria hold: lighthouse
    evaluate_sli_handler.go evaluateComparison); later runs compare with the last pass."""
    first = evaluate_values(files, vals(100))
    assert first.returncode == 0, first.stderr
    assert "PASS" in first.stdout
    # 20 % slower than the stored pass: the relative pass criterion fails, warning (<=800) holds.
    second = evaluate_values(files, vals(120))
    assert second.returncode == 0 and "WARNING" in second.stdout
    assert evaluate_values(files, vals(120), "--strict").returncode == 1
    # A key SLI failing fails the gate.
    failed = evaluate_values(files, vals(100, errors=0.5), "--format", "json")
    assert failed.returncode == 1
    evaluation = json.loads(failed.stdout)
    assert evaluation["result"] == "fail"
    # Only pass results are baselines: still 100, not the warning's 120.
    assert evaluation["evaluation"]["indicatorResults"][0]["value"]["comparedValue"] == 100
    with HistoryStore(files["history"]) as store:
        stored = store.list("shop", "dev", "web")
    # newest first; the --strict run stored its verdict: its warning failed the gate
    assert [r.result for r in stored] == ["fail", "fail", "warning", "pass"]


def test_invalidated_results_are_not_compared_with(files: dict[str, Path]) -> None:
    assert evaluate_values(files, vals(100)).returncode == 0
    assert evaluate_values(files, vals(200, errors=0.0), "--no-store").returncode == 0
    with HistoryStore(files["history"]) as store:
        (first,) = store.list("shop", "dev", "web")
    done = cli("history", "--history", str(files["history"]), "invalidate", "--id", first.id)
    assert done.returncode == 0, done.stderr
    # No usable baseline any more: the relative criterion holds again.
    result = evaluate_values(files, vals(200), "--format", "json")
    evaluation = json.loads(result.stdout)
    assert evaluation["result"] == "pass"
    assert evaluation["evaluation"].get("comparedEvents", []) == []
    listing = cli("history", "--history", str(files["history"]), "list", *CLI_SCOPE)
    assert "(invalidated)" in listing.stdout and listing.stdout.count("\n") == 2


def test_history_import_from_keptn_datastore(files: dict[str, Path]) -> None:
    """Events as mongodb-datastore returns them, newest first; scope from each event."""

    def event(i: int, p95: float, result: str) -> dict[str, Any]:
        return {
            "id": f"ev-{i}",
            "type": "sh.keptn.event.evaluation.finished",
            "source": "lighthouse-service",
            "time": f"2023-05-0{i}T10:00:00.000Z",
            "shkeptncontext": f"ctx-{i}",
            "data": {
                "project": "shop",
                "stage": "dev",
                "service": "web",
                "result": result,
                "status": "succeeded",
                "evaluation": {
                    "result": result,
                    "score": 100,
                    "indicatorResults": [
                        {
                            "score": 1,
                            "status": result,
                            "value": {"metric": "p95", "value": p95, "success": True},
                        }
                    ],
                },
            },
        }

    export = files["dir"] / "events.json"
    export.write_text(
        json.dumps(
            {"events": [event(3, 300, "fail"), event(2, 200, "pass"), event(1, 100, "pass")]}
        )
    )
    done = cli("history", "--history", str(files["history"]), "import", str(export))
    assert done.returncode == 0, done.stderr
    assert "imported 3" in done.stdout
    again = cli("history", "--history", str(files["history"]), "import", str(export))
    assert "imported 0" in again.stdout
    evaluation = json.loads(evaluate_values(files, vals(215), "--format", "json").stdout)
    # Compared with the newest pass (200): +7.5 % is within +10 %.
    assert evaluation["evaluation"]["indicatorResults"][0]["value"]["comparedValue"] == 200
    assert evaluation["evaluation"]["comparedEvents"] == ["ev-2"]
    assert evaluation["result"] == "pass"


@pytest.mark.parametrize(
    ("slo_text", "code", "needle"),
    [
        (
            "objectives: [{sli: p95, pass: [{criteria: ['<=abc']}]}]\ntotal_score: {pass: '90%'}",
            1,
            "error with p95: could not parse criteria target value",
        ),
        ("objectives: [{sli: p95, pass: [{criteria: ['<600']}]}]", 2, "no target score defined"),
    ],
)
def test_invalid_slo_gives_lighthouses_result(
    files: dict[str, Path], slo_text: str, code: int, needle: str
) -> None:
    files["slo"].write_text(slo_text)
    result = evaluate_values(files, vals(100), "--format", "json")
    assert result.returncode == code
    assert needle in json.loads(result.stdout)["message"]


def test_cannot_run_without_values(files: dict[str, Path]) -> None:
    result = cli(
        "evaluate", "--slo", str(files["slo"]), *CLI_SCOPE, "--history", str(files["history"])
    )
    assert result.returncode == 2
    assert "--values" in result.stderr


def test_values_fetched_from_prometheus(
    files: dict[str, Path], prometheus: PrometheusServer, load_run: LoadRun, load_tags: RunTags
) -> None:
    files["slo"].write_text(
        "objectives:\n"
        "  - sli: http_reqs_total\n"
        f"    pass: [{{criteria: ['={load_run.summary['metrics']['http_reqs']['values']['count']}']}}]\n"
        "  - sli: http_req_failed_rate\n"
        "    pass: [{criteria: ['<0.5']}]\n"
        "total_score: {pass: '100%'}\n"
    )
    result = cli(
        "evaluate",
        "--slo",
        str(files["slo"]),
        *scope_args(load_run, load_tags),
        "--history",
        str(files["history"]),
        "--format",
        "json",
        env={"PROMETHEUS_URL": prometheus.url, "SLI_CONFIG_DIR": str(files["dir"])},
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert json.loads(result.stdout)["result"] == "pass"


async def acli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI without blocking the event loop that serves the test's target."""
    return await run_sli_provider(*args, env=env)


async def test_run_is_a_ci_quality_gate(
    files: dict[str, Path], prometheus: PrometheusServer, target: TargetServer
) -> None:
    """`sli-provider run`: k6 with the runner's invocation, its SLIs, the gate, the exit code."""
    files["slo"].write_text(
        "objectives:\n"
        "  - sli: http_req_failed_rate\n"
        "    pass: [{criteria: ['<0.3']}]\n"
        "  - sli: http_reqs_total\n"
        "    pass: [{criteria: ['>0']}]\n"
        "total_score: {pass: '100%'}\n"
    )
    env = {"PROMETHEUS_URL": prometheus.url, "SLI_CONFIG_DIR": str(files["dir"])}
    args = [
        "run",
        "--slo",
        str(files["slo"]),
        *CLI_SCOPE,
        "--history",
        str(files["history"]),
        "--script",
        str(LOAD_SCRIPT),
        "--target",
        target.url,
        "--env",
        "DURATION=1s",
        "--env",
        "VUS=1",
        "--format",
        "json",
    ]
    passed = await acli(*args, env=env)
    assert passed.returncode == 0, passed.stderr[-2000:]
    assert json.loads(passed.stdout)["result"] == "pass"
    failing = await acli(*args[:-2], "--env", "FAIL_EVERY=1", "--format", "json", env=env)
    assert failing.returncode == 1, failing.stderr[-2000:]
    with HistoryStore(files["history"]) as store:
        assert [r.result for r in store.list("shop", "dev", "web")] == ["fail", "pass"]
