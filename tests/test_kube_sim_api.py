"""The simulated Kubernetes API server answers as the real one: Status bodies, CRD validation
(pruning, defaults, types, int-or-string, enums), ConfigMap rules, selectors, watches with
resourceVersions and 410 Gone, and owner garbage collection.

No image is pullable in these tests (an empty image table), so no k6 ever starts: TestRuns stay
in stage ``initialization`` with their initializer pod in ImagePullBackOff.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from devkit.kube import CONFIGMAPS, PODS, TESTRUNS, ImageTable, SimulatedKubernetes

SAMPLES = Path(__file__).resolve().parent.parent / "devkit" / "kube" / "samples"
NS = "keptn"
CORE = f"/api/v1/namespaces/{NS}"
K6IO = f"/apis/k6.io/v1alpha1/namespaces/{NS}"


@pytest.fixture
async def kube() -> AsyncIterator[SimulatedKubernetes]:
    async with SimulatedKubernetes(namespaces=[NS], images=ImageTable(())) as sim:
        yield sim


@pytest.fixture
async def api(kube: SimulatedKubernetes) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {kube.token}"}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(kube.url, headers=headers, timeout=timeout) as session:
        yield session


def make_testrun(name: str, **spec: Any) -> dict[str, Any]:
    base = {"parallelism": 1, "script": {"configMap": {"name": "script", "file": "test.js"}}}
    return {
        "apiVersion": "k6.io/v1alpha1",
        "kind": "TestRun",
        "metadata": {"name": name},
        "spec": {**base, **spec},
    }


def configmap(name: str, labels: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, **fields}


async def call(
    api: aiohttp.ClientSession, method: str, path: str, body: Any = None, **params: str
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    # A stream, not bytes: aiohttp warns about large raw bodies (the 1 MiB ConfigMap).
    data = None if body is None else io.BytesIO(json.dumps(body).encode())
    headers = {"Content-Type": "application/json"}
    async with api.request(method, path, data=data, params=params, headers=headers) as response:
        assert response.headers["Content-Type"] == "application/json"
        return response.status, await response.json(), response.headers


def assert_status(body: dict[str, Any], code: int, reason: str) -> None:
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert (body["code"], body["reason"]) == (code, reason)


async def test_requests_without_the_bearer_token_get_401_status(
    kube: SimulatedKubernetes,
) -> None:
    async with aiohttp.ClientSession(kube.url) as anonymous:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            async with anonymous.get(f"{CORE}/configmaps", headers=headers) as response:
                assert response.status == 401
                assert_status(await response.json(), 401, "Unauthorized")


async def test_not_found_and_already_exists_are_status_objects(
    api: aiohttp.ClientSession,
) -> None:
    code, body, _ = await call(api, "GET", f"{K6IO}/testruns/nope")
    assert code == 404
    assert_status(body, 404, "NotFound")
    assert body["message"] == 'testruns.k6.io "nope" not found'
    assert body["details"] == {"name": "nope", "group": "k6.io", "kind": "testruns"}

    code, _, _ = await call(api, "POST", f"{CORE}/configmaps", configmap("script"))
    assert code == 201
    code, body, _ = await call(api, "POST", f"{CORE}/configmaps", configmap("script"))
    assert code == 409
    assert_status(body, 409, "AlreadyExists")
    assert body["message"] == 'configmaps "script" already exists'
    code, body, _ = await call(api, "DELETE", f"{CORE}/configmaps/other")
    assert (code, body["message"]) == (404, 'configmaps "other" not found')


async def test_create_sets_server_fields_and_get_returns_them(api: aiohttp.ClientSession) -> None:
    code, created, _ = await call(api, "POST", f"{K6IO}/testruns", make_testrun("run-a"))
    assert code == 201
    metadata = created["metadata"]
    assert metadata["namespace"] == NS
    assert metadata["generation"] == 1
    assert metadata["uid"] and metadata["creationTimestamp"]
    assert int(metadata["resourceVersion"]) > 0
    # Defaults of the CRD schema are filled in, as the real server does.
    assert created["spec"]["paused"] == "true"
    assert created["spec"]["quiet"] == "true"
    _, fetched, _ = await call(api, "GET", f"{K6IO}/testruns/run-a")
    assert fetched["metadata"]["uid"] == metadata["uid"]


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        ({"parallelism": "2"}, "spec.parallelism", "FieldValueTypeInvalid"),
        ({"parallelism": 1.5}, "spec.parallelism", "FieldValueTypeInvalid"),
        ({"parallelism": 2**31}, "spec.parallelism", "FieldValueInvalid"),
        ({"script": None}, "spec.script", "FieldValueRequired"),
        ({"cleanup": "pre"}, "spec.cleanup", "FieldValueNotSupported"),
        ({"separate": "yes"}, "spec.separate", "FieldValueTypeInvalid"),
        ({"args": "--vus 2"}, "spec.args", "FieldValueTypeInvalid"),
        ({"args": ["--vus", 2]}, "spec.args[1]", "FieldValueTypeInvalid"),
        (
            {"runner": {"resources": {"limits": {"cpu": True}}}},
            "spec.runner.resources.limits.cpu",
            "FieldValueTypeInvalid",
        ),
        (
            {"runner": {"resources": {"limits": {"memory": "lots"}}}},
            "spec.runner.resources.limits.memory",
            "FieldValueInvalid",
        ),
        (
            {"runner": {"env": [{"value": "no name"}]}},
            "spec.runner.env[0].name",
            "FieldValueRequired",
        ),
        (
            {"runner": {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}]}},
            "spec.runner.env[0].valueFrom.secretKeyRef.key",
            "FieldValueRequired",
        ),
    ],
)
async def test_crd_schema_rejects_what_the_real_server_rejects(
    api: aiohttp.ClientSession, spec: dict[str, Any], field: str, reason: str
) -> None:
    body = make_testrun("bad")
    body["spec"].update(spec)
    body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}
    code, status, _ = await call(api, "POST", f"{K6IO}/testruns", body)
    assert code == 422, status
    assert_status(status, 422, "Invalid")
    assert status["message"].startswith('TestRun.k6.io "bad" is invalid: ')
    assert status["details"]["kind"] == "TestRun"
    assert status["details"]["group"] == "k6.io"
    assert [(c["field"], c["reason"]) for c in status["details"]["causes"]] == [(field, reason)]
    code, _, _ = await call(api, "GET", f"{K6IO}/testruns/bad")
    assert code == 404


async def test_int_or_string_quantities_are_accepted(api: aiohttp.ClientSession) -> None:
    resources = {"limits": {"cpu": 2, "memory": "1Gi"}, "requests": {"cpu": "200m"}}
    code, created, _ = await call(
        api, "POST", f"{K6IO}/testruns", make_testrun("quantities", runner={"resources": resources})
    )
    assert code == 201, created
    assert created["spec"]["runner"]["resources"] == resources


@pytest.mark.parametrize(
    "sample", sorted(SAMPLES.glob("k6_v1alpha1_testrun*.yaml")), ids=lambda p: p.stem
)
async def test_k6_operator_samples_are_judged_as_the_real_server_judges_them(
    api: aiohttp.ClientSession, sample: Path
) -> None:
    body = next(d for d in yaml.safe_load_all(sample.read_text()) if d and d["kind"] == "TestRun")
    body["metadata"]["namespace"] = NS  # some samples name their own namespace
    code, answer, _ = await call(api, "POST", f"{K6IO}/testruns", body)
    if sample.stem == "k6_v1alpha1_testrun_with_output":  # its spec.script is a string
        assert code == 422
        assert [c["field"] for c in answer["details"]["causes"]] == ["spec.script"]
    else:
        assert code == 201, answer


async def test_unknown_fields_are_pruned_with_a_warning_or_refused_when_strict(
    api: aiohttp.ClientSession,
) -> None:
    body = make_testrun("pruned", extra="x")
    body["spec"]["script"]["configMap"]["mode"] = "0644"
    body["status"] = {"stage": "finished"}  # status only changes through /status
    code, created, headers = await call(api, "POST", f"{K6IO}/testruns", body)
    assert code == 201
    assert "extra" not in created["spec"]
    assert "mode" not in created["spec"]["script"]["configMap"]
    assert created.get("status", {}).get("stage") != "finished"
    assert 'unknown field \\"spec.extra\\"' in headers["Warning"]

    body["metadata"]["name"] = "strict"
    code, status, _ = await call(api, "POST", f"{K6IO}/testruns", body, fieldValidation="Strict")
    assert code == 400
    assert_status(status, 400, "BadRequest")
    assert status["message"] == (
        'TestRun in version "v1alpha1" cannot be handled as a TestRun: strict decoding error: '
        'unknown field "spec.extra", unknown field "spec.script.configMap.mode"'
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (configmap("Script_1"), "metadata.name"),
        (configmap("script", data={"a/b.js": "x"}), "data[a/b.js]"),
        (configmap("script", data={"a.js": "x" * (1024 * 1024)}), "[]"),
        (configmap("script", data={"a.js": "x"}, binaryData={"a.js": "eA=="}), "binaryData[a.js]"),
        (configmap("script", labels={"keptn_stage": "has space"}), "metadata.labels"),
    ],
)
async def test_configmap_rules_give_422(
    api: aiohttp.ClientSession, body: dict[str, Any], field: str
) -> None:
    code, status, _ = await call(api, "POST", f"{CORE}/configmaps", body)
    assert code == 422, status
    assert_status(status, 422, "Invalid")
    assert field in [c["field"] for c in status["details"]["causes"]]


async def test_configmap_just_under_the_limit_with_binary_data_is_stored(
    api: aiohttp.ClientSession,
) -> None:
    body = configmap("big", data={"a.js": "x" * (1000 * 1024)}, binaryData={"b.tar": "AAEC"})
    code, created, _ = await call(api, "POST", f"{CORE}/configmaps", body)
    assert code == 201
    assert created["binaryData"] == {"b.tar": "AAEC"}


async def test_label_and_field_selectors(api: aiohttp.ClientSession) -> None:
    for name, labels in (
        ("a", {"app": "k6", "tier": "x"}),
        ("b", {"app": "k6", "tier": "y"}),
        ("c", {"app": "other"}),
        ("d", {}),
    ):
        assert (await call(api, "POST", f"{CORE}/configmaps", configmap(name, labels)))[0] == 201

    async def names(**params: str) -> list[str]:
        code, body, _ = await call(api, "GET", f"{CORE}/configmaps", **params)
        assert code == 200, body
        assert body["kind"] == "ConfigMapList"
        assert int(body["metadata"]["resourceVersion"]) >= 4
        return [item["metadata"]["name"] for item in body["items"]]

    assert await names(labelSelector="app=k6") == ["a", "b"]
    assert await names(labelSelector="app==k6,tier!=x") == ["b"]
    assert await names(labelSelector="app!=k6") == ["c", "d"]  # != matches a missing label
    assert await names(labelSelector="tier in (x, z)") == ["a"]
    assert await names(labelSelector="tier notin (x)") == ["b", "c", "d"]
    assert await names(labelSelector="tier") == ["a", "b"]
    assert await names(labelSelector="!tier") == ["c", "d"]
    assert await names(fieldSelector="metadata.name=c") == ["c"]
    assert await names(fieldSelector="metadata.name!=c", labelSelector="app") == ["a", "b"]
    code, status, _ = await call(api, "GET", f"{CORE}/configmaps", labelSelector="app in k6")
    assert code == 400
    assert_status(status, 400, "BadRequest")
    code, status, _ = await call(api, "GET", f"{CORE}/configmaps", fieldSelector="spec.x=1")
    assert (code, status["message"]) == (400, "field label not supported: spec.x")


async def read_events(response: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    events = []
    while len(events) < count:
        line = await asyncio.wait_for(response.content.readline(), 10)
        if not line:
            break
        events.append(json.loads(line))
    return events


async def test_watch_from_a_resource_version_sees_what_came_after(
    api: aiohttp.ClientSession,
) -> None:
    _, first, _ = await call(api, "POST", f"{CORE}/configmaps", configmap("one", {"w": "1"}))
    version = first["metadata"]["resourceVersion"]
    await call(api, "POST", f"{CORE}/configmaps", configmap("two", {"w": "1"}))
    await call(api, "POST", f"{CORE}/configmaps", configmap("other", {"w": "2"}))
    params = {"watch": "true", "resourceVersion": version, "labelSelector": "w=1"}
    async with api.get(f"{CORE}/configmaps", params=params) as response:
        assert response.status == 200
        await call(api, "PATCH", f"{CORE}/configmaps/one", None)  # no body: 400, no event
        async with api.patch(
            f"{CORE}/configmaps/one",
            data=json.dumps({"data": {"k": "v"}}),
            headers={"Content-Type": "application/merge-patch+json"},
        ) as patched:
            assert patched.status == 200
        await call(api, "DELETE", f"{CORE}/configmaps/two")
        events = await read_events(response, 3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "two"),
        ("MODIFIED", "one"),
        ("DELETED", "two"),
    ]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[0] > int(version)


async def test_watch_from_a_compacted_resource_version_gets_410_gone(
    api: aiohttp.ClientSession, kube: SimulatedKubernetes
) -> None:
    _, first, _ = await call(api, "POST", f"{CORE}/configmaps", configmap("one"))
    await call(api, "POST", f"{CORE}/configmaps", configmap("two"))
    kube.compact()
    params = {"watch": "true", "resourceVersion": first["metadata"]["resourceVersion"]}
    async with api.get(f"{CORE}/configmaps", params=params) as response:
        assert response.status == 200
        events = await read_events(response, 2)
    assert len(events) == 1
    assert events[0]["type"] == "ERROR"
    assert_status(events[0]["object"], 410, "Expired")
    assert events[0]["object"]["message"].startswith("too old resource version: ")


async def test_watch_streams_end_on_timeout_and_when_cut(
    api: aiohttp.ClientSession, kube: SimulatedKubernetes
) -> None:
    params = {"watch": "1", "timeoutSeconds": "1"}
    async with api.get(f"{CORE}/configmaps", params=params) as response:
        assert await asyncio.wait_for(response.content.read(), 5) == b""
    async with api.get(f"{CORE}/configmaps", params={"watch": "true"}) as response:
        await asyncio.sleep(0.2)
        assert kube.cut_watches() == 1
        assert await asyncio.wait_for(response.content.read(), 5) == b""


async def test_deleting_an_owner_collects_its_dependents(
    api: aiohttp.ClientSession, kube: SimulatedKubernetes
) -> None:
    _, owner, _ = await call(api, "POST", f"{K6IO}/testruns", make_testrun("owner"))
    reference = {
        "apiVersion": "k6.io/v1alpha1",
        "kind": "TestRun",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    owned = configmap("script")
    owned["metadata"]["ownerReferences"] = [reference]
    assert (await call(api, "POST", f"{CORE}/configmaps", owned))[0] == 201
    # The operator's initializer Job and Pod hang off the TestRun too.
    await wait_for(lambda: kube.objects(PODS, NS))
    code, deleted, _ = await call(api, "DELETE", f"{K6IO}/testruns/owner")
    assert code == 200
    assert deleted["metadata"]["name"] == "owner"  # custom resources answer with the object
    assert kube.objects(CONFIGMAPS, NS) == []
    assert kube.objects(PODS, NS) == []
    assert kube.objects(TESTRUNS, NS) == []


async def test_orphan_propagation_keeps_dependents_and_dangling_owners_are_collected(
    api: aiohttp.ClientSession, kube: SimulatedKubernetes
) -> None:
    _, owner, _ = await call(api, "POST", f"{K6IO}/testruns", make_testrun("owner"))
    owned = configmap("kept")
    owned["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "k6.io/v1alpha1",
            "kind": "TestRun",
            "name": "owner",
            "uid": owner["metadata"]["uid"],
        }
    ]
    await call(api, "POST", f"{CORE}/configmaps", owned)
    code, _, _ = await call(
        api, "DELETE", f"{K6IO}/testruns/owner", {"propagationPolicy": "Orphan"}
    )
    assert code == 200
    assert [c["metadata"]["name"] for c in kube.objects(CONFIGMAPS, NS)] == ["kept"]
    dangling = configmap("dangling")
    dangling["metadata"]["ownerReferences"] = [
        {"apiVersion": "k6.io/v1alpha1", "kind": "TestRun", "name": "gone", "uid": "0000"}
    ]
    code, _, _ = await call(api, "POST", f"{CORE}/configmaps", dangling)
    assert code == 201
    assert [c["metadata"]["name"] for c in kube.objects(CONFIGMAPS, NS)] == ["kept"]


async def test_status_subresource_is_the_only_way_to_change_status(
    api: aiohttp.ClientSession,
) -> None:
    await call(
        api, "POST", f"{K6IO}/testruns", make_testrun("st", runner={"image": "nowhere/k6:1"})
    )
    await asyncio.sleep(0.2)
    _, current, _ = await call(api, "GET", f"{K6IO}/testruns/st")
    stage = current["status"]["stage"]
    current["status"] = {"stage": "finished"}
    current["spec"]["parallelism"] = 2
    code, updated, _ = await call(api, "PUT", f"{K6IO}/testruns/st", current)
    assert code == 200, updated
    assert updated["status"]["stage"] == stage
    assert updated["metadata"]["generation"] == 2
    # A stale resourceVersion is a conflict.
    code, status, _ = await call(api, "PUT", f"{K6IO}/testruns/st", current)
    assert code == 409
    assert_status(status, 409, "Conflict")
    code, status, _ = await call(
        api, "PUT", f"{K6IO}/testruns/st/status", {**updated, "status": {"stage": "done"}}
    )
    assert code == 422
    assert status["details"]["causes"][0]["field"] == "status.stage"
    code, changed, _ = await call(
        api, "PUT", f"{K6IO}/testruns/st/status", {**updated, "status": {"stage": "error"}}
    )
    assert code == 200
    assert changed["status"]["stage"] == "error"
    assert changed["metadata"]["generation"] == 2  # status writes keep the generation


async def wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)
    return value


async def test_a_watch_with_a_selector_sees_objects_enter_and_leave_it(
    api: aiohttp.ClientSession,
) -> None:
    _, created, _ = await call(api, "POST", f"{CORE}/configmaps", configmap("moving", {"w": "1"}))
    params = {"watch": "true", "resourceVersion": created["metadata"]["resourceVersion"]}
    merge = {"Content-Type": "application/merge-patch+json"}
    async with api.get(f"{CORE}/configmaps", params={**params, "labelSelector": "w=1"}) as response:
        for value in ("2", "1"):
            body = json.dumps({"metadata": {"labels": {"w": value}}})
            async with api.patch(f"{CORE}/configmaps/moving", data=body, headers=merge) as patched:
                assert patched.status == 200
        events = await read_events(response, 2)
    assert [(e["type"], e["object"]["metadata"]["labels"]["w"]) for e in events] == [
        ("DELETED", "2"),
        ("ADDED", "1"),
    ]


async def test_a_body_over_the_request_limit_gets_413_status(api: aiohttp.ClientSession) -> None:
    code, status, _ = await call(
        api, "POST", f"{CORE}/configmaps", configmap("huge", data={"a": "x" * (3 * 1024 * 1024)})
    )
    assert code == 413
    assert_status(status, 413, "RequestEntityTooLarge")


async def test_unknown_fields_of_built_in_kinds_and_metadata_follow_field_validation(
    api: aiohttp.ClientSession,
) -> None:
    body = configmap("typo", datas={"a": "1"})
    body["metadata"]["label"] = {"x": "y"}
    code, status, _ = await call(api, "POST", f"{CORE}/configmaps", body, fieldValidation="Strict")
    assert code == 400
    assert status["message"].endswith(
        'strict decoding error: unknown field "datas", unknown field "metadata.label"'
    )
    code, created, headers = await call(api, "POST", f"{CORE}/configmaps", body)
    assert code == 201
    assert "datas" not in created and "label" not in created["metadata"]
    assert headers["Warning"].count("299 - ") == 2


async def test_jobs_and_pods_come_only_from_the_operator_and_generate_name_names_objects(
    api: aiohttp.ClientSession,
) -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {}}
    code, status, _ = await call(api, "POST", f"/apis/batch/v1/namespaces/{NS}/jobs", job)
    assert code == 405
    assert_status(status, 405, "MethodNotAllowed")
    body = configmap("")
    body["metadata"] = {"generateName": "script-"}
    code, created, _ = await call(api, "POST", f"{CORE}/configmaps", body)
    assert code == 201
    assert created["metadata"]["name"].startswith("script-")
    assert len(created["metadata"]["name"]) == len("script-") + 5
