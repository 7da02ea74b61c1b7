"""The HTTP face of the simulated API server: the REST paths and query parameters a client uses.

Served (``{prefix}`` is ``/api/v1`` for configmaps, secrets, pods, services; ``/apis/batch/v1`` for jobs;
``/apis/k6.io/v1alpha1`` for testruns); every request needs ``Authorization: Bearer <token>``:

- ``GET {prefix}/namespaces/{ns}/{plural}``: list (``labelSelector``: ``=``, ``==``, ``!=``,
  ``in``, ``notin``, ``key``, ``!key``; ``fieldSelector``: ``metadata.name``,
  ``metadata.namespace``, for pods also ``status.phase``, ``spec.nodeName``); with
  ``watch=true`` (or ``1``) a watch (``resourceVersion``, ``timeoutSeconds``; others ignored).
  ``GET {prefix}/{plural}`` lists/watches all namespaces.
- ``POST {prefix}/namespaces/{ns}/{plural}``: create (``fieldValidation`` Strict/Warn/Ignore,
  ``dryRun``; ``metadata.generateName``). Jobs and pods are created only by the operator (405).
- ``GET``/``PUT``/``PATCH``/``DELETE {prefix}/namespaces/{ns}/{plural}/{name}``; PATCH takes
  ``application/merge-patch+json``, ``application/json-patch+json``,
  ``application/strategic-merge-patch+json`` (built-in kinds only, as a merge patch) and
  ``application/apply-patch+yaml`` (``fieldManager`` required; create-or-merge); DELETE takes
  ``propagationPolicy`` (query or DeleteOptions body) and ``preconditions.uid``.
- ``GET``/``PUT``/``PATCH .../{name}/status`` for pods, jobs and testruns.
- ``GET /api/v1/namespaces/{ns}/pods/{name}/log`` (``container``, ``tailLines``,
  ``limitBytes``, ``follow``).
- Any method on ``/api/v1/namespaces/{ns}/services/{name}/proxy/{path}``: the service proxy to
  a ready pod behind the Service (``proxy.py``); services are created only by the operator.
- ``GET /version``.

Every answer is JSON with ``Content-Type: application/json`` (clients such as lightkube only
parse a Status error body under exactly that type); errors are ``Status`` objects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from devkit.kube import proxy, reads, writes
from devkit.kube.resources import ALL_RESOURCES, ResourceType
from devkit.kube.state import MAX_REQUEST_BYTES, STATE, ApiState, error_response, json_response
from devkit.kube.status import ApiError, unauthorized

__all__ = ["ApiState", "build_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    if request.headers.get("Authorization") != f"Bearer {state.token}":
        return error_response(unauthorized())
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error)


def build_app(state: ApiState) -> web.Application:
    app = web.Application(middlewares=[_errors_and_auth], client_max_size=MAX_REQUEST_BYTES)
    app[STATE] = state
    app.router.add_get("/version", _version)
    for resource in ALL_RESOURCES:
        prefix = f"/apis/{resource.group}/{resource.version}" if resource.group else "/api/v1"
        collection = f"{prefix}/namespaces/{{namespace}}/{resource.plural}"
        item = collection + "/{name}"
        app.router.add_get(f"{prefix}/{resource.plural}", _bind(reads.list_or_watch, resource))
        app.router.add_get(collection, _bind(reads.list_or_watch, resource))
        app.router.add_post(collection, _bind(writes.create, resource))
        app.router.add_get(item, _bind(reads.get_object, resource))
        app.router.add_put(item, _bind(writes.replace, resource))
        app.router.add_patch(item, _bind(writes.patch, resource))
        app.router.add_delete(item, _bind(writes.delete, resource))
        if resource.status_subresource:
            app.router.add_get(item + "/status", _bind(reads.get_object, resource))
            app.router.add_put(item + "/status", _bind(writes.replace_status, resource))
            app.router.add_patch(item + "/status", _bind(writes.patch_status, resource))
    app.router.add_get("/api/v1/namespaces/{namespace}/pods/{name}/log", reads.pod_log)
    proxied = "/api/v1/namespaces/{namespace}/services/{name}/proxy"
    app.router.add_route("*", proxied, proxy.service_proxy)
    app.router.add_route("*", proxied + "{path:/.*}", proxy.service_proxy)
    return app


def _bind(
    handler: Callable[[web.Request, ResourceType], Awaitable[web.StreamResponse]],
    resource: ResourceType,
) -> Handler:
    async def bound(request: web.Request) -> web.StreamResponse:
        return await handler(request, resource)

    return bound


async def _version(request: web.Request) -> web.Response:
    return json_response({"major": "1", "minor": "33", "gitVersion": "v1.33.0-sli-provider-sim"})
