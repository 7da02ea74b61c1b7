"""The HTTP face of the simulated API server: the REST paths and query parameters a client uses.

Served (``{prefix}`` is ``/api/v1`` for configmaps, secrets, pods; ``/apis/batch/v1`` for jobs;
``/apis/k6.io/v1alpha1`` for testruns):

- ``GET {prefix}/namespaces/{ns}/{plural}``: list (``labelSelector``, ``fieldSelector``), or with
  ``watch=true`` (or ``1``) a watch (``resourceVersion``, ``timeoutSeconds``,
  ``allowWatchBookmarks`` accepted); ``GET {prefix}/{plural}`` lists/watches all namespaces.
- ``POST {prefix}/namespaces/{ns}/{plural}`` create (``fieldValidation``, ``dryRun``,
  ``fieldManager``); ``GET``/``PUT``/``PATCH``/``DELETE .../{plural}/{name}``;
  ``GET``/``PUT``/``PATCH .../{name}/status``; ``GET /api/v1/namespaces/{ns}/pods/{name}/log``
  (``container``, ``tailLines``, ``limitBytes``).

Every answer is JSON with ``Content-Type: application/json`` (clients such as lightkube only
parse a Status error body under exactly that type); errors are ``Status`` objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import secrets
import string
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import yaml
from aiohttp import web

from devkit.kube import validation
from devkit.kube.resources import ALL_RESOURCES, CONFIGMAPS, PODS, SECRETS, TESTRUNS, ResourceType
from devkit.kube.schema import apply_schema
from devkit.kube.selectors import parse_field_selector, parse_label_selector
from devkit.kube.status import (
    ApiError,
    bad_request,
    invalid,
    method_not_allowed,
    success,
    unauthorized,
)
from devkit.kube.store import Event, Filter, Store, Watcher

# The real server ends a watch after minRequestTimeout (1800 s) times a random factor in [1, 2).
DEFAULT_WATCH_SECONDS = 1800
_JSON = "application/json"
_APPLY = "application/apply-patch+yaml"
_FOLLOW_POLL_SECONDS = 0.2
# The API server's request body limit (apiserver MaxRequestBodyBytes), above etcd's object limit.
MAX_REQUEST_BYTES = 3 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PodRuntime(Protocol):
    """What runs the pods' containers (the simulated operator's kubelet part)."""

    def pod_log(self, namespace: str, pod: str) -> bytes | None: ...
    def pod_running(self, namespace: str, pod: str) -> bool: ...
    def waiting_reason(self, namespace: str, pod: str) -> str: ...


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
        self.open_watches: set[asyncio.Task[Any]] = set()


STATE = web.AppKey("state", ApiState)


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(), status=status, content_type=_JSON, headers=headers
    )


def error_response(error: ApiError) -> web.Response:
    return json_response(error.status(), status=error.code)


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
        app.router.add_get(f"{prefix}/{resource.plural}", _bind(_list, resource))
        app.router.add_get(collection, _bind(_list, resource))
        app.router.add_post(collection, _bind(_create, resource))
        app.router.add_get(item, _bind(_get, resource))
        app.router.add_put(item, _bind(_replace, resource))
        app.router.add_patch(item, _bind(_patch, resource))
        app.router.add_delete(item, _bind(_delete, resource))
        if resource.status_subresource:
            app.router.add_get(item + "/status", _bind(_get, resource))
            app.router.add_put(item + "/status", _bind(_replace_status, resource))
            app.router.add_patch(item + "/status", _bind(_patch_status, resource))
    app.router.add_get("/api/v1/namespaces/{namespace}/pods/{name}/log", _pod_log)
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


# --- reads ----------------------------------------------------------------------------------


def _selection(request: web.Request, resource: ResourceType) -> Filter:
    namespace = request.match_info.get("namespace")
    labels = parse_label_selector(request.query.get("labelSelector", ""))
    fields = parse_field_selector(request.query.get("fieldSelector", ""), resource.kind)
    return Filter(resource, namespace, tuple(labels), tuple(fields))


async def _list(request: web.Request, resource: ResourceType) -> web.StreamResponse:
    selection = _selection(request, resource)
    if request.query.get("watch") in ("true", "1"):
        return await _watch(request, selection)
    items, revision = request.app[STATE].store.query(selection)
    return json_response(
        {
            "kind": f"{resource.kind}List",
            "apiVersion": resource.api_version,
            "metadata": {"resourceVersion": str(revision)},
            "items": items,
        }
    )


async def _watch(request: web.Request, selection: Filter) -> web.StreamResponse:
    state = request.app[STATE]
    since_text = request.query.get("resourceVersion", "")
    try:
        since = int(since_text) if since_text else None
        timeout = float(request.query.get("timeoutSeconds", DEFAULT_WATCH_SECONDS))
    except ValueError:
        raise bad_request(f"invalid resource version or timeout: {since_text!r}") from None
    response = web.StreamResponse(headers={"Content-Type": _JSON})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        watcher, backlog = state.store.watch(selection, since)
    except ApiError as error:  # 410 Gone travels as an ERROR event, as the real server sends it
        await _send(response, {"type": "ERROR", "object": error.status()})
        return response
    try:
        await _stream(response, watcher, backlog, timeout)
    except ConnectionResetError:
        return response  # the client went away
    finally:
        state.store.stop_watch(watcher)
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


async def _stream(
    response: web.StreamResponse, watcher: Watcher, backlog: list[Event], timeout: float
) -> None:
    for past in backlog:
        await _send(response, {"type": past.type, "object": past.obj})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (remaining := deadline - loop.time()) > 0:
        try:
            event = await asyncio.wait_for(watcher.queue.get(), remaining)
        except TimeoutError:
            return
        if event is None:  # the test cut this stream
            return
        await _send(response, {"type": event.type, "object": event.obj})


async def _send(response: web.StreamResponse, event: dict[str, Any]) -> None:
    await response.write(json.dumps(event).encode() + b"\n")


async def _get(request: web.Request, resource: ResourceType) -> web.Response:
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    return json_response(request.app[STATE].store.get(resource, namespace, name))


async def _pod_log(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    state.store.get(PODS, namespace, name)  # 404 for an unknown pod
    container = request.query.get("container", "k6")
    if container != "k6":
        raise bad_request(f"container {container} is not valid for pod {name}")
    output = state.pods.pod_log(namespace, name)
    if output is None:
        reason = state.pods.waiting_reason(namespace, name)
        raise bad_request(f'container "k6" in pod "{name}" is waiting to start: {reason}')
    if "tailLines" in request.query:
        lines = output.splitlines(keepends=True)
        count = int(request.query["tailLines"])
        output = b"".join(lines[-count:]) if count > 0 else b""
    if request.query.get("follow") == "true":
        return await _follow_log(request, namespace, name, output)
    if "limitBytes" in request.query:
        output = output[: int(request.query["limitBytes"])]
    return web.Response(body=output, content_type="text/plain")


async def _follow_log(
    request: web.Request, namespace: str, name: str, initial: bytes
) -> web.StreamResponse:
    """Stream the log as it grows until the container ends (``follow=true``)."""
    pods = request.app[STATE].pods
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    sent = len(pods.pod_log(namespace, name) or b"")
    try:
        await response.write(initial)
        while pods.pod_running(namespace, name):
            await asyncio.sleep(_FOLLOW_POLL_SECONDS)
            output = pods.pod_log(namespace, name) or b""
            await response.write(output[sent:])
            sent = len(output)
        await response.write((pods.pod_log(namespace, name) or b"")[sent:])
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client stopped following
    return response


# --- writes ---------------------------------------------------------------------------------


async def _read(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(
            413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_REQUEST_BYTES}"
        ) from None


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await _read(request))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad_request(f"the body of the request was in an unknown format: {error}") from None
    if not isinstance(body, dict):
        raise bad_request("the body of the request was in an unknown format: not an object")
    return body


def _check_type_meta(body: dict[str, Any], resource: ResourceType) -> None:
    if "kind" not in body or not body["kind"]:
        raise bad_request(f"Object 'Kind' is missing in '{json.dumps(body)[:200]}'")
    if body.get("apiVersion") != resource.api_version or body["kind"] != resource.kind:
        raise bad_request(
            f"the API version in the data ({body.get('apiVersion')}) does not match the expected "
            f"API version ({resource.api_version})"
            if body.get("apiVersion") != resource.api_version
            else f"the kind in the data ({body['kind']}) does not match the expected kind ({resource.kind})"
        )


def _admit(
    request: web.Request,
    resource: ResourceType,
    obj: dict[str, Any],
    *,
    current: dict[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Decode, prune, default and validate ``obj`` as the server does before storing it;
    returns it and the response headers (unknown-field warnings)."""
    state = request.app[STATE]
    name = obj.get("metadata", {}).get("name", "")
    headers: dict[str, str] = {}
    causes = validation.metadata_errors(obj.get("metadata") or {})
    if resource == TESTRUNS:
        # With the status subresource the main resource ignores status: it changes only
        # through /status (and a create starts without one).
        obj.pop("status", None)
        if current is not None and "status" in current:
            obj["status"] = current["status"]
        outcome = apply_schema(state.testrun_schema, obj)
        obj = outcome.value
        causes += outcome.causes
        _unknown_fields(request, resource, outcome.unknown_fields, headers)
    elif resource == CONFIGMAPS:
        causes += validation.configmap_errors(obj)
    elif resource == SECRETS:
        validation.fold_string_data(obj)
        causes += validation.secret_errors(obj)
    if causes:
        raise invalid(resource, name, causes)
    return obj, headers


def _unknown_fields(
    request: web.Request, resource: ResourceType, unknown: list[str], headers: dict[str, str]
) -> None:
    if not unknown:
        return
    mode = request.query.get("fieldValidation", "Warn")
    texts = [f'unknown field "{field}"' for field in unknown]
    if mode == "Strict":
        raise bad_request(
            f'{resource.kind} in version "{resource.version}" cannot be handled as a {resource.kind}: '
            f"strict decoding error: {', '.join(texts)}"
        )
    if mode == "Warn":
        headers["Warning"] = ", ".join("299 - " + json.dumps(text) for text in texts)


def _namespace(request: web.Request, body: dict[str, Any]) -> str:
    namespace = request.match_info["namespace"]
    given = body.get("metadata", {}).get("namespace")
    if given and given != namespace:
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    if namespace not in request.app[STATE].namespaces:
        raise ApiError(
            404,
            "NotFound",
            f'namespaces "{namespace}" not found',
            {"name": namespace, "kind": "namespaces"},
        )
    return namespace


async def _create(request: web.Request, resource: ResourceType) -> web.Response:
    if resource.read_only:
        raise method_not_allowed("create")
    body = await _body(request)
    _check_type_meta(body, resource)
    namespace = _namespace(request, body)
    metadata = body.setdefault("metadata", {})
    if metadata.get("resourceVersion"):
        raise bad_request("resourceVersion should not be set on objects to be created")
    for server_set in (
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
        "managedFields",
    ):
        metadata.pop(server_set, None)
    if not metadata.get("name") and metadata.get("generateName"):
        suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        metadata["name"] = metadata["generateName"] + suffix
    obj, headers = _admit(request, resource, body, current=None)
    if "dryRun" in request.query:
        return json_response(obj, status=201, headers=headers)
    created = request.app[STATE].store.create(resource, namespace, obj)
    return json_response(created, status=201, headers=headers)


async def _replace(request: web.Request, resource: ResourceType) -> web.Response:
    if resource.read_only:
        raise method_not_allowed("update")
    body = await _body(request)
    _check_type_meta(body, resource)
    return await _store_update(request, resource, body)


async def _store_update(
    request: web.Request, resource: ResourceType, body: dict[str, Any]
) -> web.Response:
    state = request.app[STATE]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    current = state.store.get(resource, namespace, name)
    metadata = body.setdefault("metadata", {})
    if metadata.get("name", name) != name:
        raise bad_request(
            f"the name of the object ({metadata.get('name')}) does not match the name on the URL ({name})"
        )
    expected = metadata.get("resourceVersion")
    if resource == TESTRUNS and not expected:
        raise invalid(
            resource,
            name,
            [
                validation.cause(
                    "FieldValueInvalid",
                    "metadata.resourceVersion",
                    "Invalid value: 0x0: must be specified for an update",
                )
            ],
        )
    for kept in ("uid", "creationTimestamp", "generation", "namespace"):
        if kept in current["metadata"]:
            metadata[kept] = current["metadata"][kept]
    metadata["name"] = name
    metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
    obj, headers = _admit(request, resource, body, current=current)
    updated = state.store.update(
        resource,
        namespace,
        obj,
        expected_version=expected,
        spec_changed=obj.get("spec") != current.get("spec"),
    )
    return json_response(updated, headers=headers)


async def _patch(request: web.Request, resource: ResourceType) -> web.Response:
    if resource.read_only:
        raise method_not_allowed("patch")
    state = request.app[STATE]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    if request.content_type == _APPLY:
        return await _apply(request, resource)
    current = state.store.get(resource, namespace, name)
    patched = _apply_patch(request, resource, copy.deepcopy(current), await _body_any(request))
    patched.setdefault("metadata", {})["resourceVersion"] = (
        patched["metadata"].get("resourceVersion") or current["metadata"]["resourceVersion"]
    )
    return await _store_update(request, resource, patched)


async def _apply(request: web.Request, resource: ResourceType) -> web.Response:
    """Server-side apply, simplified: creates the object, or merges the applied fields into it
    (no managed-fields bookkeeping, so fields an applier drops are not removed)."""
    if not request.query.get("fieldManager"):
        raise bad_request("PATCH, application/apply-patch+yaml requires fieldManager to be set")
    try:
        body = yaml.safe_load(await _read(request))
    except yaml.YAMLError as error:
        raise bad_request(f"error decoding YAML: {error}") from None
    if not isinstance(body, dict):
        raise bad_request("error decoding YAML: not an object")
    _check_type_meta(body, resource)
    state = request.app[STATE]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    if body.setdefault("metadata", {}).setdefault("name", name) != name:
        raise bad_request("the name of the object does not match the name on the URL")
    try:
        current = state.store.get(resource, namespace, name)
    except ApiError as error:
        if error.code != 404:
            raise
        _namespace(request, body)
        obj, headers = _admit(request, resource, body, current=None)
        return json_response(state.store.create(resource, namespace, obj), 201, headers)
    merged = _merge_patch(copy.deepcopy(current), body)
    merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    return await _store_update(request, resource, merged)


async def _replace_status(request: web.Request, resource: ResourceType) -> web.Response:
    body = await _body(request)
    return await _store_status(
        request, resource, body.get("status"), body.get("metadata", {}).get("resourceVersion")
    )


async def _patch_status(request: web.Request, resource: ResourceType) -> web.Response:
    state = request.app[STATE]
    current = state.store.get(resource, request.match_info["namespace"], request.match_info["name"])
    patched = _apply_patch(request, resource, copy.deepcopy(current), await _body_any(request))
    return await _store_status(request, resource, patched.get("status"), None)


async def _store_status(
    request: web.Request, resource: ResourceType, status: Any, expected: str | None
) -> web.Response:
    state = request.app[STATE]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    current = state.store.get(resource, namespace, name)
    obj = copy.deepcopy(current)
    if status is None:
        obj.pop("status", None)
    else:
        obj["status"] = status
    if resource == TESTRUNS:
        outcome = apply_schema(state.testrun_schema, obj, only="status")
        if outcome.causes:
            raise invalid(resource, name, outcome.causes)
        obj = outcome.value
    return json_response(state.store.update(resource, namespace, obj, expected_version=expected))


async def _body_any(request: web.Request) -> Any:
    try:
        return json.loads(await _read(request))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad_request(f"the body of the request was in an unknown format: {error}") from None


def _apply_patch(
    request: web.Request, resource: ResourceType, target: dict[str, Any], patch: Any
) -> dict[str, Any]:
    content_type = request.content_type
    if content_type == "application/merge-patch+json" or (
        content_type == "application/strategic-merge-patch+json" and resource != TESTRUNS
    ):
        # Strategic merge is approximated by a merge patch (enough for labels and status).
        merged = _merge_patch(target, patch)
        if not isinstance(merged, dict):
            raise bad_request("the patch does not produce an object")
        return merged
    if content_type == "application/json-patch+json":
        return _json_patch(target, patch)
    raise ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
    )


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list):
        raise bad_request("a JSON patch must be a list of operations")
    for operation in operations:
        path = [
            p.replace("~1", "/").replace("~0", "~")
            for p in str(operation.get("path", "")).split("/")[1:]
        ]
        if not path:
            raise bad_request("a JSON patch path must not be empty")
        parent: Any = target
        for step in path[:-1]:
            parent = (
                parent[int(step)]
                if isinstance(parent, list)
                else parent.setdefault(step, {})
                if operation["op"] == "add"
                else parent.get(step)
            )
            if parent is None:
                raise ApiError(422, "Invalid", f"doc is missing path: {operation['path']}")
        last, op = path[-1], operation.get("op")
        if op in ("add", "replace"):
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if op == "add":
                    parent.insert(index, operation.get("value"))
                else:
                    parent[index] = operation.get("value")
            else:
                if op == "replace" and last not in parent:
                    raise ApiError(422, "Invalid", f"doc is missing key: {operation['path']}")
                parent[last] = operation.get("value")
        elif op == "remove":
            try:
                del parent[int(last) if isinstance(parent, list) else last]
            except (KeyError, IndexError):
                raise ApiError(
                    422, "Invalid", f"doc is missing path: {operation['path']}"
                ) from None
        elif op == "test":
            value = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if value != operation.get("value"):
                raise ApiError(422, "Invalid", f"testing value {operation['path']} failed")
        else:
            raise bad_request(f"unexpected kind of patch operation: {op}")
    return target


async def _delete(request: web.Request, resource: ResourceType) -> web.Response:
    if resource.read_only and resource != PODS:
        raise method_not_allowed("delete")
    state = request.app[STATE]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    options: dict[str, Any] = {}
    if request.can_read_body:
        raw = await _read(request)
        if raw.strip():
            try:
                options = json.loads(raw)
            except json.JSONDecodeError as error:
                raise bad_request(
                    f"the body of the request was in an unknown format: {error}"
                ) from None
    policy = (
        request.query.get("propagationPolicy") or options.get("propagationPolicy") or "Background"
    )
    if policy not in ("Orphan", "Background", "Foreground"):
        raise bad_request(
            f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"'
        )
    preconditions = options.get("preconditions") or {}
    current = state.store.get(resource, namespace, name)
    if preconditions.get("uid") and preconditions["uid"] != current["metadata"]["uid"]:
        raise ApiError(
            409,
            "Conflict",
            f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object meta: {current['metadata']['uid']}",
        )
    if "dryRun" in request.query:
        return json_response(current)
    deleted = state.store.delete(resource, namespace, name, orphan=policy == "Orphan")
    # Custom resources and pods answer with the object; core kinds like ConfigMaps with a Status.
    if resource in (TESTRUNS, PODS):
        return json_response(deleted)
    return json_response(success(resource, name, deleted["metadata"]["uid"]))
