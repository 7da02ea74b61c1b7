"""`sli-provider run` as a CI gate: pre-flight before k6, k6's thresholds, script errors.
Real k6 and Prometheus."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from devkit.cli import run_sli_provider
from devkit.ports import free_port
from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer

SCOPE = ["--project", "shop", "--stage", "ci", "--service", "gate"]
CROSSING_SCRIPT = """
import http from 'k6/http';
export const options = { vus: 1, iterations: 2, thresholds: { http_req_failed: ['rate<0.01'] } };
export default function () { http.get(__ENV.TARGET_URL + '/fail'); }
"""
SLO = "objectives:\n  - sli: http_reqs_total\n    pass: [{criteria: ['>0']}]\ntotal_score: {pass: '100%'}\n"
K6_BANNER = "execution: local"


async def gate_run(
    tmp_path: Path,
    prometheus_url: str,
    target_url: str,
    *extra: str,
    script: str = CROSSING_SCRIPT,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "script.js").write_text(script)
    slo = tmp_path / "slo.yaml"
    if not slo.exists():
        slo.write_text(SLO)
    return await run_sli_provider(
        "run",
        "--slo",
        str(slo),
        *SCOPE,
        "--history",
        str(tmp_path / "history.sqlite3"),
        "--script",
        str(tmp_path / "script.js"),
        "--target",
        target_url,
        *extra,
        cwd=tmp_path,
        env={"PROMETHEUS_URL": prometheus_url, **(env or {})},
    )


async def test_crossed_thresholds_fail_the_gate_by_default(
    prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    """k6 exits 99 while the SLOs pass: the gate fails; lighthouse's pass stays in evaluation."""
    result = await gate_run(tmp_path, prometheus.url, target.url, "--format", "json")
    assert result.returncode == 1, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert (report["result"], report["evaluation"]["result"]) == ("fail", "pass")
    assert report["k6"] == {
        "exitCode": 99,
        "thresholdPolicy": "fail",
        "thresholds": [
            {
                "metric": "http_req_failed",
                "threshold": "rate<0.01",
                "ok": False,
                "status": "crossed",
            }
        ],
    }
    assert "k6 thresholds crossed: http_req_failed: rate<0.01" in report["reasons"][0]


async def test_threshold_policy_warning_and_the_table_and_html_show_them(
    prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    warned = await gate_run(tmp_path, prometheus.url, target.url, "--thresholds", "warning")
    assert warned.returncode == 0, warned.stderr[-3000:]
    assert "CROSSED http_req_failed: rate<0.01" in warned.stdout
    assert "gate: WARNING (k6 thresholds crossed" in warned.stdout
    assert "warning: k6 thresholds crossed: http_req_failed: rate<0.01" in warned.stderr
    report = tmp_path / "report.html"
    ignored = await gate_run(
        tmp_path,
        prometheus.url,
        target.url,
        "--thresholds",
        "ignore",
        "--format",
        "html",
        "--output",
        str(report),
    )
    assert ignored.returncode == 0, ignored.stderr[-3000:]
    html = report.read_text()
    assert '<section id="gate-notes">' in html
    assert "<td>http_req_failed</td><td>rate&lt;0.01</td><td>crossed</td>" in html
    assert html.index('id="gate-notes"') < html.rindex("</body>")


async def test_a_script_error_says_k6_could_not_run_the_script(
    prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    result = await gate_run(
        tmp_path, prometheus.url, target.url, script="export default function () { let x = ; }\n"
    )
    assert result.returncode == 2
    message = result.stderr[result.stderr.index("sli-provider run: ") :]
    assert message.startswith(
        "sli-provider run: k6 could not run the script: a script error (k6 exit code 107)"
    ), message
    assert "Unexpected token ;" in message  # k6's own reason follows


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("sli", "before starting k6: cannot read the SLI configuration"),
        ("slo", "before starting k6: slo.yaml cannot be read: objectives: expected a list"),
        ("history", "before starting k6: the history cannot be opened"),
        ("prometheus", "before starting k6: Prometheus (http://127.0.0.1:9) does not answer"),
        ("script", "sli-provider run: before starting k6: cannot read "),
        ("html", "sli-provider run: --format html needs --output FILE"),
    ],
)
async def test_preflight_finds_problems_before_k6_starts(
    prometheus: PrometheusServer,
    target: TargetServer,
    tmp_path: Path,
    problem: str,
    expected: str,
) -> None:
    url, env = prometheus.url, {"SLI_CONFIG_DIR": str(tmp_path / "config")}
    extra: list[str] = []
    if problem == "sli":
        (tmp_path / "config" / "shop" / "k6").mkdir(parents=True)
        (tmp_path / "config" / "shop" / "k6" / "sli.yaml").write_text("indicators: [unclosed")
    elif problem == "slo":
        (tmp_path / "slo.yaml").write_text("objectives: 5\n")
    elif problem == "history":
        (tmp_path / "taken").write_text("a file, not a directory")
        extra = ["--history", str(tmp_path / "taken" / "history.sqlite3")]
    elif problem == "script":
        extra = ["--script", str(tmp_path / "missing.js")]  # the last --script wins
    elif problem == "html":
        extra = ["--format", "html"]
    else:
        url, env = "http://127.0.0.1:9", {**env, "QUERY_ATTEMPTS": "1"}
    result = await gate_run(tmp_path, url, target.url, *extra, env=env)
    assert result.returncode == 2
    assert expected in result.stderr, result.stderr[-2000:]
    assert K6_BANNER not in result.stderr  # k6 never started


async def test_preflight_probes_the_remote_write_receiver(
    target: TargetServer, tmp_path: Path
) -> None:
    """An empty remote-write body: 400 from a receiver (nothing written), 404 without one."""
    async with PrometheusServer(tmp_path / "no-rw", remote_write_receiver=False) as plain:
        url = plain.url
        result = await gate_run(tmp_path, url, target.url)
    assert result.returncode == 2
    assert (
        f"before starting k6: Prometheus does not accept remote write at {url}/api/v1/write "
        "(404): start it with --web.enable-remote-write-receiver"
    ) in result.stderr, result.stderr[-2000:]
    assert K6_BANNER not in result.stderr


async def test_an_unreachable_prometheus_stops_the_run_without_a_history_or_the_request(
    target: TargetServer, tmp_path: Path
) -> None:
    """The message names scheme://host:port only: not the credentials, the URL's path or the
    request's query string (the PromQL); and the default history is not created by a run that
    stops before k6."""
    port = free_port()
    (tmp_path / "script.js").write_text(CROSSING_SCRIPT)
    (tmp_path / "slo.yaml").write_text(SLO)
    result = await run_sli_provider(
        "run",
        "--slo",
        "slo.yaml",
        *SCOPE,
        "--script",
        "script.js",
        "--target",
        target.url,
        cwd=tmp_path,
        env={
            "PROMETHEUS_URL": f"http://reader:s3cret@127.0.0.1:{port}/prom?tenant=t1",
            "QUERY_ATTEMPTS": "1",
            "SLI_CONFIG_DIR": str(tmp_path / "config"),
        },
    )
    assert result.returncode == 2, result.stderr[-2000:]
    origin = f"http://127.0.0.1:{port}"
    assert (
        f"sli-provider run: before starting k6: Prometheus ({origin}) does not answer: "
        f"Prometheus at {origin} is unreachable (retried for up to"
    ) in result.stderr, result.stderr[-2000:]
    assert result.stderr.rstrip().endswith("tries): Connection refused"), result.stderr[-2000:]
    for leaked in ("s3cret", "reader", "/prom", "tenant", "api/v1", "vector"):
        assert leaked not in result.stderr
    assert not (tmp_path / ".sli-provider").exists()


async def test_run_makes_k6s_directory_in_runner_work_dir(
    prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    """RUNNER_WORK_DIR is a setting of run as of serve; one that does not exist is one line."""
    missing = tmp_path / "missing"
    result = await gate_run(tmp_path, prometheus.url, target.url, "--runner-work-dir", str(missing))
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.rstrip().splitlines()[-1] == (
        f"sli-provider run: cannot make k6's private directory in {missing} (RUNNER_WORK_DIR): "
        "No such file or directory"
    )
    assert K6_BANNER not in result.stderr and "Traceback" not in result.stderr
