"""Deadlines that hold across retries: a get-sli whose Prometheus hangs answers in time with
what it has; a query's retries end at QUERY_TIMEOUT_SECONDS. Real Prometheus behind the devkit's
failure-injecting gateway, the service in-process, the fake Keptn as its distributor."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from devkit.events import get_sli_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.gateway import TenantGateway
from devkit.k6run import LoadRun
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from sli_provider.config import ConfigError, Settings
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.timestamps import format_keptn
from tests.helpers import send_event

STARTED, FINISHED = "sh.keptn.event.get-sli.started", "sh.keptn.event.get-sli.finished"


async def test_a_get_sli_whose_prometheus_hangs_answers_at_its_deadline_with_what_it_has(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    """One query is answered, the other hangs in Prometheus: at GET_SLI_DEADLINE_SECONDS the
    finished goes out, once, with the answered value and the other indicator failed."""
    scope = f'keptn_project="{load_tags.project}",keptn_context="{load_tags.context}"'
    fake_keptn.set_resource(
        "indicators:\n"
        f"  answered: max(max_over_time(k6_vus_max{{{scope}}}[$DURATION_SECONDS]))\n"
        f'  hangs: max(max_over_time(k6_vus_max{{{scope},stuck_here=""}}[$DURATION_SECONDS]))\n',
        "k6/sli.yaml",
        project=load_tags.project,
    )
    event = get_sli_triggered(
        project=load_tags.project,
        stage=load_tags.stage,
        service=load_tags.service,
        start=format_keptn(load_run.start),
        end=format_keptn(load_run.end),
        indicators=["answered", "hangs"],
        context=load_tags.context,
    )
    async with TenantGateway(prometheus.url, tenant=None, token=None) as proxy:
        proxy.hold_queries_containing("stuck_here")
        # Each query alone may take 30 s: only the get-sli's own deadline can end it sooner.
        settings = Settings(
            prometheus_url=proxy.url,
            distributor_url=fake_keptn.url,
            get_sli_deadline_seconds=2,
            query_timeout_seconds=30,
            query_attempts=1,
        )
        async with running_service(settings) as url:
            loop = asyncio.get_running_loop()
            began = loop.time()
            await send_event(url, event)
            (finished,) = await fake_keptn.wait_for_events(
                type=FINISHED, shkeptncontext=event["shkeptncontext"], timeout=10
            )
            took = loop.time() - began
            await asyncio.sleep(1)  # a second finished event would show up by now
    assert 1.9 < took < 5
    replies = [e["type"] for e in fake_keptn.events_for(event["shkeptncontext"])]
    assert replies == [STARTED, FINISHED]
    assert fake_keptn.violations == []
    data = finished["data"]
    assert (data["status"], data["result"]) == ("succeeded", "warning"), data["message"]
    values = {v["metric"]: v for v in data["get-sli"]["indicatorValues"]}
    assert values["answered"]["success"]
    assert values["answered"]["value"] == load_run.summary["metrics"]["vus_max"]["values"]["max"]
    assert not values["hangs"]["success"]
    assert "deadline of 2 s passed" in values["hangs"]["message"]


async def test_query_retries_end_at_the_query_timeout(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    """Prometheus answers 503 with Retry-After: 1 again and again. With 20 tries allowed the
    query still gives up at QUERY_TIMEOUT_SECONDS (2 s), not after ~19 s of retries."""
    body: dict[str, Any] = {
        "project": load_tags.project,
        "stage": load_tags.stage,
        "service": load_tags.service,
        "start": load_run.start,
        "end": load_run.end,
        "indicators": ["vus_max"],
    }
    async with TenantGateway(prometheus.url, tenant=None, token=None) as proxy:
        proxy.fail_next(503, 100, retry_after="1")
        settings = Settings(
            prometheus_url=proxy.url,
            distributor_url=fake_keptn.url,
            query_timeout_seconds=2,
            query_attempts=20,
            retry_max_wait_seconds=5,
        )
        async with running_service(settings) as url, aiohttp.ClientSession() as session:
            async with asyncio.timeout(10), session.post(url + "/preview", json=body) as response:
                (item,) = (await response.json())["indicators"]
            # The preview's own queries; not its two asking which store answers (store_info).
            tries = len(
                [p for p in proxy.paths_seen if "buildinfo" not in p and "trace=1" not in p]
            )
    assert not item["success"]
    assert "503" in item["message"]
    assert 900 < item["duration_ms"] < 3000
    assert 2 <= tries <= 3


async def test_resource_retries_end_at_the_http_timeout(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    """The resource service answers 503 to every read. With 50 tries allowed the reads give up
    at HTTP_TIMEOUT_SECONDS (1 s) and the event is answered errored, not after ~20 s."""
    fake_keptn.fail_resources_with(503)
    event = get_sli_triggered(
        project=load_tags.project,
        stage=load_tags.stage,
        service=load_tags.service,
        start=format_keptn(load_run.start),
        end=format_keptn(load_run.end),
        indicators=["vus_max"],
        context=load_tags.context,
    )
    settings = Settings(
        prometheus_url=prometheus.url,
        distributor_url=fake_keptn.url,
        http_timeout_seconds=1,
        reply_attempts=50,
        retry_max_wait_seconds=0.5,
    )
    async with running_service(settings) as url:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await send_event(url, event)
        (finished,) = await fake_keptn.wait_for_events(
            type=FINISHED, shkeptncontext=event["shkeptncontext"], timeout=10
        )
        took = loop.time() - began
    assert took < 3
    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert "503" in finished["data"]["message"]


@pytest.mark.parametrize("field", ["get_sli_deadline_seconds", "nats_timeout_seconds"])
def test_deadline_settings_must_be_positive(field: str) -> None:
    with pytest.raises(ConfigError, match="must be positive"):
        Settings(**{field: 0}).validate()
