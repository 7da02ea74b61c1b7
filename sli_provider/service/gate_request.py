"""What /gate is asked: its fields, from a JSON body, Flagger's webhook metadata or a query."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sli_provider.gate.thresholds import Threshold, ThresholdError, parse_thresholds
from sli_provider.gate.verdict import THRESHOLD_POLICIES
from sli_provider.runner.workloads import WorkloadError, parse_duration
from sli_provider.service.preview import PreviewError
from sli_provider.service.request_fields import RequestFields
from sli_provider.sli.k6_runs import Scope

DEFAULT_LOOKBACK = "24h"
FIELDS = (
    "project",
    "stage",
    "service",
    "context",
    "start",
    "end",
    "recent",
    "lookback",
    "store",
    "strict",
    "thresholds",
    "thresholdPolicy",
    "run",
    "teststrategy",
)
DEFAULT_TESTSTRATEGY = "performance"
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


@dataclass(frozen=True)
class GateRequest:
    scope: Scope
    context: str = ""
    window_s: tuple[float, float] | None = None  # start and end, unix seconds
    recent_s: float | None = None
    lookback_s: float = 86400.0
    store: bool = True
    strict: bool = False  # the webhook: a warning fails it too (the CLI's --strict)
    thresholds: tuple[Threshold, ...] = ()  # k6's, judged on the run's whole-run values
    threshold_policy: str = "fail"  # as the CLI's --thresholds
    run: bool = False  # run the scope's k6 workload first, then judge that run
    teststrategy: str = DEFAULT_TESTSTRATEGY


def request_from_fields(fields: Mapping[str, Any]) -> GateRequest:
    """JSON body fields or query parameters (strings); every problem is named at once, a
    misspelt field among them."""
    reader = RequestFields(fields)
    problems = reader.problems
    problems.extend(
        f"unknown field {key!r} (known: {', '.join(FIELDS)})" for key in fields if key not in FIELDS
    )
    text, moment = reader.text, reader.moment

    def seconds(field: str, default: str | None = None) -> float | None:
        given = text(field) or default
        if not given:
            return None
        try:
            value = parse_duration(given)
        except WorkloadError as exc:
            problems.append(f"{field}: {exc}")
            return None
        if value <= 0:
            problems.append(f"{field} must be positive")
        return value

    def flag(field: str, default: bool) -> bool:
        raw = fields.get(field)
        if isinstance(raw, bool):
            return raw
        word = text(field).strip().lower()
        if not word:
            return default
        if word not in _TRUE + _FALSE:
            problems.append(f"{field} must be true or false, not {word!r}")
        return word in _TRUE

    def thresholds() -> list[Threshold]:
        raw = fields.get("thresholds")
        if raw is None or raw == "":
            return []
        if isinstance(raw, str):  # a query parameter or Flagger's metadata: JSON in a string
            try:
                raw = json.loads(raw)
            except ValueError:
                problems.append("thresholds: not JSON")
                return []
        try:
            return parse_thresholds(raw)
        except ThresholdError as exc:
            problems.append(f"thresholds: {exc}")
            return []

    policy = text("thresholdPolicy") or "fail"
    if policy not in THRESHOLD_POLICIES:
        problems.append(f"thresholdPolicy must be one of {', '.join(THRESHOLD_POLICIES)}")
    scope = Scope(*(reader.scope_name(n) for n in ("project", "stage", "service")))
    start_s, end_s = moment("start"), moment("end")
    recent_s = seconds("recent")
    lookback_s = seconds("lookback", DEFAULT_LOOKBACK)
    if (start_s is None) != (end_s is None) and not problems:
        problems.append("give start and end together")
    if start_s is not None and end_s is not None and end_s < start_s:
        problems.append("end is before start")
    if recent_s is not None and start_s is not None:
        problems.append("recent and start/end exclude each other")
    request = GateRequest(
        scope,
        context=text("context"),
        recent_s=recent_s,
        window_s=(start_s, end_s) if start_s is not None and end_s is not None else None,
        lookback_s=lookback_s or 86400.0,
        store=flag("store", True),
        strict=flag("strict", False),
        thresholds=tuple(thresholds()),
        threshold_policy=policy,
        run=flag("run", False),
        teststrategy=text("teststrategy") or DEFAULT_TESTSTRATEGY,
    )
    if request.run and (request.window_s or request.recent_s or request.context):
        problems.append("run judges the run it starts: no start, end, recent or context")
    if problems:
        raise PreviewError(problems)
    return request


def fields_of_body(body: Any) -> Mapping[str, Any]:
    """A JSON body's fields; in Flagger's webhook payload (``{name, namespace, phase, checksum,
    metadata}``) they are the webhook's ``metadata``."""
    if not isinstance(body, Mapping):
        raise PreviewError(["body must be a JSON object"])
    metadata = body.get("metadata")
    if "phase" in body and "checksum" in body:
        if not isinstance(metadata, Mapping):
            raise PreviewError(
                [
                    "Flagger's payload has no metadata: give project, stage and "
                    "service in the webhook's metadata"
                ]
            )
        return metadata
    return body
