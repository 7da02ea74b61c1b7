"""sli.yaml: parse one level, merge the levels (project, then stage, then service)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import yaml


class SLIConfigError(ValueError):
    """An sli.yaml exists but cannot be used; the provider cannot work (errored, not per indicator)."""


@dataclass(frozen=True)
class SLIFile:
    """One level's indicators, with where they came from for messages."""

    origin: str
    indicators: Mapping[str, str]


def parse_sli_yaml(text: str | bytes, origin: str) -> SLIFile:
    """Indicators of one sli.yaml. Like go-utils, a file that exists but has none is an error."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SLIConfigError(f"{origin}: not valid YAML: {_first_line(exc)}") from None
    if not isinstance(document, Mapping):
        raise SLIConfigError(f"{origin}: expected a mapping with 'indicators'")
    indicators = document.get("indicators")
    if not isinstance(indicators, Mapping) or not indicators:
        raise SLIConfigError(f"{origin}: 'indicators' is missing or empty")
    parsed: dict[str, str] = {}
    for name, query in indicators.items():
        if not isinstance(name, str) or not name:
            raise SLIConfigError(f"{origin}: indicator names must be non-empty strings")
        if not isinstance(query, str) or not query.strip():
            raise SLIConfigError(f"{origin}: indicator {name!r} must map to a PromQL string")
        parsed[name] = query.strip()
    return SLIFile(origin=origin, indicators=parsed)


def merge_levels(levels: Iterable[SLIFile]) -> dict[str, tuple[str, str]]:
    """name → (query, origin); later levels override earlier ones per indicator."""
    merged: dict[str, tuple[str, str]] = {}
    for level in levels:
        for name, query in level.indicators.items():
            merged[name] = (query, level.origin)
    return merged


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
