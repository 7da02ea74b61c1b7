"""The simulated k6-operator runs TestRuns with real k6 processes, as the operator's runner pods.

Each test drives the simulated API server over HTTP (one through lightkube) and checks what a
real cluster would show: the stages in order on a watch, runner pods with k6's real exit codes
and logs, series per runner in a real Prometheus, k6 started with exactly k6-operator's argv and
a pod's environment only, and no k6 left running once a TestRun is deleted.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devkit.k6binaries import extension_k6
from devkit.k6run import LOAD_SCRIPT
from devkit.kube import JOBS, PODS, TESTRUNS, ImageTable, SimulatedKubernetes
from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer

NS = "load"
CORE = f"/api/v1/namespaces/{NS}"
K6IO = f"/apis/k6.io/v1alpha1/namespaces/{NS}"
STAGES = ["initialization", "initialized", "created", "started", "stopped", "finished"]
RUN_SECONDS = 60.0

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
LONG_SCRIPT = """
import { sleep } from 'k6';
export const options = { vus: 2, duration: '60s' };
export default function () { sleep(0.1); }
"""


@pytest.fixture
async def kube() -> AsyncIterator[SimulatedKubernetes]:
    async with SimulatedKubernetes(namespaces=[NS], runner_timeout=RUN_SECONDS) as sim:
        yield sim


@pytest.fixture
async def api(kube: SimulatedKubernetes) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {kube.token}"}
    timeout = aiohttp.ClientTimeout(total=RUN_SECONDS)
    async with aiohttp.ClientSession(kube.url, headers=headers, timeout=timeout) as session:
        yield session


async def post(api: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with api.post(path, json=body) as response:
        answer: dict[str, Any] = await response.json()
        assert response.status == 201, answer
        return answer


async def get(api: aiohttp.ClientSession, path: str, **params: str) -> Any:
    async with api.get(path, params=params) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def start_testrun(
    api: aiohttp.ClientSession, name: str, script: str, **spec: Any
) -> dict[str, Any]:
    await post(
        api,
        f"{CORE}/configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name},
            "data": {"test.js": script},
        },
    )
    body = {
        "apiVersion": "k6.io/v1alpha1",
        "kind": "TestRun",
        "metadata": {"name": name},
        "spec": {
            "parallelism": 1,
            "script": {"configMap": {"name": name, "file": "test.js"}},
            **spec,
        },
    }
    return await post(api, f"{K6IO}/testruns", body)


async def watch_stages(
    api: aiohttp.ClientSession, name: str, since: str, until: str = "finished"
) -> list[str]:
    """The distinct stages the TestRun passes through, from resourceVersion ``since`` on."""
    stages: list[str] = []
    params = {"watch": "true", "resourceVersion": since, "fieldSelector": f"metadata.name={name}"}
    async with api.get(f"{K6IO}/testruns", params=params) as response:
        async for line in response.content:
            event = json.loads(line)
            assert event["type"] in ("MODIFIED", "DELETED"), event
            stage = event["object"].get("status", {}).get("stage")
            if stage and (not stages or stages[-1] != stage):
                stages.append(stage)
            if stage in (until, "error"):
                break
    return stages


async def runner_pods(api: aiohttp.ClientSession, name: str) -> list[dict[str, Any]]:
    listing = await get(api, f"{CORE}/pods", labelSelector=f"app=k6,k6_cr={name},runner=true")
    return sorted(listing["items"], key=lambda p: p["metadata"]["labels"]["job-name"])


def exit_code(pod: dict[str, Any]) -> int:
    code: int = pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"]
    return code


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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
        api, "two", LOAD_SCRIPT.read_text(), parallelism=2, args=args, runner={"env": env}
    )

    stages = await watch_stages(api, "two", created["metadata"]["resourceVersion"])

    assert stages == STAGES
    pods = await runner_pods(api, "two")
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
            process.argv[0], "run", "--quiet",
            f"--execution-segment={index - 1}/2:{index}/2", "--execution-segment-sequence=0,1/2,1",
            *args, script, address, "--paused",
            "--tag", f"instance_id={index}", "--tag", "testrun_name=two",
        )  # fmt: skip
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
    created = await start_testrun(api, "thr", THRESHOLD_SCRIPT, parallelism=2)

    stages = await watch_stages(api, "thr", created["metadata"]["resourceVersion"])

    assert stages[-1] == "finished"
    pods = await runner_pods(api, "thr")
    assert [exit_code(p) for p in pods] == [0, 99]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded", "Failed"]
    jobs = {j["metadata"]["name"]: j["status"] for j in kube.objects(JOBS, NS)}
    assert jobs["thr-1"]["succeeded"] == 1
    assert jobs["thr-2"]["failed"] == 1


async def test_a_script_error_puts_the_testrun_in_stage_error(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    created = await start_testrun(api, "broken", "export default function( {", parallelism=2)

    stages = await watch_stages(api, "broken", created["metadata"]["resourceVersion"], "error")

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
    few = await start_testrun(api, "few", LONG_SCRIPT, parallelism=5)
    assert await watch_stages(api, "few", few["metadata"]["resourceVersion"], "error") == [
        "initialization",
        "error",
    ]
    # An argument that is no flag's value: the operator refuses it before initializing.
    bad = await start_testrun(api, "args", LONG_SCRIPT, args=["--vus", "1", "", "x"])
    assert await watch_stages(api, "args", bad["metadata"]["resourceVersion"], "error") == ["error"]


async def test_deleting_a_running_testrun_leaves_no_k6_process(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    created = await start_testrun(api, "long", LONG_SCRIPT, parallelism=2)
    await watch_stages(api, "long", created["metadata"]["resourceVersion"], "started")
    runners = [p for p in kube.k6_processes() if p.argv[1] == "run"]
    assert len(runners) == 2 and all(p.running for p in runners)

    async with api.delete(f"{K6IO}/testruns/long") as response:
        assert response.status == 200

    for _ in range(50):
        if not kube.k6_running():
            break
        await asyncio.sleep(0.1)
    assert not kube.k6_running()
    assert not any(alive(p.pid) for p in runners if p.pid is not None)
    assert kube.objects(PODS, NS) == []
    assert kube.objects(JOBS, NS) == []


async def test_cleanup_post_deletes_the_testrun_and_what_it_owns(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    created = await start_testrun(api, "post", "export default function () {}", cleanup="post")
    params = {"watch": "true", "resourceVersion": created["metadata"]["resourceVersion"]}
    events = []
    async with api.get(f"{K6IO}/testruns", params=params) as response:
        async for line in response.content:
            event = json.loads(line)
            events.append((event["type"], event["object"].get("status", {}).get("stage")))
            if event["type"] == "DELETED":
                break
    assert events[-2:] == [("MODIFIED", "finished"), ("DELETED", "finished")]
    assert kube.objects(TESTRUNS, NS) == []
    assert kube.objects(PODS, NS) == []


async def test_an_unknown_runner_image_never_starts(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    created = await start_testrun(
        api,
        "pull",
        LONG_SCRIPT,
        runner={"image": "registry.example/k6-custom:1"},
        initializer={"image": "grafana/k6:1.1.0"},
    )
    stages = await watch_stages(api, "pull", created["metadata"]["resourceVersion"], "created")
    assert stages == ["initialization", "initialized", "created"]
    await asyncio.sleep(0.5)
    (pod,) = await runner_pods(api, "pull")
    assert pod["status"]["phase"] == "Pending"
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"
    async with api.get(f"{CORE}/pods/{pod['metadata']['name']}/log") as response:
        assert response.status == 400
        assert "is waiting to start" in (await response.json())["message"]
    assert (await get(api, f"{K6IO}/testruns/pull"))["status"]["stage"] == "created"


async def test_an_image_maps_to_its_own_k6_binary(tmp_path: Path) -> None:
    """The test's image table decides which binary a runner image is: a stand-in script here."""
    fake_k6 = tmp_path / "fake-k6"
    fake_k6.write_text(
        '#!/bin/sh\necho "fake k6 $*"\n[ "$1" = inspect ] && echo \'{"maxVUs": 1}\'\nexit 0\n'
    )
    fake_k6.chmod(0o755)
    images = ImageTable.stock().with_rules({"registry.example/fake-k6:*": fake_k6})
    async with SimulatedKubernetes(namespaces=[NS], images=images) as kube:
        headers = {"Authorization": f"Bearer {kube.token}"}
        async with aiohttp.ClientSession(kube.url, headers=headers) as api:
            created = await start_testrun(
                api,
                "fake",
                "export default function () {}",
                runner={"image": "registry.example/fake-k6:2"},
            )
            # The fake k6 never opens a REST API: the runner ends before the starter resumes it.
            stages = await watch_stages(
                api, "fake", created["metadata"]["resourceVersion"], "created"
            )
            assert stages[-1] == "created"
            await asyncio.sleep(0.5)
            (pod,) = await runner_pods(api, "fake")
            async with api.get(f"{CORE}/pods/{pod['metadata']['name']}/log") as response:
                assert (await response.text()).startswith("fake k6 run --quiet")
            assert exit_code(pod) == 0


FAKER_SCRIPT = """
import faker from 'k6/x/faker';
export const options = { vus: 1, iterations: 1 };
export default function () { console.log('visitor ' + faker.person.firstName()); }
"""


async def test_an_xk6_image_runs_on_the_extension_binary_and_stock_k6_cannot_run_it(
    tmp_path: Path,
) -> None:
    images = ImageTable.stock().with_rules({"ghcr.io/acme/k6-faker:*": extension_k6(tmp_path)})
    async with SimulatedKubernetes(namespaces=[NS], images=images) as kube:
        headers = {"Authorization": f"Bearer {kube.token}"}
        async with aiohttp.ClientSession(kube.url, headers=headers) as api:
            xk6 = await start_testrun(
                api, "xk6", FAKER_SCRIPT, runner={"image": "ghcr.io/acme/k6-faker:0.1"}
            )
            assert await watch_stages(api, "xk6", xk6["metadata"]["resourceVersion"]) == STAGES
            (pod,) = await runner_pods(api, "xk6")
            assert exit_code(pod) == 0
            async with api.get(f"{CORE}/pods/{pod['metadata']['name']}/log") as response:
                assert "visitor " in await response.text()

            stock = await start_testrun(api, "stock", FAKER_SCRIPT)
            stages = await watch_stages(api, "stock", stock["metadata"]["resourceVersion"], "error")
            assert stages == ["initialization", "error"]


async def test_runner_env_resolves_secrets_config_maps_and_references_like_the_kubelet(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    await post(
        api,
        f"{CORE}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "stringData": {"USER": "u", "PASS": "p"},
        },
    )
    env = [
        {"name": "WHO", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "USER"}}},
        {"name": "GREETING", "value": "hello $(WHO) $$(WHO) $(UNDEFINED)"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {
            "name": "MAYBE",
            "valueFrom": {"secretKeyRef": {"name": "none", "key": "x", "optional": True}},
        },
    ]
    env_from = [{"secretRef": {"name": "creds"}, "prefix": "DB_"}]
    created = await start_testrun(
        api,
        "env",
        "export default function () {}",
        args=["-e", "FROM_ARGS=$(WHO)"],
        runner={"env": env, "envFrom": env_from},
    )
    assert await watch_stages(api, "env", created["metadata"]["resourceVersion"]) == STAGES
    (runner,) = [p for p in kube.k6_processes() if p.argv[1] == "run"]
    (pod,) = await runner_pods(api, "env")
    assert {k: runner.env.get(k) for k in ("WHO", "GREETING", "POD", "DB_USER", "DB_PASS")} == {
        "WHO": "u",
        "GREETING": "hello u $(WHO) $(UNDEFINED)",
        "POD": pod["metadata"]["name"],
        "DB_USER": "u",
        "DB_PASS": "p",
    }
    assert "MAYBE" not in runner.env
    assert "FROM_ARGS=u" in runner.argv


async def test_a_missing_secret_keeps_the_pods_waiting(api: aiohttp.ClientSession) -> None:
    env = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "x"}}}]
    created = await start_testrun(api, "nosecret", LONG_SCRIPT, runner={"env": env})
    assert await watch_stages(
        api, "nosecret", created["metadata"]["resourceVersion"], "initialization"
    ) == ["initialization"]
    for _ in range(50):
        (pod,) = (await get(api, f"{CORE}/pods", labelSelector="k6_cr=nosecret"))["items"]
        waiting = pod["status"]["containerStatuses"][0]["state"].get("waiting", {})
        if waiting.get("reason") == "CreateContainerConfigError":
            break
        await asyncio.sleep(0.1)
    assert waiting == {
        "reason": "CreateContainerConfigError",
        "message": 'secret "absent" not found',
    }


async def test_deleting_a_runner_pod_kills_its_k6_and_the_run_still_finishes(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    created = await start_testrun(api, "podkill", LONG_SCRIPT, parallelism=2)
    since = created["metadata"]["resourceVersion"]
    await watch_stages(api, "podkill", since, "started")
    pods = await runner_pods(api, "podkill")
    async with api.delete(f"{CORE}/pods/{pods[0]['metadata']['name']}") as response:
        assert response.status == 200
    runners = sorted((p for p in kube.k6_processes() if p.argv[1] == "run"), key=lambda p: p.argv)
    for _ in range(50):
        if not runners[0].running:
            break
        await asyncio.sleep(0.1)
    assert not runners[0].running
    assert runners[1].running
    jobs = {j["metadata"]["name"]: j["status"] for j in kube.objects(JOBS, NS)}
    assert jobs["podkill-1"]["failed"] == 1
    async with api.delete(f"{K6IO}/testruns/podkill") as response:
        assert response.status == 200


async def test_leaving_the_context_kills_every_k6_and_removes_its_files(tmp_path: Path) -> None:
    async with SimulatedKubernetes(namespaces=[NS]) as kube:
        headers = {"Authorization": f"Bearer {kube.token}"}
        async with aiohttp.ClientSession(kube.url, headers=headers) as api:
            created = await start_testrun(api, "left", LONG_SCRIPT, parallelism=2)
            await watch_stages(api, "left", created["metadata"]["resourceVersion"], "started")
        runners = [p for p in kube.k6_processes() if p.argv[1] == "run"]
        assert len(runners) == 2 and kube.k6_running()
        pod_dirs = {p.log_path.parent for p in runners}
        assert all(d.is_dir() for d in pod_dirs)
    assert not any(alive(p.pid) for p in runners if p.pid is not None)
    assert not kube.k6_running()
    assert not any(d.exists() for d in pod_dirs)
