"""The fields of one HTTP request (a JSON body or query parameters) read with every problem
collected, so that the caller fixes them all in one go (/preview and /gate alike)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sli_provider.keptn.names import PLAIN_NAME_RULE, is_plain_name, shown
from sli_provider.keptn.timestamps import TimestampError, parse_keptn


class RequestFields:
    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = fields
        self.problems: list[str] = []

    def add(self, problem: str) -> None:
        self.problems.append(problem)

    def text(self, name: str, *, required: bool = False) -> str:
        value = self.fields.get(name)
        if value is None or value == "":
            if required:
                self.add(f"{name} is required")
            return ""
        if not isinstance(value, str):
            self.add(f"{name} must be a string, not {type(value).__name__}")
            return ""
        return value

    def scope_name(self, name: str) -> str:
        """A Keptn project, stage or service: it becomes part of a path, so a plain name."""
        value = self.text(name, required=True)
        if value and not is_plain_name(value):
            self.add(f"{name} {shown(value)} cannot be a Keptn {name}: {PLAIN_NAME_RULE}")
        return value

    def moment(self, name: str, *, required: bool = False) -> float | None:
        """A Keptn timestamp (or unix seconds, in a JSON body), as unix seconds."""
        raw = self.fields.get(name)
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        given = self.text(name, required=required)
        if not given:
            return None
        try:
            return parse_keptn(given)
        except TimestampError as exc:
            self.add(f"{name}: {exc}")
            return None
