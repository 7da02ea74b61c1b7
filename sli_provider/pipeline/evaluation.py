"""Indicator values for a scope and a window: config → plan → concurrent queries → results.

Used by the get-sli handler and by /preview, so both show exactly the same thing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sli_provider.adapters.prometheus_router import PrometheusRouter
from sli_provider.adapters.retry import Deadline
from sli_provider.keptn.get_sli_task import IndicatorValue
from sli_provider.metrics import ServiceMetrics
from sli_provider.pipeline.query_runs import QueryRuns
from sli_provider.pipeline.steps import ProviderUnavailable as ProviderUnavailable
from sli_provider.pipeline.steps import SLIConfigInvalid as SLIConfigInvalid
from sli_provider.pipeline.steps import end_task, within
from sli_provider.ports.querier import PrometheusError, PrometheusUnavailable, Querier
from sli_provider.ports.resources import ResourceError, ResourceReader
from sli_provider.sli.builtin import BUILTIN_ORIGIN
from sli_provider.sli.config import (
    IndicatorSpec,
    SLIConfigError,
    SLIFile,
    merge_levels,
    parse_sli_yaml,
)
from sli_provider.sli.diagnosis import explain_no_data
from sli_provider.sli.final_push import Freshness, wait_for_final_push
from sli_provider.sli.plan import PlannedQuery, needs_builtin, plan_queries
from sli_provider.sli.quantile_merge import (
    SECONDS_TO_MS,
    TIME_TREND_COUNT_SCALE,
    percentiles_of_curves,
)
from sli_provider.sli.results import ValueFailure, single_value
from sli_provider.sli.run_series import run_has_series
from sli_provider.sli.window import SLIWindow

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=16)
def _parsed_sli_yaml(content: bytes, where: str) -> SLIFile:
    """parse_sli_yaml, once per distinct file: the same sli.yaml comes back on every get-sli,
    and PyYAML's pure-Python parser was a large share of a request's own work
    (bench/README.md). SLIFile is frozen and only read; a file that fails is not kept, so it
    fails the same way each time."""
    return parse_sli_yaml(content, where)


@dataclass(frozen=True)
class MeasuredIndicator:
    """One indicator's value as Prometheus gave it, with the query that was sent (or why none)."""

    metric: str
    query: str
    value: float
    success: bool
    message: str
    duration_ms: float
    origin: str

    def as_indicator_value(self) -> IndicatorValue:
        return IndicatorValue(self.metric, self.value, self.success, self.message, self.query)


@dataclass(frozen=True)
class Evaluation:
    """The indicators' values, and how the wait for the run's last push went."""

    indicators: list[MeasuredIndicator]
    freshness: Freshness


@dataclass(frozen=True)
class _Query:
    """One query to send. A curve query (sli/quantile_merge.py) carries the percentiles its
    indicators read from its series, decided by the plan before it is sent."""

    text: str
    curve_percents: tuple[float, ...] = ()


@dataclass(frozen=True)
class _Answer:
    value: float | None
    message: str
    duration_ms: float
    code: str = ""  # why there is no value: ValueFailure codes, or the error's type
    # A curve query's merged percentiles (or why none), for the indicators that read them.
    series: Mapping[float, float | ValueFailure] | None = None


class SLIEvaluator:
    def __init__(
        self,
        *,
        resources: ResourceReader,
        resource_uri: str,
        prometheus: PrometheusRouter,
        builtins: Mapping[str, IndicatorSpec],
        concurrency: int,
        metrics: ServiceMetrics,
        freshness_wait_seconds: float = 0.0,
    ) -> None:
        self._resources = resources
        self._uri = resource_uri
        self._prometheus = prometheus
        self._builtins = dict(builtins)
        self._concurrency = concurrency
        self._metrics = metrics
        self.freshness_wait_seconds = freshness_wait_seconds

    async def load_config(
        self, project: str, stage: str, service: str, commit: str
    ) -> dict[str, tuple[IndicatorSpec, str]]:
        """Merged indicators of the project, stage and service levels (read concurrently)."""
        levels: list[tuple[str | None, str | None]] = [
            (None, None),
            (stage, None),
            (stage, service),
        ]

        async def read(level: tuple[str | None, str | None]) -> SLIFile | None:
            where = self._resources.describe(self._uri, project, *level)
            content = await self._resources.read(self._uri, project, *level, commit)
            return None if content is None else _parsed_sli_yaml(content, where)

        try:
            # A TaskGroup, not gather: when one level fails the other reads are cancelled.
            async with asyncio.TaskGroup() as group:
                reads = [group.create_task(read(level)) for level in levels]
        except* (ResourceError, SLIConfigError) as errors:
            first = errors.exceptions[0]
            kind = SLIConfigInvalid if isinstance(first, SLIConfigError) else ProviderUnavailable
            raise kind(f"cannot read the SLI configuration: {first}") from None
        return merge_levels(f for f in (r.result() for r in reads) if f is not None)

    async def evaluate(
        self, window: SLIWindow, *, deadline: Deadline | None = None
    ) -> list[MeasuredIndicator]:
        """The indicators' values as the store holds them now (no wait for a run's last push).
        Past ``deadline`` the queries still running are given up and fail with a message saying
        so; those that finished keep their values."""
        return (await self._evaluate(window, deadline, wait_seconds=0.0)).indicators

    async def evaluate_final(
        self,
        window: SLIWindow,
        *,
        deadline: Deadline,
        queries_started: Callable[[], None] | None = None,
    ) -> Evaluation:
        """As :meth:`evaluate`, but a run's built-ins are queried once k6's last push of the run
        is visible, waiting up to FRESHNESS_WAIT_SECONDS (and half of what is left of
        ``deadline``, so the queries keep the other half). ``queries_started`` is called once
        every indicator query has been started."""
        wait = min(self.freshness_wait_seconds, deadline.remaining() / 2)
        return await self._evaluate(
            window, deadline, wait_seconds=max(0.0, wait), queries_started=queries_started
        )

    async def _evaluate(
        self,
        window: SLIWindow,
        deadline: Deadline | None,
        *,
        wait_seconds: float,
        queries_started: Callable[[], None] | None = None,
    ) -> Evaluation:
        prometheus = self._prometheus.for_project(window.project)
        async with QueryRuns(
            functools.partial(self._run_one, prometheus, window.end_s), self._concurrency
        ) as runs:
            planned, raw, freshness = await self._plan_and_run(
                prometheus, window, runs, deadline, wait_seconds, queries_started
            )
        answers = {id(p): _answer_for(p, raw) for p in planned if not p.failure}
        # Built-ins without data: ask Prometheus why (sli/diagnosis.py), once for all of them.
        silent = [
            p.query
            for p in planned
            if p.origin == BUILTIN_ORIGIN and not p.failure and answers[id(p)].code == "no_data"
        ]
        reasons = await self._explain(prometheus, window, silent, deadline) if silent else {}
        results = []
        for item in planned:
            if item.failure:
                results.append(
                    MeasuredIndicator(
                        item.indicator, item.query, 0.0, False, item.failure, 0.0, item.origin
                    )
                )
                continue
            answer = answers[id(item)]
            value, message = answer.value, answer.message
            if reasons.get(item.query):
                message = f"{message}; {reasons[item.query]}"
            if value is None and answer.code == "no_data" and item.on_empty == "zero":
                value, message = 0.0, "no data, which this indicator counts as 0 (on_empty: zero)"
            results.append(
                MeasuredIndicator(
                    metric=item.indicator,
                    query=item.query,
                    value=value if value is not None else 0.0,
                    success=value is not None,
                    message=message,
                    duration_ms=answer.duration_ms,
                    origin=item.origin,
                )
            )
        return Evaluation(results, freshness)

    async def _plan_and_run(
        self,
        prometheus: Querier,
        window: SLIWindow,
        runs: QueryRuns[_Query, _Answer],
        deadline: Deadline | None,
        wait_seconds: float,
        queries_started: Callable[[], None] | None,
    ) -> tuple[list[PlannedQuery], dict[str, _Answer], Freshness]:
        """Config read, freshness check and queries, overlapped where one does not need the
        other: the freshness check (sli/freshness.py, which also tells whether the window holds
        the run's series, or that run-series check alone when ``wait_seconds`` is 0) runs while
        sli.yaml is read, and is dropped if no built-in is wanted; queries whose text the
        run-series check cannot change start before it answers, but not before the run's data
        is final. What fails, and when, is what it was when each step waited for the one
        before."""
        requested = window.indicators
        check: asyncio.Task[tuple[bool, Freshness]] | None = None
        freshness = Freshness()
        if window.context and (requested is None or any(n in self._builtins for n in requested)):
            check = asyncio.create_task(self._check_freshness(prometheus, window, wait_seconds))
        try:
            configured = await within(
                deadline,
                self.load_config(window.project, window.stage, window.service, window.gitcommitid),
                "reading the SLI configuration",
            )
            indicators: Sequence[str]
            if requested is None:
                indicators = list(configured) + [b for b in self._builtins if b not in configured]
            else:
                indicators = requested
            run_present = False
            if check is not None and needs_builtin(indicators, configured, self._builtins):
                # Configured queries only: a curve query is a built-in's, planned below.
                independent = [
                    _Query(text)
                    for text in self._independent_of_run_series(indicators, configured, window)
                ]
                if wait_seconds <= 0:  # no freshness to wait for
                    runs.start(independent)
                run_present, freshness = await within(
                    deadline, check, "looking for the run's series and its last push"
                )
                runs.start(independent)
        finally:
            if check is not None:  # not needed, or the request failed
                await end_task(check)
        planned = plan_queries(
            indicators,
            configured=configured,
            builtins=self._builtins,
            window=window,
            run_series_present=run_present,
        )
        return planned, await self._run_all(runs, planned, deadline, queries_started), freshness

    def _independent_of_run_series(
        self,
        indicators: Sequence[str],
        configured: Mapping[str, tuple[IndicatorSpec, str]],
        window: SLIWindow,
    ) -> list[str]:
        """The queries that read the same whatever the run-series check answers. Only the
        configured indicators can: a built-in's selector is what that check decides, and
        planning every indicator twice more would cost each request a few milliseconds."""
        own = [name for name in indicators if name in configured]
        plans = [
            plan_queries(
                own,
                configured=configured,
                builtins=self._builtins,
                window=window,
                run_series_present=present,
            )
            for present in (False, True)
        ]
        return [
            a.query
            for a, b in zip(*plans, strict=True)
            if not a.failure and not b.failure and a.query == b.query
        ]

    async def _explain(
        self,
        prometheus: Querier,
        window: SLIWindow,
        silent: Sequence[str],
        deadline: Deadline | None,
    ) -> dict[str, str]:
        """Why the built-ins in ``silent`` have no data; nothing when the deadline leaves no time
        to ask, since a reason is worth less than answering on time."""
        if deadline is None:
            return await explain_no_data(prometheus, window, silent, time.time())
        limit = asyncio.timeout(deadline.remaining())
        try:
            async with limit:
                return await explain_no_data(prometheus, window, silent, time.time())
        except TimeoutError:
            if not limit.expired():
                raise
            return {}

    async def _check_freshness(
        self, prometheus: Querier, window: SLIWindow, wait_seconds: float
    ) -> tuple[bool, Freshness]:
        """Whether the window holds the run's series, once its last push is visible or
        ``wait_seconds`` have passed; and how that wait went."""
        freshness = Freshness()
        if wait_seconds > 0:
            try:
                freshness = await wait_for_final_push(prometheus, window, wait_seconds)
            except PrometheusUnavailable as exc:
                raise ProviderUnavailable(str(exc)) from None
            except PrometheusError as exc:  # e.g. a store without timestamp(): series check only
                log.warning("could not tell whether the run's last push is visible: %s", exc)
            if freshness.run_in_window is not None:
                return freshness.run_in_window, freshness
        return await self._run_series_present(prometheus, window), freshness

    async def _run_series_present(self, prometheus: Querier, window: SLIWindow) -> bool:
        try:
            return await run_has_series(prometheus, window)
        except PrometheusUnavailable as exc:
            raise ProviderUnavailable(str(exc)) from None
        except PrometheusError as exc:
            log.warning("check for the run's series failed; using the whole scope: %s", exc)
            return False

    async def _run_all(
        self,
        runs: QueryRuns[_Query, _Answer],
        planned: Sequence[PlannedQuery],
        deadline: Deadline | None,
        queries_started: Callable[[], None] | None = None,
    ) -> dict[str, _Answer]:
        """Each distinct query's answer, by its text: at most ``concurrency`` at a time, until
        ``deadline``; at the deadline the queries still running are given up, what finished
        stays."""
        queries = _queries_to_send(planned)
        runs.start(queries)
        if queries_started is not None:
            queries_started()
        try:
            answered, late = await runs.answers(
                queries, deadline.remaining() if deadline is not None else None
            )
        except PrometheusUnavailable as exc:
            raise ProviderUnavailable(str(exc)) from None
        answers = {query.text: answer for query, answer in answered.items()}
        if late and deadline is not None:
            elapsed = runs.seconds_running()
            answer = _Answer(
                None,
                f"no answer before the get-sli deadline of {deadline.seconds:g} s passed",
                round(elapsed * 1000, 3),
                "deadline",
            )
            for query in late:
                self._metrics.query_duration.labels("deadline").observe(elapsed)
                answers[query.text] = answer
        return answers

    async def _run_one(self, prometheus: Querier, at: float, query: _Query) -> _Answer:
        """One query's answer. A curve query's percentiles are merged here, in its own task, so
        the merge overlaps the queries still out instead of following the last of them."""
        curve_percents = query.curve_percents
        began = time.perf_counter()
        outcome = "ok"
        result: Any = None
        value: float | None = None
        try:
            result = await prometheus.instant(query.text, at)
            if not curve_percents:
                value = single_value(result)
            message = ""
        except ValueFailure as exc:
            message, outcome = str(exc), exc.code
        except PrometheusUnavailable:
            self._metrics.query_duration.labels("unavailable").observe(time.perf_counter() - began)
            raise
        except PrometheusError as exc:
            message, outcome = str(exc), type(exc).__name__
        elapsed = time.perf_counter() - began
        self._metrics.query_duration.labels(outcome).observe(elapsed)
        series = None
        if curve_percents and outcome == "ok":
            series = await _merged_percentiles(result, curve_percents)
        code = "" if value is not None or series is not None else outcome
        return _Answer(value, message, round(elapsed * 1000, 3), code, series)


# Up to this many series (8 instances' curves are about 1,000) merging takes a few ms and runs
# in the query's task; beyond it would hold the event loop (300 instances: 0.4 s), so a thread.
_MERGE_ON_LOOP_MAX_SERIES = 2000


async def _merged_percentiles(
    result: Any, percents: Sequence[float]
) -> Mapping[float, float | ValueFailure]:
    merge = functools.partial(
        percentiles_of_curves, result, percents, SECONDS_TO_MS, TIME_TREND_COUNT_SCALE
    )
    if isinstance(result, list) and len(result) > _MERGE_ON_LOOP_MAX_SERIES:
        return await asyncio.to_thread(merge)
    return merge()


def _queries_to_send(planned: Sequence[PlannedQuery]) -> list[_Query]:
    """Each distinct query of ``planned`` once, costliest first, a curve query with every
    percentile its indicators read from its series (its series are merged as it answers, not
    read as one value)."""
    percents: dict[str, set[float]] = {}
    for item in _costliest_first(planned):
        if not item.failure:
            wanted = percents.setdefault(item.query, set())
            if item.curve_percentile is not None:
                wanted.add(item.curve_percentile)
    return [_Query(text, tuple(sorted(wanted))) for text, wanted in percents.items()]


def _costliest_first(planned: Sequence[PlannedQuery]) -> list[PlannedQuery]:
    """The curve queries first, the rest in their order. A curve query reads every percentile,
    min and max series of a trend plus its counts (the whole quantile curve, sli/quantile_merge.py),
    the costliest query a built-in sends; queued behind QUERY_CONCURRENCY, one would run on alone
    after everything else had answered. Longest first is the classic rule for finishing a batch soonest
    on a limited number of slots: on the small bench dataset the 17 queries then took as long as
    sending all of them at once (bench/README.md)."""
    return sorted(planned, key=lambda p: p.curve_percentile is None)


def _answer_for(item: PlannedQuery, answers: Mapping[str, _Answer]) -> _Answer:
    """The indicator's answer: its query's, or its percentile merged from that query's curves."""
    answer = answers[item.query]
    if item.curve_percentile is None or answer.series is None:
        return answer
    value = answer.series[item.curve_percentile]
    if isinstance(value, ValueFailure):
        return replace(answer, series=None, message=str(value), code=value.code)
    return replace(answer, value=value, series=None)
