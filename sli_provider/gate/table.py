"""The evaluation as a terminal table (the CLI's default output)."""

from __future__ import annotations

from sli_provider.gate.display import (
    INFORMATIONAL,
    NO_VALUE,
    is_informational,
    shows_compared_value,
    target_note,
)
from sli_provider.gate.results import Evaluation, ScoredIndicator, Target
from sli_provider.gate.verdict import Verdict, decide


def _number(value: float) -> str:
    return f"{value:.6g}"


def _targets(
    targets: tuple[Target, ...] | None, item: ScoredIndicator, evaluation: Evaluation
) -> str:
    if not targets:
        return "-"
    if not item.value.success:
        return " ".join(t.criteria for t in targets) + f" ({NO_VALUE})"
    cells = []
    for t in targets:
        shown = target_note(t, item, evaluation) or _number(t.target_value)
        cells.append(f"{t.criteria}{'✗' if t.violated else '✓'}({shown})")
    return " ".join(cells)


def render_table(evaluation: Evaluation, *, scope: str, verdict: Verdict | None = None) -> str:
    """The first line is the gate's verdict (lighthouse's result when no verdict is given)."""
    details = evaluation.details
    lines = [(verdict or decide(evaluation, ())).headline(scope)]
    if evaluation.message:
        lines.append(evaluation.message)
    rows = [
        ("objective", "value", "compared", "status", "score", "pass targets", "warning targets")
    ]
    for item in details.indicator_results or ():
        name = item.display_name or item.value.metric
        if item.key_sli:
            name += " (key)"
        informational = is_informational(item)
        if informational:
            name += " (info)"
        rows.append(
            (
                name,
                _number(item.value.value) if item.value.success else "n/a",
                _number(item.value.compared_value)
                if shows_compared_value(item, evaluation)
                else "-",
                item.status,
                "-" if informational else _number(item.score),
                _targets(item.pass_targets, item, evaluation),
                _targets(item.warning_targets, item, evaluation),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines.append("")
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    failures = [
        f"  {item.value.metric}: {item.value.message}"
        for item in details.indicator_results or ()
        if item.value.message and not item.value.success
    ]
    if failures:
        lines += ["", "indicators without a value:", *failures]
    if any(is_informational(item) for item in details.indicator_results or ()):
        lines += ["", f"(info): {INFORMATIONAL}"]
    return "\n".join(lines)
