"""The gate as Markdown, for a CI job's summary page (GitHub's ``$GITHUB_STEP_SUMMARY``); pure."""

from __future__ import annotations

from sli_provider.gate.display import NO_VALUE, is_informational
from sli_provider.gate.verdict import Verdict


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(verdict: Verdict, *, scope: str) -> str:
    evaluation = verdict.evaluation
    shown = "ERRORED" if evaluation.errored else verdict.result.upper()
    lines = [f"### Quality gate {scope}: {shown} (score {evaluation.details.score:.2f} %)", ""]
    if verdict.reasons:
        lines += [
            f"Lighthouse's result is {evaluation.result}; the gate's differs: "
            + _cell("; ".join(verdict.reasons)),
            "",
        ]
    if evaluation.message:
        lines += [_cell(evaluation.message), ""]
    lines += [
        "| objective | value | status | pass criteria | warning criteria |",
        "|---|---|---|---|---|",
    ]
    for item in evaluation.details.indicator_results or ():
        name = item.display_name or item.value.metric
        value = f"{item.value.value:.6g}" if item.value.success else NO_VALUE
        status = "info" if is_informational(item) else item.status
        passing = " ".join(t.criteria for t in item.pass_targets or ()) or "-"
        warning = " ".join(t.criteria for t in item.warning_targets or ()) or "-"
        key = " (key)" if item.key_sli else ""
        lines.append(
            f"| {_cell(name)}{key} | {_cell(value)} | {status} | {_cell(passing)} | "
            f"{_cell(warning)} |"
        )
    if verdict.k6 is not None:
        lines += [
            "",
            f"k6 exit code {verdict.k6.exit_code}; thresholds ({verdict.policy}):",
            "",
            "| metric | threshold | status |",
            "|---|---|---|",
        ]
        lines += [
            f"| {_cell(t.metric)} | {_cell(t.expression)} | {'held' if t.ok else 'crossed'} |"
            for t in verdict.k6.thresholds
        ]
    if verdict.warnings:
        lines += ["", *[f"- warning: {_cell(w.message)}" for w in verdict.warnings]]
    return "\n".join(lines) + "\n"
