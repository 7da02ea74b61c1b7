"""Write handlers: create, update, patch (and server-side apply), the status subresource and
delete, each admitting the object as the API server does (ObjectMeta rules, the CRD schema for
TestRuns, ConfigMap/Secret rules) before the store keeps it."""

from __future__ import annotations

import copy
import json
import secrets
import string
from typing import Any

import yaml
from aiohttp import web

from devkit.kube import validation
from devkit.kube.patches import apply_patch, merge_patch
from devkit.kube.resources import CONFIGMAPS, PODS, SECRETS, TESTRUNS, ResourceType
from devkit.kube.schema import apply_schema
from devkit.kube.state import STATE, json_response, read_bytes, read_json, read_object
from devkit.kube.status import ApiError, bad_request, invalid, method_not_allowed, success

_APPLY = "application/apply-patch+yaml"


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
    unknown = validation.prune_unknown_fields(resource.kind, obj)
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
        unknown += outcome.unknown_fields
    elif resource == CONFIGMAPS:
        causes += validation.configmap_errors(obj)
    elif resource == SECRETS:
        validation.fold_string_data(obj)
        causes += validation.secret_errors(obj)
    _unknown_fields(request, resource, sorted(unknown), headers)
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


async def create(request: web.Request, resource: ResourceType) -> web.Response:
    if resource.read_only:
        raise method_not_allowed("create")
    body = await read_object(request)
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


async def replace(request: web.Request, resource: ResourceType) -> web.Response:
    if resource.read_only:
        raise method_not_allowed("update")
    body = await read_object(request)
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


async def patch(request: web.Request, resource: ResourceType) -> web.Response:
    if resource.read_only:
        raise method_not_allowed("patch")
    state = request.app[STATE]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    if request.content_type == _APPLY:
        return await _apply(request, resource)
    current = state.store.get(resource, namespace, name)
    patched = apply_patch(
        request.content_type, resource, copy.deepcopy(current), await read_json(request)
    )
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
        body = yaml.safe_load(await read_bytes(request))
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
    merged = merge_patch(copy.deepcopy(current), body)
    merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    return await _store_update(request, resource, merged)


async def replace_status(request: web.Request, resource: ResourceType) -> web.Response:
    body = await read_object(request)
    return await _store_status(
        request, resource, body.get("status"), body.get("metadata", {}).get("resourceVersion")
    )


async def patch_status(request: web.Request, resource: ResourceType) -> web.Response:
    state = request.app[STATE]
    current = state.store.get(resource, request.match_info["namespace"], request.match_info["name"])
    patched = apply_patch(
        request.content_type, resource, copy.deepcopy(current), await read_json(request)
    )
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


async def delete(request: web.Request, resource: ResourceType) -> web.Response:
    state = request.app[STATE]
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    options: dict[str, Any] = {}
    if request.can_read_body:
        raw = await read_bytes(request)
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
