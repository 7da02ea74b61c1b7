"""The k6-operator back-end: ``RunnerBackend.execute`` as a TestRun of N runner pods.

Per run: read the script's thresholds with this service's own k6 (``k6 inspect``; a script k6
cannot read fails here, before any pod), ``k6 archive`` the script when its files are not all
beside it, build the manifests (``manifests.py``; runners run with ``--no-thresholds``), create
the ConfigMap, then the TestRun, then make the TestRun the ConfigMap's owner (so deleting the
TestRun deletes the ConfigMap too), and wait for stage finished/error by watch within the plan's
timeout, judging the abortOnFail thresholds on the whole test meanwhile (``live.py``): when one
crosses, every runner is stopped through k6's REST API behind its Service (or the TestRun is
deleted when that fails). Then every runner pod's exit code, start/end and log tail
(``verdict.py``), and every threshold judged on the whole test once the runners' last metrics
are in the store (``whole_test.py``). The TestRun is always deleted: after the verdict, at the
deadline, on an error and on cancellation (shielded and bounded), so no load runs on with
nobody to report it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sli_provider.k6.thresholds import ThresholdSpec
from sli_provider.ports.querier import PrometheusError, Querier
from sli_provider.runner.backend import K6Outcome, K6StartError, RunnerError
from sli_provider.runner.binaries import K6Registry, NoSuitableK6
from sli_provider.runner.distribution import Distribution
from sli_provider.runner.extensions import extension_imports
from sli_provider.runner.k6_operator.archive import k6_archive, k6_thresholds
from sli_provider.runner.k6_operator.kube import KubeApi, StageReport
from sli_provider.runner.k6_operator.live import LiveJudge
from sli_provider.runner.k6_operator.manifests import (
    LABEL_MANAGED_BY,
    LABEL_REPLICA,
    LABEL_TRIGGERED_ID,
    MANAGED_BY,
    OperatorSettings,
    build_manifests,
    label_value,
    needs_archive,
    new_name,
    owned_by,
)
from sli_provider.runner.k6_operator.verdict import judge
from sli_provider.runner.k6_operator.whole_test import Judged, WholeTest
from sli_provider.runner.plan import RunPlan, StagedScript
from sli_provider.runner.series import prometheus_series_check
from sli_provider.runner.summary import THRESHOLDS_CROSSED, RunReport
from sli_provider.sli.window import SLIWindow

log = logging.getLogger(__name__)
# The runners' output, as the local back-end logs k6's, with each line's runner pod in front.
k6_log = logging.getLogger("sli_provider.k6")

DELETE_TIMEOUT_SECONDS = 10.0
# How often a running test's abortOnFail thresholds are judged on the whole test.
ABORT_CHECK_SECONDS = 2.0
# After stopping every runner: how long their k6 may take to end before the TestRun is deleted.
STOP_WAIT_SECONDS = 30.0
STOP_ATTEMPTS = 3

# The store that holds a project's k6 metrics.
StoreFor = Callable[[str], Querier]


class TestRunTimeout(RunnerError, TimeoutError):
    """The TestRun did not reach finished or error within the plan's timeout."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str, timeout: float, waiting: Sequence[str] = ()) -> None:
        why = f" (pods not ended: {'; '.join(waiting)})" if waiting else ""
        super().__init__(
            f"the TestRun {name} did not finish within the workload's timeout of {timeout:g} s"
            f"{why}; it was deleted, which stops its runners"
        )
        self.timeout = timeout


class K6OperatorBackend:
    """Runs each plan as a TestRun in ``settings.namespace`` through ``api``; judges its
    thresholds on the whole test from the store ``store(project)`` answers for."""

    def __init__(
        self,
        api: KubeApi,
        settings: OperatorSettings,
        *,
        store: StoreFor,
        k6: str = "k6",
        binaries: K6Registry | None = None,
        abort_check_seconds: float = ABORT_CHECK_SECONDS,
    ) -> None:
        self._api = api
        self._settings = settings
        self._store = store
        # This service's own k6: `k6 inspect` for the script's thresholds, and `k6 archive` of
        # scripts with modules in sub-directories; of ``binaries``, one that has the script's
        # k6/x/... imports (k6 cannot read a script whose imports it lacks).
        self._k6 = k6
        self._binaries = binaries
        self._abort_check_seconds = abort_check_seconds

    @property
    def settings(self) -> OperatorSettings:
        return self._settings

    async def execute(self, plan: RunPlan) -> K6Outcome:
        distribution = plan.distribution or Distribution()
        archive = None
        if needs_archive(plan):
            assert isinstance(plan.script, StagedScript)  # needs_archive refuses the others
            archive = await k6_archive(self._own_k6(plan.script), plan.script)
        assert isinstance(plan.script, StagedScript)  # needs_archive refuses the others
        thresholds = await k6_thresholds(self._own_k6(plan.script), plan.script, plan.script_env)
        manifests = build_manifests(
            plan, distribution, self._settings, name=new_name(plan.tags.context), archive=archive
        )
        name = manifests.name
        store = self._store(plan.tags.project)
        created_at = time.time()
        created = False
        crossing: Judged | None = None
        try:
            async with asyncio.timeout(plan.timeout_seconds):
                test_run = await self._create(manifests.config_map, manifests.test_run)
                created = True
                log.info(
                    "TestRun created",
                    extra={"fields": {"testrun": name, "parallelism": distribution.parallelism}},
                )
                await self._api.own_config_map(name, owned_by(test_run))
                live = LiveJudge(
                    store,
                    plan.tags,
                    [t for t in thresholds if t.abort_on_fail],
                    created_at,
                    self._abort_check_seconds,
                )
                stage, crossing = await self._wait(name, live, distribution.parallelism)
                ended_at = time.time()
                if stage is None:  # stopped by deleting it: nothing of its pods is left
                    pods, logs = [], {}
                else:
                    # After an error the initializer's log says why (a script error, usually).
                    pods = await self._api.runner_pods(name, runners_only=stage.stage != "error")
                    logs = dict(
                        zip(
                            [pod.name for pod in pods],
                            await asyncio.gather(*(self._api.pod_log(p.name) for p in pods)),
                            strict=True,
                        )
                    )
        except TimeoutError:
            waiting = await self._waiting_pods(name) if created else []
            raise TestRunTimeout(name, plan.timeout_seconds, waiting) from None
        finally:
            if created:
                await self._delete_shielded(name)
        for pod in pods:
            for line in logs[pod.name] or ():
                if line.strip():
                    k6_log.info("%s: %s", pod.name, line)
        if stage is None:
            outcome = K6Outcome(
                returncode=0, started_at=created_at, ended_at=ended_at, output_tail=()
            )
        else:
            outcome = judge(
                name,
                stage,
                pods,
                logs,
                parallelism=distribution.parallelism,
                window=(created_at, ended_at),
                stopped=crossing is not None,
            )
        return await self._whole_test(plan, store, thresholds, outcome, crossing)

    def _own_k6(self, script: StagedScript) -> str:
        """The k6 of this service that can read ``script``: one with its k6/x/... imports."""
        if self._binaries is None or not self._binaries.binaries:
            return self._k6
        needed = extension_imports(script.entry, lambda path: _text(script.files.get(path)))
        if not needed:
            return self._k6
        try:
            return self._binaries.choose(needed).path
        except NoSuitableK6 as exc:
            raise K6StartError(
                "this service reads the script's thresholds (k6 inspect) with its own k6 before "
                f"the TestRun, whatever the runner image: {exc}"
            ) from None

    async def _wait(
        self, name: str, live: LiveJudge, parallelism: int
    ) -> tuple[StageReport | None, Judged | None]:
        """Until the TestRun ends; when an abortOnFail threshold of the whole test crosses
        first, every runner is stopped (or, if that fails, the TestRun deleted). The end stage
        (None when deleted) and the crossing."""
        end = asyncio.ensure_future(self._api.wait_for_end(name))
        watch = asyncio.ensure_future(live.first_crossing())
        try:
            await asyncio.wait({end, watch}, return_when=asyncio.FIRST_COMPLETED)
            if end.done():
                return end.result(), None
            crossing = watch.result()
            log.warning(
                "abortOnFail threshold crossed by the whole test; stopping every runner",
                extra={
                    "fields": {
                        "testrun": name,
                        "threshold": f"{crossing.spec.key}: {crossing.spec.expression}",
                        "value": crossing.value,
                    }
                },
            )
            if await self._stop_all(name, parallelism):
                try:
                    async with asyncio.timeout(STOP_WAIT_SECONDS):
                        return await end, crossing
                except TimeoutError:
                    log.error("the runners of %s did not end after being stopped", name)
            end.cancel()
            await self._delete_shielded(name)
            return None, crossing
        finally:
            for task in (end, watch):
                task.cancel()
            await asyncio.gather(end, watch, return_exceptions=True)

    async def _stop_all(self, name: str, parallelism: int) -> bool:
        """k6-operator's stop job: ``stopped: true`` to every runner's REST API."""
        services = [f"{name}-service-{i}" for i in range(1, parallelism + 1)]
        results = await asyncio.gather(
            *(self._stop_one(service) for service in services), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        for failure in failed:
            if not isinstance(failure, Exception):
                raise failure
            log.error("%s; deleting the TestRun %s instead", failure, name)
        return not failed

    async def _stop_one(self, service: str) -> None:
        async with asyncio.timeout(DELETE_TIMEOUT_SECONDS):
            for attempt in range(STOP_ATTEMPTS):
                try:
                    await self._api.stop_runner(service)
                    return
                except RunnerError:
                    if attempt == STOP_ATTEMPTS - 1:
                        raise
                await asyncio.sleep(0.2 * (attempt + 1))

    async def _whole_test(
        self,
        plan: RunPlan,
        store: Querier,
        thresholds: Sequence[ThresholdSpec],
        outcome: K6Outcome,
        crossing: Judged | None,
    ) -> K6Outcome:
        """The outcome with the thresholds judged on the whole test, once the runners' last
        metrics are in the store (their summed iterations, when every log gave them)."""
        if not thresholds and crossing is None:
            return outcome
        iterations = outcome.summary.metrics.get("iterations", {}).get("count")
        try:
            present = await prometheus_series_check(store)(
                plan.tags, outcome.started_at, outcome.ended_at, iterations
            )
            window = SLIWindow(
                project=plan.tags.project,
                stage=plan.tags.stage,
                service=plan.tags.service,
                start_s=outcome.started_at,
                end_s=outcome.ended_at,
                context=plan.tags.context,
            )
            judged = await WholeTest(store, window).judge(thresholds) if present else []
        except PrometheusError as exc:
            raise RunnerError(
                f"cannot judge the thresholds on the whole test: the store failed: {exc}"
            ) from None
        if not present:
            # The series check of the runner core reports the missing metrics.
            judged = [
                Judged(t, None, "the runners' metrics are not in the store") for t in thresholds
            ]
        results = tuple(j.as_threshold() for j in judged)
        crossed = any(not t.held for t in results) or crossing is not None
        return replace(
            outcome,
            returncode=THRESHOLDS_CROSSED if crossed else 0,
            summary=RunReport(results, outcome.summary.metrics),
            aborted_by=crossing.as_threshold() if crossing is not None else None,
        )

    async def _waiting_pods(self, name: str) -> list[str]:
        """Why its pods have not ended (an image that cannot be pulled, a missing Secret), for
        the message of a run past its deadline; nothing when the API does not answer in time."""
        try:
            async with asyncio.timeout(DELETE_TIMEOUT_SECONDS):
                pods = await self._api.runner_pods(name, runners_only=False)
        except (RunnerError, TimeoutError):
            return []
        return [f"{p.name} {p.reason}" for p in pods if p.exit_code is None and p.reason]

    async def _create(
        self, config_map: Mapping[str, Any], test_run: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The ConfigMap first, so the operator's pods find the script at once; without a
        TestRun it is deleted again (it holds only the script: no load runs from it)."""
        await self._api.create_config_map(config_map)
        try:
            return await self._api.create_test_run(test_run)
        except BaseException:
            # Cancelled while the request was out, the TestRun may exist: delete it too.
            await _shielded(self._delete(test_run["metadata"]["name"]))
            await _shielded(self._delete_config_map(config_map["metadata"]["name"]))
            raise

    async def _delete_config_map(self, name: str) -> None:
        try:
            async with asyncio.timeout(DELETE_TIMEOUT_SECONDS):
                await self._api.delete_config_map(name)
        except (RunnerError, TimeoutError) as exc:
            log.warning("cannot delete the ConfigMap %s: %s", name, exc)

    async def _delete_shielded(self, name: str) -> None:
        await _shielded(self._delete(name))

    async def _delete(self, name: str) -> None:
        try:
            async with asyncio.timeout(DELETE_TIMEOUT_SECONDS):
                deleted = await self._api.delete_test_run(name)
            if deleted:
                log.info("TestRun deleted", extra={"fields": {"testrun": name}})
        except (RunnerError, TimeoutError) as exc:
            log.error("cannot delete the TestRun %s; its runners may go on: %s", name, exc)

    async def delete_for_event(self, triggered_id: str) -> list[str]:
        """Delete the TestRuns started for the test.triggered ``triggered_id`` (by any replica)."""
        return await self._delete_matching({LABEL_TRIGGERED_ID: label_value(triggered_id)})

    async def delete_leftovers(self) -> list[str]:
        """At start-up: delete the TestRuns an earlier run of this replica left behind (it
        crashed or was killed before it could), since nobody can report them now."""
        if not self._settings.replica:
            return []
        return await self._delete_matching({LABEL_REPLICA: label_value(self._settings.replica)})

    async def _delete_matching(self, labels: Mapping[str, str]) -> list[str]:
        names = await self._api.test_runs({LABEL_MANAGED_BY: MANAGED_BY, **labels})
        for name in names:
            await self._delete(name)
        return names

    async def aclose(self) -> None:
        await self._api.aclose()


def _text(content: bytes | None) -> str | None:
    return None if content is None else content.decode("utf-8", errors="replace")


async def _shielded(cleanup: Coroutine[Any, Any, None]) -> None:
    """Run a (bounded) clean-up to its end even while being cancelled; a second cancellation
    still waits for it before it goes on."""
    task = asyncio.ensure_future(cleanup)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise
