"""One stored evaluation: what the history keeps and the report draws (pure data)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sli_provider.gate.previous import PreviousEvaluation


@dataclass(frozen=True)
class StoredEvaluation:
    """An evaluation of one run, as lighthouse's ``evaluation.finished`` ``data`` keeps it.

    ``data`` holds ``result``, ``status``, ``message`` and ``evaluation`` (keptn-protocol.md
    §6.7); ``time`` is unix seconds; ``id`` is the evaluation event's id.
    """

    id: str
    project: str
    stage: str
    service: str
    context: str
    time: float
    result: str
    score: float
    data: Mapping[str, Any] = field(default_factory=dict)
    invalidated: bool = False

    def as_previous(self) -> PreviousEvaluation:
        """What scoring compares with, exactly as lighthouse decodes a datastore event."""
        return PreviousEvaluation.from_keptn(
            {"id": self.id, "data": self.data}, invalidated=self.invalidated
        )

    def values(self) -> dict[str, float]:
        """metric → value of the indicators that were retrieved successfully."""
        evaluation = self.data.get("evaluation")
        results = evaluation.get("indicatorResults") if isinstance(evaluation, Mapping) else None
        values: dict[str, float] = {}
        for item in results or []:
            value = item.get("value") if isinstance(item, Mapping) else None
            if (
                isinstance(value, Mapping)
                and value.get("success")
                and isinstance(value.get("value"), int | float)
            ):
                values.setdefault(str(value.get("metric")), float(value["value"]))
        return values
