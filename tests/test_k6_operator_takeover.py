"""JetStream takeover of a k6-operator run: the replica that started it is killed, its TestRun
goes on in the (simulated) cluster, and the replica that gets the redelivered event deletes it
before it answers errored (the restart policy in docs/k6-operator.md)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from nats.aio.client import Client

from devkit.fake_keptn import FakeKeptn
from devkit.kube import TESTRUNS, SimulatedKubernetes
from devkit.kube.testkit import NAMESPACE
from devkit.nats import NatsServer
from devkit.prometheus import PrometheusServer
from devkit.service import ServiceProcess, serve_process
from devkit.target import TargetServer
from tests.delivery import ACK_WAIT, Listener, publish, wait_ready
from tests.helpers import LOAD_JS, install, long_split_workload, run_trigger, workloads


@pytest.fixture
async def kube() -> AsyncIterator[SimulatedKubernetes]:
    async with SimulatedKubernetes(namespaces=(NAMESPACE,)) as simulated:
        yield simulated


async def test_a_redelivered_event_deletes_the_dead_replicas_testrun_and_answers_errored(
    nats_server: NatsServer,
    keptn_nats: Client,
    kube: SimulatedKubernetes,
    prometheus: PrometheusServer,
    fake_keptn: FakeKeptn,
    target: TargetServer,
    tmp_path: Path,
) -> None:
    install(
        fake_keptn,
        workloads(long_split_workload()),
        {"k6/load.js": LOAD_JS},
    )
    listener = Listener()
    await keptn_nats.subscribe("sh.keptn.event.test.*", cb=listener.on_message)
    kubeconfig = kube.kubeconfig(tmp_path / "kubeconfig")

    def replica(name: str) -> AbstractAsyncContextManager[ServiceProcess]:
        env = {
            "NATS_URL": nats_server.url,
            "PROMETHEUS_URL": prometheus.url,
            "DISTRIBUTOR_URL": fake_keptn.url,
            "RUNNER_WORK_DIR": str(tmp_path),
            "NATS_ACK_WAIT_SECONDS": str(ACK_WAIT),
            "NATS_QUEUE_GROUP": "k6-runner",
            "K6_OPERATOR_ENABLED": "true",
            "K6_OPERATOR_KUBECONFIG": str(kubeconfig),
            "K6_OPERATOR_NAMESPACE": NAMESPACE,
            "K6_OPERATOR_REPLICA": name,
        }
        return serve_process(env, tmp_path / f"{name}.log")

    event = run_trigger(target)
    async with replica("doomed") as doomed:
        await wait_ready(doomed)
        await publish(keptn_nats, [event])
        async with asyncio.timeout(30):
            while not kube.k6_running():  # noqa: ASYNC110 (the simulation's processes, polled)
                await asyncio.sleep(0.05)
        (test_run,) = kube.objects(TESTRUNS, NAMESPACE)
        async with replica("heir") as heir:
            await wait_ready(heir)
            doomed.process.send_signal(signal.SIGKILL)
            await doomed.process.wait()
            assert kube.objects(TESTRUNS, NAMESPACE) != []  # the load goes on without it
            await listener.wait_finished(1, timeout=ACK_WAIT + 20)
    assert kube.objects(TESTRUNS, NAMESPACE) == []
    async with asyncio.timeout(5):
        while kube.k6_running():  # noqa: ASYNC110 (the simulation's processes, polled)
            await asyncio.sleep(0.1)
    replies = listener.replies[event["id"]]
    assert [r["type"] for r in replies] == [
        "sh.keptn.event.test.started",
        "sh.keptn.event.test.finished",
    ]
    finished = replies[1]["data"]
    assert (finished["status"], finished["result"]) == ("errored", "fail")
    name = test_run["metadata"]["name"]
    assert finished["message"] == (
        f"the k6 run was interrupted when its replica stopped; its TestRun {name} was deleted"
    )
