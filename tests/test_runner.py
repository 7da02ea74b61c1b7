"""The bundled k6 runner: test.triggered → real k6 → test.finished, and the whole pipeline."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
from pathlib import Path

import pytest

from devkit.events import get_sli_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.k6summary import event_window_seconds, expected_values, relative_errors
from devkit.prometheus import PrometheusServer
from devkit.service import serve_process
from devkit.stores import MetricsStore
from devkit.target import TargetServer
from sli_provider.keptn.timestamps import parse_keptn
from sli_provider.sli.builtin import load_builtin_templates
from tests.helpers import (
    LOAD_JS,
    PROJECT,
    SERVICE,
    STAGE,
    ServiceFactory,
    finished_for,
    install,
    k6_processes_under,
    load_workload,
    post_event,
    run_trigger,
    runner_settings,
    send_event,
    service_factory,
    workloads,
)

KEPTN_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def service(prometheus: PrometheusServer, fake_keptn: FakeKeptn, work_dir: Path) -> ServiceFactory:
    return service_factory(runner_settings(prometheus, fake_keptn, work_dir))


async def test_passing_run_reports_thresholds_and_window(
    service: ServiceFactory, fake_keptn: FakeKeptn, target: TargetServer, work_dir: Path
) -> None:
    install(fake_keptn, workloads(load_workload()), {"k6/load.js": LOAD_JS})
    event = run_trigger(target)
    async with service() as url:
        await send_event(url, event)
        finished = await finished_for(fake_keptn, event)
    data = finished["data"]
    assert (data["status"], data["result"]) == ("succeeded", "pass"), data["message"]
    start, end = data["test"]["start"], data["test"]["end"]
    assert KEPTN_TIME.match(start) and KEPTN_TIME.match(end)
    assert 2.0 <= parse_keptn(end) - parse_keptn(start) < 10
    k6 = data["k6"]
    assert k6["exitCode"] == 0 and k6["durationMs"] >= 2000
    assert {(t["metric"], t["threshold"], t["ok"]) for t in k6["thresholds"]} == {
        ("http_req_failed", "rate<0.5", True),
        ("http_req_duration", "p(95)<1000", True),
        ("checks", "rate>0.1", True),
    }
    assert k6["metrics"]["http_reqs"]["count"] > 0
    assert list(work_dir.iterdir()) == []  # the private directory is gone


@pytest.mark.parametrize(("policy", "result"), [("fail", "fail"), ("warning", "warning")])
async def test_crossed_thresholds_give_fail_or_warning(
    service: ServiceFactory, fake_keptn: FakeKeptn, target: TargetServer, policy: str, result: str
) -> None:
    workload = load_workload(
        on_threshold_failure=policy,
        env={"VUS": "2", "DURATION": "1s", "FAIL_EVERY": "2", "MAX_FAIL_RATE": "0.01"},
    )
    install(fake_keptn, workloads(workload), {"k6/load.js": LOAD_JS})
    event = run_trigger(target)
    async with service() as url:
        await post_event(url, event)
        finished = await finished_for(fake_keptn, event)
    data = finished["data"]
    assert (data["status"], data["result"]) == ("succeeded", result)
    assert data["k6"]["exitCode"] == 99
    assert "http_req_failed: rate<0.01" in data["message"]
    assert "test" in data  # start/end present, so an evaluation can follow a warning


async def test_script_error_is_errored_with_k6_output(
    service: ServiceFactory, fake_keptn: FakeKeptn, target: TargetServer
) -> None:
    install(fake_keptn, None, {"k6/performance.js": "export default function ( {"})
    event = run_trigger(target)
    async with service() as url:
        await post_event(url, event)
        finished = await finished_for(fake_keptn, event)
    data = finished["data"]
    assert (data["status"], data["result"]) == ("errored", "fail")
    assert "code 107" in data["message"]
    assert "Unexpected end of input" in data["message"]


async def test_run_past_its_timeout_is_killed(
    service: ServiceFactory, fake_keptn: FakeKeptn, target: TargetServer, work_dir: Path
) -> None:
    workload = load_workload(timeout="2s", env={"VUS": "1", "DURATION": "60s", "FAIL_EVERY": "0"})
    install(fake_keptn, workloads(workload), {"k6/load.js": LOAD_JS})
    event = run_trigger(target)
    async with service() as url:
        await post_event(url, event)
        finished = await finished_for(fake_keptn, event)
    data = finished["data"]
    assert (data["status"], data["result"]) == ("errored", "fail")
    assert "timeout of 2 s" in data["message"]
    assert not k6_processes_under(work_dir)


async def test_missing_script_names_the_paths_tried(
    service: ServiceFactory, fake_keptn: FakeKeptn, target: TargetServer
) -> None:
    install(fake_keptn, workloads(load_workload(script="k6/missing.js")), {})
    event = run_trigger(target)
    async with service() as url:
        await post_event(url, event)
        finished = await finished_for(fake_keptn, event)
    message = finished["data"]["message"]
    assert finished["data"]["status"] == "errored"
    assert "k6/missing.js" in message
    assert message.count("k6%2Fmissing.js") == 3  # service, stage and project level


async def test_no_workload_for_the_strategy_gets_no_reply(
    service: ServiceFactory, fake_keptn: FakeKeptn, target: TargetServer
) -> None:
    install(fake_keptn, workloads(load_workload()), {"k6/load.js": LOAD_JS})
    foreign = run_trigger(target, strategy="functional")
    ours = run_trigger(target)
    async with service() as url:
        await post_event(url, foreign)
        await post_event(url, ours)
        await finished_for(fake_keptn, ours)
    assert fake_keptn.events_for(foreign["shkeptncontext"]) == []


async def test_prometheus_without_remote_write_receiver_is_detected(
    service: ServiceFactory, fake_keptn: FakeKeptn, target: TargetServer, tmp_path: Path
) -> None:
    install(
        fake_keptn,
        workloads(load_workload(env={"VUS": "1", "DURATION": "1s"})),
        {"k6/load.js": LOAD_JS},
    )
    event = run_trigger(target)
    async with (
        PrometheusServer(tmp_path / "no-rw", remote_write_receiver=False) as plain,
        service(prometheus_url=plain.url) as url,
    ):
        await post_event(url, event)
        finished = await finished_for(fake_keptn, event)
    data = finished["data"]
    assert (data["status"], data["result"]) == ("errored", "fail")
    assert "k6 wrote no metrics to Prometheus" in data["message"]
    assert data["k6"]["exitCode"] == 0  # k6 itself does not notice


async def test_parallel_limit_queues_runs(
    service: ServiceFactory, fake_keptn: FakeKeptn, target: TargetServer
) -> None:
    workload = load_workload(env={"VUS": "1", "DURATION": "2s", "FAIL_EVERY": "0"})
    install(fake_keptn, workloads(workload), {"k6/load.js": LOAD_JS})
    events = [run_trigger(target) for _ in range(2)]
    async with service(max_parallel_tests=1) as url:
        for event in events:
            await post_event(url, event)
        first, second = [await finished_for(fake_keptn, e) for e in events]
    windows = sorted(
        (parse_keptn(f["data"]["test"]["start"]), parse_keptn(f["data"]["test"]["end"]))
        for f in (first, second)
    )
    assert windows[1][0] >= windows[0][1] - 0.05  # the second k6 started after the first ended


async def test_a_run_waiting_for_its_slot_has_not_fetched_its_files_yet(
    service: ServiceFactory, fake_keptn: FakeKeptn, target: TargetServer
) -> None:
    """Events queued behind MAX_PARALLEL_TESTS hold no script content: the second run's script
    and files are read from Keptn only once the first run gave its slot back."""
    env = {"VUS": "1", "DURATION": "3s", "FAIL_EVERY": "0"}
    second_workload = load_workload(
        teststrategy="second", script="k6/second.js", env=env, files=["data/second.json"]
    )
    install(
        fake_keptn,
        workloads(load_workload(env=env), second_workload),
        {"k6/load.js": LOAD_JS, "k6/second.js": LOAD_JS, "data/second.json": "{}"},
    )
    first, second = run_trigger(target), run_trigger(target, strategy="second")
    async with service(max_parallel_tests=1) as url:
        await post_event(url, first)
        await fake_keptn.wait_for_events(
            type="sh.keptn.event.test.started", shkeptncontext=first["shkeptncontext"]
        )
        await post_event(url, second)
        await fake_keptn.wait_for_events(
            type="sh.keptn.event.test.started", shkeptncontext=second["shkeptncontext"]
        )
        await asyncio.sleep(1.0)  # the first k6 runs for 3 s
        fetched = [r.path for r in fake_keptn.resource_requests]
        assert any("k6%2Fload.js" in path for path in fetched)
        assert not any("second" in path for path in fetched), fetched
        await finished_for(fake_keptn, first)
        await finished_for(fake_keptn, second)
    fetched = [r.path for r in fake_keptn.resource_requests]
    assert any("k6%2Fsecond.js" in path for path in fetched)
    assert any("data%2Fsecond.json" in path for path in fetched)


async def test_script_sees_only_its_environment(
    service: ServiceFactory,
    fake_keptn: FakeKeptn,
    target: TargetServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = "export default function () { console.log('ENV=' + JSON.stringify(__ENV)); }\n"
    workload = {"teststrategy": "functional", "script": "k6/env.js", "env": {"EXTRA": "1"}}
    install(fake_keptn, workloads(workload), {"k6/env.js": script})
    event = run_trigger(target, strategy="functional", labels={"build-id": "142"})
    caplog.set_level(logging.INFO, logger="sli_provider.k6")
    async with service(keptn_api_token=None) as url:
        await post_event(url, event)
        finished = await finished_for(fake_keptn, event)
    assert finished["data"]["status"] == "succeeded", finished["data"]["message"]
    line = next(r.getMessage() for r in caplog.records if "ENV=" in r.getMessage())
    env = json.loads(line.split("ENV=", 1)[1].split('" source=')[0].replace('\\"', '"'))
    assert env == {
        "TARGET_URL": target.url,
        "KEPTN_PROJECT": PROJECT,
        "KEPTN_STAGE": STAGE,
        "KEPTN_SERVICE": SERVICE,
        "KEPTN_CONTEXT": event["shkeptncontext"],
        "KEPTN_TESTSTRATEGY": "functional",
        "LABEL_BUILD_ID": "142",
        "EXTRA": "1",
    }


async def test_pipeline_sli_values_equal_k6_summary_for_two_runs_in_a_row(
    service: ServiceFactory,
    fake_keptn: FakeKeptn,
    target: TargetServer,
    store: MetricsStore,
) -> None:
    """test.triggered → test.finished → get-sli.triggered for the same context, twice in a row,
    in each store. Before get-sli the test waits until the store shows all it holds
    (``store.settle()``; VictoriaMetrics: its 1 s latency offset and up to ~11 s for new series):
    this test is about the values, not about when a store shows them."""
    install(
        fake_keptn,
        workloads(load_workload(env={"VUS": "3", "DURATION": "2s", "FAIL_EVERY": "4"})),
        {"k6/load.js": LOAD_JS},
    )
    indicators = sorted(load_builtin_templates())
    async with service(prometheus_url=store.url) as url:
        for _ in range(2):  # the second run follows well within Prometheus' 5-minute lookback
            served_before = target.requests_served
            event = run_trigger(target)
            await post_event(url, event)
            test = (await finished_for(fake_keptn, event))["data"]
            served = target.requests_served - served_before
            assert test["result"] == "pass", test["message"]
            await store.settle()
            ask = get_sli_triggered(
                project=PROJECT,
                stage=STAGE,
                service=SERVICE,
                start=test["test"]["start"],
                end=test["test"]["end"],
                indicators=indicators,
                context=event["shkeptncontext"],
            )
            await post_event(url, ask)
            (finished,) = await fake_keptn.wait_for_events(
                type="sh.keptn.event.get-sli.finished", shkeptncontext=event["shkeptncontext"]
            )
            values = {
                v["metric"]: v["value"] for v in finished["data"]["get-sli"]["indicatorValues"]
            }
            expected = expected_values(test["k6"]["metrics"])
            print(f"fidelity {store.store_name}: {relative_errors(values, expected)}")  # -rA
            wrong = {n: (values[n], e.value) for n, e in expected.items() if not e.holds(values[n])}
            assert wrong == {}
            # What the target served over the window as the get-sli event states it.
            window = event_window_seconds(
                ask["data"]["get-sli"]["start"], ask["data"]["get-sli"]["end"]
            )
            assert values["http_reqs_total"] == served > 0
            assert values["http_reqs_per_second"] == pytest.approx(served / window, rel=1e-6)
            assert finished["data"]["result"] == "pass"
    assert fake_keptn.violations == []


async def test_sigterm_kills_k6_and_sends_errored_finished(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, target: TargetServer, work_dir: Path
) -> None:
    """A real `sli-provider serve` process gets SIGTERM while k6 runs.

    1. test.triggered for a 60 s run; wait until test.started and k6 is running.
    2. SIGTERM the service.
    3. The service exits 0 within the grace period, test.finished is errored, no k6 is left.
    """
    install(
        fake_keptn,
        workloads(load_workload(env={"VUS": "1", "DURATION": "60s"})),
        {"k6/load.js": LOAD_JS},
    )
    env = {
        "PROMETHEUS_URL": prometheus.url,
        "DISTRIBUTOR_URL": fake_keptn.url,
        "RUNNER_WORK_DIR": str(work_dir),
        "SHUTDOWN_GRACE_SECONDS": "5",
    }
    async with serve_process(env, work_dir.parent / "service.log") as service:
        event = run_trigger(target)
        await send_event(service.url, event)
        await fake_keptn.wait_for_events(
            type="sh.keptn.event.test.started", shkeptncontext=event["shkeptncontext"]
        )
        for _ in range(100):
            if k6_processes_under(work_dir):
                break
            await asyncio.sleep(0.05)
        assert k6_processes_under(work_dir), "k6 did not start"
        service.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(service.process.wait(), 10) == 0
    finished = await finished_for(fake_keptn, event, timeout=5)
    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert "shut down" in finished["data"]["message"]
    assert k6_processes_under(work_dir) == []
    assert list(work_dir.iterdir()) == []
