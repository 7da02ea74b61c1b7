"""Label and field selectors as the API server parses them (``labels.Parse``, ``fields.Parse``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devkit.kube.status import ApiError, bad_request

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9./_-]*")
_VALUE = re.compile(r"[A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "exists", "!", "=", "!=", "in", "notin"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and value in self.values
        # != and notin also match objects that lack the label, as in Kubernetes.
        return value not in self.values


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_label_selector(text: str) -> list[Requirement]:
    if not text.strip():
        return []
    requirements = []
    for part in _split_top_level(text):
        requirements.append(_parse_requirement(part, text))
    return requirements


def _parse_requirement(part: str, whole: str) -> Requirement:
    part = part.strip()
    if part.startswith("!"):
        key = part[1:].strip()
        if not _KEY.fullmatch(key):
            raise _unparsable(whole)
        return Requirement(key, "!")
    if match := re.fullmatch(r"(\S+)\s+(in|notin)\s*\((.*)\)", part):
        key, operator, inner = match.groups()
        values = frozenset(v.strip() for v in inner.split(",") if v.strip())
        if _KEY.fullmatch(key) and all(_VALUE.fullmatch(v) for v in values):
            return Requirement(key, operator, values)
    elif match := re.fullmatch(r"(\S+?)\s*(==|=|!=)\s*(\S*)", part):
        key, operator, value = match.groups()
        if _KEY.fullmatch(key) and _VALUE.fullmatch(value):
            return Requirement(key, "!=" if operator == "!=" else "=", frozenset({value}))
    elif _KEY.fullmatch(part):
        return Requirement(part, "exists")
    raise _unparsable(whole)


def _unparsable(text: str) -> ApiError:
    return bad_request(f"unable to parse requirement: found '{text}', expected: label selector")


# Fields each kind supports in fieldSelector (every kind supports the metadata ones).
_FIELDS = {"metadata.name", "metadata.namespace"}
_POD_FIELDS = {"status.phase", "spec.nodeName", "spec.restartPolicy"}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    equal: bool
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        current: Any = obj
        for step in self.field.split("."):
            current = current.get(step, "") if isinstance(current, Mapping) else ""
        return (str(current) == self.value) == self.equal


def parse_field_selector(text: str, kind: str) -> list[FieldRequirement]:
    if not text.strip():
        return []
    supported = _FIELDS | (_POD_FIELDS if kind == "Pod" else set())
    requirements = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*?)\s*", part)
        if match is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, operator, value = match.groups()
        if field not in supported:
            raise bad_request(f"field label not supported: {field}")
        requirements.append(FieldRequirement(field, operator != "!=", value))
    return requirements
