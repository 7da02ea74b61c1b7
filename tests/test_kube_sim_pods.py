"""The simulated kubelet: images map to local k6 binaries (an unknown one never pulls), a pod's
env is built from Secrets, ConfigMaps and references as on a node, and a pod waits for a missing
Secret or ConfigMap until it exists."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from devkit.k6binaries import extension_k6
from devkit.kube import CONFIGMAPS, ImageTable, SimulatedKubernetes
from devkit.kube.testkit import (
    CORE,
    K6IO,
    LONG_SCRIPT,
    NAMESPACE,
    STAGES,
    exit_code,
    get,
    post,
    runner_pods,
    session_for,
    start_testrun,
    watch_stages,
)


async def test_an_unknown_runner_image_never_starts(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    created = await start_testrun(
        api,
        NAMESPACE,
        "pull",
        LONG_SCRIPT,
        runner={"image": "registry.example/k6-custom:1"},
        initializer={"image": "grafana/k6:1.1.0"},
    )
    stages = await watch_stages(
        api, NAMESPACE, "pull", created["metadata"]["resourceVersion"], "created"
    )
    assert stages == ["initialization", "initialized", "created"]
    await asyncio.sleep(0.5)
    (pod,) = await runner_pods(api, NAMESPACE, "pull")
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
    async with (
        SimulatedKubernetes(namespaces=[NAMESPACE], images=images) as kube,
        session_for(kube) as api,
    ):
        created = await start_testrun(
            api,
            NAMESPACE,
            "fake",
            "export default function () {}",
            runner={"image": "registry.example/fake-k6:2"},
        )
        # The fake k6 never opens a REST API: the runner ends before the starter resumes it.
        stages = await watch_stages(
            api, NAMESPACE, "fake", created["metadata"]["resourceVersion"], "created"
        )
        assert stages[-1] == "created"
        await asyncio.sleep(0.5)
        (pod,) = await runner_pods(api, NAMESPACE, "fake")
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
    async with (
        SimulatedKubernetes(namespaces=[NAMESPACE], images=images) as kube,
        session_for(kube) as api,
    ):
        xk6 = await start_testrun(
            api, NAMESPACE, "xk6", FAKER_SCRIPT, runner={"image": "ghcr.io/acme/k6-faker:0.1"}
        )
        assert (
            await watch_stages(api, NAMESPACE, "xk6", xk6["metadata"]["resourceVersion"]) == STAGES
        )
        (pod,) = await runner_pods(api, NAMESPACE, "xk6")
        assert exit_code(pod) == 0
        async with api.get(f"{CORE}/pods/{pod['metadata']['name']}/log") as response:
            assert "visitor " in await response.text()

        stock = await start_testrun(api, NAMESPACE, "stock", FAKER_SCRIPT)
        stages = await watch_stages(
            api, NAMESPACE, "stock", stock["metadata"]["resourceVersion"], "error"
        )
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
        NAMESPACE,
        "env",
        "export default function () {}",
        args=["-e", "FROM_ARGS=$(WHO)"],
        runner={"env": env, "envFrom": env_from},
    )
    assert (
        await watch_stages(api, NAMESPACE, "env", created["metadata"]["resourceVersion"]) == STAGES
    )
    (runner,) = [p for p in kube.k6_processes() if p.argv[1] == "run"]
    (pod,) = await runner_pods(api, NAMESPACE, "env")
    assert {k: runner.env.get(k) for k in ("WHO", "GREETING", "POD", "DB_USER", "DB_PASS")} == {
        "WHO": "u",
        "GREETING": "hello u $(WHO) $(UNDEFINED)",
        "POD": pod["metadata"]["name"],
        "DB_USER": "u",
        "DB_PASS": "p",
    }
    assert "MAYBE" not in runner.env
    assert "FROM_ARGS=u" in runner.argv


async def test_pods_wait_for_a_missing_secret_and_start_once_it_exists(
    api: aiohttp.ClientSession,
) -> None:
    env = [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "late", "key": "x"}}}]
    created = await start_testrun(
        api, NAMESPACE, "late", "export default function () {}", runner={"env": env}
    )
    since = created["metadata"]["resourceVersion"]
    assert await watch_stages(api, NAMESPACE, "late", since, "initialization") == ["initialization"]
    for _ in range(50):
        (pod,) = (await get(api, f"{CORE}/pods", labelSelector="k6_cr=late"))["items"]
        waiting = pod["status"]["containerStatuses"][0]["state"].get("waiting", {})
        if waiting.get("reason") == "CreateContainerConfigError":
            break
        await asyncio.sleep(0.1)
    assert waiting == {"reason": "CreateContainerConfigError", "message": 'secret "late" not found'}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "late"},
        "stringData": {"x": "1"},
    }
    await post(api, f"{CORE}/secrets", secret)
    assert (await watch_stages(api, NAMESPACE, "late", since))[-1] == "finished"


async def test_a_script_config_map_created_after_the_testrun_and_owned_by_it(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    """The order a client must use to make the TestRun own its script: TestRun first."""
    body = {
        "apiVersion": "k6.io/v1alpha1",
        "kind": "TestRun",
        "metadata": {"name": "owner"},
        "spec": {"parallelism": 1, "script": {"configMap": {"name": "owned", "file": "test.js"}}},
    }
    created = await post(api, f"{K6IO}/testruns", body)
    reference = {
        "apiVersion": "k6.io/v1alpha1",
        "kind": "TestRun",
        "name": "owner",
        "uid": created["metadata"]["uid"],
        "controller": True,
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "owned", "ownerReferences": [reference]},
        "data": {"test.js": "export default function () {}"},
    }
    await asyncio.sleep(0.3)  # the initializer pod is already waiting for its volume
    await post(api, f"{CORE}/configmaps", configmap)
    stages = await watch_stages(api, NAMESPACE, "owner", created["metadata"]["resourceVersion"])
    assert stages == STAGES
    async with api.delete(f"{K6IO}/testruns/owner") as response:
        assert response.status == 200
    assert kube.objects(CONFIGMAPS, NAMESPACE) == []


async def test_relative_paths_in_args_land_in_each_pods_own_directory(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    script = "export const options = { vus: 2, iterations: 4 }; export default function () {}"
    created = await start_testrun(
        api, NAMESPACE, "files", script, parallelism=2, args=["--out", "json=samples.json"]
    )
    assert (
        await watch_stages(api, NAMESPACE, "files", created["metadata"]["resourceVersion"])
        == STAGES
    )
    iterations = []
    for pod in await runner_pods(api, NAMESPACE, "files"):
        samples = kube.pod_dir(NAMESPACE, pod["metadata"]["name"]) / "samples.json"
        lines = samples.read_text().splitlines()
        iterations.append(sum('{"metric":"iterations","type":"Point"' in line for line in lines))
    assert iterations == [2, 2]
