"""The evaluation as a terminal table (the CLI's default output)."""

from __future__ import annotations

from sli_provider.gate.results import Evaluation, Target


def _number(value: float) -> str:
    return f"{value:.6g}"


def _targets(targets: tuple[Target, ...] | None) -> str:
    if not targets:
        return "-"
    return " ".join(
        f"{t.criteria}{'✗' if t.violated else '✓'}({_number(t.target_value)})" for t in targets
    )


def render_table(evaluation: Evaluation, *, scope: str) -> str:
    details = evaluation.details
    verdict = "ERRORED" if evaluation.errored else evaluation.result.upper()
    lines = [
        f"quality gate for {scope}: {verdict}  score {details.score:.2f}%",
    ]
    if evaluation.message:
        lines.append(evaluation.message)
    rows = [
        ("objective", "value", "compared", "status", "score", "pass targets", "warning targets")
    ]
    for item in details.indicator_results or ():
        name = item.display_name or item.value.metric
        if item.key_sli:
            name += " (key)"
        rows.append(
            (
                name,
                _number(item.value.value) if item.value.success else "n/a",
                _number(item.value.compared_value),
                item.status,
                _number(item.score),
                _targets(item.pass_targets),
                _targets(item.warning_targets),
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
    return "\n".join(lines)
