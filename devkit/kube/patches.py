"""The patch formats the API server takes: JSON merge patch, JSON patch (RFC 6902), and a
strategic merge patch for built-in kinds (approximated by a merge patch; custom resources refuse
it with 415, as the real server does)."""

from __future__ import annotations

from typing import Any

from devkit.kube.resources import TESTRUNS, ResourceType
from devkit.kube.status import ApiError, bad_request


def apply_patch(
    content_type: str, resource: ResourceType, target: dict[str, Any], patch: Any
) -> dict[str, Any]:
    if content_type == "application/merge-patch+json" or (
        content_type == "application/strategic-merge-patch+json" and resource != TESTRUNS
    ):
        # Strategic merge is approximated by a merge patch (enough for labels and status).
        merged = merge_patch(target, patch)
        if not isinstance(merged, dict):
            raise bad_request("the patch does not produce an object")
        return merged
    if content_type == "application/json-patch+json":
        return json_patch(target, patch)
    raise ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
    )


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
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
