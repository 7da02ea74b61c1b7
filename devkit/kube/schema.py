"""A CRD's structural schema applied as the API server applies it to a custom resource.

In order (as apiextensions-apiserver does): unknown fields are pruned (and reported, so the
caller can honour ``fieldValidation``), ``null`` in a non-nullable field is dropped, defaults are
filled in where the parent object exists, then the value is validated: types (with
``x-kubernetes-int-or-string``), ``required``, ``enum``, ``pattern``, lengths, ``minimum``, the
``int32``/``int64`` formats, ``anyOf`` and the uniqueness of ``x-kubernetes-list-type`` map/set
lists. Each problem becomes a cause of a 422 Invalid Status worded as kube-openapi words it.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devkit.kube.validation import Cause, cause

TESTRUN_CRD = Path(__file__).resolve().parent / "k6.io_testruns.yaml"

_INT_FORMATS = {"int32": 32, "int64": 64}
# The root fields the API server handles itself (ObjectMeta, type meta), not through the schema.
_ROOT_HANDLED = ("apiVersion", "kind", "metadata")


@functools.cache
def load_crd_schema(path: Path = TESTRUN_CRD, version: str = "v1alpha1") -> dict[str, Any]:
    """The schema (cached: parsing the 6000-line CRD takes a second; callers never mutate it)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return schema
    raise ValueError(f"{path} has no version {version}")


@dataclass
class SchemaOutcome:
    value: dict[str, Any]
    unknown_fields: list[str] = field(default_factory=list)
    causes: list[Cause] = field(default_factory=list)


def apply_schema(
    schema: dict[str, Any], obj: dict[str, Any], *, only: str | None = None
) -> SchemaOutcome:
    """Prune, default and validate ``obj``; ``only`` restricts the work to one root field
    (``status`` for the status subresource, which ignores the rest)."""
    outcome = SchemaOutcome(value={})
    properties = schema.get("properties", {})
    for key, value in obj.items():
        if key in _ROOT_HANDLED or (only is not None and key != only):
            outcome.value[key] = value
        elif key in properties:
            walked = _walk(properties[key], value, key, outcome)
            if walked is not _DROP:
                outcome.value[key] = walked
        else:
            outcome.unknown_fields.append(key)
    outcome.unknown_fields.sort()
    return outcome


class _Drop:
    pass


_DROP: Any = _Drop()


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _fits(expected: str, value: Any) -> bool:
    actual = _type_name(value)
    return actual == expected or (expected == "number" and actual == "integer")


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(_type_name(value))


def _walk(schema: dict[str, Any], value: Any, path: str, outcome: SchemaOutcome) -> Any:
    if value is None:
        return value if schema.get("nullable") else _DROP
    if schema.get("x-kubernetes-int-or-string"):
        if _type_name(value) not in ("integer", "string"):
            name = _type_name(value)
            outcome.causes.append(
                cause(
                    "FieldValueTypeInvalid",
                    path,
                    f'Invalid value: "{name}": {path} in body must be of type integer,string: "{name}"',
                )
            )
            return value
    elif "type" in schema and not _fits(schema["type"], value):
        name = _type_name(value)
        outcome.causes.append(
            cause(
                "FieldValueTypeInvalid",
                path,
                f'Invalid value: "{name}": {path} in body must be of type {schema["type"]}: "{name}"',
            )
        )
        return value
    if isinstance(value, dict):
        value = _walk_object(schema, value, path, outcome)
    elif isinstance(value, list):
        value = [
            _walk(schema.get("items", {}), item, f"{path}[{i}]", outcome)
            for i, item in enumerate(value)
        ]
        _check_list_uniqueness(schema, value, path, outcome)
    _check_value(schema, value, path, outcome)
    return value


def _walk_object(
    schema: dict[str, Any], value: dict[str, Any], path: str, outcome: SchemaOutcome
) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
    result: dict[str, Any] = {}
    for key, item in value.items():
        child = f"{path}.{key}"
        if key in properties:
            walked = _walk(properties[key], item, child, outcome)
        elif isinstance(additional, dict):
            walked = _walk(additional, item, child, outcome)
        elif preserve or additional is True:
            walked = item
        else:
            outcome.unknown_fields.append(child)
            continue
        if walked is not _DROP:
            result[key] = walked
    for key, sub in properties.items():
        if key not in result and "default" in sub:
            result[key] = _walk(sub, copy.deepcopy(sub["default"]), f"{path}.{key}", outcome)
    for key in schema.get("required", []):
        if key not in result:
            outcome.causes.append(cause("FieldValueRequired", f"{path}.{key}", "Required value"))
    return result


def _check_value(schema: dict[str, Any], value: Any, path: str, outcome: SchemaOutcome) -> None:
    problems: list[tuple[str, str]] = []
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(json.dumps(v) for v in schema["enum"])
        outcome.causes.append(
            cause(
                "FieldValueNotSupported",
                path,
                f"Unsupported value: {_shown(value)}: supported values: {supported}",
            )
        )
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            outcome.causes.append(
                cause(
                    "FieldValueTooLong",
                    path,
                    f"Too long: may not be more than {schema['maxLength']} bytes",
                )
            )
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(
                (
                    "FieldValueInvalid",
                    f"{path} in body should be at least {schema['minLength']} chars long",
                )
            )
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(
                ("FieldValueInvalid", f"{path} in body should match '{schema['pattern']}'")
            )
    if (
        _type_name(value) in ("integer", "number")
        and "minimum" in schema
        and value < schema["minimum"]
    ):
        problems.append(
            (
                "FieldValueInvalid",
                f"{path} in body should be greater than or equal to {schema['minimum']}",
            )
        )
    bits = _INT_FORMATS.get(schema.get("format", ""))
    if (
        bits
        and _type_name(value) == "integer"
        and not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)
    ):
        problems.append(
            ("FieldValueInvalid", f"{path} in body must be of type {schema['format']}: {value}")
        )
    if "anyOf" in schema and not any(_branch_fits(branch, value) for branch in schema["anyOf"]):
        problems.append(
            ("FieldValueInvalid", f"{path} in body must match at least one schema in anyOf")
        )
    for reason, text in problems:
        outcome.causes.append(cause(reason, path, f"Invalid value: {_shown(value)}: {text}"))


def _branch_fits(branch: dict[str, Any], value: Any) -> bool:
    # Structural schemas allow only value validations in anyOf branches; these use ``type``.
    return "type" not in branch or _fits(branch["type"], value)


def _check_list_uniqueness(
    schema: dict[str, Any], items: list[Any], path: str, outcome: SchemaOutcome
) -> None:
    list_type = schema.get("x-kubernetes-list-type")
    if list_type not in ("map", "set"):
        return
    keys = schema.get("x-kubernetes-list-map-keys", [])
    seen: list[Any] = []
    for index, item in enumerate(items):
        identity = (
            {key: item.get(key) for key in keys}
            if list_type == "map" and isinstance(item, dict)
            else item
        )
        if identity in seen:
            outcome.causes.append(
                cause(
                    "FieldValueDuplicate",
                    f"{path}[{index}]",
                    f"Duplicate value: {json.dumps(identity)}",
                )
            )
        seen.append(identity)
