"""lightkube (the product's Kubernetes client) against the simulated API server: kubeconfig with a
bearer token, the generic K6TestRun resource, Status errors as ``ApiError``, selectors, pod logs,
and watches that survive a cut stream and recover from 410 Gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Pod
from lightkube.types import OnErrorAction, OnErrorResult, PatchType, on_error_retry

from devkit.kube import SimulatedKubernetes

NS = "keptn"
K6TestRun = create_namespaced_resource("k6.io", "v1alpha1", "TestRun", "testruns")
SCRIPT = "export const options = { vus: 1, iterations: 1 }; export default function () {}"


@pytest.fixture
async def kube() -> AsyncIterator[SimulatedKubernetes]:
    async with SimulatedKubernetes(namespaces=[NS]) as sim:
        yield sim


@pytest.fixture
async def client(kube: SimulatedKubernetes, tmp_path: Path) -> AsyncIterator[AsyncClient]:
    config = KubeConfig.from_file(kube.kubeconfig(tmp_path / "kubeconfig"))
    lightkube_client = AsyncClient(config)
    try:
        yield lightkube_client
    finally:
        await lightkube_client.close()


def build_testrun(name: str, **spec: Any) -> Any:
    return K6TestRun(
        metadata=ObjectMeta(name=name, labels={"keptn_context": "ctx-1"}),
        spec={
            "parallelism": 1,
            "script": {"configMap": {"name": "script", "file": "test.js"}},
            **spec,
        },
    )


async def test_errors_arrive_as_api_errors_with_the_status(
    client: AsyncClient, kube: SimulatedKubernetes, tmp_path: Path
) -> None:
    with pytest.raises(ApiError) as missing:
        await client.get(K6TestRun, "nope")
    assert (missing.value.status.code, missing.value.status.reason) == (404, "NotFound")
    await client.create(ConfigMap(metadata=ObjectMeta(name="script"), data={"test.js": SCRIPT}))
    with pytest.raises(ApiError) as exists:
        await client.create(ConfigMap(metadata=ObjectMeta(name="script"), data={}))
    assert exists.value.status.code == 409
    with pytest.raises(ApiError) as invalid:
        await client.create(build_testrun("bad", parallelism="2"))
    assert invalid.value.status.code == 422
    assert [c.field for c in invalid.value.status.details.causes] == ["spec.parallelism"]
    # Strategic merge patches do not apply to custom resources (415), merge patches do.
    await client.create(build_testrun("run", runner={"image": "nowhere/k6:1"}))
    with pytest.raises(ApiError) as unsupported:
        await client.patch(K6TestRun, "run", {"metadata": {"labels": {"x": "y"}}})
    assert unsupported.value.status.code == 415
    patched = await client.patch(
        K6TestRun, "run", {"metadata": {"labels": {"x": "y"}}}, patch_type=PatchType.MERGE
    )
    assert patched.metadata.labels == {"keptn_context": "ctx-1", "x": "y"}
    # A kubeconfig with another token is refused.
    stranger = AsyncClient(KubeConfig.from_file(kube.kubeconfig(tmp_path / "other", token="x")))
    try:
        with pytest.raises(ApiError) as refused:
            await stranger.get(K6TestRun, "run")
        assert refused.value.status.code == 401
    finally:
        await stranger.close()


async def test_a_watch_survives_cut_streams_and_sees_every_stage(
    client: AsyncClient, kube: SimulatedKubernetes
) -> None:
    await client.create(ConfigMap(metadata=ObjectMeta(name="script"), data={"test.js": SCRIPT}))
    created = await client.create(build_testrun("run"))
    stages: list[str] = []
    async for _, obj in client.watch(
        K6TestRun,
        labels={"keptn_context": "ctx-1"},
        resource_version=created.metadata.resourceVersion,
    ):
        stage = (obj.status or {}).get("stage")
        if stage and (not stages or stages[-1] != stage):
            stages.append(stage)
            kube.cut_watches()  # lightkube reconnects from the last resourceVersion it saw
        if stage == "finished":
            break
    assert stages == ["initialization", "initialized", "created", "started", "stopped", "finished"]
    pods = [
        p async for p in client.list(Pod, labels={"app": "k6", "k6_cr": "run", "runner": "true"})
    ]
    assert len(pods) == 1
    state = pods[0].status.containerStatuses[0].state
    assert state.terminated is not None and state.terminated.exitCode == 0
    lines = [line async for line in client.log(pods[0].metadata.name, container="k6")]
    assert any("iterations" in line for line in lines)
    await client.delete(K6TestRun, "run")
    assert [p async for p in client.list(Pod)] == []
    assert not kube.k6_running()


async def test_a_watch_from_a_compacted_version_gets_410_and_lightkube_starts_over(
    client: AsyncClient, kube: SimulatedKubernetes
) -> None:
    first = await client.create(ConfigMap(metadata=ObjectMeta(name="a"), data={}))
    await client.create(ConfigMap(metadata=ObjectMeta(name="b"), data={}))
    kube.compact()
    with pytest.raises(ApiError) as gone:
        async for _ in client.watch(ConfigMap, resource_version=first.metadata.resourceVersion):
            pass
    assert (gone.value.status.code, gone.value.status.reason) == (410, "Expired")

    errors: list[int] = []

    def retry(error: Exception, count: int) -> OnErrorResult:
        errors.append(count)
        assert on_error_retry(error, count).action is OnErrorAction.RETRY
        return OnErrorResult(OnErrorAction.RETRY)

    seen = []
    async for kind, obj in client.watch(
        ConfigMap, resource_version=first.metadata.resourceVersion, on_error=retry
    ):
        seen.append((kind, obj.metadata.name))
        if len(seen) == 2:
            break
    assert errors == [1]
    # Without a resourceVersion the watch starts with the current state, as on a real server.
    assert seen == [("ADDED", "a"), ("ADDED", "b")]


async def test_server_side_apply_creates_then_updates(client: AsyncClient) -> None:
    applied = await client.apply(
        ConfigMap(metadata=ObjectMeta(name="cfg"), data={"a": "1"}), field_manager="sli-provider"
    )
    assert applied.data == {"a": "1"}
    again = await client.apply(
        ConfigMap(metadata=ObjectMeta(name="cfg"), data={"b": "2"}), field_manager="sli-provider"
    )
    assert again.data == {"a": "1", "b": "2"}
    assert int(again.metadata.resourceVersion) > int(applied.metadata.resourceVersion)
