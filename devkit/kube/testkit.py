"""Plain-HTTP steps tests take against the simulated API server (aiohttp, no client library).

``session`` is an ``aiohttp.ClientSession`` with the server's URL as base and its bearer token;
``session_for(kube)`` opens one.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from devkit.kube.server import SimulatedKubernetes

# The namespace tests and benchmarks run their TestRuns in, and its API paths.
NAMESPACE = "load"
CORE = f"/api/v1/namespaces/{NAMESPACE}"
K6IO = f"/apis/k6.io/v1alpha1/namespaces/{NAMESPACE}"
# How long a runner's k6 may run before the simulated cluster kills it (and a test's API calls wait).
RUN_SECONDS = 60.0

STAGES = ["initialization", "initialized", "created", "started", "stopped", "finished"]
# A script that runs 60 s on 2 VUs (so up to 2 runners get one each): for tests that stop a run.
LONG_SCRIPT = """
import { sleep } from 'k6';
export const options = { vus: 2, duration: '60s' };
export default function () { sleep(0.1); }
"""


class UnexpectedAnswer(RuntimeError):
    """The API server answered with another status than the step expects."""


@asynccontextmanager
async def session_for(
    kube: SimulatedKubernetes, timeout: float = 60.0
) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {kube.token}"}
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(kube.url, headers=headers, timeout=client_timeout) as session:
        yield session


def core_path(namespace: str, plural: str) -> str:
    return f"/api/v1/namespaces/{namespace}/{plural}"


def testruns_path(namespace: str) -> str:
    return f"/apis/k6.io/v1alpha1/namespaces/{namespace}/testruns"


async def post(session: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create; the created object (201) or UnexpectedAnswer."""
    async with session.post(path, json=body) as response:
        answer: dict[str, Any] = await response.json()
        if response.status != 201:
            raise UnexpectedAnswer(f"POST {path}: {response.status} {answer}")
        return answer


async def get(session: aiohttp.ClientSession, path: str, **params: str) -> Any:
    async with session.get(path, params=params) as response:
        if response.status != 200:
            raise UnexpectedAnswer(f"GET {path}: {response.status} {await response.text()}")
        return await response.json()


async def start_testrun(
    session: aiohttp.ClientSession, namespace: str, name: str, script: str, **spec: Any
) -> dict[str, Any]:
    """A ConfigMap ``name`` holding ``script`` as ``test.js`` and a TestRun ``name`` running it
    (``spec`` adds to or overrides ``parallelism: 1`` and the script); the created TestRun."""
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"test.js": script},
    }
    await post(session, core_path(namespace, "configmaps"), configmap)
    testrun = {
        "apiVersion": "k6.io/v1alpha1",
        "kind": "TestRun",
        "metadata": {"name": name},
        "spec": {
            "parallelism": 1,
            "script": {"configMap": {"name": name, "file": "test.js"}},
            **spec,
        },
    }
    return await post(session, testruns_path(namespace), testrun)


async def watch_stages(
    session: aiohttp.ClientSession, namespace: str, name: str, since: str, until: str = "finished"
) -> list[str]:
    """The distinct stages TestRun ``name`` passes through after resourceVersion ``since``,
    watched until ``until`` or ``error``."""
    stages: list[str] = []
    params = {"watch": "true", "resourceVersion": since, "fieldSelector": f"metadata.name={name}"}
    async with session.get(testruns_path(namespace), params=params) as response:
        async for line in response.content:
            event = json.loads(line)
            if event["type"] not in ("MODIFIED", "DELETED"):
                raise UnexpectedAnswer(f"watch of {name}: {event}")
            stage = event["object"].get("status", {}).get("stage")
            if stage and (not stages or stages[-1] != stage):
                stages.append(stage)
            if stage in (until, "error"):
                break
    return stages


async def runner_pods(
    session: aiohttp.ClientSession, namespace: str, name: str
) -> list[dict[str, Any]]:
    """TestRun ``name``'s runner pods (as the product finds them), runner 1 first."""
    selector = f"app=k6,k6_cr={name},runner=true"
    listing = await get(session, core_path(namespace, "pods"), labelSelector=selector)
    return sorted(listing["items"], key=lambda p: p["metadata"]["labels"]["job-name"])


def exit_code(pod: dict[str, Any]) -> int:
    code: int = pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"]
    return code


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
