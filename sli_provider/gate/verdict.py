"""The gate's verdict around lighthouse's: warnings it must not hide and k6's thresholds.

Lighthouse's scoring stays as it is (``Evaluation``); what a CI pipeline also needs to know
is added beside it: a key SLI without a value, an slo.yaml that is invalid, a ``--context``
without series, and k6's own thresholds, which fail the gate by default (``--thresholds``).
"""

from __future__ import annotations

import html
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sli_provider.gate.results import Evaluation

THRESHOLD_POLICIES = ("fail", "warning", "ignore")
_RANK = {"pass": 0, "warning": 1, "fail": 2}


@dataclass(frozen=True)
class GateWarning:
    code: str  # key_sli_without_value | slo_invalid | context_not_found | thresholds_crossed
    message: str

    def as_data(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class ThresholdResult:
    metric: str
    expression: str
    ok: bool


@dataclass(frozen=True)
class K6Run:
    """What the gate reports of the k6 run (``sli-provider run`` only)."""

    exit_code: int
    thresholds: tuple[ThresholdResult, ...]

    @property
    def crossed(self) -> list[ThresholdResult]:
        return [t for t in self.thresholds if not t.ok]


@dataclass(frozen=True)
class Verdict:
    evaluation: Evaluation
    result: str  # the gate's: lighthouse's result, made worse by crossed thresholds
    warnings: tuple[GateWarning, ...]
    k6: K6Run | None
    policy: str
    reasons: tuple[str, ...]  # why the gate's result differs from lighthouse's

    def exit_code(self, *, strict: bool) -> int:
        """0 pass, 1 fail (and a warning with --strict), 2 the evaluation errored."""
        if self.evaluation.errored:
            return 2
        if self.result == "fail":
            return 1
        if strict and (self.result == "warning" or self.warnings):
            return 1
        return 0

    def to_data(self) -> dict[str, Any]:
        """Beside lighthouse's fields in the JSON output."""
        data: dict[str, Any] = {
            "gateResult": "errored" if self.evaluation.errored else self.result,
            "warnings": [w.as_data() for w in self.warnings],
        }
        if self.reasons:
            data["gateReasons"] = list(self.reasons)
        if self.k6 is not None:
            data["k6"] = {
                "exitCode": self.k6.exit_code,
                "thresholdPolicy": self.policy,
                "thresholds": [
                    {"metric": t.metric, "threshold": t.expression, "ok": t.ok,
                     "status": "ok" if t.ok else "crossed"}
                    for t in self.k6.thresholds
                ],
            }  # fmt: skip
        return data

    def text_lines(self, *, with_warnings: bool) -> list[str]:
        """Lines after the table: the thresholds, the warnings (unless already on stderr
        beside the table), a verdict that differs."""
        lines: list[str] = []
        if self.k6 is not None:
            lines.append(f"k6 exit code {self.k6.exit_code}; thresholds ({self.policy}):")
            lines += [f"  {'ok     ' if t.ok else 'CROSSED'} {t.metric}: {t.expression}"
                      for t in self.k6.thresholds] or ["  (none)"]  # fmt: skip
        if with_warnings:
            lines += [f"warning: {w.message}" for w in self.warnings]
        if self.reasons:
            lines.append(f"gate: {self.result.upper()} ({'; '.join(self.reasons)})")
        return lines

    def html_section(self) -> str:
        """A small section for the HTML report: the thresholds and warnings."""
        parts = ['<section id="gate-notes"><h2>k6 thresholds and warnings</h2>']
        if self.k6 is not None:
            rows = (
                "".join(
                    f"<tr><td>{html.escape(t.metric)}</td><td>{html.escape(t.expression)}</td>"
                    f"<td>{'ok' if t.ok else 'crossed'}</td></tr>"
                    for t in self.k6.thresholds
                )
                or '<tr><td colspan="3">no thresholds</td></tr>'
            )
            parts.append(
                f"<p>k6 exit code {self.k6.exit_code}; crossed thresholds: "
                f"{html.escape(self.policy)}</p><table><tr><th>metric</th><th>threshold</th>"
                f"<th>status</th></tr>{rows}</table>"
            )
        parts += [f"<p>warning: {html.escape(w.message)}</p>" for w in self.warnings]
        if self.reasons:
            parts.append(
                f"<p>gate: {self.result.upper()} ({html.escape('; '.join(self.reasons))})</p>"
            )
        parts.append("</section>")
        return "".join(parts)


def with_html_section(document: str, section: str) -> str:
    """``section`` just before ``</body>`` (appended when there is none)."""
    index = document.rfind("</body>")
    return document + section if index == -1 else document[:index] + section + document[index:]


def key_sli_warnings(evaluation: Evaluation, key_slis: Collection[str]) -> list[GateWarning]:
    """Key SLIs (by slo.yaml) without a value: lighthouse may let them pass the gate; say so.

    ``key_slis`` comes from slo.yaml because lighthouse does not mark an indicator it received
    no value for as key (``keySli: false``), which is how such a run passes.
    """
    return [
        GateWarning(
            "key_sli_without_value",
            f"key SLI {item.value.metric!r} has no value"
            + (f" ({item.value.message})" if item.value.message else "")
            + "; lighthouse does not fail the gate for that alone (--strict does)",
        )
        for item in evaluation.details.indicator_results or ()
        if (item.key_sli or item.value.metric in key_slis) and not item.value.success
    ]


def decide(
    evaluation: Evaluation,
    warnings: Sequence[GateWarning],
    *,
    k6: K6Run | None = None,
    policy: str = "fail",
) -> Verdict:
    result, reasons, all_warnings = evaluation.result, [], list(warnings)
    crossed = k6.crossed if k6 is not None else []
    if k6 is not None and (crossed or k6.exit_code == 99) and policy != "ignore":
        names = ", ".join(f"{t.metric}: {t.expression}" for t in crossed) or "k6 exit code 99"
        worse = "fail" if policy == "fail" else "warning"
        if _RANK.get(worse, 0) > _RANK.get(result, 0):
            result = worse
            reasons.append(f"k6 thresholds crossed: {names}; lighthouse's result: "
                           f"{evaluation.result}")  # fmt: skip
        if policy == "warning":
            all_warnings.append(
                GateWarning("thresholds_crossed", f"k6 thresholds crossed: {names}")
            )
    return Verdict(evaluation, result, tuple(all_warnings), k6, policy, tuple(reasons))
