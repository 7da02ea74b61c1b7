"""Running k6 for test.triggered and reporting k6's thresholds back to Keptn.

Flow: event → workload (k6.conf.yaml or ``k6/<teststrategy>.js``) → started → a private
directory with the script and its files → k6 (tagged, one slot of MAX_PARALLEL_TESTS) → check
that Prometheus received the run's series → finished → directory removed.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sli_provider.adapters.k6_process import K6Timeout, run_k6
from sli_provider.adapters.keptn_api import ResourceError, ResourceReader
from sli_provider.adapters.prometheus import PrometheusError
from sli_provider.adapters.prometheus_router import PrometheusRouter
from sli_provider.k6.invocation import RunTags, build_invocation
from sli_provider.keptn.envelope import KeptnEvent, Result, Status
from sli_provider.keptn.test_task import (
    TASK,
    TestRequest,
    parse_test_request,
    test_finished_payload,
)
from sli_provider.runner.report import RunReport, outcome_for_exit, read_summary_export
from sli_provider.runner.workloads import (
    Workload,
    WorkloadError,
    default_workload,
    parse_workloads,
    script_env,
    select,
)
from sli_provider.service.evaluation import run_has_series
from sli_provider.service.metrics import ServiceMetrics
from sli_provider.service.replying import Finished, SendEvent, TaskReplies
from sli_provider.sli.window import SLIWindow

log = logging.getLogger(__name__)
k6_log = logging.getLogger("sli_provider.k6")

SUMMARY_FILE = ".summary-export.json"


@dataclass(frozen=True)
class RunnerConfig:
    config_resource: str
    k6_binary: str | None
    max_parallel: int
    work_dir: Path | None


@dataclass(frozen=True)
class _Found:
    content: bytes
    where: str


@dataclass(frozen=True)
class _Plan:
    workload: Workload
    script: _Found | None
    tried: tuple[str, ...]


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
        resources: ResourceReader,
        prometheus: PrometheusRouter,
        send: SendEvent,
        source: str,
        metrics: ServiceMetrics,
    ) -> None:
        self._config = config
        self._resources = resources
        self._prometheus = prometheus
        self._send = send
        self._source = source
        self._metrics = metrics
        self._slots = asyncio.Semaphore(config.max_parallel)

    async def handle(self, event: KeptnEvent) -> None:
        request = parse_test_request(event)
        replies = TaskReplies(
            trigger=event, task=TASK, send=self._send, source=self._source, metrics=self._metrics
        )
        try:
            plan = await self._plan(request)
        except (ResourceError, WorkloadError) as exc:
            message = f"cannot read the k6 workload configuration: {exc}"
            await replies.run(
                lambda: _errored(message),
                on_shutdown=lambda: _errored_now(message),
                on_error=_on_error,
            )
            return
        if plan is None:
            log.info(
                "no k6 workload for teststrategy %r; leaving the event to other runners",
                request.teststrategy,
            )
            return
        await replies.run(
            lambda: self._run(request, plan),
            on_shutdown=lambda: _errored_now(
                "the service shut down during the k6 run; k6 was stopped"
            ),
            on_error=_on_error,
        )

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

    async def _plan(self, request: TestRequest) -> _Plan | None:
        if not request.teststrategy or not request.scope.project:
            return None
        config, _ = await self._find(self._config.config_resource, request)
        if config is None:
            workload = default_workload(request.teststrategy)
            script, tried = await self._find(workload.script, request)
            # Without a config file the script's presence is what makes the event ours.
            return _Plan(workload, script, tuple(tried)) if script else None
        workload_or_none = select(
            parse_workloads(config.content, config.where), request.teststrategy
        )
        if workload_or_none is None:
            return None
        script, tried = await self._find(workload_or_none.script, request)
        return _Plan(workload_or_none, script, tuple(tried))

    async def _run(self, request: TestRequest, plan: _Plan) -> Finished:
        if plan.script is None:
            return _errored_now(
                f"k6 script {plan.workload.script!r} not found; tried: " + "; ".join(plan.tried)
            )
        async with self._slots:
            root = Path(
                await asyncio.to_thread(
                    tempfile.mkdtemp, prefix="k6-run-", dir=self._config.work_dir
                )
            )
            try:
                return await self._run_in(root, request, plan.workload, plan.script)
            except _RunFailed as exc:
                return _errored_now(str(exc))
            finally:
                await asyncio.to_thread(shutil.rmtree, root, True)

    async def _run_in(
        self, root: Path, request: TestRequest, workload: Workload, script: _Found
    ) -> Finished:
        await _write(root, workload.script, script.content)
        for name in workload.files:
            found, tried = await self._find(name, request)
            if found is None:
                raise _RunFailed(
                    f"file {name!r} of the workload not found; tried: " + "; ".join(tried)
                )
            await _write(root, name, found.content)
        access = self._prometheus.access_for(request.scope.project)
        remote_write = access.write_url
        invocation = build_invocation(
            script=root / workload.script,
            remote_write_url=remote_write,
            output_env=access.k6_env(),
            tags=RunTags(
                request.scope.project, request.scope.stage, request.scope.service, request.context
            ),
            k6_binary=self._config.k6_binary,
            script_env=script_env(request, workload),
            vus=workload.vus,
            duration=workload.duration,
            summary_export=root / SUMMARY_FILE,
            home=root,
        )
        timeout = workload.effective_timeout()
        log.info("starting k6", extra={"fields": {"script": workload.script, "timeout_s": timeout}})
        try:
            outcome = await run_k6(invocation, timeout=timeout, cwd=root, on_line=_log_k6_line)
        except K6Timeout as exc:
            tail = "\n".join(exc.output_tail[-15:])
            raise _RunFailed(
                f"k6 ran past the workload's timeout of {timeout:g} s; its process group was "
                f"killed. Last output:\n{tail}"
            ) from None
        except OSError as exc:
            raise _RunFailed(f"k6 could not be started: {exc}") from None
        report = await _read_report(root / SUMMARY_FILE)
        status, result, message = outcome_for_exit(
            outcome.returncode,
            report.thresholds,
            on_threshold_failure=workload.on_threshold_failure,
            output_tail=outcome.output_tail,
        )
        if status is Status.SUCCEEDED and not await self._wrote_metrics(
            request, outcome.started_at, outcome.ended_at
        ):
            status, result = Status.ERRORED, Result.FAIL
            message = (
                f"k6 wrote no metrics to Prometheus ({remote_write}): is its "
                "remote-write receiver enabled (--web.enable-remote-write-receiver)? k6 itself "
                f"exits {outcome.returncode} when remote write fails. " + message
            )
        k6_data: dict[str, Any] = {
            "exitCode": outcome.returncode,
            "durationMs": round((outcome.ended_at - outcome.started_at) * 1000, 3),
            "thresholds": [t.as_data() for t in report.thresholds],
            "metrics": report.metrics,
            "script": workload.script,
        }
        return Finished(
            status,
            result,
            message,
            test_finished_payload(outcome.started_at, outcome.ended_at, k6_data),
        )

    async def _wrote_metrics(self, request: TestRequest, start: float, end: float) -> bool:
        ctx = SLIWindow(
            project=request.scope.project,
            stage=request.scope.stage,
            service=request.scope.service,
            start_s=start,
            end_s=end,
            context=request.context,
        )
        try:
            return await run_has_series(self._prometheus.for_project(request.scope.project), ctx)
        except PrometheusError as exc:
            raise _RunFailed(f"could not check k6's metrics in Prometheus: {exc}") from None


async def _write(root: Path, relative: str, content: bytes) -> None:
    path = root.joinpath(*relative.split("/"))

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    await asyncio.to_thread(write)


async def _read_report(path: Path) -> RunReport:
    try:
        return read_summary_export(await asyncio.to_thread(path.read_bytes))
    except (OSError, ValueError):
        # k6 writes no export when the script fails before the test starts.
        return RunReport((), {})


def _log_k6_line(line: str) -> None:
    k6_log.info("%s", line)


async def _errored(message: str) -> Finished:
    return _errored_now(message)


def _errored_now(message: str) -> Finished:
    now = time.time()
    return Finished(Status.ERRORED, Result.FAIL, message, test_finished_payload(now, now, {}))


def _on_error(exc: Exception) -> Finished:
    return _errored_now(f"internal error in the k6 runner: {type(exc).__name__}: {exc}")
