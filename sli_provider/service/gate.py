"""/gate: a scope's slo.yaml scored on its latest k6 run (or a given run, window or timeframe).

What Argo Rollouts' ``web`` metric, a Flagger webhook or a CI step asks. The run is found in the
store (k6/runs.py), its SLIs fetched as a get-sli event's are, and scored as
``sli-provider evaluate`` scores them (gate/judgement.py) against the history, to which the run
is added once: measuring the same run again adds nothing. A run that cannot be judged (none
found, still running, no value at all, store or slo.yaml unreachable) gets a non-2xx answer whose
``result`` is ``cannot_judge``, never a pass.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sli_provider.adapters.gate_history import GateHistory
from sli_provider.adapters.history_store import HistoryError
from sli_provider.adapters.keptn_api import ResourceError, ResourceReader
from sli_provider.adapters.prometheus import PrometheusError
from sli_provider.adapters.prometheus_router import PrometheusRouter
from sli_provider.adapters.retry import Deadline
from sli_provider.config import Settings
from sli_provider.errors import SliProviderError
from sli_provider.gate.document import cannot_judge_document, gate_document
from sli_provider.gate.judgement import judge, parsed_slo, record_for
from sli_provider.gate.records import StoredEvaluation
from sli_provider.gate.verdict import (
    THRESHOLD_POLICIES,
    GateWarning,
    K6Run,
    ThresholdResult,
    Verdict,
)
from sli_provider.k6.runs import Scope, find_runs, in_progress
from sli_provider.k6.series import run_has_series
from sli_provider.k6.thresholds import Threshold, ThresholdError, parse_thresholds
from sli_provider.keptn.timestamps import TimestampError, format_keptn, parse_keptn
from sli_provider.runner.workloads import WorkloadError, parse_duration
from sli_provider.service.evaluation import (
    MeasuredIndicator,
    ProviderUnavailable,
    SLIConfigInvalid,
    SLIEvaluator,
)
from sli_provider.service.preview import PreviewError
from sli_provider.sli.local_file import SLO_RESOURCE
from sli_provider.sli.window import SLIWindow

DEFAULT_LOOKBACK = "24h"
FIELDS = ("project", "stage", "service", "context", "start", "end", "recent", "lookback",
          "store", "strict", "thresholds", "thresholdPolicy")  # fmt: skip
_UNSAFE_NAME_PARTS = ("/", "\\", "\0")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


class CannotJudge(SliProviderError):
    """No verdict: ``status`` is the HTTP status (422 nothing to judge, 502 a source is
    unreachable, 504 the deadline passed)."""

    def __init__(self, status: int, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.details = details

    def document(self) -> dict[str, Any]:
        return cannot_judge_document(str(self), **self.details)


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


def request_from_fields(fields: Mapping[str, Any]) -> GateRequest:
    """JSON body fields or query parameters (strings); every problem is named at once, a
    misspelt field among them."""
    problems = [
        f"unknown field {key!r} (known: {', '.join(FIELDS)})" for key in fields if key not in FIELDS
    ]

    def text(name: str, required: bool = False) -> str:
        value = fields.get(name)
        if value is None or value == "":
            if required:
                problems.append(f"{name} is required")
            return ""
        if not isinstance(value, str):
            problems.append(f"{name} must be a string, not {type(value).__name__}")
            return ""
        return value

    def name(field: str) -> str:
        value = text(field, True)
        if value in (".", "..") or any(part in value for part in _UNSAFE_NAME_PARTS):
            problems.append(f"{field} {value!r} is not a plain name (one path segment)")
        return value

    def moment(field: str) -> float | None:
        given = text(field)
        if not given:
            return None
        try:
            return parse_keptn(given)
        except TimestampError as exc:
            problems.append(f"{field}: {exc}")
            return None

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
    scope = Scope(name("project"), name("stage"), name("service"))
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
        scope, context=text("context"), recent_s=recent_s,
        window_s=(start_s, end_s) if start_s is not None and end_s is not None else None,
        lookback_s=lookback_s or 86400.0, store=flag("store", True), strict=flag("strict", False),
        thresholds=tuple(thresholds()), threshold_policy=policy,
    )  # fmt: skip
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
            raise PreviewError(["Flagger's payload has no metadata: give project, stage and "
                                "service in the webhook's metadata"])  # fmt: skip
        return metadata
    return body


@dataclass(frozen=True)
class GateAnswer:
    verdict: Verdict
    document: dict[str, Any]


class Gate:
    def __init__(
        self,
        *,
        settings: Settings,
        reader: ResourceReader,
        evaluator: SLIEvaluator,
        prometheus: PrometheusRouter,
        history: GateHistory,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._reader = reader
        self._evaluator = evaluator
        self._prometheus = prometheus
        self._history = history
        self._clock = clock

    async def judge(self, request: GateRequest) -> GateAnswer:
        seconds = self._settings.gate_deadline_seconds
        deadline = Deadline(seconds)
        try:
            async with asyncio.timeout(seconds):
                return await self._judge(request, deadline)
        except TimeoutError:
            raise CannotJudge(
                504, f"no verdict within GATE_DEADLINE_SECONDS ({seconds:g} s)"
            ) from None
        except PrometheusError as exc:
            raise CannotJudge(502, f"the metrics store cannot be asked: {exc}") from None

    async def _judge(self, request: GateRequest, deadline: Deadline) -> GateAnswer:
        scope = request.scope
        slo_text = await self._slo(scope)
        slo = parsed_slo(slo_text)
        window, run_key, warnings = await self._window(request)
        objectives = tuple(dict.fromkeys(o.sli for o in slo.objectives)) if slo else ()
        window = replace(
            window,
            indicators=tuple(dict.fromkeys([*objectives, *(t.sli for t in request.thresholds)])),
            custom_filters=tuple((slo.filter or {}).items()) if slo else (),
        )
        run = {"context": window.context, "start": format_keptn(window.start_s),
               "end": format_keptn(window.end_s)}  # fmt: skip
        try:
            measured = await self._evaluator.evaluate(window, deadline=deadline)
        except SLIConfigInvalid as exc:
            raise CannotJudge(422, str(exc), run=run) from None
        except ProviderUnavailable as exc:
            raise CannotJudge(502, str(exc), run=run) from None
        scored = [m for m in measured if m.metric in objectives]
        if scored and not any(m.success for m in scored):
            shown = "; ".join(f"{m.metric}: {m.message}" for m in scored[:3])
            raise CannotJudge(422, f"no SLI of slo.yaml has a value ({shown})", run=run)
        values = [
            {"metric": m.metric, "value": m.value, "success": m.success, "message": m.message}
            for m in scored
        ]
        k6 = _k6_run(request.thresholds, {m.metric: m for m in measured})
        verdict, history = await self._score_and_store(
            request, slo_text, values, run, run_key, warnings, window, k6
        )
        document = gate_document(verdict)
        document["run"] = run
        document["history"] = history
        return GateAnswer(verdict, document)

    async def _slo(self, scope: Scope) -> str:
        args = (SLO_RESOURCE, scope.project, scope.stage, scope.service)
        where = self._reader.describe(*args)
        try:
            content = await self._reader.read(*args, "")
        except ResourceError as exc:
            raise CannotJudge(502, f"cannot read slo.yaml: {exc}") from None
        if content is None:
            raise CannotJudge(422, f"no slo.yaml for {_shown(scope)} ({where})")
        try:
            return content.decode()
        except UnicodeDecodeError:
            raise CannotJudge(422, f"{where} is not UTF-8 text") from None

    async def _window(
        self, request: GateRequest
    ) -> tuple[SLIWindow, str | None, list[GateWarning]]:
        """The window to score, the run's key in the history (None: not stored) and warnings."""
        scope, now = request.scope, self._clock()

        def window(start: float, end: float, context: str) -> SLIWindow:
            return SLIWindow(scope.project, scope.stage, scope.service, start, end,
                             context=context)  # fmt: skip

        prometheus = self._prometheus.for_project(scope.project)
        if request.recent_s is not None or request.window_s is not None:
            if request.window_s is None:
                assert request.recent_s is not None
                found, key = window(now - request.recent_s, now, request.context), None
            else:
                found = window(*request.window_s, request.context)
                key = request.context or f"window {format_keptn(found.start_s)} - " + format_keptn(
                    found.end_s
                )
            warnings = []
            if request.context and not await run_has_series(prometheus, found):
                warnings.append(GateWarning(
                    "context_not_found",
                    f"no k6 series of context {request.context!r} in the window; the built-in "
                    f"SLIs use every run of {_shown(scope)}",
                ))  # fmt: skip
            return found, key, warnings
        runs = await find_runs(prometheus, scope, now, request.lookback_s, request.context or None)
        if not runs:
            which = f"of context {request.context!r} " if request.context else ""
            raise CannotJudge(
                422, f"no k6 run {which}of {_shown(scope)} in the store within the last "
                f"{request.lookback_s:g} s (lookback)",
            )  # fmt: skip
        latest = runs[0]
        found = window(latest.start_s, latest.end_s, latest.context)
        if await in_progress(prometheus, found, now):
            raise CannotJudge(
                422,
                f"the latest k6 run of {_shown(scope)} ({latest.context}) is still writing its "
                "series: ask again when it has ended",
                run={"context": latest.context, "start": format_keptn(found.start_s)},
            )
        return found, latest.context, []

    async def _score_and_store(
        self,
        request: GateRequest,
        slo_text: str,
        values: Sequence[Any],
        run: Mapping[str, str],
        run_key: str | None,
        warnings: Sequence[GateWarning],
        window: SLIWindow,
        k6: K6Run | None,
    ) -> tuple[Verdict, dict[str, Any]]:
        scope = (request.scope.project, request.scope.stage, request.scope.service)
        try:
            history = await self._history.entries(scope)
            own = [h for h in history if run_key is not None and h.context == run_key]
            earlier = [h for h in history if h not in own]
            verdict = judge(slo_text, values, earlier, start=run["start"], end=run["end"],
                            warnings=warnings, k6=k6, policy=request.threshold_policy)  # fmt: skip
            stored: StoredEvaluation | None = None
            if run_key is not None and request.store and not own:
                record = record_for(verdict, scope, run_key, window.end_s)
                # False: another replica stored the run in between; its entry stands.
                stored = record if await self._history.add_once(record) else None
        except HistoryError as exc:
            raise CannotJudge(502, f"the gate's history cannot be used: {exc}") from None
        entry = stored or (own[0] if own else None)
        return verdict, {
            "stored": stored is not None,
            "id": entry.id if entry else None,
            "compared": len(verdict.evaluation.details.compared_events),
        }


def _k6_run(
    thresholds: Sequence[Threshold], measured: Mapping[str, MeasuredIndicator]
) -> K6Run | None:
    """k6's thresholds judged on the run's values, as k6 would have judged the whole run; the
    exit code is the one k6 gives for them (99: crossed). A threshold whose value the store
    does not have is not held."""
    if not thresholds:
        return None
    results = tuple(
        ThresholdResult(t.metric, t.expression, _held(t, measured.get(t.sli))) for t in thresholds
    )
    return K6Run(99 if not all(r.ok for r in results) else 0, results)


def _held(threshold: Threshold, value: MeasuredIndicator | None) -> bool:
    return value is not None and value.success and threshold.holds(value.value)


def _shown(scope: Scope) -> str:
    return f"{scope.project}/{scope.stage}/{scope.service}"
