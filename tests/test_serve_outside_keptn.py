"""`serve` outside Keptn: sli.yaml and slo.yaml from its working directory, as the CLI reads them,
so /preview and /gate answer out of the box; a configured resource source that cannot be read
makes /ready say so instead of 200 beside a 502 on every /preview."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import aiohttp

from devkit.fake_keptn import FakeKeptn
from devkit.gate_runs import GATE_SLO
from devkit.k6run import LoadRun
from devkit.ports import free_port
from devkit.prometheus import PrometheusServer
from devkit.service import running_service, serve_process
from sli_provider.config import Secret, Settings
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.timestamps import format_keptn


async def test_serve_reads_the_working_directory_without_a_keptn_source(
    tmp_path: Path, prometheus: PrometheusServer, load_run: LoadRun, load_tags: RunTags
) -> None:
    (tmp_path / "k6").mkdir()
    (tmp_path / "k6" / "sli.yaml").write_text(
        "indicators:\n  doubled: sum(last_over_time(k6_http_reqs_total"
        '{$SELECTOR,keptn_context="$CONTEXT"}[$DURATION_SECONDS])) * 2\n'
    )
    (tmp_path / "slo.yaml").write_text(GATE_SLO)
    scope = {"project": load_tags.project, "stage": load_tags.stage, "service": load_tags.service}
    window = {
        "start": format_keptn(load_run.start),
        "end": format_keptn(load_run.end),
        "context": load_tags.context,
    }
    env = {
        "PROMETHEUS_URL": prometheus.url,
        "RUNNER_ENABLED": "false",
        "GATE_HISTORY": str(tmp_path / "history.sqlite3"),
    }
    async with serve_process(env, tmp_path / "serve.log", cwd=tmp_path) as service:
        ready = await service.get("/ready")
        async with aiohttp.ClientSession() as session:
            body = {**scope, **window, "indicators": ["doubled"]}
            async with session.post(service.url + "/preview", json=body) as response:
                preview = response.status, await response.json()
            async with session.post(service.url + "/gate", json={**scope, **window}) as response:
                gate = response.status, await response.json()
    assert ready[0] == 200, ready
    assert preview[0] == 200, preview
    count = load_run.summary["metrics"]["http_reqs"]["values"]["count"]
    assert preview[1]["indicators"][0]["value"] == 2 * count
    assert gate[0] == 200, gate
    assert gate[1]["result"] in ("pass", "fail", "warning")
    assert gate[1]["evaluation"]["sloFileContent"]  # ./slo.yaml was scored


async def test_ready_says_when_the_resource_service_cannot_be_read(
    tmp_path: Path, prometheus: PrometheusServer
) -> None:
    env = {
        "PROMETHEUS_URL": prometheus.url,
        "RUNNER_ENABLED": "false",
        "RESOURCE_SERVICE_URL": f"http://127.0.0.1:{free_port()}",
    }
    async with serve_process(env, tmp_path / "serve.log", cwd=tmp_path) as service:
        status, text = await service.get("/ready")
    assert status == 503
    assert "resource service" in text and "unreachable" in text


async def test_ready_follows_the_resource_service(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    """200 while Keptn's resource service answers (a 404 for the probe's unknown project is an
    answer), 503 with the reason while it fails or refuses the token."""
    async with FakeKeptn(api_token="right") as keptn:
        settings = Settings(
            prometheus_url=prometheus.url,
            runner_enabled=False,
            resource_service_url=keptn.resource_service_url,
            keptn_api_url=keptn.url,
            keptn_api_token=Secret("right"),
        )
        wrong = replace(settings, keptn_api_token=Secret("wrong"))
        async with running_service(settings) as url, aiohttp.ClientSession() as session:
            answers = [await _ready(session, url)]
            keptn.fail_resources_with(500)
            answers.append(await _ready(session, url))
            keptn.fail_resources_with(None)
            answers.append(await _ready(session, url))
        async with running_service(wrong) as url, aiohttp.ClientSession() as session:
            answers.append(await _ready(session, url))
    assert [status for status, _ in answers] == [200, 503, 200, 503], answers
    assert "answers HTTP 500" in answers[1][1]
    assert "refuses the token (HTTP 401)" in answers[3][1]


async def _ready(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with session.get(url + "/ready") as response:
        return response.status, await response.text()
