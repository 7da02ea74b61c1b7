"""The gate's verdict: lighthouse's result, made worse by what a CI pipeline must not miss.

Lighthouse's scoring stays as it is (``Evaluation``). The verdict adds k6's own thresholds
(``--thresholds``: crossed ones fail the gate by default) and ``--strict`` (a warning, or a
warning lighthouse does not see: a key SLI without a value, an invalid slo.yaml, a
``--context`` without series, fails the gate). :func:`decide` is the one place the verdict is
made; the JSON, the table, the HTML report, the stored history and every other output read it
from the :class:`Verdict` it returns, so they cannot disagree.
"""

from __future__ import annotations

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
    value: str = ""  # what k6 reported for the metric, as its summary prints it


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
    result: str  # the gate's: pass | warning | fail (an errored evaluation keeps lighthouse's)
    warnings: tuple[GateWarning, ...]
    k6: K6Run | None
    policy: str
    reasons: tuple[str, ...]  # why ``result`` differs from lighthouse's; empty when they agree
    strict: bool = False

    @property
    def errored(self) -> bool:
        return self.evaluation.errored

    @property
    def word(self) -> str:
        """The verdict as the outputs name it: ``errored`` when the evaluation could not run."""
        return "errored" if self.errored else self.result

    @property
    def score(self) -> float:
        """Lighthouse's score: the verdict changes the result, never the score."""
        return self.evaluation.details.score

    def exit_code(self, *, strict: bool | None = None) -> int:
        """0 pass (and warning, unless strict), 1 fail, 2 the evaluation errored."""
        if self.errored:
            return 2
        if self.result == "fail":
            return 1
        if (self.strict if strict is None else strict) and (
            self.result == "warning" or self.warnings
        ):
            return 1
        return 0

    def to_data(self) -> dict[str, Any]:
        """The JSON document: the verdict on top, lighthouse's evaluation inside.

        ``result`` is the verdict, ``score`` lighthouse's score, ``reasons`` why the verdict
        differs from lighthouse's result (which stays in ``evaluation.result``); ``status`` is
        ``errored`` when the evaluation could not run (``message`` says why).
        """
        lighthouse = self.evaluation.to_keptn()
        data: dict[str, Any] = {
            "result": self.result,
            "status": lighthouse.pop("status"),
            "score": self.score,
            "reasons": list(self.reasons),
        }
        data.update(lighthouse | {"result": self.result})
        data["warnings"] = [w.as_data() for w in self.warnings]
        if self.k6 is not None:
            data["k6"] = {
                "exitCode": self.k6.exit_code,
                "thresholdPolicy": self.policy,
                "thresholds": [
                    {
                        "metric": t.metric,
                        "threshold": t.expression,
                        "value": t.value,
                        "ok": t.ok,
                        "status": "ok" if t.ok else "crossed",
                    }
                    for t in self.k6.thresholds
                ],
            }
        return data

    def headline(self, scope: str) -> str:
        """The table's first line."""
        return f"quality gate for {scope}: {self.word.upper()}  score {self.score:.2f}%"

    def text_lines(self, *, with_warnings: bool) -> list[str]:
        """Lines after the table: the thresholds, the warnings (unless already on stderr
        beside the table), and why the verdict differs from lighthouse's."""
        lines: list[str] = []
        if self.k6 is not None:
            lines.append(f"k6 exit code {self.k6.exit_code}; {self.thresholds_heading()}:")
            lines += [
                f"  {'held   ' if t.ok else 'CROSSED'} {t.metric}: {t.expression}"
                + (f" (k6: {t.value})" if t.value else "")
                for t in self.k6.thresholds
            ] or ["  (none)"]
        if with_warnings:
            lines += [f"warning: {w.message}" for w in self.warnings]
        if self.reasons:
            lines.append(
                f"verdict {self.result.upper()}, not lighthouse's "
                f"{self.evaluation.result.upper()}: {'; '.join(self.reasons)}"
            )
        return lines

    def thresholds_heading(self) -> str:
        """Says how many held: it does not read like a failure when every threshold held."""
        if self.k6 is None or not self.k6.thresholds:
            return "no k6 thresholds"
        total, crossed = len(self.k6.thresholds), len(self.k6.crossed)
        if not crossed:
            return f"k6 thresholds: all {total} held"
        effect = {"fail": "fail the gate", "warning": "warn", "ignore": "ignored"}[self.policy]
        return f"k6 thresholds: {crossed} of {total} crossed (--thresholds {self.policy}: {effect})"


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
    strict: bool = False,
) -> Verdict:
    """The gate's verdict, the one every output tells.

    Crossed k6 thresholds (or k6's exit code 99) make it ``fail`` (``policy`` ``fail``) or at
    least ``warning`` (``warning``); with ``strict`` a warning of either kind fails it. It is
    never better than lighthouse's result, and an errored evaluation stays as it is.
    """
    result, reasons, all_warnings = evaluation.result, [], list(warnings)
    crossed = k6.crossed if k6 is not None else []
    if k6 is not None and (crossed or k6.exit_code == 99) and policy != "ignore":
        names = ", ".join(f"{t.metric}: {t.expression}" for t in crossed) or "k6 exit code 99"
        worse = "fail" if policy == "fail" else "warning"
        if _RANK.get(worse, 0) > _RANK.get(result, 0):
            result = worse
            reasons.append(f"k6 thresholds crossed: {names}")
        if policy == "warning":
            all_warnings.append(
                GateWarning("thresholds_crossed", f"k6 thresholds crossed: {names}")
            )
    if strict and result != "fail" and (result == "warning" or all_warnings):
        why = [w.message for w in all_warnings if w.code != "thresholds_crossed"]
        if result == "warning" and not reasons:
            why.insert(0, "lighthouse's result is warning")
        reasons += [*why, "--strict fails the gate on a warning"]
        result = "fail"
    if evaluation.errored:
        result, reasons = evaluation.result, []
    return Verdict(evaluation, result, tuple(all_warnings), k6, policy, tuple(reasons), strict)
