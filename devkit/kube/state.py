"""What the API handlers share: the server's state, JSON answers and request bodies."""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import web

from devkit.kube.status import ApiError, bad_request
from devkit.kube.store import Store

JSON_TYPE = "application/json"
# The API server's request body limit (apiserver MaxRequestBodyBytes), above etcd's object limit.
MAX_REQUEST_BYTES = 3 * 1024 * 1024


class PodRuntime(Protocol):
    """What runs the pods' containers (the simulated operator's kubelet part)."""

    def pod_log(self, namespace: str, pod: str) -> bytes | None: ...
    def pod_running(self, namespace: str, pod: str) -> bool: ...
    def waiting_reason(self, namespace: str, pod: str) -> str: ...
    def pod_address(self, namespace: str, pod: str) -> str | None:
        """Where the pod's port 6565 (its k6's REST API) answers; None: nowhere."""
        ...


class ApiState:
    """What the handlers need: the store, the CRD schema, the namespaces and the pods' logs."""

    def __init__(
        self,
        store: Store,
        testrun_schema: dict[str, Any],
        namespaces: frozenset[str],
        token: str,
        pods: PodRuntime,
    ) -> None:
        self.store = store
        self.testrun_schema = testrun_schema
        self.namespaces = namespaces
        self.token = token
        self.pods = pods
        # Subresources the client's RBAC role lacks (a test's way to take a right away).
        self.denied: set[str] = set()


STATE = web.AppKey("state", ApiState)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(), status=status, content_type=JSON_TYPE, headers=headers
    )


def error_response(error: ApiError) -> web.Response:
    return json_response(error.status(), status=error.code)


async def read_bytes(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(
            413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_REQUEST_BYTES}"
        ) from None


async def read_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await read_bytes(request))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad_request(f"the body of the request was in an unknown format: {error}") from None
    if not isinstance(body, dict):
        raise bad_request("the body of the request was in an unknown format: not an object")
    return body


async def read_json(request: web.Request) -> Any:
    try:
        return json.loads(await read_bytes(request))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad_request(f"the body of the request was in an unknown format: {error}") from None
