"""slo.yaml → typed objectives, with the defaults lighthouse applies.

Mirrors lighthouse-service/event_handler/common.go ``parseSLO`` (keptn 1.x): the document is
decoded into go-utils' ``ServiceLevelObjectives`` (pkg/lib/service_level_objectives.go) with
yaml.v3, then defaulted. Decoding is lenient where yaml.v3 is lenient (unknown keys, null
values, scalars into string fields) and strict where it errors (a mapping where a string is
expected, text where a number is expected), because a decoding error makes lighthouse answer
with an errored evaluation instead of scoring.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import yaml

from sli_provider.errors import SliProviderError


class SLOParseError(SliProviderError, ValueError):
    """The document cannot be decoded into lighthouse's SLO structure."""


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, as yaml.v3 resolves them.

    PyYAML (YAML 1.1) would turn ``sli: on`` or ``displayName: no`` into booleans; yaml.v3
    keeps them as text and only converts yes/no/on/off when the target field is a bool.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# yaml.v3's decoder still accepts these YAML 1.1 spellings for a bool field.
_BOOL_WORDS = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "off", "Off", "OFF"), False),
}


@dataclass(frozen=True)
class Comparison:
    """The ``comparison`` block after defaulting."""

    compare_with: str
    include_result_with_score: str
    number_of_comparison_results: int
    aggregate_function: str

    @property
    def previous_results_limit(self) -> int:
        """How many earlier evaluations lighthouse asks the datastore for.

        evaluate_sli_handler.go: 1 for single_result, number_of_comparison_results for
        several_results, and 3 for anything else (including a missing compare_with).
        """
        if self.compare_with == "single_result":
            return 1
        if self.compare_with == "several_results":
            return self.number_of_comparison_results
        return 3


# parseSLO's block for a document without `comparison`.
DEFAULT_COMPARISON = Comparison("single_result", "all", 1, "avg")


@dataclass(frozen=True)
class CriteriaSet:
    """One ``- criteria: [...]`` item; its strings are AND-ed."""

    criteria: tuple[str, ...]


@dataclass(frozen=True)
class Objective:
    sli: str
    display_name: str = ""
    pass_criteria: tuple[CriteriaSet, ...] = ()  # items are OR-ed; empty => info objective
    warning_criteria: tuple[CriteriaSet, ...] = ()
    weight: int = 1
    key_sli: bool = False


@dataclass(frozen=True)
class TotalScore:
    """Raw ``total_score`` strings; lighthouse parses them only while scoring."""

    pass_target: str = ""
    warning_target: str = ""


@dataclass(frozen=True)
class SLO:
    spec_version: str = ""
    filter: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    comparison: Comparison = DEFAULT_COMPARISON
    objectives: tuple[Objective, ...] = ()
    total_score: TotalScore | None = None  # None: block missing (lighthouse: nil pointer)


def parse_slo(document: str | bytes | Mapping[str, Any] | None) -> SLO:
    """Decode and default an slo.yaml document (text or an already-parsed mapping)."""
    if isinstance(document, str | bytes):
        try:
            # A SafeLoader subclass: constructs plain data only.
            document = yaml.load(document, Loader=_Yaml12Loader)  # noqa: S506
        except yaml.YAMLError as exc:
            raise SLOParseError(f"invalid YAML: {exc}") from exc
    if document is None:  # an empty document decodes into the zero value, not an error
        document = {}
    root = _mapping(document, "document")
    return SLO(
        spec_version=_string(root.get("spec_version"), "spec_version"),
        filter=MappingProxyType(_string_map(root.get("filter"), "filter")),
        comparison=_comparison(root.get("comparison")),
        objectives=_objectives(root.get("objectives")),
        total_score=_total_score(root.get("total_score")),
    )


def _comparison(raw: object) -> Comparison:
    if raw is None:
        return DEFAULT_COMPARISON
    block = _mapping(raw, "comparison")
    # A present block is defaulted field by field; the count defaults to 3, not 1
    # (common.go parseSLO; common_test.go TestParseLO "Simple SLO file" with only compare_with).
    count = _integer(block.get("number_of_comparison_results"), "number_of_comparison_results")
    return Comparison(
        compare_with=_string(block.get("compare_with"), "compare_with"),
        include_result_with_score=_string(
            block.get("include_result_with_score"), "include_result_with_score"
        )
        or "all",
        number_of_comparison_results=count or 3,
        aggregate_function=_string(block.get("aggregate_function"), "aggregate_function") or "avg",
    )


def _objectives(raw: object) -> tuple[Objective, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SLOParseError("objectives: expected a list")
    objectives = []
    for index, item in enumerate(raw):
        if item is None:  # parseSLO drops null entries (`- null`)
            continue
        where = f"objectives[{index}]"
        entry = _mapping(item, where)
        weight = _integer(entry.get("weight"), f"{where}.weight")
        objectives.append(
            Objective(
                sli=_string(entry.get("sli"), f"{where}.sli"),
                display_name=_string(entry.get("displayName"), f"{where}.displayName"),
                pass_criteria=_criteria_sets(entry.get("pass"), f"{where}.pass"),
                warning_criteria=_criteria_sets(entry.get("warning"), f"{where}.warning"),
                weight=weight or 1,  # 0 and missing both become 1; negatives are kept
                key_sli=_boolean(entry.get("key_sli"), f"{where}.key_sli"),
            )
        )
    return tuple(objectives)


def _criteria_sets(raw: object, where: str) -> tuple[CriteriaSet, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SLOParseError(f"{where}: expected a list")
    sets = []
    for index, item in enumerate(raw):
        # Lighthouse would dereference a null item and panic; an empty set is the closest
        # non-crashing reading (and is what `- criteria: []` means there: vacuously true).
        entry = _mapping(item, f"{where}[{index}]") if item is not None else {}
        criteria = entry.get("criteria")
        if criteria is None:
            sets.append(CriteriaSet(()))
            continue
        if not isinstance(criteria, list):
            raise SLOParseError(f"{where}[{index}].criteria: expected a list")
        sets.append(
            CriteriaSet(
                tuple(_string(c, f"{where}[{index}].criteria[{i}]") for i, c in enumerate(criteria))
            )
        )
    return tuple(sets)


def _total_score(raw: object) -> TotalScore | None:
    if raw is None:
        return None
    block = _mapping(raw, "total_score")
    return TotalScore(
        pass_target=_string(block.get("pass"), "total_score.pass"),
        warning_target=_string(block.get("warning"), "total_score.warning"),
    )


def _mapping(raw: object, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise SLOParseError(f"{where}: expected a mapping")
    return raw


def _string(raw: object, where: str) -> str:
    # yaml.v3 stores the scalar's text in a string field, whatever the scalar resolved to.
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str | int | float):
        return str(raw)
    raise SLOParseError(f"{where}: expected a string")


def _integer(raw: object, where: str) -> int:
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise SLOParseError(f"{where}: expected an integer")
    if isinstance(raw, float) and not raw.is_integer():
        raise SLOParseError(f"{where}: expected an integer")
    return int(raw)


def _boolean(raw: object, where: str) -> bool:
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw in _BOOL_WORDS:
        return _BOOL_WORDS[raw]
    raise SLOParseError(f"{where}: expected a boolean")


def _string_map(raw: object, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    block = _mapping(raw, where)
    return {str(key): _string(value, f"{where}.{key}") for key, value in block.items()}
