""" "no data" says why: the window in the future, no k6 series of the scope
at all, none in the window, series without the trend stats the built-ins read."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

from devkit.k6run import LoadRun
from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.timestamps import format_keptn
from sli_provider.runner.local import find_k6_binary
from sli_provider.sli.diagnosis import reads_trend_stats, scope_reason
from sli_provider.sli.window import SLIWindow
from tests.helpers import cli

PLAIN_SCRIPT = """
import http from 'k6/http';
export const options = { vus: 1, iterations: 3 };
export default function () { http.get(__ENV.TARGET_URL + '/'); }
"""


def preview(
    tmp_path: Path,
    prometheus_url: str,
    project: str,
    stage: str,
    service: str,
    start: float,
    end: float,
    *indicators: str,
) -> dict[str, dict[str, object]]:
    result = cli(
        "preview",
        "--project",
        project,
        "--stage",
        stage,
        "--service",
        service,
        "--start",
        format_keptn(start),
        "--end",
        format_keptn(end),
        "--indicators",
        ",".join(indicators),
        "--json",
        cwd=tmp_path,
        env={"PROMETHEUS_URL": prometheus_url},
    )
    assert result.returncode in (0, 1), result.stderr
    return {v["metric"]: v for v in json.loads(result.stdout)["indicators"]}


def test_which_builtins_read_trend_stats_k6_does_not_write_by_default() -> None:
    assert reads_trend_stats("max(last_over_time(k6_http_req_duration_p95{$SELECTOR}[1s]))")
    assert reads_trend_stats("sum(last_over_time(k6_http_req_duration_sum{a}[1s]))")
    assert not reads_trend_stats("max(last_over_time(k6_http_req_duration_p99{a}[1s]))")
    assert not reads_trend_stats("sum(last_over_time(k6_http_reqs_total{a}[1s]))")


def test_a_window_in_the_future_is_named_without_asking_prometheus() -> None:
    now = time.time()
    window = SLIWindow("shop", "dev", "web", now + 60, now + 120)
    assert scope_reason(window, now, anywhere=True, in_window=False) == (
        "the window lies in the future"
    )


def test_no_data_reasons_for_the_scope_and_the_window(
    tmp_path: Path, prometheus: PrometheusServer, load_run: LoadRun, load_tags: RunTags
) -> None:
    tags = (load_tags.project, load_tags.stage, load_tags.service)
    unknown = preview(
        tmp_path,
        prometheus.url,
        "nobody",
        "dev",
        "web",
        load_run.start,
        load_run.end,
        "http_reqs_total",
    )
    assert unknown["http_reqs_total"]["message"] == (
        "no data: the query returned an empty result; Prometheus holds no k6 series of "
        "nobody/dev/web at all (tags keptn_project, keptn_stage, keptn_service): did k6 write "
        "to this Prometheus with these tags?"
    )
    before = preview(
        tmp_path,
        prometheus.url,
        *tags,
        load_run.start - 3600,
        load_run.start - 3000,
        "http_reqs_total",
    )
    assert before["http_reqs_total"]["message"].endswith(
        f"; Prometheus holds k6 series of {'/'.join(tags)}, but none in the window"
    )
    future = preview(
        tmp_path, prometheus.url, *tags, time.time() + 3600, time.time() + 7200, "http_reqs_total"
    )
    assert future["http_reqs_total"]["message"].endswith("; the window lies in the future")


async def test_series_without_the_runners_trend_stats_are_named(
    tmp_path: Path, prometheus: PrometheusServer, target: TargetServer
) -> None:
    """k6 run by hand without K6_PROMETHEUS_RW_TREND_STATS writes only _p99 of each trend."""
    project = f"plain-{uuid.uuid4().hex[:8]}"
    (tmp_path / "plain.js").write_text(PLAIN_SCRIPT)
    start = time.time()
    process = await asyncio.create_subprocess_exec(
        find_k6_binary(),
        "run",
        "--quiet",
        "-o",
        "experimental-prometheus-rw",
        "--tag",
        f"keptn_project={project}",
        "--tag",
        "keptn_stage=dev",
        "--tag",
        "keptn_service=web",
        str(tmp_path / "plain.js"),
        env={
            "K6_PROMETHEUS_RW_SERVER_URL": prometheus.remote_write_url,
            "TARGET_URL": target.url,
            "K6_NO_USAGE_REPORT": "true",
        },
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-2000:]
    end = time.time() + 1
    values = await asyncio.to_thread(
        preview,
        tmp_path,
        prometheus.url,
        project,
        "dev",
        "web",
        start,
        end,
        "http_req_duration_p95",
        "http_req_duration_p99",
    )
    assert values["http_req_duration_p99"]["success"] is True
    message = str(values["http_req_duration_p95"]["message"])
    assert "lack the trend stats this indicator reads" in message, message
    assert "K6_PROMETHEUS_RW_TREND_STATS=p(50),p(90),p(95),p(99)" in message
