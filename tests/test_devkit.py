"""The devkit plays Keptn and the infrastructure faithfully enough to test the service against."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devkit.events import get_sli_triggered, keptn_timestamp
from devkit.fake_keptn import FakeKeptn, resource_uri_segment
from devkit.k6run import LoadRun, LoadRunError, run_load
from devkit.keptn_checks import check_reply
from devkit.prometheus import NOT_FOUND_MESSAGE, PrometheusError, PrometheusServer
from devkit.target import TargetServer
from sli_provider.k6.invocation import RunTags

SLI_YAML = 'spec_version: "1.0"\nindicators:\n  p95: "trend:http_req_duration:p(95)"\n'
SLI_URI = "k6/sli.yaml"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def _reply(triggered: dict[str, Any], phase: str, **data: Any) -> dict[str, Any]:
    """A reply as the service should build it, answering ``triggered``."""
    task = triggered["type"].removesuffix(".triggered")
    scope = {key: triggered["data"][key] for key in ("project", "stage", "service")}
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "k6-sli-provider",
        "type": f"{task}.{phase}",
        "time": keptn_timestamp(time.time()),
        "datacontenttype": "application/json",
        "shkeptncontext": triggered["shkeptncontext"],
        "triggeredid": triggered["id"],
        "data": {**scope, **data},
    }


def _triggered() -> dict[str, Any]:
    return get_sli_triggered(
        project="shop",
        stage="staging",
        service="web",
        start="2023-05-04T10:09:58.000Z",
        end="2023-05-04T10:14:59.000Z",
        indicators=["p95"],
    )


def _finished(triggered: dict[str, Any]) -> dict[str, Any]:
    return _reply(
        triggered,
        "finished",
        status="succeeded",
        result="pass",
        **{
            "get-sli": {
                "start": triggered["data"]["get-sli"]["start"],
                "end": triggered["data"]["get-sli"]["end"],
                "indicatorValues": [{"metric": "p95", "value": 3.1, "success": True}],
            }
        },
    )


# -- k6 into Prometheus --------------------------------------------------------------------


async def test_load_run_finishes_with_thresholds_held(load_run: LoadRun) -> None:
    http_reqs = load_run.summary["metrics"]["http_reqs"]["values"]["count"]
    failed = load_run.summary["metrics"]["http_req_failed"]["values"]["rate"]

    assert load_run.outcome.returncode == 0
    assert load_run.start == load_run.outcome.started_at < load_run.end == load_run.outcome.ended_at
    assert http_reqs > 100
    # Every 5th iteration of each VU (iterations 0, 5, 10, ...) asks for /fail.
    assert 0.15 < failed < 0.25
    assert any(line.startswith("load.js: ") for line in load_run.outcome.output_tail)


async def test_prometheus_holds_the_runs_request_count(
    prometheus: PrometheusServer, load_run: LoadRun, load_tags: RunTags
) -> None:
    window = math.ceil(load_run.end - load_run.start) + 1
    selector = f'k6_http_reqs_total{{keptn_context="{load_tags.context}"}}'

    series = await prometheus.query(f"last_over_time({selector}[{window}s])", at=load_run.end)

    # With the invocation's empty --system-tags only the keptn_* tags split series.
    assert len(series) == 1
    labels = series[0]["metric"]
    assert labels["keptn_project"] == "shop"
    assert labels["keptn_stage"] == "staging"
    assert labels["keptn_service"] == "web"
    expected = load_run.summary["metrics"]["http_reqs"]["values"]["count"]
    assert float(series[0]["value"][1]) == expected


async def test_stale_markers_hide_the_run_from_instant_queries(
    prometheus: PrometheusServer, load_run: LoadRun, load_tags: RunTags
) -> None:
    selector = f'k6_http_reqs_total{{keptn_context="{load_tags.context}"}}'

    assert await prometheus.query(selector, at=load_run.end + 1) == []


async def test_run_load_rejects_a_failed_k6_run(
    prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.js"
    broken.write_text("export default function () { syntax error }", encoding="utf-8")

    with pytest.raises(LoadRunError, match="exited with code 107") as caught:
        await run_load(
            prometheus_url=prometheus.url,
            target_url=target.url,
            tags=RunTags("shop", "staging", "web", str(uuid.uuid4())),
            workdir=tmp_path,
            script=broken,
        )
    assert caught.value.outcome.returncode == 107


async def test_prometheus_reports_a_missing_binary(tmp_path: Path) -> None:
    server = PrometheusServer(tmp_path, binary=str(tmp_path / "no-prometheus"))

    with pytest.raises(FileNotFoundError, match="make setup"):
        await server.__aenter__()
    assert NOT_FOUND_MESSAGE.startswith("prometheus not found on PATH")


async def test_prometheus_that_dies_early_reports_its_log(tmp_path: Path) -> None:
    server = PrometheusServer(tmp_path, extra_args=["--no-such-flag"])

    with pytest.raises(PrometheusError, match="exited with code") as caught:
        await server.__aenter__()
    assert "no-such-flag" in str(caught.value)


# -- target ---------------------------------------------------------------------------------


async def test_target_serves_ok_fail_and_slow(
    target: TargetServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(target.url + "/") as response:
        assert response.status == 200
        assert await response.text()
    async with http.get(target.url + "/fail") as response:
        assert response.status == 503
    started = time.monotonic()
    async with http.get(target.url + "/slow", params={"ms": "150"}) as response:
        assert response.status == 200
    assert time.monotonic() - started >= 0.15
    async with http.get(target.url + "/slow", params={"ms": "soon"}) as response:
        assert response.status == 400


# -- fake Keptn: resources -----------------------------------------------------------------


def _resource_path(project: str, uri: str, stage: str | None, service: str | None) -> str:
    path = f"/resource-service/v1/project/{project}"
    if stage is not None:
        path += f"/stage/{stage}"
    if service is not None:
        path += f"/service/{service}"
    return path + "/resource/" + resource_uri_segment(uri)


@pytest.mark.parametrize(
    ("stage", "service"), [(None, None), ("staging", None), ("staging", "web")]
)
async def test_resource_is_served_at_its_level_only(
    fake_keptn: FakeKeptn, http: aiohttp.ClientSession, stage: str | None, service: str | None
) -> None:
    fake_keptn.set_resource(SLI_YAML, SLI_URI, "shop", stage, service)
    # Make every level exist, so the other levels answer "Resource not found".
    fake_keptn.add_scope("shop", "staging", "web")

    for level in [(None, None), ("staging", None), ("staging", "web")]:
        path = _resource_path("shop", SLI_URI, *level)
        assert "k6%2Fsli.yaml" in path
        async with http.get(fake_keptn.url + path, params={"gitCommitID": "abc123"}) as response:
            body = await response.json()
            if level == (stage, service):
                assert response.status == 200
                assert base64.b64decode(body["resourceContent"]).decode() == SLI_YAML
                assert body["resourceURI"] == SLI_URI
                assert body["metadata"] == {
                    "branch": stage or "main",
                    "upstreamURL": "",
                    "version": "abc123",
                }
            else:
                assert response.status == 404
                assert body == {"code": 404, "message": "Resource not found"}

    assert [r.query for r in fake_keptn.resource_requests] == [{"gitCommitID": "abc123"}] * 3
    assert fake_keptn.violations == []


async def test_resource_404_names_the_missing_scope(
    fake_keptn: FakeKeptn, http: aiohttp.ClientSession
) -> None:
    fake_keptn.set_resource(SLI_YAML, SLI_URI, "shop", "staging", "web")
    cases = {
        ("other", None, None): "Project not found",
        ("shop", "prod", None): "Stage not found",
        ("shop", "staging", "api"): "Service not found",
        ("shop", None, None): "Resource not found",
    }
    for (project, stage, service), message in cases.items():
        path = _resource_path(project, SLI_URI, stage, service)
        async with http.get(fake_keptn.url + path) as response:
            assert response.status == 404
            assert (await response.json())["message"] == message


async def test_resource_without_prefix_and_default_version(
    fake_keptn: FakeKeptn, http: aiohttp.ClientSession
) -> None:
    fake_keptn.set_resource(b"x", "slo.yaml", "shop", "staging", "web")
    path = "/v1/project/shop/stage/staging/service/web/resource/slo.yaml"

    async with http.get(fake_keptn.url + path) as response:
        assert response.status == 200
        assert (await response.json())["metadata"]["version"] == "HEAD"


async def test_unencoded_resource_uri_is_a_violation(
    fake_keptn: FakeKeptn, http: aiohttp.ClientSession
) -> None:
    fake_keptn.set_resource(SLI_YAML, SLI_URI, "shop")

    async with http.get(
        fake_keptn.url + "/resource-service/v1/project/shop/resource/k6/sli.yaml"
    ) as r:
        assert r.status == 404
    assert len(fake_keptn.violations) == 1
    assert "URL-encoded" in fake_keptn.violations[0]


async def test_resource_failure_injection(
    fake_keptn: FakeKeptn, http: aiohttp.ClientSession
) -> None:
    fake_keptn.set_resource(SLI_YAML, SLI_URI, "shop")
    url = fake_keptn.url + _resource_path("shop", SLI_URI, None, None)

    fake_keptn.fail_resources_with(503)
    async with http.get(url) as response:
        assert response.status == 503
    fake_keptn.fail_resources_with(None)
    async with http.get(url) as response:
        assert response.status == 200


async def test_token_is_required_when_set(http: aiohttp.ClientSession) -> None:
    async with FakeKeptn(api_token="s3cret") as keptn:
        keptn.set_resource(SLI_YAML, SLI_URI, "shop")
        url = keptn.url + _resource_path("shop", SLI_URI, None, None)
        event = _reply(_triggered(), "started", status="succeeded")

        async with http.get(url) as response:
            assert response.status == 401
        async with http.get(url, headers={"x-token": "wrong"}) as response:
            assert response.status == 401
        async with http.get(url, headers={"x-token": "s3cret"}) as response:
            assert response.status == 200
        async with http.post(keptn.api_event_url, json=event) as response:
            assert response.status == 401
        async with http.post(
            keptn.api_event_url, json=event, headers={"x-token": "s3cret"}
        ) as response:
            assert response.status == 200
            assert await response.json() == {"keptnContext": event["shkeptncontext"]}

        assert keptn.resource_requests[-1].headers["x-token"] == "s3cret"
        assert len(keptn.events) == 1
        assert keptn.violations == []


# -- fake Keptn: events ----------------------------------------------------------------------


async def test_distributor_records_good_replies_without_violations(
    fake_keptn: FakeKeptn, http: aiohttp.ClientSession
) -> None:
    triggered = _triggered()
    context = triggered["shkeptncontext"]
    headers = {"Content-Type": "application/cloudevents+json"}

    for event in (_reply(triggered, "started", status="succeeded"), _finished(triggered)):
        async with http.post(fake_keptn.event_url, data=json.dumps(event), headers=headers) as r:
            assert r.status == 200
            assert await r.read() == b""

    finished = await fake_keptn.wait_for_events(
        type="sh.keptn.event.get-sli.finished", shkeptncontext=context, timeout=1
    )
    assert finished[0]["data"]["result"] == "pass"
    assert [e["type"] for e in fake_keptn.events_for(context)] == [
        "sh.keptn.event.get-sli.started",
        "sh.keptn.event.get-sli.finished",
    ]
    assert fake_keptn.violations == []


async def test_distributor_rejects_what_it_cannot_decode(
    fake_keptn: FakeKeptn, http: aiohttp.ClientSession
) -> None:
    # Binary mode: attributes in ce-* headers, so the body has no specversion.
    async with http.post(fake_keptn.event_url, json={"project": "shop"}) as response:
        assert response.status == 500
    async with http.post(fake_keptn.event_url, data=b"not json") as response:
        assert response.status == 500
    big = _reply(_triggered(), "started", status="succeeded", message="x" * 70_000)
    async with http.post(fake_keptn.event_url, json=big) as response:
        assert response.status == 500

    assert fake_keptn.events == []
    assert [p.status for p in fake_keptn.event_posts] == [500, 500, 500]
    assert len(fake_keptn.violations) == 1
    assert "65536-byte limit" in fake_keptn.violations[0]


async def test_bad_replies_are_recorded_with_violations(
    fake_keptn: FakeKeptn, http: aiohttp.ClientSession
) -> None:
    triggered = _triggered()
    bad = _finished(triggered)
    del bad["triggeredid"]
    bad["data"]["status"] = "unknown"
    bad["data"]["result"] = "failed"
    bad["data"]["service"] = ""
    bad["data"]["get-sli"]["indicatorValues"][0]["value"] = math.nan
    body = json.dumps(bad)  # json.dumps writes NaN by default, which Go cannot parse

    async with http.post(fake_keptn.event_url, data=body) as response:
        assert response.status == 200

    assert fake_keptn.events[0]["id"] == bad["id"]
    text = "\n".join(fake_keptn.violations)
    for expected in (
        "non-finite",
        "triggeredid",
        "data.status",
        "data.result",
        "data.service",
        "value must be a finite number",
    ):
        assert expected in text


async def test_finished_without_started_and_twice_are_violations(
    fake_keptn: FakeKeptn, http: aiohttp.ClientSession
) -> None:
    triggered = _triggered()
    finished = _finished(triggered)

    for _ in range(2):
        async with http.post(fake_keptn.event_url, json=finished) as response:
            assert response.status == 200

    assert len(fake_keptn.violations) == 2
    assert "without a preceding .started" in fake_keptn.violations[0]
    assert "more than one .finished" in fake_keptn.violations[1]


async def test_api_rejects_invalid_payloads(
    fake_keptn: FakeKeptn, http: aiohttp.ClientSession
) -> None:
    async with http.post(fake_keptn.api_event_url, json={"type": "sh.keptn.x"}) as response:
        assert response.status == 400
        assert (await response.json())["code"] == 400
    async with http.post(fake_keptn.api_event_url, data=b"{") as response:
        assert response.status == 400
    assert fake_keptn.events == []


async def test_event_failure_injection_counts_down(
    fake_keptn: FakeKeptn, http: aiohttp.ClientSession
) -> None:
    started = _reply(_triggered(), "started", status="succeeded")
    fake_keptn.fail_events_with(503, times=2)

    statuses = []
    for _ in range(3):
        async with http.post(fake_keptn.event_url, json=started) as response:
            statuses.append(response.status)

    assert statuses == [503, 503, 200]
    assert len(fake_keptn.events) == 1
    assert [p.status for p in fake_keptn.event_posts] == [503, 503, 200]


async def test_wait_for_events_wakes_up_and_times_out(
    fake_keptn: FakeKeptn, http: aiohttp.ClientSession
) -> None:
    started = _reply(_triggered(), "started", status="succeeded")
    waiter = asyncio.create_task(
        fake_keptn.wait_for_events(type=started["type"], shkeptncontext=started["shkeptncontext"])
    )
    await asyncio.sleep(0.05)
    assert not waiter.done()

    async with http.post(fake_keptn.event_url, json=started) as response:
        assert response.status == 200

    assert await asyncio.wait_for(waiter, 2) == [started]
    with pytest.raises(TimeoutError, match=r"sh\.keptn\.event\.get-sli\.started"):
        await fake_keptn.wait_for_events(type="sh.keptn.event.get-sli.finished", timeout=0.1)


# -- event builders ------------------------------------------------------------------------------


def test_keptn_timestamp_is_utc_with_milliseconds() -> None:
    assert keptn_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert keptn_timestamp(1683195302.4816) == "2023-05-04T10:15:02.481Z"


def test_get_sli_triggered_matches_lighthouse() -> None:
    event = get_sli_triggered(
        project="shop",
        stage="staging",
        service="web",
        start="2023-05-04T10:09:58.000Z",
        end="2023-05-04T10:14:59.000Z",
        indicators=["http_req_duration_p95", "http_req_failed_rate"],
        context="6a1f0c2e-3b44-4e8e-9a51-7d2b9c0f4e21",
        labels={"buildId": "142"},
        custom_filters=[{"key": "scenario", "value": "checkout"}],
        deployment="direct",
        gitcommitid="9c4e2d1b7a",
        event_id="0b8e3f52-64d1-4c0e-9d3b-2f7c1a9e5d10",
    )
    sent_at = event.pop("time")

    assert sent_at.endswith("Z")
    assert len(sent_at) == len("2023-05-04T10:15:02.481Z")
    assert event == {
        "specversion": "1.0",
        "id": "0b8e3f52-64d1-4c0e-9d3b-2f7c1a9e5d10",
        "source": "lighthouse-service",
        "type": "sh.keptn.event.get-sli.triggered",
        "datacontenttype": "application/json",
        "shkeptncontext": "6a1f0c2e-3b44-4e8e-9a51-7d2b9c0f4e21",
        "gitcommitid": "9c4e2d1b7a",
        "data": {
            "project": "shop",
            "stage": "staging",
            "service": "web",
            "labels": {"buildId": "142"},
            "get-sli": {
                "sliProvider": "k6",
                "start": "2023-05-04T10:09:58.000Z",
                "end": "2023-05-04T10:14:59.000Z",
                "indicators": ["http_req_duration_p95", "http_req_failed_rate"],
                "customFilters": [{"key": "scenario", "value": "checkout"}],
            },
            "deployment": "direct",
        },
    }


def test_get_sli_triggered_leaves_out_empty_fields_and_makes_ids() -> None:
    one, two = _triggered(), _triggered()

    assert one["id"] != two["id"]
    assert one["shkeptncontext"] != two["shkeptncontext"]
    assert "triggeredid" not in one
    assert "gitcommitid" not in one
    assert set(one["data"]) == {"project", "stage", "service", "get-sli"}
    assert check_reply(_finished(one)) == []
