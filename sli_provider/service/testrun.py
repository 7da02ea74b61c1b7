"""Running k6 for test.triggered and reporting k6's thresholds back to Keptn.

Flow: event → workload (k6.conf.yaml or ``k6/<teststrategy>.js``) → started event → one slot
of MAX_PARALLEL_TESTS → the script and its files read from Keptn's resources → a ``RunPlan`` →
the runner core and its back-end → check that Prometheus received the run's series → finished
event. The files are read only once the run holds its slot, so events waiting for one hold no
file content.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sli_provider.adapters.delivery import Delivery
from sli_provider.adapters.prometheus_router import PrometheusRouter
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.envelope import KeptnEvent, Result, Status
from sli_provider.keptn.test_task import (
    TASK,
    InvalidTestRequest,
    TestRequest,
    parse_test_request,
    test_finished_payload,
)
from sli_provider.metrics import ServiceMetrics
from sli_provider.ports.querier import PrometheusError
from sli_provider.ports.resources import ResourceError, ResourceReader
from sli_provider.runner.backend import K6Timeout, RunnerBackend, RunnerError
from sli_provider.runner.core import RunResult, run_plan
from sli_provider.runner.plan import RunPlan, StagedScript
from sli_provider.runner.series import prometheus_series_check
from sli_provider.runner.summary import outcome_for_exit
from sli_provider.runner.workloads import (
    Workload,
    WorkloadError,
    default_workload,
    parse_workloads,
    script_env,
    select,
)
from sli_provider.service.replying import Finished, SendEvent, TaskReplies

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunnerConfig:
    config_resource: str
    max_parallel: int


@dataclass(frozen=True)
class _Found:
    content: bytes
    where: str


@dataclass(frozen=True)
class _Workload:
    workload: Workload


class _RunFailed(Exception):
    """The run cannot go on; the message goes into an errored finished reply."""


def _levels(request: TestRequest) -> list[tuple[str | None, str | None]]:
    # Most specific first, like job-executor-service and jmeter-service.
    return [(request.scope.stage, request.scope.service), (request.scope.stage, None), (None, None)]


class TestRunner:
    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        config: RunnerConfig,
        backend: RunnerBackend,
        resources: ResourceReader,
        prometheus: PrometheusRouter,
        send: SendEvent,
        source: str,
        metrics: ServiceMetrics,
    ) -> None:
        self._config = config
        self._backend = backend
        self._resources = resources
        self._prometheus = prometheus
        self._send = send
        self._source = source
        self._metrics = metrics
        self._slots = asyncio.Semaphore(config.max_parallel)

    async def handle(self, event: KeptnEvent) -> Delivery:
        replies = TaskReplies(
            trigger=event, task=TASK, send=self._send, source=self._source, metrics=self._metrics
        )
        try:
            request = parse_test_request(event)
            found = await self._workload(request)
        except (ResourceError, WorkloadError, InvalidTestRequest) as exc:
            message = (
                f"invalid test.triggered: {exc}"
                if isinstance(exc, InvalidTestRequest)
                else f"cannot read the k6 workload configuration: {exc}"
            )
            await replies.run(
                lambda: _errored(message),
                on_shutdown=lambda: _errored_now(message),
                on_error=_on_error,
            )
            return replies.delivery
        if found is None:
            log.info(
                "no k6 workload for teststrategy %r; leaving the event to other runners",
                request.teststrategy,
            )
            return Delivery.NO_REPLY_DUE
        await replies.run(
            lambda: self._run(request, found, event.id),
            on_shutdown=lambda: _errored_now(
                "the service shut down during the k6 run; k6 was stopped"
            ),
            on_error=_on_error,
        )
        return replies.delivery

    async def run_once(self, request: TestRequest) -> RunResult:
        """The scope's workload for ``request.teststrategy`` run as an event's would be (one of
        the MAX_PARALLEL_TESTS slots), without any event or reply: for /gate/webhook's
        ``run``. RunnerError says why it could not run."""
        try:
            found = await self._workload(request)
        except (ResourceError, WorkloadError) as exc:
            raise RunnerError(f"cannot read the k6 workload configuration: {exc}") from None
        if found is None:
            raise RunnerError(
                f"no k6 workload for teststrategy {request.teststrategy!r} "
                f"({self._config.config_resource} or k6/{request.teststrategy}.js)"
            )
        try:
            plan = await self._plan(request, found, request.context)
            async with self._slots:
                return await self._execute(plan, found.workload)
        except _RunFailed as exc:
            raise RunnerError(str(exc)) from None

    async def _find(self, uri: str, request: TestRequest) -> tuple[_Found | None, list[str]]:
        """The first of service, stage and project level that has ``uri``."""
        tried = []
        for stage, service in _levels(request):
            where = self._resources.describe(uri, request.scope.project, stage, service)
            tried.append(where)
            content = await self._resources.read(
                uri, request.scope.project, stage, service, request.gitcommitid
            )
            if content is not None:
                return _Found(content, where), tried
        return None, tried

    async def _workload(self, request: TestRequest) -> _Workload | None:
        if not request.teststrategy or not request.scope.project:
            return None
        config, _ = await self._find(self._config.config_resource, request)
        if config is None:
            workload = default_workload(request.teststrategy)
            # Without a config file the script's presence is what makes the event ours; its
            # content is read again once the run holds a slot.
            script, _ = await self._find(workload.script, request)
            return _Workload(workload) if script else None
        workload_or_none = select(
            parse_workloads(config.content, config.where), request.teststrategy
        )
        return None if workload_or_none is None else _Workload(workload_or_none)

    async def _run(self, request: TestRequest, found: _Workload, triggered_id: str) -> Finished:
        try:
            async with self._slots:
                plan = await self._plan(request, found, triggered_id)
                result = await self._execute(plan, found.workload)
        except (_RunFailed, WorkloadError, ResourceError) as exc:
            return _errored_now(str(exc))
        return _finished(result, found.workload)

    async def _plan(self, request: TestRequest, found: _Workload, triggered_id: str) -> RunPlan:
        workload = found.workload
        script, tried = await self._find(workload.script, request)
        if script is None:
            raise _RunFailed(f"k6 script {workload.script!r} not found; tried: " + "; ".join(tried))
        files = {workload.script: script.content}
        for name in workload.files:
            file, tried = await self._find(name, request)
            if file is None:
                raise _RunFailed(
                    f"file {name!r} of the workload not found; tried: " + "; ".join(tried)
                )
            files[name] = file.content
        return RunPlan(
            tags=RunTags(
                request.scope.project, request.scope.stage, request.scope.service, request.context
            ),
            script=StagedScript(workload.script, files),
            remote_write=self._prometheus.access_for(request.scope.project).remote_write_target(),
            script_env=script_env(request, workload),
            vus=workload.vus,
            duration=workload.duration,
            timeout_seconds=workload.effective_timeout(),
            k6=workload.k6,
            distribution=workload.distribution,
            triggered_id=triggered_id,
        )

    async def _execute(self, plan: RunPlan, workload: Workload) -> RunResult:
        log.info(
            "starting k6",
            extra={
                "fields": {
                    "script": workload.script,
                    "timeout_s": plan.timeout_seconds,
                    "executor": workload.executor,
                }
            },
        )
        check = prometheus_series_check(self._prometheus.for_project(plan.tags.project))
        try:
            return await run_plan(plan, self._backend, series_check=check)
        except K6Timeout as exc:
            tail = "\n".join(exc.output_tail[-15:])
            raise _RunFailed(
                f"k6 ran past the workload's timeout of {exc.timeout:g} s; its process group "
                f"was killed. Last output:\n{tail}"
            ) from None
        except RunnerError as exc:
            raise _RunFailed(str(exc)) from None
        except PrometheusError as exc:
            raise _RunFailed(f"could not check k6's metrics in Prometheus: {exc}") from None


def _finished(result: RunResult, workload: Workload) -> Finished:
    outcome = result.outcome
    status, test_result, message = outcome_for_exit(
        outcome.returncode,
        outcome.summary.thresholds,
        on_threshold_failure=workload.on_threshold_failure,
        output_tail=outcome.output_tail,
        aborted=outcome.aborted_by,
    )
    runners = outcome.runners_crossing_thresholds()
    if runners:
        message += f" (on runner {', '.join(runners)} of {len(outcome.runners)})"
    missing = result.missing_series_message()
    if missing is not None:
        status, test_result, message = Status.ERRORED, Result.FAIL, f"{missing} {message}"
    return Finished(
        status,
        test_result,
        message,
        test_finished_payload(outcome.started_at, outcome.ended_at, result.k6_data()),
    )


async def _errored(message: str) -> Finished:
    return _errored_now(message)


def _errored_now(message: str) -> Finished:
    now = time.time()
    return Finished(Status.ERRORED, Result.FAIL, message, test_finished_payload(now, now, {}))


def _on_error(exc: Exception) -> Finished:
    return _errored_now(f"internal error in the k6 runner: {type(exc).__name__}: {exc}")
