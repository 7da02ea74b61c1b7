"""The simulated k6-operator runs TestRuns with real k6 processes, as the operator's runner pods.

Each test drives the simulated API server over plain HTTP and checks what a
real cluster would show: the stages in order on a watch, runner pods with k6's real exit codes
and logs, series per runner in a real Prometheus, k6 started with exactly k6-operator's argv and
a pod's environment only, and no k6 left running once a TestRun is deleted.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import aiohttp

from devkit.k6run import LOAD_SCRIPT
from devkit.kube import JOBS, PODS, TESTRUNS, SimulatedKubernetes
from devkit.kube.testkit import (
    CORE,
    K6IO,
    LONG_SCRIPT,
    NAMESPACE,
    STAGES,
    exit_code,
    get,
    pid_alive,
    post,
    runner_pods,
    session_for,
    start_testrun,
    watch_stages,
)
from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer

# Runner 2 of 2 crosses its threshold: a pod's HOSTNAME is its Job's name, <testrun>-<index>.
THRESHOLD_SCRIPT = """
import { check } from 'k6';
export const options = {
  vus: 2, iterations: 2,
  thresholds: { checks: ['rate>0.99'] },
};
export default function () {
  check(null, { 'runner 2 fails': () => !__ENV.HOSTNAME.endsWith('-2') });
}
"""


async def test_two_runners_run_real_k6_with_the_operators_flags_into_prometheus(
    kube: SimulatedKubernetes,
    api: aiohttp.ClientSession,
    prometheus: PrometheusServer,
    target: TargetServer,
) -> None:
    testid = str(uuid.uuid4())
    # The remote-write URL comes from a Secret, as the service passes credentials.
    await post(
        api,
        f"{CORE}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "rw"},
            "stringData": {"url": prometheus.remote_write_url},
        },
    )
    args = [
        "-o",
        "experimental-prometheus-rw",
        "--tag",
        f"testid={testid}",
        "-e",
        f"TARGET_URL={target.url}",
        "-e",
        "VUS=2",
        "-e",
        "DURATION=2s",
    ]
    env = [
        {
            "name": "K6_PROMETHEUS_RW_SERVER_URL",
            "valueFrom": {"secretKeyRef": {"name": "rw", "key": "url"}},
        },
        {"name": "K6_PROMETHEUS_RW_PUSH_INTERVAL", "value": "1s"},
    ]
    created = await start_testrun(
        api,
        NAMESPACE,
        "two",
        LOAD_SCRIPT.read_text(),
        parallelism=2,
        args=args,
        runner={"env": env},
    )

    stages = await watch_stages(api, NAMESPACE, "two", created["metadata"]["resourceVersion"])

    assert stages == STAGES
    pods = await runner_pods(api, NAMESPACE, "two")
    assert [p["metadata"]["labels"]["job-name"] for p in pods] == ["two-1", "two-2"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded", "Succeeded"]
    assert [exit_code(p) for p in pods] == [0, 0]
    for pod in pods:
        async with api.get(f"{CORE}/pods/{pod['metadata']['name']}/log") as response:
            assert response.status == 200
            assert "load.js: " in await response.text()
    runners = [p for p in kube.k6_processes() if p.argv[1] == "run"]
    for index, process in enumerate(sorted(runners, key=lambda p: p.argv), start=1):
        script, address = process.argv[5 + len(args)], process.argv[6 + len(args)]
        assert script.endswith("/test/test.js")
        assert address.startswith("--address=127.0.0.1:")
        assert process.argv == (
            process.argv[0],
            "run",
            "--quiet",
            f"--execution-segment={index - 1}/2:{index}/2",
            "--execution-segment-sequence=0,1/2,1",
            *args,
            script,
            address,
            "--paused",
            "--tag",
            f"instance_id={index}",
            "--tag",
            "testrun_name=two",
        )
        # A pod's environment: nothing of this test process's own.
        assert process.env["K6_PROMETHEUS_RW_SERVER_URL"] == prometheus.remote_write_url
        assert process.env["HOSTNAME"] == f"two-{index}"
        assert not set(process.env) & (set(os.environ) - {"PATH", "HOME", "HOSTNAME"})
    query = f'count by (instance_id, testrun_name) (k6_http_reqs_total{{testid="{testid}"}})'
    for _ in range(50):
        series = await prometheus.query(query)
        if len(series) == 2:
            break
        await asyncio.sleep(0.2)
    assert sorted((s["metric"]["instance_id"], s["metric"]["testrun_name"]) for s in series) == [
        ("1", "two"),
        ("2", "two"),
    ]
    assert not kube.k6_running()


async def test_a_runner_crossing_its_thresholds_exits_99_and_the_stage_is_still_finished(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    created = await start_testrun(api, NAMESPACE, "thr", THRESHOLD_SCRIPT, parallelism=2)

    stages = await watch_stages(api, NAMESPACE, "thr", created["metadata"]["resourceVersion"])

    assert stages[-1] == "finished"
    status = (await get(api, f"{K6IO}/testruns/thr"))["status"]
    running = next(c for c in status["conditions"] if c["type"] == "TestRunRunning")
    assert (running["status"], running["reason"]) == ("False", "TestRunRunningFalse")
    pods = await runner_pods(api, NAMESPACE, "thr")
    assert [exit_code(p) for p in pods] == [0, 99]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded", "Failed"]
    jobs = {j["metadata"]["name"]: j["status"] for j in kube.objects(JOBS, NAMESPACE)}
    assert jobs["thr-1"]["succeeded"] == 1
    assert jobs["thr-2"]["failed"] == 1


async def test_a_script_error_puts_the_testrun_in_stage_error(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    created = await start_testrun(
        api, NAMESPACE, "broken", "export default function( {", parallelism=2
    )

    stages = await watch_stages(
        api, NAMESPACE, "broken", created["metadata"]["resourceVersion"], "error"
    )

    assert stages == ["initialization", "error"]
    initializer = (await get(api, f"{CORE}/pods", labelSelector="k6_cr=broken"))["items"]
    assert [p["metadata"]["labels"]["job-name"] for p in initializer] == ["broken-initializer"]
    assert initializer[0]["status"]["phase"] == "Failed"
    assert exit_code(initializer[0]) != 0
    async with api.get(f"{CORE}/pods/{initializer[0]['metadata']['name']}/log") as response:
        assert "SyntaxError" in await response.text() or "Unexpected" in await response.text()
    assert not [p for p in kube.k6_processes() if p.argv[1] == "run"]


async def test_fewer_vus_than_runners_or_bad_arguments_are_errors_as_in_the_operator(
    api: aiohttp.ClientSession,
) -> None:
    # As k6-operator's e2e "error-stage": maxVUs 2 < parallelism 5.
    few = await start_testrun(api, NAMESPACE, "few", LONG_SCRIPT, parallelism=5)
    assert await watch_stages(
        api, NAMESPACE, "few", few["metadata"]["resourceVersion"], "error"
    ) == [
        "initialization",
        "error",
    ]
    # An argument that is no flag's value: the operator refuses it before initializing.
    bad = await start_testrun(api, NAMESPACE, "args", LONG_SCRIPT, args=["--vus", "1", "", "x"])
    assert await watch_stages(
        api, NAMESPACE, "args", bad["metadata"]["resourceVersion"], "error"
    ) == ["error"]


async def test_deleting_a_running_testrun_leaves_no_k6_process(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    created = await start_testrun(api, NAMESPACE, "long", LONG_SCRIPT, parallelism=2)
    await watch_stages(api, NAMESPACE, "long", created["metadata"]["resourceVersion"], "started")
    runners = [p for p in kube.k6_processes() if p.argv[1] == "run"]
    assert len(runners) == 2 and all(p.running for p in runners)

    async with api.delete(f"{K6IO}/testruns/long") as response:
        assert response.status == 200

    assert await kube.k6_stopped()
    assert not any(pid_alive(p.pid) for p in runners if p.pid is not None)
    assert kube.objects(PODS, NAMESPACE) == []
    assert kube.objects(JOBS, NAMESPACE) == []


async def test_cleanup_post_deletes_the_testrun_and_what_it_owns(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    created = await start_testrun(
        api, NAMESPACE, "post", "export default function () {}", cleanup="post"
    )
    params = {"watch": "true", "resourceVersion": created["metadata"]["resourceVersion"]}
    events = []
    async with api.get(f"{K6IO}/testruns", params=params) as response:
        async for line in response.content:
            event = json.loads(line)
            events.append((event["type"], event["object"].get("status", {}).get("stage")))
            if event["type"] == "DELETED":
                break
    assert events[-2:] == [("MODIFIED", "finished"), ("DELETED", "finished")]
    assert kube.objects(TESTRUNS, NAMESPACE) == []
    assert kube.objects(PODS, NAMESPACE) == []


async def test_deleting_a_runner_pod_kills_its_k6_and_the_run_still_finishes(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    created = await start_testrun(api, NAMESPACE, "podkill", LONG_SCRIPT, parallelism=2)
    since = created["metadata"]["resourceVersion"]
    await watch_stages(api, NAMESPACE, "podkill", since, "started")
    pods = await runner_pods(api, NAMESPACE, "podkill")
    async with api.delete(f"{CORE}/pods/{pods[0]['metadata']['name']}") as response:
        assert response.status == 200
    runners = sorted((p for p in kube.k6_processes() if p.argv[1] == "run"), key=lambda p: p.argv)
    for _ in range(50):
        if not runners[0].running:
            break
        await asyncio.sleep(0.1)
    assert not runners[0].running
    assert runners[1].running
    jobs = {j["metadata"]["name"]: j["status"] for j in kube.objects(JOBS, NAMESPACE)}
    assert jobs["podkill-1"]["failed"] == 1
    async with api.delete(f"{K6IO}/testruns/podkill") as response:
        assert response.status == 200


async def test_leaving_the_context_kills_every_k6_and_removes_its_files(tmp_path: Path) -> None:
    async with SimulatedKubernetes(namespaces=[NAMESPACE]) as kube:
        async with session_for(kube) as api:
            created = await start_testrun(api, NAMESPACE, "left", LONG_SCRIPT, parallelism=2)
            await watch_stages(
                api, NAMESPACE, "left", created["metadata"]["resourceVersion"], "started"
            )
        runners = [p for p in kube.k6_processes() if p.argv[1] == "run"]
        assert len(runners) == 2 and kube.k6_running()
        pod_dirs = {p.log_path.parent for p in runners}
        assert all(d.is_dir() for d in pod_dirs)
    assert not any(pid_alive(p.pid) for p in runners if p.pid is not None)
    assert not kube.k6_running()
    assert not any(d.exists() for d in pod_dirs)
