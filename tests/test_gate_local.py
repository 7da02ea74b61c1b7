"""The CLI outside Keptn: sli.yaml from the working directory, and customFilters that reach
only the queries that name them."""

from __future__ import annotations

import json
from pathlib import Path

from devkit.k6run import LoadRun
from devkit.prometheus import PrometheusServer
from sli_provider.k6.invocation import RunTags
from tests.helpers import cli, scope_args


def summary_count(load_run: LoadRun) -> float:
    return float(load_run.summary["metrics"]["http_reqs"]["values"]["count"])


def test_preview_outside_keptn_uses_the_builtins_without_a_sidecar(
    tmp_path: Path, prometheus: PrometheusServer, load_run: LoadRun, load_tags: RunTags
) -> None:
    """No KEPTN_API_URL, no sidecar, no ./k6/sli.yaml: the built-ins alone, no localhost:8081."""
    result = cli(
        "preview",
        *scope_args(load_run, load_tags),
        "--indicators",
        "http_reqs_total",
        "--json",
        cwd=tmp_path,
        env={"PROMETHEUS_URL": prometheus.url},
    )
    assert result.returncode == 0, result.stderr
    (value,) = json.loads(result.stdout)["indicators"]
    assert value["value"] == summary_count(load_run)


def test_local_sli_yaml_is_read_from_the_working_directory(
    tmp_path: Path, prometheus: PrometheusServer, load_run: LoadRun, load_tags: RunTags
) -> None:
    (tmp_path / "k6").mkdir()
    (tmp_path / "k6" / "sli.yaml").write_text(
        "indicators:\n  doubled: sum(last_over_time(k6_http_reqs_total{$SELECTOR}"
        "[$DURATION_SECONDS])) * 2\n"
    )
    result = cli(
        "preview",
        *scope_args(load_run, load_tags),
        "--indicators",
        "doubled",
        "--json",
        cwd=tmp_path,
        env={"PROMETHEUS_URL": prometheus.url},
    )
    assert result.returncode == 0, result.stderr
    (value,) = json.loads(result.stdout)["indicators"]
    assert value["value"] == 2 * summary_count(load_run)


def test_a_configured_sidecar_is_still_used(
    tmp_path: Path, prometheus: PrometheusServer, load_run: LoadRun, load_tags: RunTags
) -> None:
    """DISTRIBUTOR_URL set: the user asked for Keptn's resources, so no silent local fallback."""
    result = cli(
        "preview",
        *scope_args(load_run, load_tags),
        "--indicators",
        "http_reqs_total",
        cwd=tmp_path,
        env={
            "PROMETHEUS_URL": prometheus.url,
            "DISTRIBUTOR_URL": "http://127.0.0.1:9",
            "HTTP_TIMEOUT_SECONDS": "2",
            "REPLY_ATTEMPTS": "1",
        },
    )
    assert result.returncode == 2  # could not run, as evaluate and run say it
    assert "cannot read the SLI configuration" in result.stderr


def test_a_filter_for_a_custom_sli_leaves_the_builtins_equal_to_k6s_summary(
    tmp_path: Path, prometheus: PrometheusServer, load_run: LoadRun, load_tags: RunTags
) -> None:
    """slo.yaml's filter reaches the custom SLI that names it ($route), not the built-ins."""
    (tmp_path / "k6").mkdir()
    (tmp_path / "k6" / "sli.yaml").write_text(
        "indicators:\n  route_reqs: sum(last_over_time(k6_http_reqs_total{$SELECTOR,"
        'route="$route"}[$DURATION_SECONDS])) or vector(0)\n'
    )
    slo = tmp_path / "slo.yaml"
    slo.write_text(
        "filter: {route: checkout}\n"
        "objectives:\n"
        "  - sli: http_reqs_total\n"
        "  - sli: route_reqs\n"
        "total_score: {pass: '90%'}\n"
    )
    result = cli(
        "evaluate",
        "--slo",
        str(slo),
        *scope_args(load_run, load_tags),
        "--history",
        str(tmp_path / "h.sqlite3"),
        "--format",
        "json",
        cwd=tmp_path,
        env={"PROMETHEUS_URL": prometheus.url},
    )
    assert result.returncode == 0, result.stderr
    values = {
        r["value"]["metric"]: r["value"]
        for r in json.loads(result.stdout)["evaluation"]["indicatorResults"]
    }
    assert values["http_reqs_total"]["success"] is True
    assert values["http_reqs_total"]["value"] == summary_count(load_run)
    assert values["route_reqs"] == {**values["route_reqs"], "success": True, "value": 0}
