"""A get-sli never scores a run's half-written or half-visible data (sli/freshness.py).

Real k6, real Prometheus and VictoriaMetrics, the service, a fake Keptn. k6's pushes go through
a relay that accepts them at once and delivers them late (devkit/write_delay.py), so a get-sli
sent the moment k6 exits meets a run whose last push the store does not show yet.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from devkit.events import get_sli_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.k6run import LoadRun, run_load
from devkit.k6summary import expected_values, from_handle_summary
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.stores import MetricsStore
from devkit.target import TargetServer
from devkit.victoria import VictoriaMetricsServer
from devkit.write_delay import DelayedRemoteWrite
from sli_provider.adapters.prometheus import PrometheusClient
from sli_provider.config import Settings
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.timestamps import format_keptn
from sli_provider.ports.metrics_store import PROMETHEUS, VICTORIAMETRICS
from sli_provider.sli.builtin import load_builtin_templates
from sli_provider.sli.freshness import Sighting, judge
from sli_provider.sli.window import SLIWindow
from tests.helpers import send_event

# http_reqs_per_second is per second of the event's window, which k6's summary does not know.
COMPARED = sorted(set(load_builtin_templates()) - {"http_reqs_per_second"})


def run_tags() -> RunTags:
    return RunTags(project="fresh", stage="dev", service="web", context=str(uuid.uuid4()))


async def late_run(
    store: MetricsStore,
    target: TargetServer,
    keptn: FakeKeptn,
    workdir: Path,
    *,
    delay: float,
    duration: str,
    freshness_wait: float = 15.0,
) -> tuple[LoadRun, dict[str, Any]]:
    """A run whose pushes reach ``store`` ``delay`` s late, and the get-sli.finished of a
    get-sli sent the moment k6 exited. The run outlasts ``delay``, so the store shows its
    first pushes by then (a run it shows nothing of is no run to wait for)."""
    tags = run_tags()
    async with DelayedRemoteWrite(store.remote_write_url, delay=delay) as relay:
        run = await run_load(
            prometheus_url=store.url,
            target_url=target.url,
            tags=tags,
            workdir=workdir,
            duration=duration,
            write_url=relay.write_url,
            wait_for_final_push=False,
        )
        # k6 has exited, and the store does not hold all of the run yet.
        shown = await iterations_in(store, tags, run)
        assert shown < run.summary["metrics"]["iterations"]["values"]["count"]
        finished = await get_sli(keptn, store, tags, run, freshness_wait_seconds=freshness_wait)
        await relay.delivered_all(timeout=delay + 10)
        assert relay.failures == []
    return run, finished


async def iterations_in(store: MetricsStore, tags: RunTags, run: LoadRun) -> float:
    query = f'sum(last_over_time(k6_iterations_total{{keptn_context="{tags.context}"}}[1h]))'
    result = await store.query(query, at=run.end)
    return float(result[0]["value"][1]) if result else 0.0


async def get_sli(
    keptn: FakeKeptn, store: MetricsStore, tags: RunTags, run: LoadRun, **settings: Any
) -> dict[str, Any]:
    """get-sli.triggered for the run's window, as lighthouse sends it; the finished event."""
    event = get_sli_triggered(
        project=tags.project,
        stage=tags.stage,
        service=tags.service,
        start=format_keptn(run.start),
        end=format_keptn(run.end),
        indicators=[*COMPARED, "http_reqs_per_second"],
        context=tags.context,
    )
    config = Settings(prometheus_url=store.url, distributor_url=keptn.url, **settings)
    async with running_service(config) as url:
        await send_event(url, event)
        (finished,) = await keptn.wait_for_events(
            type="sh.keptn.event.get-sli.finished", shkeptncontext=event["shkeptncontext"]
        )
    started = keptn.events_for(event["shkeptncontext"])[0]
    assert started["type"] == "sh.keptn.event.get-sli.started"
    assert keptn.violations == []
    return finished


def values_of(finished: dict[str, Any]) -> dict[str, float]:
    values = finished["data"]["get-sli"]["indicatorValues"]
    assert all(v["success"] for v in values), values
    return {v["metric"]: v["value"] for v in values}


def mismatches(finished: dict[str, Any], run: LoadRun) -> dict[str, Any]:
    got = values_of(finished)
    expected = expected_values(from_handle_summary(run.summary))
    return {n: (got[n], e.value) for n, e in expected.items() if not e.holds(got[n])}


async def test_late_last_push_is_waited_for_and_the_values_equal_k6s_summary(
    prometheus: PrometheusServer, target: TargetServer, fake_keptn: FakeKeptn, tmp_path: Path
) -> None:
    """k6's last pushes reach Prometheus 2 s after k6 exited; the get-sli sent at once waits
    for them and answers k6's own numbers, saying how long it waited."""
    run, finished = await late_run(
        prometheus, target, fake_keptn, tmp_path, delay=2.0, duration="5s"
    )
    data = finished["data"]
    assert (data["status"], data["result"]) == ("succeeded", "pass"), data["message"]
    assert mismatches(finished, run) == {}
    assert "waited " in data["message"] and "last push" in data["message"], data["message"]


async def test_when_the_wait_runs_out_the_reply_says_so_with_what_was_there(
    prometheus: PrometheusServer, target: TargetServer, fake_keptn: FakeKeptn, tmp_path: Path
) -> None:
    """The last pushes come 4 s late, the wait is 1 s: the values are the store's then (fewer
    iterations than k6 counted), and the message says the data may be incomplete."""
    run, finished = await late_run(
        prometheus, target, fake_keptn, tmp_path, delay=4.0, duration="6s", freshness_wait=1.0
    )
    message = finished["data"]["message"]
    assert "still not visible after waiting 1.0 s" in message, message
    assert "no end-of-test stale marker" in message
    counted = run.summary["metrics"]["iterations"]["values"]["count"]
    got = finished["data"]["get-sli"]["indicatorValues"]
    iterations = next(v for v in got if v["metric"] == "iterations_total")
    assert iterations["success"] and 0 < iterations["value"] < counted


async def test_final_data_is_not_waited_for(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    """A run whose last push is visible: one look, no wait, nothing about waiting said."""
    finished = await get_sli(fake_keptn, prometheus, load_tags, load_run)
    data = finished["data"]
    assert data["message"] == f"all {len(COMPARED) + 1} indicators retrieved"
    assert mismatches(finished, load_run) == {}


async def test_victoriametrics_right_after_the_run_gives_k6s_summary(
    victoria: VictoriaMetricsServer, target: TargetServer, fake_keptn: FakeKeptn, tmp_path: Path
) -> None:
    """VictoriaMetrics as installed (-search.latencyOffset=30s): a get-sli the moment k6 exits
    scores the whole run, not "no data". Its 1.79 also shows a new series only seconds after
    it was written; the reply says how long the get-sli waited for that."""
    assert victoria.latency_offset == "30s"
    tags = run_tags()
    run = await run_load(
        prometheus_url=victoria.url,
        target_url=target.url,
        tags=tags,
        workdir=tmp_path,
        duration="3s",
        wait_for_final_push=False,
    )
    finished = await get_sli(fake_keptn, victoria, tags, run)
    data = finished["data"]
    assert (data["status"], data["result"]) == ("succeeded", "pass"), data["message"]
    assert mismatches(finished, run) == {}


async def test_the_store_kind_is_asked_from_the_store(
    prometheus: PrometheusServer, victoria: VictoriaMetricsServer
) -> None:
    for store, kind in ((prometheus, PROMETHEUS), (victoria, VICTORIAMETRICS)):
        client = PrometheusClient(
            store.url, concurrency=1, timeout=5, attempts=1, max_wait=0.1, store="auto"
        )
        try:
            assert await client.store_kind() == kind
        finally:
            await client.aclose()


WINDOW = SLIWindow("p", "s", "svc", start_s=1000.0, end_s=1010.0, context="run")


@pytest.mark.parametrize(
    ("sighting", "now", "hides", "final"),
    [
        (Sighting(newest_live_s=1009.0, metrics_in_window=2), 1010.5, 0.0, False),  # push late
        (Sighting(newest_live_s=1010.2, metrics_in_window=2), 1010.5, 0.0, True),  # all in
        (Sighting(newest_live_s=None, metrics_in_window=2), 1010.5, 0.0, True),  # stale markers
        (Sighting(newest_live_s=None, metrics_in_window=0), 1010.5, 0.0, True),  # no k6 run
        (Sighting(newest_live_s=None, metrics_in_window=0), 1010.5, 30.0, False),  # not shown
        (Sighting(newest_live_s=None, metrics_in_window=1), 1010.5, 30.0, False),  # partly
        (Sighting(newest_live_s=None, metrics_in_window=2), 1010.5, 30.0, True),  # shown
        (Sighting(newest_live_s=None, metrics_in_window=0), 1045.0, 30.0, True),  # long enough
    ],
)
def test_judge(sighting: Sighting, now: float, hides: float, final: bool) -> None:
    assert judge(WINDOW, sighting, now, hides_recent_seconds=hides).final is final
