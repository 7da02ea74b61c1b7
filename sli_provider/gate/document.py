"""The gate's JSON document, as ``docs/gate-result.schema.json`` describes it (pure).

Top level: ``result`` is the gate's verdict (lighthouse's result made worse by crossed k6
thresholds), ``score`` lighthouse's score, ``reasons`` why the verdict differs from lighthouse's
(whose own result stays in ``evaluation.result``), ``objectives`` one entry per scored SLI.
"""

from __future__ import annotations

from typing import Any

from sli_provider.gate.display import target_note
from sli_provider.gate.results import ScoredIndicator, Target
from sli_provider.gate.verdict import Verdict

SCHEMA_VERSION = "1.0"
CANNOT_JUDGE = "cannot_judge"


def gate_document(verdict: Verdict) -> dict[str, Any]:
    """The verdict's JSON document (``Verdict.to_data``), versioned, with one entry per objective."""
    return {
        "schemaVersion": SCHEMA_VERSION,
        **verdict.to_data(),
        "objectives": [
            _objective(item, verdict) for item in verdict.evaluation.details.indicator_results or ()
        ],
    }


def cannot_judge_document(reason: str, **context: Any) -> dict[str, Any]:
    """The answer when no verdict can be given: never a pass, and says why."""
    return {
        "schemaVersion": SCHEMA_VERSION,
        "result": CANNOT_JUDGE,
        "reasons": [reason],
        "error": reason,
        **context,
    }


def _objective(item: ScoredIndicator, verdict: Verdict) -> dict[str, Any]:
    def targets(found: tuple[Target, ...] | None) -> list[dict[str, Any]]:
        return [
            {
                "criteria": t.criteria,
                "targetValue": None if target_note(t, item, verdict.evaluation) else t.target_value,
                "violated": t.violated,
            }
            for t in found or ()
        ]

    return {
        "sli": item.value.metric,
        "displayName": item.display_name or item.value.metric,
        "value": item.value.value if item.value.success else None,
        "success": item.value.success,
        "message": item.value.message,
        "status": item.status,
        "score": item.score,
        "keySli": item.key_sli,
        "passTargets": targets(item.pass_targets),
        "warningTargets": targets(item.warning_targets),
    }
