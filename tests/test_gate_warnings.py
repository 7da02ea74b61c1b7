"""What the gate must not hide: a key SLI without a value, an invalid slo.yaml, a --context
without series, contradicting options; and `sli-provider check`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devkit.k6run import LoadRun
from devkit.prometheus import PrometheusServer
from sli_provider.k6.invocation import RunTags
from tests.helpers import ANY_REQUESTS_SLO, CLI_SCOPE, cli, evaluate_args, scope_args

KEY_SLO = """
objectives:
  - sli: p95
    pass: [{criteria: ["<600"]}]
  - sli: errors
    pass: [{criteria: ["<=0.01"]}]
    key_sli: true
total_score: {pass: "50%"}
"""


def evaluate(
    tmp_path: Path,
    slo: str,
    values: list[dict[str, Any]],
    *extra: str,
) -> subprocess.CompletedProcess[str]:
    return cli(*evaluate_args(tmp_path, slo, values, "--no-store", *extra))


def test_a_key_sli_without_value_keeps_lighthouses_pass_but_is_named(tmp_path: Path) -> None:
    values = [{"metric": "p95", "value": 100, "success": True}]  # no value for the key SLI
    result = evaluate(tmp_path, KEY_SLO, values, "--format", "json")
    assert result.returncode == 0, result.stderr  # lighthouse's score: pass
    report = json.loads(result.stdout)
    assert (report["result"], report["evaluation"]["result"]) == ("pass", "pass")
    assert report["reasons"] == []
    (warning,) = report["warnings"]
    assert warning["code"] == "key_sli_without_value"
    assert "key SLI 'errors' has no value" in warning["message"]
    assert "warning: key SLI 'errors' has no value" in result.stderr
    strict = evaluate(tmp_path, KEY_SLO, values, "--strict", "--format", "json")
    assert strict.returncode == 1
    verdict = json.loads(strict.stdout)
    assert (verdict["result"], verdict["evaluation"]["result"]) == ("fail", "pass")
    assert "key SLI 'errors' has no value" in verdict["reasons"][0]
    assert verdict["reasons"][-1] == "--strict fails the gate on a warning"


def test_an_unparseable_criterion_says_slo_yaml_is_invalid(tmp_path: Path) -> None:
    slo = (
        "objectives:\n  - sli: p95\n    pass: [{criteria: ['<=abc']}]\ntotal_score: {pass: '90%'}\n"
    )
    result = evaluate(
        tmp_path, slo, [{"metric": "p95", "value": 1, "success": True}], "--format", "json"
    )
    assert result.returncode == 1  # lighthouse's result: the objective fails
    report = json.loads(result.stdout)
    assert report["result"] == "fail"
    (warning,) = report["warnings"]
    assert warning["code"] == "slo_invalid"
    assert "slo.yaml is invalid (line 3:" in warning["message"]
    assert "criterion '<=abc': could not parse criteria target value" in warning["message"]
    assert "warning: slo.yaml is invalid" in result.stderr


def test_check_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    slo, sli = tmp_path / "slo.yaml", tmp_path / "sli.yaml"
    slo.write_text(
        "comparison: {compare_with: last_one}\n"  # 1
        "objectives:\n"  # 2
        "  - sli: p95\n"  # 3
        "    pass: [{criteria: ['<=abc', '<600']}]\n"  # 4
        "  - displayName: nameless\n"  # 5
        "    key_sli: maybe\n"  # 6
        "total_score: {pass: ninety}\n"  # 7
    )
    sli.write_text("indicators:\n  ok: up\n  broken: {query: up, on_empty: never}\n")
    result = cli("check", "--slo", str(slo), "--sli", str(sli))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{slo}:1: comparison.compare_with: 'last_one' is not one of several_results, single_result",
        f"{slo}:4: objective 'p95' pass: criterion '<=abc': could not parse criteria target value",
        f"{slo}:5: objectives[1]: 'sli' is missing or empty",
        f"{slo}:6: objectives[1] key_sli: expected true or false",
        f"{slo}:7: total_score.pass: expected a percentage such as '90%'",
        f"{sli}:3: indicator 'broken': on_empty must be fail or zero",
    ]
    assert "6 problems found" in result.stderr


@pytest.mark.parametrize(
    "name", ["examples/slo.yaml", "tests/gate_cases/quality_gates_short_slo.yaml"]
)
def test_check_passes_clean_files(name: str) -> None:
    root = Path(__file__).resolve().parents[1]
    result = cli("check", "--slo", str(root / name), "--sli", str(root / "sli-templates/k6.yaml"))
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("ok: ")


def test_check_reports_broken_yaml_with_its_line(tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text("objectives:\n  - sli: p95\n    pass: [unclosed\n")
    result = cli("check", "--slo", str(slo))
    assert result.returncode == 1
    assert result.stdout.startswith(f"{slo}:4: not valid YAML")


def test_check_of_a_missing_file_is_one_plain_line(tmp_path: Path) -> None:
    missing = tmp_path / "slo.yaml"
    result = cli("check", "--slo", str(missing))
    assert result.returncode == 2
    assert (
        result.stderr == f"sli-provider check: cannot read {missing}: No such file or directory\n"
    )


def test_values_and_a_window_are_refused_together(tmp_path: Path) -> None:
    result = evaluate(
        tmp_path, KEY_SLO, [], "--start", "2026-01-01T00:00:00Z", "--end", "2026-01-01T00:05:00Z"
    )
    assert result.returncode == 2
    assert "--values and --start/--end exclude each other" in result.stderr


def test_a_context_without_series_is_a_warning(
    tmp_path: Path, prometheus: PrometheusServer, load_run: LoadRun, load_tags: RunTags
) -> None:
    """The built-ins then use every run of the scope; the user is told so."""
    (tmp_path / "slo.yaml").write_text(ANY_REQUESTS_SLO)
    result = cli(
        "evaluate",
        "--slo",
        str(tmp_path / "slo.yaml"),
        *scope_args(load_run, load_tags, context="no-such-run"),
        "--history",
        str(tmp_path / "h.sqlite3"),
        "--format",
        "json",
        env={"PROMETHEUS_URL": prometheus.url, "SLI_CONFIG_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (warning,) = report["warnings"]
    assert warning["code"] == "context_not_found"
    assert "no k6 series of context 'no-such-run'" in warning["message"]
    assert "warning: no k6 series of context 'no-such-run'" in result.stderr


@pytest.mark.parametrize(
    ("content", "reason"), [(None, "No such file or directory"), ("{", "not JSON: Expecting")]
)
def test_an_unreadable_values_file_is_one_plain_line(
    tmp_path: Path, content: str | None, reason: str
) -> None:
    (tmp_path / "slo.yaml").write_text(KEY_SLO)
    values = tmp_path / "values.json"
    if content is not None:
        values.write_text(content)
    result = cli(
        "evaluate",
        "--slo",
        str(tmp_path / "slo.yaml"),
        *CLI_SCOPE,
        "--values",
        str(values),
        "--history",
        str(tmp_path / "h.sqlite3"),
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"sli-provider evaluate: cannot read values from {values}: {reason}"
    ), result.stderr
    assert "Errno" not in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("--vus", "0", "'0' is not a positive integer"),
        ("--duration", "abc", "'abc' is not a duration such as 90s, 5m or 1h30m"),
        ("--timeout", "-5", "'-5' is not a positive number of seconds"),
    ],
)
def test_run_refuses_bad_k6_options_before_anything_runs(
    tmp_path: Path, option: str, value: str, reason: str
) -> None:
    """Not k6's own "could not start (bad option?)" after the checks: argparse, at once."""
    (tmp_path / "slo.yaml").write_text(KEY_SLO)
    (tmp_path / "load.js").write_text("export default function () {}\n")
    result = cli(
        "run",
        "--slo",
        str(tmp_path / "slo.yaml"),
        *CLI_SCOPE,
        "--script",
        str(tmp_path / "load.js"),
        f"{option}={value}",
        "--prometheus-url",
        "http://127.0.0.1:9",
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"sli-provider run: error: argument {option}: {reason}"
    ), result.stderr


def test_a_window_that_ends_before_it_starts_is_refused(tmp_path: Path) -> None:
    (tmp_path / "slo.yaml").write_text(KEY_SLO)
    result = cli(
        "evaluate",
        "--slo",
        str(tmp_path / "slo.yaml"),
        *CLI_SCOPE,
        "--start",
        "2026-11-29T09:00:00Z",
        "--end",
        "2026-11-29T08:00:00Z",
        "--prometheus-url",
        "http://127.0.0.1:9",
        "--no-store",
    )
    assert result.returncode == 2
    assert result.stderr == (
        "sli-provider evaluate: the window's end (2026-11-29T08:00:00Z) is before its start "
        "(2026-11-29T09:00:00Z)\n"
    )
