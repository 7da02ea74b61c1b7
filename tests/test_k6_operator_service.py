"""The service with K6_OPERATOR_ENABLED: test.triggered → a TestRun on the simulated Kubernetes
API (devkit/kube) → test.finished, and SIGTERM during a run (the service as a process)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from devkit.fake_keptn import FakeKeptn
from devkit.kube import TESTRUNS, SimulatedKubernetes
from devkit.kube.testkit import NAMESPACE
from devkit.prometheus import PrometheusServer
from devkit.service import running_service, serve_process
from devkit.target import TargetServer
from sli_provider.config import Settings
from sli_provider.keptn.timestamps import parse_keptn
from tests.helpers import (
    LOAD_JS,
    finished_for,
    install,
    load_workload,
    long_split_workload,
    run_trigger,
    send_event,
    workloads,
)
from tests.test_k6_operator_run import ONE_RUNNER_CROSSES_JS, ONE_RUNNER_FAILS_JS


@pytest.fixture
async def kube() -> AsyncIterator[SimulatedKubernetes]:
    async with SimulatedKubernetes(namespaces=(NAMESPACE,)) as simulated:
        yield simulated
        assert await simulated.k6_stopped(), "a k6 runner outlived its TestRun"


def install_script(fake_keptn: FakeKeptn, path: str, script: bytes, *, parallelism: int) -> None:
    """A k6-operator workload of ``script`` (no env) in the fake Keptn's resources."""
    workload = load_workload(script=path, executor="k6-operator", parallelism=parallelism, env={})
    install(fake_keptn, workloads(workload), {path: script})


async def test_thresholds_are_judged_on_the_whole_test_with_their_values(
    kube: SimulatedKubernetes,
    prometheus: PrometheusServer,
    fake_keptn: FakeKeptn,
    target: TargetServer,
    tmp_path: Path,
) -> None:
    install_script(fake_keptn, "k6/marked.js", ONE_RUNNER_CROSSES_JS, parallelism=2)
    finished = await _run_through_the_service(
        kube, prometheus, fake_keptn, target, tmp_path, timeout=90
    )
    data = finished["data"]
    assert (data["status"], data["result"]) == ("succeeded", "fail")
    # Runners run without thresholds; the whole test's count crossed.
    assert [r["exitCode"] for r in data["k6"]["runners"]] == [0, 0]
    assert data["message"] == "k6 thresholds crossed: marked: count<1 (whole test: 1)"
    assert data["k6"]["thresholds"] == [
        {"metric": "marked", "threshold": "count<1", "ok": False, "value": 1.0}
    ]
    assert kube.objects(TESTRUNS, NAMESPACE) == []


async def test_an_abort_on_fail_crossing_of_the_whole_test_is_answered_aborted(
    kube: SimulatedKubernetes,
    prometheus: PrometheusServer,
    fake_keptn: FakeKeptn,
    target: TargetServer,
    tmp_path: Path,
) -> None:
    """A 60 s script on 3 runners, one of which meets only errors: every runner is stopped a
    few seconds in, and test.finished says which threshold aborted the test, at what value."""
    install_script(fake_keptn, "k6/fails.js", ONE_RUNNER_FAILS_JS, parallelism=3)
    finished = await _run_through_the_service(
        kube, prometheus, fake_keptn, target, tmp_path, timeout=60
    )
    data = finished["data"]
    assert (data["status"], data["result"]) == ("succeeded", "fail")
    aborted = data["k6"]["abortedBy"]
    assert (aborted["metric"], aborted["threshold"], aborted["ok"]) == (
        "http_req_failed",
        "rate<0.2",
        False,
    )
    assert data["message"].startswith(
        f"aborted: http_req_failed: rate<0.2 crossed at {aborted['value']:.6g}"
    )
    assert [r["exitCode"] for r in data["k6"]["runners"]] == [103, 103, 103]
    ran = parse_keptn(data["test"]["end"]) - parse_keptn(data["test"]["start"])
    assert ran < 20, ran
    assert kube.objects(TESTRUNS, NAMESPACE) == []


async def test_sigterm_during_a_run_deletes_the_testrun_and_answers_errored(
    kube: SimulatedKubernetes,
    prometheus: PrometheusServer,
    fake_keptn: FakeKeptn,
    target: TargetServer,
    tmp_path: Path,
) -> None:
    """A real `sli-provider serve` process gets SIGTERM while its TestRun runs.

    1. test.triggered for a 60 s distributed run; wait until the runners' k6 processes run.
    2. SIGTERM the service.
    3. It exits 0, the TestRun is gone (its runners stopped), test.finished is errored.
    """
    install(
        fake_keptn,
        workloads(long_split_workload()),
        {"k6/load.js": LOAD_JS},
    )
    env = {
        "PROMETHEUS_URL": prometheus.url,
        "DISTRIBUTOR_URL": fake_keptn.url,
        "RUNNER_WORK_DIR": str(tmp_path),
        "SHUTDOWN_GRACE_SECONDS": "5",
        "K6_OPERATOR_ENABLED": "true",
        "K6_OPERATOR_KUBECONFIG": str(kube.kubeconfig(tmp_path / "kubeconfig")),
        "K6_OPERATOR_NAMESPACE": NAMESPACE,
    }
    async with serve_process(env, tmp_path / "service.log") as service:
        event = run_trigger(target)
        await send_event(service.url, event)
        for _ in range(300):
            if kube.k6_running() and kube.objects(TESTRUNS, NAMESPACE):
                break
            await asyncio.sleep(0.05)
        assert kube.k6_running(), "the runners did not start"
        service.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(service.process.wait(), 15) == 0
    assert kube.objects(TESTRUNS, NAMESPACE) == []
    finished = await finished_for(fake_keptn, event, timeout=5)
    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert "shut down" in finished["data"]["message"]


@pytest.mark.parametrize(
    ("workload", "script", "says"),
    [
        (
            {"timeout": "4s", "env": {"VUS": "2", "DURATION": "60s", "FAIL_EVERY": "0"}},
            LOAD_JS,
            "did not finish within the workload's timeout of 4 s",
        ),
        # k6's own words about the script come along (from `k6 inspect`, before any TestRun).
        ({"env": {}}, b"export default function ( {\n", "k6 inspect of 'k6/load.js' failed"),
    ],
    ids=["deadline", "script-error"],
)
async def test_a_deadline_or_a_script_error_is_errored_and_the_testrun_deleted(
    workload: dict[str, object],
    script: str | bytes,
    says: str,
    kube: SimulatedKubernetes,
    prometheus: PrometheusServer,
    fake_keptn: FakeKeptn,
    target: TargetServer,
    tmp_path: Path,
) -> None:
    install(
        fake_keptn,
        workloads(load_workload(executor="k6-operator", parallelism=2, **workload)),
        {"k6/load.js": script},
    )
    finished = await _run_through_the_service(
        kube, prometheus, fake_keptn, target, tmp_path, timeout=60
    )
    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert says in finished["data"]["message"]
    if "inspect" in says:
        assert "k6/load.js: Line 2:1 Unexpected end of input" in finished["data"]["message"]
        assert "/tmp/" not in finished["data"]["message"]
    assert kube.objects(TESTRUNS, NAMESPACE) == []


async def _run_through_the_service(
    kube: SimulatedKubernetes,
    prometheus: PrometheusServer,
    fake_keptn: FakeKeptn,
    target: TargetServer,
    tmp_path: Path,
    *,
    timeout: float,
) -> dict[str, Any]:
    """The installed workload run by a service with the k6-operator back-end: its finished event."""
    settings = Settings(
        prometheus_url=prometheus.url,
        distributor_url=fake_keptn.url,
        runner_work_dir=tmp_path,
        k6_operator_enabled=True,
        k6_operator_kubeconfig=kube.kubeconfig(tmp_path / "kubeconfig"),
        k6_operator_namespace=NAMESPACE,
    )
    async with running_service(settings) as url:
        event = run_trigger(target)
        await send_event(url, event)
        return await finished_for(fake_keptn, event, timeout=timeout)
