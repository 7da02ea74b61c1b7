"""Every problem of an slo.yaml or sli.yaml, each with its line: ``sli-provider check``.

Scoring keeps lighthouse's behaviour for a broken slo.yaml (an unparseable criterion is a failed
objective there); this module says *that* the file is broken and where. It walks PyYAML's
node tree, not the decoded data, because only nodes carry their position.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from sli_provider.gate.criteria import CriteriaError, parse_criteria
from sli_provider.gate.gonum import parse_float

_SLO_KEYS = {"spec_version", "filter", "comparison", "objectives", "total_score"}
_OBJECTIVE_KEYS = {"sli", "displayName", "pass", "warning", "weight", "key_sli"}
_COMPARISON_CHOICES = {
    "compare_with": {"single_result", "several_results"},
    "include_result_with_score": {"all", "pass", "pass_or_warn"},
    "aggregate_function": {"avg", "p50", "p90", "p95"},
}
_BOOLEAN_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n"}
_SLI_SPEC_KEYS = {"query", "on_empty"}


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def slo_problems(text: str | bytes) -> list[Problem]:
    """Everything in an slo.yaml that lighthouse would reject, misread or ignore."""
    root, problems = _compose(text)
    if root is None:
        return problems or [Problem(1, "empty document: no objectives and no total_score")]
    if not isinstance(root, yaml.MappingNode):
        return [Problem(_line(root), "expected a mapping at the top")]
    entries = dict(_entries(root, problems, "document", _SLO_KEYS))
    if "filter" in entries:
        _mapping_of_scalars(entries["filter"], "filter", problems)
    if "comparison" in entries:
        _comparison(entries["comparison"], problems)
    objectives = entries.get("objectives")
    if objectives is None:
        problems.append(Problem(1, "objectives: missing; nothing would be evaluated"))
    elif not isinstance(objectives, yaml.SequenceNode):
        problems.append(Problem(_line(objectives), "objectives: expected a list"))
    else:
        for index, item in enumerate(objectives.value):
            _objective(item, f"objectives[{index}]", problems)
    total = entries.get("total_score")
    if total is None:
        problems.append(Problem(1, "total_score: missing (lighthouse: no target score defined)"))
    elif not isinstance(total, yaml.MappingNode):
        problems.append(Problem(_line(total), "total_score: expected a mapping"))
    else:
        parts = dict(_entries(total, problems, "total_score", {"pass", "warning"}))
        if "pass" not in parts:
            problems.append(Problem(_line(total), "total_score.pass: missing"))
        for name, node in parts.items():
            if not _is_percentage(node):
                problems.append(
                    Problem(_line(node), f"total_score.{name}: expected a percentage such as '90%'")
                )
    return sorted(problems, key=lambda p: p.line)


def sli_problems(text: str | bytes) -> list[Problem]:
    """Everything in an sli.yaml the provider would refuse."""
    root, problems = _compose(text)
    if root is None:
        return problems or [Problem(1, "empty document: expected a mapping with 'indicators'")]
    if not isinstance(root, yaml.MappingNode):
        return [Problem(_line(root), "expected a mapping with 'indicators'")]
    known = {"spec_version", "indicators"}  # as sli/config.py parses it
    entries = dict(_entries(root, problems, "document", known, ignored=False))
    indicators = entries.get("indicators")
    if indicators is None:
        problems.append(Problem(1, "'indicators' is missing"))
    elif not isinstance(indicators, yaml.MappingNode) or not indicators.value:
        problems.append(Problem(_line(indicators), "'indicators' must be a non-empty mapping"))
    else:
        for key, value in indicators.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else ""
            if not name:
                problems.append(Problem(_line(key), "indicator names must be non-empty strings"))
            _indicator(value, f"indicator {name!r}", problems)
    return sorted(problems, key=lambda p: p.line)


def _compose(text: str | bytes) -> tuple[yaml.Node | None, list[Problem]]:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        return None, [Problem(line, f"not valid YAML: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, [Problem(1, f"not valid YAML: {exc}")]


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _entries(
    node: yaml.MappingNode,
    problems: list[Problem],
    where: str,
    known: set[str],
    *,
    ignored: bool = True,  # lighthouse skips unknown keys of slo.yaml; the provider refuses sli.yaml's
) -> Iterator[tuple[str, yaml.Node]]:
    for key, value in node.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else ""
        if name not in known:
            what = "(ignored)" if ignored else f"(known: {', '.join(sorted(known))})"
            problems.append(Problem(_line(key), f"{where}: unknown key {name!r} {what}"))
            continue
        if value.tag == "tag:yaml.org,2002:null":
            continue  # null decodes as the field's zero value in lighthouse (yaml.v3): absent
        yield name, value


def _scalar(node: yaml.Node) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _mapping_of_scalars(node: yaml.Node, where: str, problems: list[Problem]) -> None:
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(_line(node), f"{where}: expected a mapping"))
        return
    for key, value in node.value:
        if _scalar(value) is None:
            problems.append(Problem(_line(value), f"{where}.{_scalar(key)}: expected a string"))


def _comparison(node: yaml.Node, problems: list[Problem]) -> None:
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(_line(node), "comparison: expected a mapping"))
        return
    known = {*_COMPARISON_CHOICES, "number_of_comparison_results"}
    for name, value in _entries(node, problems, "comparison", known):
        text = _scalar(value)
        if name == "number_of_comparison_results":
            if text is None or not text.isdigit() or int(text) < 1:
                problems.append(
                    Problem(
                        _line(value), f"comparison.{name}: expected a whole number of at least 1"
                    )
                )
        elif text not in _COMPARISON_CHOICES[name]:
            choices = ", ".join(sorted(_COMPARISON_CHOICES[name]))
            problems.append(
                Problem(_line(value), f"comparison.{name}: {text!r} is not one of {choices}")
            )


def _objective(node: yaml.Node, where: str, problems: list[Problem]) -> None:
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(_line(node), f"{where}: expected a mapping"))
        return
    entries = dict(_entries(node, problems, where, _OBJECTIVE_KEYS))
    sli = entries.get("sli")
    name = _scalar(sli) if sli is not None else None
    if not name:
        problems.append(Problem(_line(sli or node), f"{where}: 'sli' is missing or empty"))
    label = f"objective {name!r}" if name else where
    for kind in ("pass", "warning"):
        if kind in entries:
            _criteria_sets(entries[kind], f"{label} {kind}", problems)
    weight = entries.get("weight")
    if weight is not None and not (_scalar(weight) or "").isdigit():
        problems.append(Problem(_line(weight), f"{label} weight: expected a whole number"))
    key_sli = entries.get("key_sli")
    if key_sli is not None and (_scalar(key_sli) or "").lower() not in _BOOLEAN_WORDS:
        problems.append(Problem(_line(key_sli), f"{label} key_sli: expected true or false"))


def _criteria_sets(node: yaml.Node, where: str, problems: list[Problem]) -> None:
    if not isinstance(node, yaml.SequenceNode):
        problems.append(Problem(_line(node), f"{where}: expected a list of {{criteria: [...]}}"))
        return
    for item in node.value:
        if not isinstance(item, yaml.MappingNode):
            problems.append(Problem(_line(item), f"{where}: expected {{criteria: [...]}}"))
            continue
        for _name, criteria in _entries(item, problems, where, {"criteria"}):
            if not isinstance(criteria, yaml.SequenceNode):
                problems.append(Problem(_line(criteria), f"{where}: criteria must be a list"))
                continue
            for criterion in criteria.value:
                _criterion(criterion, where, problems)


def _criterion(node: yaml.Node, where: str, problems: list[Problem]) -> None:
    text = _scalar(node)
    if text is None:
        problems.append(Problem(_line(node), f"{where}: a criterion must be a string"))
        return
    try:
        parse_criteria(text)
    except CriteriaError as exc:
        problems.append(Problem(_line(node), f"{where}: criterion {text!r}: {exc}"))


def _is_percentage(node: yaml.Node) -> bool:
    text = _scalar(node)
    if text is None:
        return False
    try:
        parse_float(text.removesuffix("%"))
    except ValueError:
        return False
    return True


def _indicator(node: yaml.Node, where: str, problems: list[Problem]) -> None:
    query: yaml.Node | None = node
    if isinstance(node, yaml.MappingNode):
        entries = dict(_entries(node, problems, where, _SLI_SPEC_KEYS))
        query = entries.get("query")
        on_empty = entries.get("on_empty")
        if on_empty is not None and _scalar(on_empty) not in ("fail", "zero"):
            problems.append(Problem(_line(on_empty), f"{where}: on_empty must be fail or zero"))
    if query is None or not (_scalar(query) or "").strip():
        problems.append(Problem(_line(query or node), f"{where}: expected a PromQL string"))
