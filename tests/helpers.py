"""Helpers the test modules share: sending events and previews to a running service, the
bundled runner's set-up in the fake Keptn (k6.conf.yaml, scripts, test.triggered, test.finished),
and the command line with its scope and slo.yaml."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema

from devkit.cli import command_env, run_sli_provider, sli_provider_command
from devkit.events import get_sli_triggered, make_test_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.k6run import LOAD_SCRIPT, LoadRun
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.target import TargetServer
from sli_provider.config import Settings
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.envelope import KeptnEvent
from sli_provider.keptn.timestamps import format_keptn

# What Keptn's distributor sends: a structured CloudEvent.
CLOUDEVENTS_JSON = {"Content-Type": "application/cloudevents+json"}


async def post_event(
    url: str, event: dict[str, Any], *, session: aiohttp.ClientSession | None = None
) -> tuple[int, Any]:
    """POST one event to the service at ``url`` as Keptn's distributor does; return the status
    and the body (parsed when it is JSON, else the text)."""
    if session is None:
        async with aiohttp.ClientSession() as own:
            return await post_event(url, event, session=own)
    async with session.post(url + "/", json=event, headers=CLOUDEVENTS_JSON) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def send_event(url: str, event: dict[str, Any]) -> None:
    """POST one event and check the service took it (202 Accepted)."""
    status, body = await post_event(url, event)
    assert status == 202, body


async def post_preview(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a ``/preview`` request that must succeed; return its JSON answer."""
    async with aiohttp.ClientSession() as session, session.post(url + "/preview", json=body) as r:
        assert r.status == 200, await r.text()
        answer: dict[str, Any] = await r.json()
        return answer


# -- get-sli over HTTP ---------------------------------------------------------------------------


def trigger_for(
    run: LoadRun, tags: RunTags, indicators: list[str] | None, **extra: Any
) -> dict[str, Any]:
    """A get-sli.triggered event for ``run``'s window and context (unless ``extra`` names one)."""
    return get_sli_triggered(
        project=tags.project,
        stage=tags.stage,
        service=tags.service,
        start=format_keptn(run.start),
        end=format_keptn(run.end),
        indicators=indicators,
        context=extra.pop("context", tags.context),
        **extra,
    )


async def answer(keptn: FakeKeptn, event: dict[str, Any]) -> dict[str, Any]:
    """Wait for started then finished for this event; return the finished event."""
    (started,) = await keptn.wait_for_events(
        type="sh.keptn.event.get-sli.started", shkeptncontext=event["shkeptncontext"]
    )
    (finished,) = await keptn.wait_for_events(
        type="sh.keptn.event.get-sli.finished", shkeptncontext=event["shkeptncontext"]
    )
    order = [e["type"] for e in keptn.events_for(event["shkeptncontext"])]
    assert order == ["sh.keptn.event.get-sli.started", "sh.keptn.event.get-sli.finished"]
    for reply in (started, finished):
        assert reply["triggeredid"] == event["id"]
    assert keptn.violations == []
    return finished


def values_of(finished: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A get-sli.finished event's indicator values by name."""
    return {v["metric"]: v for v in finished["data"]["get-sli"]["indicatorValues"]}


# -- the gate outside Keptn -----------------------------------------------------------------------


async def post_gate(
    url: str, body: Any, *, path: str = "/gate", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """POST ``body`` to the service's /gate (or ``path``); its status and JSON answer."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, json=body, headers=headers or {}) as response,
    ):
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


# The JSON schema of the gate's result document, as published for users.
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "gate-result.schema.json"


def validate(document: Any) -> None:
    """Check ``document`` against the gate result's JSON schema (and the schema itself)."""
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)


# -- replies ---------------------------------------------------------------------------------------


def get_sli_event() -> KeptnEvent:
    """A get-sli.triggered event for one indicator, parsed as the service parses what it takes."""
    document = get_sli_triggered(
        project="p",
        stage="s",
        service="v",
        indicators=["vus_max"],
        start="2026-01-01T00:00:00.000Z",
        end="2026-01-01T00:05:00.000Z",
    )
    return KeptnEvent(
        id=document["id"],
        type=document["type"],
        source=document["source"],
        shkeptncontext=document["shkeptncontext"],
        data=document["data"],
    )


# -- the service in this process ----------------------------------------------------------------

ServiceFactory = Callable[..., AbstractAsyncContextManager[str]]


def service_factory(base: Settings) -> ServiceFactory:
    """Starts the service in this process with ``base`` and a test's own overrides; the context
    gives the service's URL."""

    def start(**overrides: Any) -> AbstractAsyncContextManager[str]:
        return running_service(replace(base, **overrides))

    return start


def gate_settings(prometheus: PrometheusServer, tmp_path: Path, **extra: Any) -> Settings:
    """The service as a gate outside Keptn: no runner, sli.yaml and history under ``tmp_path``."""
    fields: dict[str, Any] = {
        "prometheus_url": prometheus.url,
        "sli_config_dir": tmp_path / "config",
        "gate_history": tmp_path / "history.sqlite3",
        "runner_enabled": False,
        "query_attempts": 1,
        **extra,
    }
    return Settings(**fields)


def runner_settings(
    prometheus: PrometheusServer, keptn: FakeKeptn, work_dir: Path, **extra: Any
) -> Settings:
    """The service with its runner, replying to the fake Keptn and trying again quickly."""
    return Settings(
        prometheus_url=prometheus.url,
        distributor_url=keptn.url,
        runner_work_dir=work_dir,
        reply_attempts=3,
        retry_max_wait_seconds=0.2,
        query_attempts=2,
        **extra,
    )


# -- the bundled runner ---------------------------------------------------------------------------

# The Keptn service the runner tests install their k6 configuration and scripts for.
PROJECT, STAGE, SERVICE = "shop", "staging", "web"
LOAD_JS = LOAD_SCRIPT.read_text()


def workloads(*items: dict[str, Any]) -> str:
    """A k6.conf.yaml listing ``items``."""
    return json.dumps({"workloads": list(items)})  # JSON is YAML


def load_workload(**overrides: Any) -> dict[str, Any]:
    """A 2 s, 2-VU run of devkit/scripts/load.js with no failing requests, as ``performance``."""
    workload: dict[str, Any] = {
        "teststrategy": "performance",
        "script": "k6/load.js",
        "env": {"VUS": "2", "DURATION": "2s", "FAIL_EVERY": "0"},
    }
    workload.update(overrides)
    return workload


def long_split_workload() -> dict[str, Any]:
    """A 60 s, 2-VU run split over two k6-operator runners: for tests that stop it midway."""
    return load_workload(
        executor="k6-operator",
        parallelism=2,
        env={"VUS": "2", "DURATION": "60s", "FAIL_EVERY": "0"},
    )


def install(keptn: FakeKeptn, config: str | None, scripts: dict[str, str | bytes]) -> None:
    """Put k6.conf.yaml (unless None) and the scripts in the fake Keptn at the service level."""
    if config is not None:
        keptn.set_resource(config, "k6/k6.conf.yaml", project=PROJECT, stage=STAGE, service=SERVICE)
    for uri, content in scripts.items():
        keptn.set_resource(content, uri, project=PROJECT, stage=STAGE, service=SERVICE)


def run_trigger(
    target: TargetServer, strategy: str = "performance", **extra: Any
) -> dict[str, Any]:
    """A test.triggered event for ``strategy`` against ``target`` (its local URI)."""
    return make_test_triggered(
        project=PROJECT,
        stage=STAGE,
        service=SERVICE,
        teststrategy=strategy,
        uris_local=[target.url],
        uris_public=["http://public.invalid"],
        **extra,
    )


async def finished_for(
    keptn: FakeKeptn, event: dict[str, Any], timeout: float = 90
) -> dict[str, Any]:
    """Wait for the test.finished event answering ``event``, check it came after exactly one
    test.started event and that Keptn saw nothing amiss, and return it."""
    (finished,) = await keptn.wait_for_events(
        type="sh.keptn.event.test.finished", shkeptncontext=event["shkeptncontext"], timeout=timeout
    )
    types = [e["type"] for e in keptn.events_for(event["shkeptncontext"])]
    assert types == ["sh.keptn.event.test.started", "sh.keptn.event.test.finished"]
    assert finished["triggeredid"] == event["id"]
    assert keptn.violations == []
    return finished


def k6_processes_under(work_dir: Path) -> list[str]:
    """Command lines of live k6 processes whose script lives under ``work_dir``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        command = " ".join(a.decode(errors="replace") for a in argv)
        if argv and argv[0].endswith(b"k6") and str(work_dir) in command:
            found.append(command)
    return found


# -- the command line -----------------------------------------------------------------------------

# The scope of the gate tests that bring their own values (no load run).
CLI_SCOPE = ["--project", "shop", "--stage", "dev", "--service", "web"]
# An slo.yaml that passes when the run sent any request.
ANY_REQUESTS_SLO = "objectives:\n  - sli: http_reqs_total\n    pass: [{criteria: ['>0']}]\ntotal_score: {pass: '100%'}\n"


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``sli-provider ARGS...`` from this checkout, its output captured; killed past 60 s."""
    return subprocess.run(
        sli_provider_command(*args),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=command_env(env or {}),
    )


def evaluate_args(tmp_path: Path, slo: str, values: list[dict[str, Any]], *extra: str) -> list[str]:
    """The arguments of `sli-provider evaluate` for ``CLI_SCOPE`` with ``slo`` and ``values``
    written to ``tmp_path`` and the history there."""
    (tmp_path / "slo.yaml").write_text(slo)
    (tmp_path / "values.json").write_text(json.dumps(values))
    return [
        "evaluate",
        "--slo",
        str(tmp_path / "slo.yaml"),
        *CLI_SCOPE,
        "--values",
        str(tmp_path / "values.json"),
        "--history",
        str(tmp_path / "h.sqlite3"),
        *extra,
    ]


def scope_args(load_run: LoadRun, tags: RunTags, context: str | None = None) -> list[str]:
    """The CLI's scope and window of ``load_run`` (its own context unless one is given)."""
    return [
        "--project",
        tags.project,
        "--stage",
        tags.stage,
        "--service",
        tags.service,
        "--start",
        format_keptn(load_run.start),
        "--end",
        format_keptn(load_run.end),
        "--context",
        tags.context if context is None else context,
    ]


# The project, stage and service of the `sli-provider run` tests.
RUN_SCOPE = ("shop", "ci", "web")


async def run_script(
    tmp_path: Path,
    script: tuple[str, str],
    slo: str,
    target_url: str,
    *extra: str,
    cwd: Path,
    env: dict[str, str],
) -> subprocess.CompletedProcess[str]:
    """``sli-provider run`` of ``script`` (its file name and text) for ``RUN_SCOPE`` against
    ``target_url``, gated by ``slo``, with the history in ``tmp_path``; JSON output."""
    name, text = script
    script_path, slo_path = tmp_path / name, tmp_path / "slo.yaml"
    script_path.write_text(text)
    slo_path.write_text(slo)
    return await run_sli_provider(
        "run",
        "--slo",
        str(slo_path),
        "--project",
        RUN_SCOPE[0],
        "--stage",
        RUN_SCOPE[1],
        "--service",
        RUN_SCOPE[2],
        "--history",
        str(tmp_path / "history.sqlite3"),
        "--script",
        str(script_path),
        "--target",
        target_url,
        "--format",
        "json",
        *extra,
        cwd=cwd,
        env=env,
    )
