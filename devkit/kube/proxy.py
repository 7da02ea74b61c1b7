"""The API server's service proxy: ``/api/v1/namespaces/{ns}/services/{name}/proxy/{path}``.

As the real server answers (``pkg/registry/core/service/storage`` ResourceLocation and
apimachinery's ``util/proxy``): ``{name}`` is ``[scheme:]service[:port]``; an unknown Service is
404 ``services "x" not found``; a port number the Service does not declare is 503 ``no service
port 6565 found for service "x"``; a Service without a ready pod behind its selector is 503
``no endpoints available for service "x"``; a pod that does not answer is 503 ``error trying to
reach service: dial tcp ...``. Otherwise the request goes to the pod's port, the path after
``/proxy`` with its query, method, body and content type, and the pod's answer comes back as it
is. Here a pod's port 6565 is its k6's REST API on a loopback port (the runner's ``--address``).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web

from devkit.kube.resources import PODS, SERVICES
from devkit.kube.selectors import Requirement
from devkit.kube.state import STATE, read_bytes
from devkit.kube.status import ApiError, bad_request
from devkit.kube.store import Filter

_TIMEOUT = aiohttp.ClientTimeout(total=30)
# Request headers passed on to the pod (the client's credentials are the API server's, not its).
_FORWARDED = ("Content-Type", "Accept")


def _unavailable(message: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", message)


def _split(spec: str) -> tuple[str, str]:
    """``[scheme:]name[:port]`` → name and port (empty: the Service's only port)."""
    parts = spec.split(":")
    if len(parts) == 3:
        if parts[0] not in ("http", "https"):
            raise bad_request(f"invalid service request {spec!r}")
        parts = parts[1:]
    if len(parts) == 1:
        return parts[0], ""
    if len(parts) == 2:
        return parts[0], parts[1]
    raise bad_request(f"invalid service request {spec!r}")


def _port_name(service: dict[str, Any], port: str) -> str | None:
    """The Service port's name (None: it has no such port number)."""
    ports = service["spec"].get("ports") or []
    if not port:
        return ports[0].get("name", "") if len(ports) == 1 else ""
    if port.isdigit():
        for declared in ports:
            if str(declared.get("port")) == port:
                return str(declared.get("name", ""))
        return None
    return port


def _ready_pods(request: web.Request, namespace: str, service: dict[str, Any]) -> list[str]:
    selector = service["spec"].get("selector") or {}
    if not selector:
        return []
    labels = tuple(Requirement(key, "=", frozenset({value})) for key, value in selector.items())
    pods, _ = request.app[STATE].store.query(Filter(PODS, namespace, labels, ()))
    ready = []
    for pod in pods:
        conditions = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            ready.append(pod["metadata"]["name"])
    return ready


async def service_proxy(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    namespace = request.match_info["namespace"]
    name, port = _split(request.match_info["name"])
    if "services/proxy" in state.denied:
        raise ApiError(
            403,
            "Forbidden",
            f'services "{name}" is forbidden: User "system:serviceaccount:{namespace}:sli-provider" '
            f'cannot {request.method.lower()} resource "services/proxy" in API group "" in the '
            f'namespace "{namespace}"',
            {"name": name, "kind": "services"},
        )
    service = state.store.get(SERVICES, namespace, name)
    port_name = _port_name(service, port)
    if port_name is None:
        raise _unavailable(f'no service port {port} found for service "{name}"')
    addresses = [
        address
        for pod in _ready_pods(request, namespace, service)
        if (address := state.pods.pod_address(namespace, pod)) is not None
    ]
    if not addresses:
        raise _unavailable(f'no endpoints available for service "{name}"')
    address = addresses[0]
    path = request.match_info.get("path") or "/"
    body = await read_bytes(request)
    headers = {h: request.headers[h] for h in _FORWARDED if h in request.headers}
    try:
        async with (
            aiohttp.ClientSession(timeout=_TIMEOUT) as session,
            session.request(
                request.method,
                f"http://{address}{path}",
                params=request.query,
                data=body or None,
                headers=headers,
            ) as answer,
        ):
            content = await answer.read()
            return web.Response(
                status=answer.status,
                body=content,
                headers={"Content-Type": answer.headers.get("Content-Type", "text/plain")},
            )
    except (aiohttp.ClientError, TimeoutError) as error:
        refused = isinstance(error, aiohttp.ClientConnectorError)
        why = "connect: connection refused" if refused else str(error) or type(error).__name__
        raise _unavailable(f"error trying to reach service: dial tcp {address}: {why}") from None
