"""`sli-provider run` as a CI gate: pre-flight before k6, k6's thresholds, script errors
(issue 12, items 2, 3 and 4). Real k6 and Prometheus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
from pathlib import Path

import pytest

from devkit.cli import run_sli_provider
from devkit.ports import free_port
from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer
from sli_provider.gate.html_chart import RESULT_COLOURS
from tests.helpers import ANY_REQUESTS_SLO

SCOPE = ["--project", "shop", "--stage", "ci", "--service", "gate"]
CROSSING_SCRIPT = """
import http from 'k6/http';
export const options = { vus: 1, iterations: 2, thresholds: { http_req_failed: ['rate<0.01'] } };
export default function () { http.get(__ENV.TARGET_URL + '/fail'); }
"""
SLO = ANY_REQUESTS_SLO
K6_BANNER = "execution: local"
PASSED_RUNS_ONLY = (
    "comparison: {compare_with: several_results, number_of_comparison_results: 3,"
    " include_result_with_score: pass}\n"
)


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


async def test_one_verdict_in_the_json_html_history_and_later_comparisons(
    prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    """k6 exits 99 while the SLOs pass: the gate fails, and every output says so; lighthouse's
    own result stays inside the evaluation; a later run does not compare with the failed one."""
    (tmp_path / "slo.yaml").write_text(SLO + PASSED_RUNS_ONLY)
    page_file = tmp_path / "report.html"
    first = await gate_run(
        tmp_path, prometheus.url, target.url, "--format", "html", "--output", str(page_file)
    )
    assert first.returncode == 1, first.stderr[-3000:]
    assert f"verdict: fail; report written to {page_file}" in first.stderr
    page = page_file.read_text()
    assert "<title>Quality gate FAIL: shop/ci/gate</title>" in page
    banner = page[page.index('<header id="verdict"') : page.index("</header>")]
    assert 'data-result="fail"' in banner and f"background:{RESULT_COLOURS['fail']}" in banner
    assert ">FAIL<" in banner and "score 100%" in banner  # the score stays lighthouse's
    assert "FAIL, though lighthouse's result is PASS" in banner
    assert "k6 thresholds crossed: http_req_failed: rate&lt;0.01" in banner
    row = page[page.index('<tr class="threshold"') :]
    row = row[: row.index("</tr>")]
    assert 'data-status="crossed"' in row and "<code>rate&lt;0.01</code>" in row
    assert '<td class="num" data-label="Value k6 reported">1</td>' in row  # every request failed

    second = await gate_run(
        tmp_path, prometheus.url, target.url, "--thresholds", "ignore", "--format", "json"
    )
    assert second.returncode == 0, second.stderr[-3000:]
    passed = json.loads(second.stdout)
    assert (passed["result"], passed["reasons"]) == ("pass", [])
    assert "comparedEvents" not in passed["evaluation"]  # the failed run is no baseline

    third = await gate_run(tmp_path, prometheus.url, target.url, "--format", "json")
    assert third.returncode == 1, third.stderr[-3000:]
    report = json.loads(third.stdout)
    assert (report["result"], report["status"], report["score"]) == ("fail", "succeeded", 100)
    assert report["evaluation"]["result"] == "pass"  # lighthouse's own
    assert report["reasons"] == ["k6 thresholds crossed: http_req_failed: rate<0.01"]
    assert "gateResult" not in report and "gateReasons" not in report
    assert report["k6"] == {
        "exitCode": 99,
        "thresholdPolicy": "fail",
        "thresholds": [
            {
                "metric": "http_req_failed",
                "threshold": "rate<0.01",
                "value": "1",
                "ok": False,
                "status": "crossed",
            }
        ],
    }
    listed = await run_sli_provider(
        "history",
        "list",
        *SCOPE,
        "--history",
        str(tmp_path / "history.sqlite3"),
        cwd=tmp_path,
        env={},
    )
    results = [line.split()[1] for line in listed.stdout.splitlines()]
    assert results == ["fail", "pass", "fail"], listed.stdout  # newest first
    second_id = listed.stdout.splitlines()[1].split()[3]
    assert report["evaluation"]["comparedEvents"] == [second_id]


async def test_threshold_policy_warning_and_the_table_and_html_show_them(
    prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    warned = await gate_run(tmp_path, prometheus.url, target.url, "--thresholds", "warning")
    assert warned.returncode == 0, warned.stderr[-3000:]
    first_line = warned.stdout.splitlines()[0]
    assert first_line == "quality gate for shop/ci/gate: WARNING  score 100.00%"
    assert "k6 thresholds: 1 of 1 crossed (--thresholds warning: warn):" in warned.stdout
    assert "CROSSED http_req_failed: rate<0.01 (k6: 1)" in warned.stdout
    assert "verdict WARNING, not lighthouse's PASS: k6 thresholds crossed" in warned.stdout
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
    assert "<title>Quality gate PASS: shop/ci/gate</title>" in html
    assert 'id="reasons"' not in html  # the verdict is lighthouse's
    assert "k6 thresholds: 1 of 1 crossed (--thresholds ignore: ignored)" in html
    assert 'data-metric="http_req_failed" data-status="crossed"' in html


async def test_thresholds_that_all_held_do_not_read_like_a_failure(
    prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    script = CROSSING_SCRIPT.replace("/fail", "/").replace("rate<0.01", "rate<0.5")
    result = await gate_run(tmp_path, prometheus.url, target.url, script=script)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[0] == "quality gate for shop/ci/gate: PASS  score 100.00%"
    assert "k6 exit code 0; k6 thresholds: all 1 held:" in result.stdout
    assert "  held    http_req_failed: rate<0.5 (k6: 0)" in result.stdout
    assert "CROSSED" not in result.stdout and "crossed" not in result.stdout
    assert not [line for line in result.stderr.splitlines() if line.startswith("{")]


async def test_the_cli_logs_json_records_only_when_asked(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    (tmp_path / "slo.yaml").write_text(SLO)
    args = [
        "evaluate",
        "--slo",
        str(tmp_path / "slo.yaml"),
        *SCOPE,
        "--no-store",
        "--history",
        str(tmp_path / "h.sqlite3"),
        "--start",
        "2026-01-01T00:00:00Z",
        "--end",
        "2026-01-01T00:01:00Z",
    ]
    env = {"PROMETHEUS_URL": prometheus.url}
    quiet = await run_sli_provider(*args, cwd=tmp_path, env=env)
    assert quiet.returncode == 1, quiet.stderr  # no k6 series in that window: no value
    assert not [line for line in quiet.stderr.splitlines() if line.startswith("{")], quiet.stderr
    asked = await run_sli_provider(*args, cwd=tmp_path, env={**env, "LOG_LEVEL": "DEBUG"})
    records = [json.loads(line) for line in asked.stderr.splitlines() if line.startswith("{")]
    assert records and {"time", "level", "message"} <= set(records[0])


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


async def test_two_runs_at_once_do_not_clash_on_k6s_rest_api_port(
    prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    """Two CI jobs on one machine, while something else already holds k6's default REST API
    port (localhost:6565): both k6 run their whole test."""
    script = (
        "import http from 'k6/http'; import { sleep } from 'k6';\n"
        "export const options = { vus: 1, duration: '3s' };\n"
        "export default function () { http.get(__ENV.TARGET_URL + '/'); sleep(0.2); }\n"
    )
    holder = socket.socket()
    with contextlib.suppress(OSError):  # taken already (another k6?): just as good for the test
        holder.bind(("127.0.0.1", 6565))
        holder.listen()
    try:
        jobs = [tmp_path / "a", tmp_path / "b"]
        for job in jobs:
            job.mkdir()
        results = await asyncio.gather(
            *(gate_run(job, prometheus.url, target.url, script=script) for job in jobs)
        )
    finally:
        holder.close()
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
        assert "address already in use" not in result.stderr
        assert "quality gate for shop/ci/gate: PASS" in result.stdout


async def test_a_script_reading_an_unset_env_variable_stops_in_one_line(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    """No --target for a script that reads __ENV.TARGET_URL: one sentence, before k6 starts."""
    (tmp_path / "script.js").write_text(CROSSING_SCRIPT)
    (tmp_path / "slo.yaml").write_text(SLO)
    args = [
        "run",
        "--slo",
        str(tmp_path / "slo.yaml"),
        *SCOPE,
        "--script",
        str(tmp_path / "script.js"),
        "--history",
        str(tmp_path / "h.sqlite3"),
    ]
    env = {"PROMETHEUS_URL": prometheus.url}
    result = await run_sli_provider(*args, cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"sli-provider run: before starting k6: {tmp_path / 'script.js'} reads "
        "__ENV.TARGET_URL, which is not set: give --target URL"
    ]
    assert K6_BANNER not in result.stderr
    with_fallback = "const base = __ENV.BASE_URL || 'http://127.0.0.1:9';\n" + CROSSING_SCRIPT
    (tmp_path / "script.js").write_text(with_fallback.replace("__ENV.TARGET_URL", "base"))
    handled = await run_sli_provider(*args, "--thresholds", "ignore", cwd=tmp_path, env=env)
    assert K6_BANNER in handled.stderr, handled.stderr[-3000:]  # the script's own default
