"""The k6-operator back-end against the simulated Kubernetes API (devkit/kube), which checks
every TestRun against k6-operator's CRD schema and plays the operator with real k6 processes
started with the operator's exact runner flags; the runners remote-write into a real Prometheus."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devkit.fake_keptn import FakeKeptn
from devkit.k6binaries import extension_k6
from devkit.k6run import LOAD_SCRIPT
from devkit.k6summary import expected_values
from devkit.k6truth import PERCENTILE_SLIS, read_samples, union_metrics
from devkit.kube import CONFIGMAPS, PODS, TESTRUNS, ImageTable, SimulatedKubernetes
from devkit.kube.testkit import NAMESPACE
from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer
from sli_provider.adapters.prometheus import PrometheusClient
from sli_provider.config import Settings
from sli_provider.k6.invocation import RemoteWriteTarget, RunTags, remote_write_url
from sli_provider.keptn.envelope import Result, Status
from sli_provider.keptn.timestamps import format_keptn
from sli_provider.runner.backend import RunnerError
from sli_provider.runner.binaries import K6Registry
from sli_provider.runner.core import RunResult, run_plan
from sli_provider.runner.distribution import Distribution, RunnerPod
from sli_provider.runner.k6_operator.backend import K6OperatorBackend, TestRunTimeout
from sli_provider.runner.k6_operator.kube import LOG_TAIL_LINES
from sli_provider.runner.local import find_k6_binary
from sli_provider.runner.plan import RunPlan, StagedScript
from sli_provider.runner.series import prometheus_series_check
from sli_provider.runner.summary import outcome_for_exit
from sli_provider.sli.builtin import load_builtin_templates
from sli_provider.wiring import make_k6_operator

LOAD_JS = LOAD_SCRIPT.read_bytes()
# Exactly one runner crosses: the one that runs the test's first iteration (iterationInTest is
# unique across execution segments), so the verdict must name that runner and no other.
ONE_RUNNER_CROSSES_JS = b"""
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
const marked = new Counter('marked');
export const options = {
  scenarios: { s: { executor: 'shared-iterations', vus: 2, iterations: 6 } },
  thresholds: { marked: ['count<1'] },
};
export default function () { marked.add(exec.scenario.iterationInTest === 0 ? 1 : 0); }
"""
SYNTAX_ERROR_JS = b"export default function ( {\n"


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[SimulatedKubernetes]:
    async with SimulatedKubernetes(namespaces=(NAMESPACE,)) as simulated:
        yield simulated
        assert await simulated.k6_stopped(), "a k6 runner outlived its TestRun"


@pytest.fixture
def settings(kube: SimulatedKubernetes, prometheus: PrometheusServer, tmp_path: Path) -> Settings:
    return Settings(
        prometheus_url=prometheus.url,
        k6_operator_enabled=True,
        k6_operator_kubeconfig=kube.kubeconfig(tmp_path / "kubeconfig"),
        k6_operator_namespace=NAMESPACE,
        k6_operator_replica="sli-provider-0",
        runner_work_dir=tmp_path,
    )


@pytest.fixture
async def store(prometheus: PrometheusServer) -> AsyncIterator[PrometheusClient]:
    client = PrometheusClient(prometheus.url, concurrency=4, timeout=10.0, attempts=2, max_wait=1.0)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def backend(settings: Settings, store: PrometheusClient) -> AsyncIterator[K6OperatorBackend]:
    operator = make_k6_operator(settings, lambda _project: store)
    assert operator is not None
    try:
        yield operator
    finally:
        await operator.aclose()


def operator_plan(
    tags: RunTags,
    prometheus: PrometheusServer,
    script: bytes,
    *,
    parallelism: int = 2,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    extra_args: tuple[str, ...] = (),
) -> RunPlan:
    return RunPlan(
        tags=tags,
        script=StagedScript("k6/test.js", {"k6/test.js": script}),
        remote_write=RemoteWriteTarget(remote_write_url(prometheus.url)),
        script_env=env or {},
        timeout_seconds=timeout,
        distribution=Distribution(parallelism=parallelism),
        triggered_id="11111111-2222-3333-4444-" + tags.context[-12:],
        extra_args=extra_args,
    )


def fresh_tags(name: str) -> RunTags:
    import uuid

    return RunTags("shop", "staging", name, str(uuid.uuid4()))


async def execute(
    backend: K6OperatorBackend, plan: RunPlan, prometheus: PrometheusServer
) -> RunResult:
    client = PrometheusClient(prometheus.url, concurrency=2, timeout=10.0, attempts=2, max_wait=1.0)
    try:
        return await run_plan(plan, backend, series_check=prometheus_series_check(client))
    finally:
        await client.aclose()


def load_env(target: TargetServer, **knobs: str) -> dict[str, str]:
    return {"TARGET_URL": target.url, "VUS": "4", "DURATION": "2s", "FAIL_EVERY": "0", **knobs}


async def test_a_passing_run_of_two_runners(
    kube: SimulatedKubernetes,
    backend: K6OperatorBackend,
    prometheus: PrometheusServer,
    target: TargetServer,
) -> None:
    tags = fresh_tags("pass")
    result = await execute(
        backend, operator_plan(tags, prometheus, LOAD_JS, env=load_env(target)), prometheus
    )
    assert result.returncode == 0
    assert [r.exit_code for r in result.outcome.runners] == [0, 0]
    assert result.wrote_series is True
    assert result.outcome.ended_at > result.outcome.started_at
    # Deleted after the verdict, and its ConfigMap and pods with it.
    assert kube.objects(TESTRUNS, NAMESPACE) == []
    assert kube.objects(CONFIGMAPS, NAMESPACE) == []
    assert kube.objects(PODS, NAMESPACE) == []
    runners = [p for p in kube.k6_processes() if any("instance_id=" in a for a in p.argv)]
    assert len(runners) == 2
    for runner in runners:
        assert f"keptn_context={tags.context}" in runner.argv
        assert "K6_PROMETHEUS_RW_STALE_MARKERS" in runner.env


async def test_modules_in_sub_directories_run_from_a_k6_archive(
    kube: SimulatedKubernetes, backend: K6OperatorBackend, prometheus: PrometheusServer
) -> None:
    """k6-operator mounts the ConfigMap flat; ``import './lib/…'`` works through ``k6 archive``."""
    files = {
        "k6/test.js": b"import { count } from './lib/count.js';\n"
        b"export const options = { vus: 2, iterations: 4 };\n"
        b"export default function () { count(); }\n",
        "k6/lib/count.js": b"import { Counter } from 'k6/metrics';\n"
        b"const counted = new Counter('counted');\n"
        b"export function count() { counted.add(1); }\n",
    }
    plan = replace(
        operator_plan(fresh_tags("archive"), prometheus, b""),
        script=StagedScript("k6/test.js", files),
    )
    result = await execute(backend, plan, prometheus)
    assert result.returncode == 0
    assert result.outcome.summary.metrics["iterations"] == {"count": 4.0}
    runners = [p for p in kube.k6_processes() if any("instance_id=" in a for a in p.argv)]
    assert runners and all(any(a.endswith("archive.tar") for a in p.argv) for p in runners)


async def test_a_threshold_one_runner_would_cross_alone_is_judged_on_the_whole_test(
    kube: SimulatedKubernetes, backend: K6OperatorBackend, prometheus: PrometheusServer
) -> None:
    """One runner marks 1 of 6 iterations: judged alone it would cross, but only the whole
    test's count decides, and the runners themselves run without thresholds."""
    result = await execute(
        backend, operator_plan(fresh_tags("cross"), prometheus, ONE_RUNNER_CROSSES_JS), prometheus
    )
    assert result.returncode == 99
    assert [r.exit_code for r in result.outcome.runners] == [0, 0]
    assert all(r.thresholds == () for r in result.outcome.runners)
    assert [t.as_data() for t in result.crossed_thresholds] == [
        {"metric": "marked", "threshold": "count<1", "ok": False, "value": 1.0}
    ]
    assert result.outcome.summary.metrics["iterations"] == {"count": 6.0}
    assert kube.objects(TESTRUNS, NAMESPACE) == []
    runners = [p for p in kube.k6_processes() if any("instance_id=" in a for a in p.argv)]
    assert runners and all("--no-thresholds" in p.argv for p in runners)


WHOLE_TEST_JS = """
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter, Gauge } from 'k6/metrics';
const marked = new Counter('marked');
const level = new Gauge('level');
export const options = {
  scenarios: { s: { executor: 'shared-iterations', vus: 3, iterations: 300 } },
  thresholds: THRESHOLDS,
};
export default function () {
  marked.add(1, { kind: exec.scenario.iterationInTest % 3 === 0 ? 'api' : 'web' });
  check(exec.scenario.iterationInTest, { even: (i) => i % 2 === 0 });
  level.add(7);
}
"""


async def test_a_count_of_the_whole_test_passes_over_three_runners(
    kube: SimulatedKubernetes, backend: K6OperatorBackend, prometheus: PrometheusServer
) -> None:
    """300 iterations as 3 runners of 100: ``count>=300`` holds for the test; a submetric whose
    tag the script sets is judged on its tagged series; trends on their merged curves."""
    thresholds = (
        "{ iterations: ['count>=300'], 'marked{kind:api}': ['count==100'], marked: ['rate>0'],"
        " checks: ['rate==0.5'], level: ['value==7'],"
        " iteration_duration: ['p(95)<1000', 'avg<1000', 'max>0', 'min>=0', 'med<1000'] }"
    )
    script = WHOLE_TEST_JS.replace("THRESHOLDS", thresholds).encode()
    plan = operator_plan(fresh_tags("whole"), prometheus, script, parallelism=3)
    result = await execute(backend, plan, prometheus)
    assert result.returncode == 0, result.outcome.summary
    assert [r.iterations for r in result.outcome.runners] == [100, 100, 100]
    data = {(t["metric"], t["threshold"]): t for t in result.k6_data()["thresholds"]}
    assert data[("iterations", "count>=300")] == {
        "metric": "iterations",
        "threshold": "count>=300",
        "ok": True,
        "value": 300.0,
    }
    assert data[("marked{kind:api}", "count==100")]["value"] == 100.0
    # Each runner's checks ratio weighted by its iterations: half of all iterations are even.
    assert data[("checks", "rate==0.5")]["value"] == 0.5
    assert data[("level", "value==7")]["value"] == 7.0  # a Gauge: the runners' last value
    assert data[("marked", "rate>0")]["value"] > 0  # a Counter's count per second of the run
    expressions = ("p(95)<1000", "avg<1000", "max>0", "min>=0", "med<1000")
    duration = {t: data[("iteration_duration", t)] for t in expressions}
    assert all(d["ok"] for d in duration.values()), duration
    # Time trends are judged in ms, as k6 does: an empty iteration takes well under 1 s.
    assert 0 < duration["avg<1000"]["value"] < 50
    status, test_result, _message = outcome_for_exit(
        result.returncode,
        result.outcome.summary.thresholds,
        on_threshold_failure="fail",
        output_tail=(),
    )
    assert (status, test_result) == (Status.SUCCEEDED, Result.PASS)


async def test_a_crossed_whole_test_threshold_fails_with_its_value(
    kube: SimulatedKubernetes, backend: K6OperatorBackend, prometheus: PrometheusServer
) -> None:
    thresholds = (
        "{ iterations: ['count>=301', 'count>=300'], 'iterations{scenario:s}': ['count>0'] }"
    )
    script = WHOLE_TEST_JS.replace("THRESHOLDS", thresholds).encode()
    plan = operator_plan(fresh_tags("crossed"), prometheus, script, parallelism=3)
    result = await execute(backend, plan, prometheus)
    assert result.returncode == 99
    status, test_result, message = outcome_for_exit(
        result.returncode,
        result.outcome.summary.thresholds,
        on_threshold_failure="fail",
        output_tail=(),
    )
    assert (status, test_result) == (Status.SUCCEEDED, Result.FAIL)
    assert message.startswith("k6 thresholds crossed: iterations: count>=301 (whole test: 300);")
    # `scenario` is a system tag, which runners do not write: that threshold cannot be judged.
    assert "iterations{scenario:s}: count>0 (not judged: no series of iterations" in message
    assert "carry the tag 'scenario'" in message
    held = {t.expression: t.held for t in result.outcome.summary.thresholds}
    assert held == {"count>=301": False, "count>=300": True, "count>0": False}


async def test_a_script_error_is_found_before_any_testrun(
    kube: SimulatedKubernetes, backend: K6OperatorBackend, prometheus: PrometheusServer
) -> None:
    """The service reads the script's thresholds with ``k6 inspect`` first, which meets the
    syntax error before a TestRun exists."""
    with pytest.raises(
        RunnerError,
        match=r"k6 inspect of 'k6/test.js' failed:\n.*k6/test.js: Line 2:1 Unexpected end",
    ):
        await execute(
            backend, operator_plan(fresh_tags("syntax"), prometheus, SYNTAX_ERROR_JS), prometheus
        )
    assert kube.store.revision == 0  # nothing was ever created
    assert kube.objects(TESTRUNS, NAMESPACE) == []


async def test_an_operator_error_is_a_runner_error_and_the_testrun_is_deleted(
    kube: SimulatedKubernetes, backend: K6OperatorBackend, prometheus: PrometheusServer
) -> None:
    """Fewer VUs than runners: k6-operator's initializer refuses the TestRun (stage error)."""
    script = b"export const options = { vus: 1, iterations: 1 };\nexport default function () {}\n"
    with pytest.raises(RunnerError) as caught:
        await execute(backend, operator_plan(fresh_tags("vus"), prometheus, script), prometheus)
    assert "stage 'error'" in str(caught.value)
    assert kube.objects(TESTRUNS, NAMESPACE) == []


async def test_the_deadline_deletes_the_testrun_and_stops_its_runners(
    kube: SimulatedKubernetes,
    backend: K6OperatorBackend,
    prometheus: PrometheusServer,
    target: TargetServer,
) -> None:
    plan = operator_plan(
        fresh_tags("deadline"),
        prometheus,
        LOAD_JS,
        env=load_env(target, DURATION="60s"),
        timeout=6.0,
    )
    with pytest.raises(
        TestRunTimeout, match=r"timeout of 6 s \(pods not ended: .*Running.*\); it was deleted"
    ):
        await execute(backend, plan, prometheus)
    assert kube.objects(TESTRUNS, NAMESPACE) == []
    assert await kube.k6_stopped()


async def test_a_runner_that_never_starts_is_named_with_its_reason_at_the_deadline(
    kube: SimulatedKubernetes,
    backend: K6OperatorBackend,
    prometheus: PrometheusServer,
    target: TargetServer,
) -> None:
    plan = operator_plan(fresh_tags("image"), prometheus, LOAD_JS, env=load_env(target), timeout=4)
    plan = replace(
        plan, distribution=Distribution(2, runner=RunnerPod(image="registry.invalid/k6:none"))
    )
    with pytest.raises(TestRunTimeout, match=r"pods not ended: k6-\S+ ImagePullBackOff"):
        await execute(backend, plan, prometheus)
    assert kube.objects(TESTRUNS, NAMESPACE) == []


async def test_cancelling_the_run_still_deletes_the_testrun(
    kube: SimulatedKubernetes,
    backend: K6OperatorBackend,
    prometheus: PrometheusServer,
    target: TargetServer,
) -> None:
    plan = operator_plan(
        fresh_tags("cancel"), prometheus, LOAD_JS, env=load_env(target, DURATION="60s")
    )
    run = asyncio.ensure_future(backend.execute(plan))
    for _ in range(200):
        if kube.k6_running():
            break
        await asyncio.sleep(0.05)
    assert kube.objects(TESTRUNS, NAMESPACE), "no TestRun was created"
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert kube.objects(TESTRUNS, NAMESPACE) == []


async def test_the_wait_survives_cut_watches_and_410_gone(
    kube: SimulatedKubernetes,
    backend: K6OperatorBackend,
    prometheus: PrometheusServer,
    target: TargetServer,
) -> None:
    plan = operator_plan(fresh_tags("watch"), prometheus, LOAD_JS, env=load_env(target))
    run = asyncio.ensure_future(execute(backend, plan, prometheus))
    cut = 0
    while not run.done():
        kube.compact()  # a re-opened watch from an old resourceVersion now gets 410 Gone
        cut += kube.cut_watches()
        await asyncio.sleep(0.3)
    result = await run
    assert result.returncode == 0
    assert cut >= 2, "the test never cut a watch"


@pytest.mark.parametrize("how", ["restart", "takeover"])
async def test_a_testrun_nobody_can_report_is_deleted(
    how: str,
    kube: SimulatedKubernetes,
    settings: Settings,
    backend: K6OperatorBackend,
    store: PrometheusClient,
    prometheus: PrometheusServer,
    target: TargetServer,
) -> None:
    """A replica dies mid-run (here: its run goes on, unobserved). Its restarted process deletes
    the TestRuns labelled with its replica name; a replica taking over the redelivered event
    deletes the TestRun labelled with the event's id. Other replicas' runs are left alone."""
    plan = operator_plan(fresh_tags(how), prometheus, LOAD_JS, env=load_env(target, DURATION="60s"))
    run = asyncio.ensure_future(backend.execute(plan))
    for _ in range(200):
        if kube.k6_running():
            break
        await asyncio.sleep(0.05)
    assert kube.objects(TESTRUNS, NAMESPACE), "no TestRun was created"
    other = make_k6_operator(
        replace(settings, k6_operator_replica="sli-provider-1"), lambda _project: store
    )
    restarted = make_k6_operator(settings, lambda _project: store)
    assert other is not None and restarted is not None
    try:
        assert await other.delete_leftovers() == []  # not its own
        assert await other.delete_for_event("another-event") == []
        assert len(kube.objects(TESTRUNS, NAMESPACE)) == 1
        if how == "restart":
            (deleted,) = await restarted.delete_leftovers()
        else:
            assert plan.triggered_id is not None
            (deleted,) = await other.delete_for_event(plan.triggered_id)
        assert kube.objects(TESTRUNS, NAMESPACE) == []
    finally:
        await other.aclose()
        await restarted.aclose()
    with pytest.raises(RunnerError, match=f"TestRun {deleted} was deleted by someone else"):
        await run


BUILTINS = sorted(load_builtin_templates())
# Runners unlike each other: runner 2 and 3 (by their execution segment) add 4 and 12 ms.
UNLIKE_RUNNERS_JS = b"""
import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
export const options = { vus: 6, duration: '3s' };
const EXTRA_MS = { '0': 0, '1': 4, '2': 12 };
export default function () {
  const start = String(exec.test.options.executionSegment || '0:1').split(':')[0];
  const extra = EXTRA_MS[start.split('/')[0]] || 0;
  const res = http.get(`${__ENV.TARGET_URL}/slow?ms=${extra + (__VU * 7 + __ITER * 13) % 12}`);
  check(res, { ok: (r) => r.status === 200 });
}
"""
# The bound the runners' dense tail curve keeps (docs/k6-operator.md).
SPLIT_RUN_PERCENTILE_BOUND = 0.005
MERGED_PERCENTILE_BOUND = 0.02  # as for local multi-instance runs (tests/test_multi_instance.py)


async def test_merged_percentiles_of_unlike_runners_are_within_half_a_percent(
    kube: SimulatedKubernetes,
    backend: K6OperatorBackend,
    prometheus: PrometheusServer,
    target: TargetServer,
    fake_keptn: FakeKeptn,
) -> None:
    """Every percentile built-in, p50 to p99, from the runners' curves in the store, against
    the union of their raw samples."""
    tags = fresh_tags("unlike")
    plan = operator_plan(
        tags,
        prometheus,
        UNLIKE_RUNNERS_JS,
        parallelism=3,
        env={"TARGET_URL": target.url},
        extra_args=("--out", "json=samples.json"),
    )
    result = await execute(backend, plan, prometheus)
    assert result.returncode == 0
    truth = union_metrics(
        [
            read_samples(kube.pod_dir(NAMESPACE, runner.name) / "samples.json")
            for runner in result.outcome.runners
        ]
    )
    got = await preview_builtins(prometheus, fake_keptn, tags, result)
    errors = {
        name: got[name]["value"] / truth[metric][stat] - 1
        for name, (metric, stat) in PERCENTILE_SLIS.items()
    }
    print(f"\nunlike runners, merged percentile errors: {errors}")  # -s
    assert all(abs(e) <= SPLIT_RUN_PERCENTILE_BOUND for e in errors.values()), errors


async def preview_builtins(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, tags: RunTags, result: RunResult
) -> dict[str, Any]:
    """Every built-in SLI of the run, through a service's /preview."""
    from devkit.service import running_service

    body = {
        "project": tags.project,
        "stage": tags.stage,
        "service": tags.service,
        "start": format_keptn(result.outcome.started_at),
        "end": format_keptn(result.outcome.ended_at),
        "context": tags.context,
        "indicators": BUILTINS,
    }
    settings = Settings(prometheus_url=prometheus.url, distributor_url=fake_keptn.url)
    async with (
        running_service(settings) as url,
        aiohttp.ClientSession() as session,
        session.post(url + "/preview", json=body) as response,
    ):
        assert response.status == 200, await response.text()
        got: dict[str, Any] = {i["metric"]: i for i in (await response.json())["indicators"]}
    assert all(v["success"] for v in got.values()), json.dumps(got)[:2000]
    return got


async def test_merged_slis_of_a_testrun_equal_the_runners_raw_samples(
    kube: SimulatedKubernetes,
    backend: K6OperatorBackend,
    prometheus: PrometheusServer,
    target: TargetServer,
    fake_keptn: FakeKeptn,
) -> None:
    """Each runner also writes its raw samples to a relative path, which lands in its own pod's
    working directory (one file per runner, as in separate pods)."""
    tags = fresh_tags("truth")
    plan = operator_plan(
        tags,
        prometheus,
        LOAD_JS,
        parallelism=3,
        env=load_env(target, VUS="6", DURATION="3s", FAIL_EVERY="5", SPREAD_MS="12"),
        extra_args=("--out", "json=samples.json"),
    )
    result = await execute(backend, plan, prometheus)
    assert result.returncode == 0
    samples = [
        read_samples(kube.pod_dir(NAMESPACE, runner.name) / "samples.json")
        for runner in result.outcome.runners
    ]
    assert len(samples) == 3
    truth = union_metrics(samples)
    got = await preview_builtins(prometheus, fake_keptn, tags, result)
    wrong = {
        name: (got[name]["value"], expected.value)
        for name, expected in expected_values(truth).items()
        if name not in PERCENTILE_SLIS and not expected.holds(got[name]["value"])
    }
    assert wrong == {}
    errors = {
        name: got[name]["value"] / truth[metric][stat] - 1
        for name, (metric, stat) in PERCENTILE_SLIS.items()
    }
    assert all(abs(e) <= MERGED_PERCENTILE_BOUND for e in errors.values()), errors


# Runner 1 of 3 meets only errors (its execution segment starts at 0), so a third of all
# requests fail; the others alone never would.
ONE_RUNNER_FAILS_JS = b"""
import http from 'k6/http';
import exec from 'k6/execution';
import { sleep } from 'k6';
export const options = {
  scenarios: { s: { executor: 'constant-vus', vus: 3, duration: '60s' } },
  thresholds: {
    http_req_failed: [{ threshold: 'rate<0.2', abortOnFail: true, delayAbortEval: '2s' }],
    http_reqs: ['count>0'],
  },
};
export default function () {
  const failing = String(exec.test.options.executionSegment || '').startsWith('0:');
  http.get(`${__ENV.TARGET_URL}/${failing ? 'fail' : ''}`);
  sleep(0.05);
}
"""
FULL_DURATION_SECONDS = 60.0


async def run_one_failing_runner(
    backend: K6OperatorBackend, prometheus: PrometheusServer, target: TargetServer, name: str
) -> tuple[RunResult, float]:
    """``ONE_RUNNER_FAILS_JS`` on 3 runners: its result and how long it took."""
    plan = operator_plan(
        fresh_tags(name),
        prometheus,
        ONE_RUNNER_FAILS_JS,
        parallelism=3,
        env={"TARGET_URL": target.url},
        timeout=90,
    )
    began = asyncio.get_running_loop().time()
    result = await execute(backend, plan, prometheus)
    return result, asyncio.get_running_loop().time() - began


async def test_an_abort_on_fail_threshold_of_the_whole_test_stops_every_runner(
    kube: SimulatedKubernetes,
    backend: K6OperatorBackend,
    prometheus: PrometheusServer,
    target: TargetServer,
) -> None:
    result, took = await run_one_failing_runner(backend, prometheus, target, "abort")
    assert took < FULL_DURATION_SECONDS / 3, took
    # Every runner was stopped through k6's REST API (k6 exits 103 then), none ran on.
    assert [r.exit_code for r in result.outcome.runners] == [103, 103, 103]
    assert result.returncode == 99
    aborted = result.outcome.aborted_by
    assert aborted is not None and aborted.value is not None
    assert (aborted.metric, aborted.expression) == ("http_req_failed", "rate<0.2")
    assert 0.2 < aborted.value < 0.5
    status, test_result, message = outcome_for_exit(
        result.returncode,
        result.outcome.summary.thresholds,
        on_threshold_failure="fail",
        output_tail=(),
        aborted=aborted,
    )
    assert (status, test_result) == (Status.SUCCEEDED, Result.FAIL)
    assert message.startswith(f"aborted: http_req_failed: rate<0.2 crossed at {aborted.value:.6g}")
    # The last metrics are in: the whole test's thresholds with their final values.
    final = {t.expression: t for t in result.outcome.summary.thresholds}
    assert final["rate<0.2"].held is False and final["count>0"].held is True
    assert result.k6_data()["abortedBy"]["value"] == aborted.value
    assert kube.objects(TESTRUNS, NAMESPACE) == []


async def test_runners_that_cannot_be_stopped_are_stopped_by_deleting_the_testrun(
    kube: SimulatedKubernetes,
    backend: K6OperatorBackend,
    prometheus: PrometheusServer,
    target: TargetServer,
) -> None:
    """Without the right to the service proxy (RBAC ``services/proxy``), the stop fails: the
    TestRun is deleted instead, which ends its runners, and the answer is the same abort."""
    kube.deny("services/proxy")
    result, took = await run_one_failing_runner(backend, prometheus, target, "abort-delete")
    assert took < FULL_DURATION_SECONDS / 3
    assert result.returncode == 99
    assert result.outcome.runners == ()  # deleted with the TestRun
    aborted = result.outcome.aborted_by
    assert aborted is not None and aborted.metric == "http_req_failed"
    assert kube.objects(TESTRUNS, NAMESPACE) == []
    assert await kube.k6_stopped()


async def test_a_chatty_runner_is_read_as_a_bounded_tail_with_its_summary(
    kube: SimulatedKubernetes,
    backend: K6OperatorBackend,
    prometheus: PrometheusServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """3,000 lines of script output before the summary: only the log's last lines are read,
    and the summary (the runner's iterations) is among them."""
    script = b"""
export const options = { vus: 2, iterations: 4 };
export function setup() { for (let i = 0; i < 3000; i++) console.log('chatter ' + i); }
export default function () {}
"""
    plan = operator_plan(fresh_tags("chatty"), prometheus, script, parallelism=2)
    with caplog.at_level(logging.INFO, logger="sli_provider.k6"):
        result = await execute(backend, plan, prometheus)
    assert result.returncode == 0
    assert [r.iterations for r in result.outcome.runners] == [2, 2]
    for runner in result.outcome.runners:
        lines = [r for r in caplog.records if r.getMessage().startswith(runner.name + ":")]
        assert 0 < len(lines) <= LOG_TAIL_LINES


FAKER_JS = b"""
import faker from 'k6/x/faker';
export const options = { vus: 2, iterations: 4, thresholds: { iterations: ['count==4'] } };
export default function () { faker.person.firstName(); }
"""


async def test_a_script_with_extensions_is_inspected_by_a_k6_that_has_them(
    prometheus: PrometheusServer, settings: Settings, store: PrometheusClient, tmp_path: Path
) -> None:
    """The runners' image has k6/x/faker; of this service's binaries, the one that has it too
    reads the thresholds. Without one, the run is refused before any TestRun, saying why."""
    faker = extension_k6(tmp_path / "bin")
    images = ImageTable.stock().with_rules({"example.org/k6-faker:*": faker})
    stock_only = K6Registry.probe_all({"default": find_k6_binary()})
    both = K6Registry.probe_all({"default": find_k6_binary(), "faker": str(faker)})
    async with SimulatedKubernetes(namespaces=(NAMESPACE,), images=images) as kube:
        configured = replace(settings, k6_operator_kubeconfig=kube.kubeconfig(tmp_path / "kc"))
        plan = replace(
            operator_plan(fresh_tags("faker"), prometheus, FAKER_JS),
            distribution=Distribution(2, runner=RunnerPod(image="example.org/k6-faker:1")),
        )
        refusing = make_k6_operator(configured, lambda _project: store, stock_only)
        backend = make_k6_operator(configured, lambda _project: store, both)
        assert refusing is not None and backend is not None
        try:
            with pytest.raises(RunnerError, match=r"reads the script's thresholds \(k6 inspect\)"):
                await refusing.execute(plan)
            assert kube.objects(TESTRUNS, NAMESPACE) == []
            result = await execute(backend, plan, prometheus)
        finally:
            await refusing.aclose()
            await backend.aclose()
        assert result.returncode == 0
        assert [t.as_data()["value"] for t in result.outcome.summary.thresholds] == [4.0]
