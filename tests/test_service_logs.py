"""The service's log: why an answer was not a plain pass, and k6's banner as one line."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest

from devkit.events import get_sli_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from sli_provider.config import Settings
from sli_provider.k6.invocation import RemoteWriteTarget, RunTags
from sli_provider.runner.local import LocalK6Backend, log_k6_line
from sli_provider.runner.plan import LocalScript, RunPlan
from tests.helpers import send_event

ONE_ITERATION = """
export const options = { vus: 1, iterations: 1 };
export default function () { console.log('iteration ran'); }
"""


async def test_an_errored_answer_is_logged_as_a_warning_with_its_reason(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, caplog: pytest.LogCaptureFixture
) -> None:
    fake_keptn.set_resource("indicators: [unclosed", "k6/sli.yaml", project="shop")
    event = get_sli_triggered(
        project="shop",
        stage="dev",
        service="web",
        start="2026-01-01T00:00:00Z",
        end="2026-01-01T00:01:00Z",
        indicators=["vus_max"],
    )
    settings = Settings(prometheus_url=prometheus.url, distributor_url=fake_keptn.url)
    caplog.set_level(logging.INFO, logger="sli_provider")
    async with running_service(settings) as url:
        await send_event(url, event)
        await fake_keptn.wait_for_events(
            type="sh.keptn.event.get-sli.finished", shkeptncontext=event["shkeptncontext"]
        )
    answered = [r for r in caplog.records if "answered" in r.getMessage()]
    assert len(answered) == 1
    assert answered[0].levelno == logging.WARNING
    assert answered[0].getMessage().startswith("get-sli answered errored/fail: ")
    assert "not valid YAML" in answered[0].getMessage()


async def test_k6_banner_is_one_line_per_run(
    prometheus: PrometheusServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    script = tmp_path / "one.js"
    script.write_text(ONE_ITERATION)
    backend = LocalK6Backend(work_dir=tmp_path, on_line=log_k6_line)

    def plan() -> RunPlan:
        return RunPlan(
            tags=RunTags("shop", "dev", "web", str(uuid.uuid4())),
            script=LocalScript(script),
            remote_write=RemoteWriteTarget(prometheus.url + "/api/v1/write"),
        )

    caplog.set_level(logging.INFO, logger="sli_provider.k6")
    # Two at once: each process's banner stays its own.
    await asyncio.gather(backend.execute(plan()), backend.execute(plan()))
    lines = [r.getMessage() for r in caplog.records if r.name == "sli_provider.k6"]
    started = [line for line in lines if line.startswith("k6 started: ")]
    assert len(started) == 2, lines
    for line in started:
        assert "execution: local" in line and f"script: {script}" in line
        assert "scenarios: (100.00%) 1 scenario" in line and "* default: 1 iterations" in line
    assert not any("Grafana" in line or "‾" in line or not line.strip() for line in lines)
    assert not any(line.lstrip().startswith(("execution:", "script:", "output:")) for line in lines)
    assert sum("iteration ran" in line for line in lines) == 2  # the rest still comes through
