"""sli.yaml: parse one level, merge the levels (project, then stage, then service).

An indicator is a PromQL string, as in every Keptn SLI provider, or a mapping that adds
options without resorting to prefixes inside the string::

    indicators:
      error_rate:
        query: sum(rate(errors{...}[$DURATION_SECONDS])) / sum(rate(requests{...}[...]))
        on_empty: zero     # no series means 0 here (no errors), not "no data"
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import yaml

from sli_provider.errors import SliProviderError
from sli_provider.yaml_problem import yaml_problem

OnEmpty = Literal["fail", "zero"]
_SPEC_KEYS = {"query", "on_empty"}
# Keptn's SLIConfig (go-utils keptn_base.go); anything else is a typo that would lose indicators.
SLI_FILE_KEYS = ("spec_version", "indicators")


class SLIConfigError(SliProviderError, ValueError):
    """An sli.yaml exists but cannot be used; the provider cannot work (errored, not per indicator)."""


@dataclass(frozen=True)
class IndicatorSpec:
    query: str
    # What an empty result means: "fail" (no data, the default, as prometheus-service since #297)
    # or "zero" (e.g. an error count that has no series because nothing failed).
    on_empty: OnEmpty = "fail"


@dataclass(frozen=True)
class SLIFile:
    """One level's indicators, with where they came from for messages."""

    origin: str
    indicators: Mapping[str, IndicatorSpec]


def parse_sli_yaml(text: str | bytes, origin: str) -> SLIFile:
    """Indicators of one sli.yaml. Like go-utils, a file that exists but has none is an error."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SLIConfigError(f"{origin}: not valid YAML: {yaml_problem(exc)}") from None
    if not isinstance(document, Mapping):
        raise SLIConfigError(f"{origin}: expected a mapping with 'indicators'")
    unknown = set(document) - set(SLI_FILE_KEYS)
    if unknown:
        raise SLIConfigError(
            f"{origin}: unknown top-level key(s) {', '.join(sorted(map(repr, map(str, unknown))))}"
            f" (known: {', '.join(SLI_FILE_KEYS)})"
        )
    indicators = document.get("indicators")
    if not isinstance(indicators, Mapping) or not indicators:
        raise SLIConfigError(f"{origin}: 'indicators' is missing or empty")
    parsed: dict[str, IndicatorSpec] = {}
    for name, value in indicators.items():
        if not isinstance(name, str) or not name:
            raise SLIConfigError(f"{origin}: indicator names must be non-empty strings")
        parsed[name] = _spec(value, f"{origin}: indicator {name!r}")
    return SLIFile(origin=origin, indicators=parsed)


def _spec(value: object, where: str) -> IndicatorSpec:
    if isinstance(value, str) and value.strip():
        return IndicatorSpec(value.strip())
    if not isinstance(value, Mapping):
        raise SLIConfigError(f"{where} must map to a PromQL string or to {{query, on_empty}}")
    unknown = set(value) - _SPEC_KEYS
    if unknown:
        raise SLIConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    query, on_empty = value.get("query"), value.get("on_empty", "fail")
    if not isinstance(query, str) or not query.strip():
        raise SLIConfigError(f"{where}: 'query' must be a PromQL string")
    if on_empty not in ("fail", "zero"):
        raise SLIConfigError(f"{where}: 'on_empty' must be fail or zero, not {on_empty!r}")
    return IndicatorSpec(query.strip(), on_empty)


def merge_levels(levels: Iterable[SLIFile]) -> dict[str, tuple[IndicatorSpec, str]]:
    """name → (spec, origin); later levels override earlier ones per indicator."""
    merged: dict[str, tuple[IndicatorSpec, str]] = {}
    for level in levels:
        for name, spec in level.indicators.items():
            merged[name] = (spec, level.origin)
    return merged
