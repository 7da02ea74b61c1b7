"""/gate: a scope's slo.yaml scored on its latest k6 run (or a given run, window or timeframe).

What Argo Rollouts' ``web`` metric, a Flagger webhook or a CI step asks. The run is found in the
store (sli/k6_runs.py), its SLIs fetched as a get-sli event's are, and scored as
``sli-provider evaluate`` scores them (gate/judgement.py) against the history, to which the run
is added once: measuring the same run again adds nothing. A run that cannot be judged (none
found, still running, no value at all, store or slo.yaml unreachable) gets a non-2xx answer whose
``result`` is ``cannot_judge``, never a pass.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sli_provider.adapters.gate_history import GateHistory
from sli_provider.adapters.history_store import HistoryError
from sli_provider.adapters.prometheus_router import PrometheusRouter
from sli_provider.adapters.retry import Deadline
from sli_provider.config import Settings
from sli_provider.errors import SliProviderError
from sli_provider.gate.document import cannot_judge_document, gate_document
from sli_provider.gate.judgement import judge, parsed_slo, record_for
from sli_provider.gate.records import StoredEvaluation
from sli_provider.gate.thresholds import Threshold
from sli_provider.gate.verdict import (
    GateWarning,
    K6Run,
    ThresholdResult,
    Verdict,
)
from sli_provider.k6.thresholds import format_value
from sli_provider.keptn.envelope import Scope as KeptnScope
from sli_provider.keptn.test_task import TestRequest
from sli_provider.keptn.timestamps import format_keptn
from sli_provider.pipeline.evaluation import (
    MeasuredIndicator,
    ProviderUnavailable,
    SLIConfigInvalid,
    SLIEvaluator,
)
from sli_provider.ports.querier import PrometheusError
from sli_provider.ports.resources import ResourceError, ResourceReader
from sli_provider.runner.backend import RunnerError
from sli_provider.runner.core import RunResult
from sli_provider.runner.summary import K6_EXIT_MEANINGS
from sli_provider.service.gate_request import GateRequest
from sli_provider.sli.k6_runs import Scope, find_runs, in_progress
from sli_provider.sli.local_file import SLO_RESOURCE
from sli_provider.sli.run_series import run_has_series
from sli_provider.sli.window import SLIWindow

# Runs the scope's k6 workload (the service's runner); None where RUNNER_ENABLED is false.
RunWorkload = Callable[[TestRequest], Awaitable[RunResult]]


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
        run_workload: RunWorkload | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._reader = reader
        self._evaluator = evaluator
        self._prometheus = prometheus
        self._history = history
        self._run_workload = run_workload
        self._clock = clock

    async def judge(self, request: GateRequest) -> GateAnswer:
        k6: K6Run | None = None
        if request.run:  # k6 first, bounded by the workload's own timeout
            request, k6 = await self._run(request)
        seconds = self._settings.gate_deadline_seconds
        deadline = Deadline(seconds)
        try:
            async with asyncio.timeout(seconds):
                return await self._judge(request, deadline, k6)
        except TimeoutError:
            raise CannotJudge(
                504, f"no verdict within GATE_DEADLINE_SECONDS ({seconds:g} s)"
            ) from None
        except PrometheusError as exc:
            raise CannotJudge(502, f"the metrics store cannot be asked: {exc}") from None

    async def _run(self, request: GateRequest) -> tuple[GateRequest, K6Run]:
        """The scope's workload run as the runner runs an event's; the request, now for that
        run's window and context, and k6's thresholds as k6 judged them."""
        if self._run_workload is None:
            raise CannotJudge(422, "run: this service runs no k6 (RUNNER_ENABLED is false)")
        scope = request.scope
        context = str(uuid.uuid4())
        test = TestRequest(
            KeptnScope(scope.project, scope.stage, scope.service),
            request.teststrategy,
            (),
            (),
            context,
            "",
        )
        try:
            result = await self._run_workload(test)
        except RunnerError as exc:
            raise CannotJudge(422, f"run: {exc}") from None
        outcome = result.outcome
        if not result.completed:
            meaning = K6_EXIT_MEANINGS.get(outcome.returncode, "k6 stopped early")
            raise CannotJudge(
                422,
                f"run: k6 could not run the workload: {meaning} (exit code {outcome.returncode})",
            )
        missing = result.missing_series_message()
        if missing is not None:
            raise CannotJudge(422, f"run: {missing}")
        k6 = K6Run(
            outcome.returncode,
            tuple(
                ThresholdResult(
                    t.metric, t.expression, t.held, "" if t.value is None else format_value(t.value)
                )
                for t in outcome.summary.thresholds
            ),
        )
        window = (outcome.started_at, outcome.ended_at)
        return replace(request, run=False, window_s=window, context=context, thresholds=()), k6

    async def _judge(
        self, request: GateRequest, deadline: Deadline, ran: K6Run | None = None
    ) -> GateAnswer:
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
        run = {
            "context": window.context,
            "start": format_keptn(window.start_s),
            "end": format_keptn(window.end_s),
        }
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
        k6 = ran or _k6_run(request.thresholds, {m.metric: m for m in measured})
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
            return SLIWindow(scope.project, scope.stage, scope.service, start, end, context=context)

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
                warnings.append(
                    GateWarning(
                        "context_not_found",
                        f"no k6 series of context {request.context!r} in the window; the built-in "
                        f"SLIs use every run of {_shown(scope)}",
                    )
                )
            return found, key, warnings
        runs = await find_runs(prometheus, scope, now, request.lookback_s, request.context or None)
        if not runs:
            which = f"of context {request.context!r} " if request.context else ""
            raise CannotJudge(
                422,
                f"no k6 run {which}of {_shown(scope)} in the store within the last "
                f"{request.lookback_s:g} s (lookback)",
            )
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
            verdict = judge(
                slo_text,
                values,
                earlier,
                start=run["start"],
                end=run["end"],
                warnings=warnings,
                k6=k6,
                policy=request.threshold_policy,
            )
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
    results = []
    for t in thresholds:
        value = measured.get(t.sli)
        shown = format_value(value.value) if value is not None and value.success else ""
        results.append(ThresholdResult(t.metric, t.expression, _held(t, value), shown))
    return K6Run(99 if not all(r.ok for r in results) else 0, tuple(results))


def _held(threshold: Threshold, value: MeasuredIndicator | None) -> bool:
    return value is not None and value.success and threshold.holds(value.value)


def _shown(scope: Scope) -> str:
    return f"{scope.project}/{scope.stage}/{scope.service}"
