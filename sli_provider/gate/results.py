"""Inputs (indicator values) and outputs (the evaluation.finished payload) of the gate.

Output field names and null-vs-empty distinctions follow go-utils
pkg/lib/v0_2_0/evaluation.go as lighthouse serialises it (see the stored event in
lighthouse-service/main_test.go ``mongoDBGetByTypeContent``): targets are ``null`` when an
objective has no such criteria but ``[]`` when lighthouse built an empty list,
``value.message`` and ``comparedEvents`` are omitted when empty.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

# The indicator value is the same object the SLI provider sends; re-exported for the gate.
from sli_provider.keptn.get_sli_task import IndicatorLike as IndicatorLike
from sli_provider.keptn.get_sli_task import IndicatorValue as IndicatorValue


@dataclass(frozen=True)
class SLIValue:
    """``indicatorResults[].value``."""

    metric: str
    value: float
    compared_value: float
    success: bool
    message: str = ""

    def to_keptn(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "metric": self.metric,
            "value": self.value,
            "comparedValue": self.compared_value,
            "success": self.success,
        }
        if self.message:
            data["message"] = self.message
        return data


@dataclass(frozen=True)
class Target:
    criteria: str
    target_value: float
    violated: bool

    def to_keptn(self) -> dict[str, Any]:
        return {
            "criteria": self.criteria,
            "targetValue": self.target_value,
            "violated": self.violated,
        }


@dataclass(frozen=True)
class ScoredIndicator:
    """One objective's indicator as scored: ``indicatorResults[]`` (lighthouse's SLIEvaluationResult)."""

    score: float
    value: SLIValue
    status: str  # pass | warning | fail | info
    display_name: str = ""
    pass_targets: tuple[Target, ...] | None = None
    warning_targets: tuple[Target, ...] | None = None
    key_sli: bool = False

    def to_keptn(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "value": self.value.to_keptn(),
            "displayName": self.display_name,
            "passTargets": _targets(self.pass_targets),
            "warningTargets": _targets(self.warning_targets),
            "keySli": self.key_sli,
            "status": self.status,
        }


@dataclass(frozen=True)
class EvaluationDetails:
    """``data.evaluation``."""

    time_start: str
    time_end: str
    result: str
    score: float
    indicator_results: tuple[ScoredIndicator, ...] | None = None  # None serialises as null
    compared_events: tuple[str, ...] = ()
    slo_file_content: str | None = None  # base64, as lighthouse sends it; None: left out

    def to_keptn(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "timeStart": self.time_start,
            "timeEnd": self.time_end,
            "result": self.result,
            "score": self.score,
            "indicatorResults": (
                None
                if self.indicator_results is None
                else [item.to_keptn() for item in self.indicator_results]
            ),
        }
        if self.compared_events:
            data["comparedEvents"] = list(self.compared_events)
        if self.slo_file_content is not None:
            data["sloFileContent"] = self.slo_file_content
        return data


@dataclass(frozen=True)
class Evaluation:
    """What lighthouse would put into ``sh.keptn.event.evaluation.finished``."""

    result: str  # data.result: pass | warning | fail
    status: str  # data.status: succeeded | errored
    message: str
    details: EvaluationDetails

    @property
    def errored(self) -> bool:
        return self.status == "errored"

    def to_keptn(self) -> dict[str, Any]:
        """The outcome part of ``data``: result, status, message and ``evaluation``."""
        data: dict[str, Any] = {"result": self.result, "status": self.status}
        if self.message:
            data["message"] = self.message
        data["evaluation"] = self.details.to_keptn()
        return data


def encode_slo_file(content: str | bytes) -> str:
    """``sloFileContent`` is the slo.yaml text, base64 encoded (standard alphabet)."""
    raw = content.encode() if isinstance(content, str) else content
    return base64.b64encode(raw).decode("ascii")


def _targets(targets: tuple[Target, ...] | None) -> list[dict[str, Any]] | None:
    return None if targets is None else [target.to_keptn() for target in targets]
