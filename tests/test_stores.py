"""Stores beyond one Prometheus: which store answered (preview), and the URL shapes of
VictoriaMetrics single (under a path prefix, its /prometheus alias) and cluster
(/select/<tenant>/prometheus, /insert/<tenant>/prometheus/api/v1/write)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devkit.cli import run_sli_provider
from devkit.events import make_test_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.k6run import LOAD_SCRIPT, LoadRun, load_env, load_plan
from devkit.ports import free_port
from devkit.prefix_proxy import PrefixProxy
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.stores import MetricsStore
from devkit.target import TargetServer
from devkit.victoria import VictoriaMetricsServer
from sli_provider.adapters.prometheus import STORE_INFO_TIMEOUT, PrometheusClient
from sli_provider.config import Settings
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.timestamps import format_keptn, parse_keptn
from sli_provider.ports.store_info import UNKNOWN_STORE, StoreInfo, identify
from sli_provider.runner.core import run_plan
from sli_provider.runner.local import LocalK6Backend
from sli_provider.runner.series import prometheus_series_check
from tests.helpers import post_preview, send_event


def expected_store(store: MetricsStore) -> tuple[str, str | None]:
    """(name, version prefix) as Debian's packages here identify themselves."""
    if store.store_name == "prometheus":
        return "Prometheus", "2.42"
    return "VictoriaMetrics", None  # 1.79's build info is empty; no version on the query path


def preview_body(tags: RunTags, start: float, end: float) -> dict[str, Any]:
    return {
        "project": tags.project,
        "stage": tags.stage,
        "service": tags.service,
        "start": format_keptn(start),
        "end": format_keptn(end),
        "context": tags.context,
        "indicators": ["http_reqs_total"],
    }


def settings_for(url: str, keptn: FakeKeptn, **extra: Any) -> Settings:
    return Settings(
        prometheus_url=url,
        distributor_url=keptn.url,
        query_attempts=1,
        http_timeout_seconds=5,
        query_timeout_seconds=10,
        **extra,
    )


async def status_of(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status


# -- which store answered ----------------------------------------------------------------------


async def test_preview_shows_which_store_answered(
    store: MetricsStore, store_load_run: LoadRun, load_tags: RunTags, fake_keptn: FakeKeptn
) -> None:
    async with running_service(settings_for(store.url, fake_keptn)) as url:
        answer = await post_preview(
            url, preview_body(load_tags, store_load_run.start, store_load_run.end)
        )

    name, version = expected_store(store)
    assert answer["store"]["name"] == name
    if version is None:
        assert answer["store"]["version"] is None
    else:
        assert answer["store"]["version"].startswith(version)
        assert answer["store"]["revision"]
    (value,) = answer["indicators"]
    assert value["value"] == store_load_run.summary["metrics"]["http_reqs"]["values"]["count"]


async def test_cli_preview_shows_which_store_answered(
    store: MetricsStore, store_load_run: LoadRun, load_tags: RunTags, tmp_path: Path
) -> None:
    body = preview_body(load_tags, store_load_run.start, store_load_run.end)
    args = [
        "preview",
        *(
            a
            for k in ("project", "stage", "service", "start", "end", "context")
            for a in (f"--{k}", body[k])
        ),
        "--indicators",
        "http_reqs_total",
    ]
    env = {"PROMETHEUS_URL": store.url, "LOG_LEVEL": "WARNING"}

    table = await run_sli_provider(*args, env=env, cwd=tmp_path)
    as_json = await run_sli_provider(*args, "--json", env=env, cwd=tmp_path)

    assert table.returncode == 0, table.stderr
    name, version = expected_store(store)
    last = table.stdout.splitlines()[-1]
    assert last.startswith(f"store: {name}")
    assert (version or "") in last
    assert json.loads(as_json.stdout)["store"]["name"] == name


async def test_store_is_unknown_when_it_cannot_be_told_and_the_preview_still_answers(
    prometheus: PrometheusServer, load_run: LoadRun, load_tags: RunTags, fake_keptn: FakeKeptn
) -> None:
    """A gateway that routes the query endpoint only: no build info, no trace (Prometheus)."""
    routes = {"/q/api/v1/query": prometheus.url + "/api/v1/query"}
    async with (
        PrefixProxy(routes) as proxy,
        running_service(settings_for(proxy.url + "/q", fake_keptn)) as url,
    ):
        answer = await post_preview(url, preview_body(load_tags, load_run.start, load_run.end))

    assert answer["store"] == {"name": "unknown", "version": None, "revision": None}
    assert answer["indicators"][0]["success"]


async def test_unreachable_store_is_unknown_within_the_timeout_and_asked_again_later(
    prometheus: PrometheusServer,
) -> None:
    async with PrefixProxy({"/p": prometheus.url}) as proxy:
        routed = proxy.url + "/p"
        client = PrometheusClient(
            f"http://127.0.0.1:{free_port()}", concurrency=1, timeout=30, attempts=1, max_wait=0
        )
        try:
            started = time.monotonic()
            assert await client.store_info() == UNKNOWN_STORE
            assert time.monotonic() - started < 2 * STORE_INFO_TIMEOUT + 1
        finally:
            await client.aclose()

        client = PrometheusClient(routed, concurrency=1, timeout=5, attempts=1, max_wait=0)
        try:
            first, second = await client.store_info(), await client.store_info()
        finally:
            await client.aclose()
    assert first == second and first.name == "Prometheus"
    assert proxy.paths_seen.count("/p/api/v1/status/buildinfo") == 1  # kept per process


def test_identify_reads_what_each_store_states() -> None:
    prometheus = {"status": "success", "data": {"version": "2.42.0", "revision": "abc"}}
    mimir = {"status": "success", "data": {"application": "Grafana Mimir", "version": "2.10.0"}}
    empty = {"status": "success", "data": {}}
    traced = {"status": "success", "data": {}, "trace": {"message": "/api/v1/query"}}
    plain = {"status": "success", "data": {"resultType": "vector", "result": []}}

    assert identify(prometheus, plain) == StoreInfo("Prometheus", "2.42.0", "abc")
    assert identify(prometheus, plain).describe() == "Prometheus 2.42.0 (revision abc)"
    assert identify(mimir, plain) == StoreInfo("Grafana Mimir", "2.10.0")
    assert identify(empty, traced).describe() == "VictoriaMetrics"
    # A build info that looks like an old Prometheus does not hide the trace.
    assert identify({"data": {"version": "2.24.0"}}, traced) == StoreInfo("VictoriaMetrics")
    assert identify(empty, plain) == identify(None, None) == UNKNOWN_STORE


# -- URL shapes --------------------------------------------------------------------------------


@pytest.fixture
async def prefixed_victoria(tmp_path: Path) -> AsyncIterator[VictoriaMetricsServer]:
    """VictoriaMetrics single under -http.pathPrefix=/vm, 1 s latency offset: these tests are
    about URLs, and wait with settle() for what it shows."""
    async with VictoriaMetricsServer(tmp_path / "vm", path_prefix="/vm", latency_offset="1s") as vm:
        yield vm


async def test_victoriametrics_single_under_a_path_prefix_and_its_prometheus_alias(
    prefixed_victoria: VictoriaMetricsServer,
    target: TargetServer,
    fake_keptn: FakeKeptn,
    tmp_path: Path,
) -> None:
    """PROMETHEUS_URL=http://host/vm/prometheus: queries, the runner's default write URL
    ({PROMETHEUS_URL}/api/v1/write), its check, /ready and the preview all keep the path."""
    url = prefixed_victoria.prometheus_url
    assert url.endswith("/vm/prometheus")
    tags = RunTags("shop", "staging", "web", str(uuid.uuid4()))
    plan = load_plan(
        prometheus_url=url,
        tags=tags,
        script=None,
        timeout=60,
        script_env=load_env(target.url, 2, "2s", 5, 0, tmp_path / "summary.json"),
    )
    client = PrometheusClient(url, concurrency=2, timeout=5, attempts=1, max_wait=0)
    try:
        result = await run_plan(
            plan, LocalK6Backend(work_dir=tmp_path), series_check=prometheus_series_check(client)
        )
    finally:
        await client.aclose()
    assert result.wrote_series is True, result.missing_series_message()
    await prefixed_victoria.settle()

    body = preview_body(tags, result.outcome.started_at, result.outcome.ended_at)
    async with running_service(settings_for(url, fake_keptn)) as service:
        assert await status_of(service + "/ready") == 200
        answer = await post_preview(service, body)
    assert answer["indicators"][0]["value"] == result.outcome.summary.metrics["http_reqs"]["count"]
    assert answer["store"]["name"] == "VictoriaMetrics"


async def test_victoriametrics_cluster_url_shapes_through_the_bundled_runner(
    victoria_short_offset: VictoriaMetricsServer,
    fake_keptn: FakeKeptn,
    target: TargetServer,
    tmp_path: Path,
) -> None:
    """vmselect's /select/0/prometheus as PROMETHEUS_URL and vminsert's
    /insert/0/prometheus/api/v1/write as PROMETHEUS_REMOTE_WRITE_URL (a routing proxy in front
    of one VictoriaMetrics plays the cluster): test.triggered → k6 → test.finished, then the
    run's values through the select path."""
    routes = {
        "/select/0/prometheus": victoria_short_offset.url,
        "/insert/0/prometheus": victoria_short_offset.url,
    }
    workload = {
        "teststrategy": "performance",
        "script": "k6/load.js",
        "env": {"VUS": "2", "DURATION": "2s", "FAIL_EVERY": "0"},
    }
    scope = {"project": "shop", "stage": "staging", "service": "web"}
    fake_keptn.set_resource(json.dumps({"workloads": [workload]}), "k6/k6.conf.yaml", **scope)
    fake_keptn.set_resource(LOAD_SCRIPT.read_text(), "k6/load.js", **scope)
    event = make_test_triggered(**scope, teststrategy="performance", uris_local=[target.url])
    async with PrefixProxy(routes) as cluster:
        settings = settings_for(
            cluster.url + "/select/0/prometheus",
            fake_keptn,
            prometheus_remote_write_url=cluster.url + "/insert/0/prometheus/api/v1/write",
            runner_work_dir=tmp_path,
        )
        async with running_service(settings) as service:
            assert await status_of(service + "/ready") == 200
            await send_event(service, event)
            (finished,) = await fake_keptn.wait_for_events(
                type="sh.keptn.event.test.finished",
                shkeptncontext=event["shkeptncontext"],
                timeout=90,
            )
            data = finished["data"]
            assert data["result"] == "pass", data["message"]
            await victoria_short_offset.settle()
            tags = RunTags(**scope, context=event["shkeptncontext"])
            window = (parse_keptn(data["test"]["start"]), parse_keptn(data["test"]["end"]))
            answer = await post_preview(service, preview_body(tags, *window))
    assert answer["indicators"][0]["value"] == data["k6"]["metrics"]["http_reqs"]["count"]
    assert "/insert/0/prometheus/api/v1/write" in cluster.paths_seen
    assert "/select/0/prometheus/api/v1/query" in cluster.paths_seen
    assert not [p for p in cluster.paths_seen if not p.startswith(("/select/0/", "/insert/0/"))]


async def test_the_store_is_announced_once_per_process_and_url(
    prometheus: PrometheusServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The CLI's gate makes several clients of one URL in a run; the log says which store
    answers once (it said it four times per `sli-provider run`)."""
    # A spelling of its URL no other test uses, so no other client announced it before.
    url = prometheus.url.replace("127.0.0.1", "localhost")
    caplog.set_level("INFO", logger="sli_provider.adapters.prometheus")
    for _ in range(3):
        client = PrometheusClient(
            url, concurrency=1, timeout=5, attempts=1, max_wait=0, store="auto"
        )
        try:
            assert (await client.store_kind()).name == "prometheus"
        finally:
            await client.aclose()
    announced = [r for r in caplog.records if r.getMessage().startswith("metrics store at")]
    assert len(announced) == 1, [r.getMessage() for r in announced]
