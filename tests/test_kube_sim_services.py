"""The simulated operator's Service per runner, and the API server's service proxy to the
runner's k6 REST API, answering as the real API server does."""

from __future__ import annotations

import asyncio

import aiohttp

from devkit.kube import SERVICES, SimulatedKubernetes
from devkit.kube.testkit import (
    CORE,
    K6IO,
    LONG_SCRIPT,
    NAMESPACE,
    exit_code,
    get,
    runner_pods,
    start_testrun,
    watch_stages,
)

STOP = {"data": {"type": "status", "id": "default", "attributes": {"stopped": True}}}


async def test_each_runner_has_a_service_and_the_proxy_reaches_its_k6(
    kube: SimulatedKubernetes, api: aiohttp.ClientSession
) -> None:
    created = await start_testrun(api, NAMESPACE, "svc", LONG_SCRIPT, parallelism=2)
    await watch_stages(api, NAMESPACE, "svc", created["metadata"]["resourceVersion"], "started")
    services = await get(api, f"{CORE}/services", labelSelector="k6_cr=svc")
    assert sorted(s["metadata"]["name"] for s in services["items"]) == [
        "svc-service-1",
        "svc-service-2",
    ]
    one = next(s for s in services["items"] if s["metadata"]["name"] == "svc-service-1")
    assert one["spec"]["selector"] == {"job-name": "svc-1"}
    assert one["spec"]["ports"][0]["port"] == 6565
    assert one["metadata"]["ownerReferences"][0]["name"] == "svc"
    # k6's own answer, through the proxy: GET, then the stop job's PATCH.
    status = await get(api, f"{CORE}/services/svc-service-1:6565/proxy/v1/status")
    assert status["data"]["attributes"]["running"] is True
    async with api.patch(f"{CORE}/services/svc-service-1:6565/proxy/v1/status", json=STOP) as r:
        assert r.status == 200
        assert (await r.json())["data"]["attributes"]["stopped"] is True
    for _ in range(100):
        pods = await runner_pods(api, NAMESPACE, "svc")
        if "terminated" in pods[0]["status"]["containerStatuses"][0]["state"]:
            break
        await asyncio.sleep(0.1)
    # A run stopped through k6's REST API ends with k6's exit code 103; the other runs on.
    assert exit_code(pods[0]) == 103
    assert "running" in pods[1]["status"]["containerStatuses"][0]["state"]
    # No ready pod behind the Service any more: the real server's 503.
    async with api.patch(f"{CORE}/services/svc-service-1:6565/proxy/v1/status", json=STOP) as r:
        assert r.status == 503
        body = await r.json()
        assert (body["reason"], body["message"]) == (
            "ServiceUnavailable",
            'no endpoints available for service "svc-service-1"',
        )
    async with api.get(f"{CORE}/services/svc-service-2:6566/proxy/v1/status") as r:
        assert r.status == 503
        assert (await r.json())[
            "message"
        ] == 'no service port 6566 found for service "svc-service-2"'
    async with api.get(f"{CORE}/services/nope-service-1:6565/proxy/v1/status") as r:
        assert r.status == 404
        assert (await r.json())["message"] == 'services "nope-service-1" not found'
    # Deleting the TestRun takes its Services along.
    async with api.delete(f"{K6IO}/testruns/svc") as r:
        assert r.status == 200
    assert kube.objects(SERVICES, NAMESPACE) == []
    assert await kube.k6_stopped()
