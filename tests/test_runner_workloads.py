"""k6.conf.yaml and the run plan as pure values: what is accepted, what is refused and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devkit.events import make_test_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.target import TargetServer
from sli_provider.config import Settings
from sli_provider.k6.invocation import RemoteWriteTarget, RunTags
from sli_provider.runner.plan import LocalScript, RunPlan, StagedScript
from sli_provider.runner.workloads import (
    DEFAULT_TIMEOUT_SECONDS,
    TIMEOUT_SLACK_SECONDS,
    Workload,
    WorkloadError,
    keptn_script_env,
    parse_workloads,
    select,
)
from tests.helpers import send_event

TAGS = RunTags("shop", "staging", "web", "ctx-1")


def conf(*items: object) -> str:
    return json.dumps({"workloads": list(items)})  # JSON is YAML


def test_a_full_workload_is_read_with_every_field() -> None:
    text = """
workloads:
  - teststrategy: performance
    script: k6/load.js
    vus: 10
    duration: 2m
    timeout: 5m
    target: public
    on_threshold_failure: warning
    env: {THINK_MS: 100, MODE: fast}
    files: [k6/lib/helpers.js, k6/data/users.csv]
  - teststrategy: smoke
    script: k6/smoke.js
"""
    full, smoke = parse_workloads(text, "k6.conf.yaml")

    assert full == Workload(
        teststrategy="performance",
        script="k6/load.js",
        vus=10,
        duration="2m",
        env={"THINK_MS": "100", "MODE": "fast"},
        timeout_seconds=300.0,
        target="public",
        on_threshold_failure="warning",
        files=("k6/lib/helpers.js", "k6/data/users.csv"),
    )
    assert full.effective_timeout() == 300.0
    assert smoke == Workload(teststrategy="smoke", script="k6/smoke.js")
    assert smoke.effective_timeout() == DEFAULT_TIMEOUT_SECONDS
    assert select([full, smoke], "smoke") is smoke
    assert select([full, smoke], "functional") is None


def test_the_timeout_defaults_to_the_duration_plus_slack() -> None:
    (workload,) = parse_workloads(
        conf({"teststrategy": "p", "script": "a.js", "duration": "90s"}), "k6.conf.yaml"
    )
    assert workload.effective_timeout() == 90 + TIMEOUT_SLACK_SECONDS


@pytest.mark.parametrize(
    "key", ["scirpt_typo", "Script", "thresholds", "iterations"], ids=lambda key: key
)
def test_an_unknown_key_is_refused_by_name(key: str) -> None:
    """A typo (``scirpt``) must not silently fall back to a default."""
    text = conf({"teststrategy": "p", "script": "k6/a.js", key: "x"})

    with pytest.raises(WorkloadError) as caught:
        parse_workloads(text, "k6.conf.yaml")

    assert str(caught.value) == f"k6.conf.yaml workload 1: unknown key(s) {key}"


@pytest.mark.parametrize(
    "path",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "/abs/script.js",
        "k6/../../escape.js",
        "a/../b.js",
        "..",
        "./k6/load.js",
        "k6//load.js",
        "k6/load.js/",
        "k6\\..\\..\\evil.js",
        "k6\\load.js",
    ],
)
@pytest.mark.parametrize("field", ["script", "files"])
def test_a_path_that_could_leave_the_private_directory_is_refused(path: str, field: str) -> None:
    item: dict[str, Any] = {"teststrategy": "p", "script": "k6/load.js"}
    item[field] = [path] if field == "files" else path

    with pytest.raises(WorkloadError) as caught:
        parse_workloads(conf(item), "k6.conf.yaml")

    assert str(caught.value) == (
        f"k6.conf.yaml workload 1: {path!r} must be a relative path without '..'"
    )


@pytest.mark.parametrize("path", ["k6/load.js", "load.js", "k6/lib/a..b.js", "k6/.hidden.js"])
def test_ordinary_relative_paths_are_accepted(path: str) -> None:
    (workload,) = parse_workloads(
        conf({"teststrategy": "p", "script": path, "files": [path]}), "k6.conf.yaml"
    )
    assert workload.script == path and workload.files == (path,)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("workloads: [", "not valid YAML: line 1: expected the node content"),
        ("[]", "expected 'workloads:'"),
        (conf({"script": "a.js"}), "'teststrategy' is required"),
        (conf({"teststrategy": "p"}), "'script' is required"),
        (conf({"teststrategy": "p", "script": "a.js", "vus": 0}), "'vus' must be a positive"),
        (conf({"teststrategy": "p", "script": "a.js", "vus": True}), "'vus' must be a positive"),
        (conf({"teststrategy": "p", "script": "a.js", "duration": "soon"}), "not a duration"),
        (conf({"teststrategy": "p", "script": "a.js", "env": {"1X": "y"}}), "'env' must map"),
        (conf({"teststrategy": "p", "script": "a.js", "target": "lan"}), "local or public"),
        (conf({"teststrategy": "p", "script": "a.js", "on_threshold_failure": "x"}), "fail or"),
        (conf({"teststrategy": "p", "script": "a.js", "files": "b.js"}), "'files' must be a list"),
        (conf("not a mapping"), "must be a mapping"),
    ],
)
def test_other_mistakes_are_named(text: str, needle: str) -> None:
    with pytest.raises(WorkloadError, match=needle):
        parse_workloads(text, "k6.conf.yaml")


@pytest.mark.parametrize("path", ["../evil.js", "/tmp/evil.js", "k6/../../evil.js", "a\\b.js"])
def test_a_plan_cannot_stage_a_file_outside_its_directory(path: str) -> None:
    """The back-end writes what a StagedScript holds; the value refuses such paths itself."""
    with pytest.raises(WorkloadError, match="must be a relative path"):
        StagedScript("k6/load.js", {"k6/load.js": b"", path: b"x"})


def test_a_plan_names_its_script_among_its_files_and_runs_local_scripts_by_absolute_path() -> None:
    with pytest.raises(ValueError, match="not among the staged files"):
        StagedScript("k6/load.js", {"k6/other.js": b""})
    with pytest.raises(ValueError, match="absolute path"):
        LocalScript(Path("relative.js"))
    plan = RunPlan(
        tags=TAGS,
        script=LocalScript(Path("/srv/load.js")),
        remote_write=RemoteWriteTarget("http://p/api/v1/write"),
    )
    assert plan.timeout_seconds == DEFAULT_TIMEOUT_SECONDS


def test_every_launcher_gives_the_script_the_same_keptn_env() -> None:
    env = keptn_script_env(
        TAGS,
        target_url="http://target",
        teststrategy="performance",
        labels={"build-id": "142", "git.sha": "abc"},
        extra={"TARGET_URL": "http://override", "EXTRA": "1"},
    )
    assert env == {
        "TARGET_URL": "http://override",  # the workload's own env comes last and wins
        "KEPTN_PROJECT": "shop",
        "KEPTN_STAGE": "staging",
        "KEPTN_SERVICE": "web",
        "KEPTN_CONTEXT": "ctx-1",
        "KEPTN_TESTSTRATEGY": "performance",
        "LABEL_BUILD_ID": "142",
        "LABEL_GIT_SHA": "abc",
        "EXTRA": "1",
    }
    assert "KEPTN_TESTSTRATEGY" not in keptn_script_env(TAGS, target_url="")


async def test_the_runner_answers_errored_naming_a_path_that_escapes_and_writes_nothing(
    fake_keptn: FakeKeptn, prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    """The resource service holds a script under '../../evil.js', and k6.conf.yaml names it.

    The runner must refuse the path before it reads, writes or runs anything: test.finished is
    errored and names the path, nothing appears outside the runner's directory, k6 never ran.
    """
    project, stage, service = "shop", "staging", "web"
    evil = "../../evil.js"
    fake_keptn.set_resource(
        conf({"teststrategy": "performance", "script": evil}), "k6/k6.conf.yaml", project=project
    )
    fake_keptn.set_resource("export default function () {}\n", evil, project=project)
    work_dir = tmp_path / "a" / "runs"
    work_dir.mkdir(parents=True)
    event = make_test_triggered(
        project=project,
        stage=stage,
        service=service,
        teststrategy="performance",
        uris_local=[target.url],
    )
    settings = Settings(
        prometheus_url=prometheus.url,
        distributor_url=fake_keptn.url,
        runner_work_dir=work_dir,
        reply_attempts=2,
    )
    async with running_service(settings) as url:
        await send_event(url, event)
        (finished,) = await fake_keptn.wait_for_events(
            type="sh.keptn.event.test.finished", shkeptncontext=event["shkeptncontext"], timeout=30
        )

    data = finished["data"]
    assert (data["status"], data["result"]) == ("errored", "fail")
    assert f"{evil!r} must be a relative path without '..'" in data["message"]
    assert data["k6"] == {}  # k6 never ran
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert written == ["a", "a/runs"]
    assert not any(r.path.endswith("evil.js") for r in fake_keptn.resource_requests)


async def test_a_workloads_files_are_staged_beside_its_script_or_named_when_missing(
    fake_keptn: FakeKeptn, prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    main = (
        "import { path } from './lib/helper.js';\n"
        "import http from 'k6/http';\n"
        "export const options = { iterations: 1 };\n"
        "export default function () { http.get(__ENV.TARGET_URL + path); }\n"
    )
    project = "files"
    fake_keptn.set_resource(
        conf(
            {"teststrategy": "ok", "script": "k6/main.js", "files": ["k6/lib/helper.js"]},
            {"teststrategy": "missing", "script": "k6/main.js", "files": ["k6/lib/gone.js"]},
        ),
        "k6/k6.conf.yaml",
        project=project,
    )
    fake_keptn.set_resource(main, "k6/main.js", project=project)
    fake_keptn.set_resource("export const path = '/';\n", "k6/lib/helper.js", project=project)
    settings = Settings(
        prometheus_url=prometheus.url,
        distributor_url=fake_keptn.url,
        runner_work_dir=tmp_path,
        reply_attempts=2,
    )
    finished = {}
    async with running_service(settings) as url:
        for strategy in ("ok", "missing"):
            event = make_test_triggered(
                project=project,
                stage="dev",
                service="web",
                teststrategy=strategy,
                uris_local=[target.url],
            )
            await send_event(url, event)
            (finished[strategy],) = await fake_keptn.wait_for_events(
                type="sh.keptn.event.test.finished",
                shkeptncontext=event["shkeptncontext"],
                timeout=60,
            )

    ok, missing = finished["ok"]["data"], finished["missing"]["data"]
    assert (ok["status"], ok["result"]) == ("succeeded", "pass"), ok["message"]
    assert ok["k6"]["metrics"]["http_reqs"]["count"] == 1
    assert (missing["status"], missing["result"]) == ("errored", "fail")
    assert missing["message"].startswith("file 'k6/lib/gone.js' of the workload not found; tried: ")
    assert missing["message"].count("k6%2Flib%2Fgone.js") == 3  # service, stage, project level
    assert list(tmp_path.iterdir()) == []
