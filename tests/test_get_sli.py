"""get-sli.triggered end to end: a real k6 run in a real Prometheus, the service, a fake Keptn."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from devkit.fake_keptn import FakeKeptn
from devkit.gateway import TenantGateway
from devkit.k6run import LoadRun
from devkit.k6summary import (
    event_window_seconds,
    expected_values,
    from_handle_summary,
    relative_errors,
)
from devkit.ports import free_port
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.stores import MetricsStore
from devkit.target import TargetServer
from sli_provider.config import Secret, Settings
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.timestamps import format_keptn
from sli_provider.sli.builtin import load_builtin_templates
from tests.helpers import (
    ServiceFactory,
    answer,
    post_event,
    service_factory,
    trigger_for,
    values_of,
)

BUILTINS = sorted(load_builtin_templates())


@pytest.fixture
def service(prometheus: PrometheusServer, fake_keptn: FakeKeptn) -> ServiceFactory:
    """Start the service against the real Prometheus and the fake Keptn (as its distributor)."""
    base = Settings(
        prometheus_url=prometheus.url,
        distributor_url=fake_keptn.url,
        query_attempts=2,
        reply_attempts=3,
        retry_max_wait_seconds=0.2,
        http_timeout_seconds=5,
        query_timeout_seconds=10,
    )

    return service_factory(base)


async def test_builtin_slis_equal_k6_summary(
    service: ServiceFactory,
    fake_keptn: FakeKeptn,
    store: MetricsStore,
    store_load_run: LoadRun,
    load_tags: RunTags,
    target: TargetServer,
) -> None:
    """Every built-in SLI of a tagged run equals k6's own handleSummary numbers, in each store.

    The request count and rate are also held against what the target served over the window
    the event states: a count neither k6 nor the service produced. (VictoriaMetrics here shows
    samples after 1 s, not 30 s: this test is about the values, not about when they show.)
    """
    load_run = store_load_run
    event = trigger_for(load_run, load_tags, BUILTINS, gitcommitid="c0ffee")
    async with service(prometheus_url=store.url) as url:
        status, _ = await post_event(url, event)
        assert status == 202
        finished = await answer(fake_keptn, event)

    data = finished["data"]
    assert (data["status"], data["result"]) == ("succeeded", "pass"), data["message"]
    assert finished["gitcommitid"] == "c0ffee"
    assert data["get-sli"]["start"] == event["data"]["get-sli"]["start"]
    assert data["get-sli"]["end"] == event["data"]["get-sli"]["end"]
    assert [v["metric"] for v in data["get-sli"]["indicatorValues"]] == BUILTINS
    got = {name: v["value"] for name, v in values_of(finished).items()}
    assert all(v["success"] and v["query"] for v in values_of(finished).values())

    expected = expected_values(from_handle_summary(load_run.summary))
    assert set(expected) | {"http_reqs_per_second"} == set(BUILTINS)
    mismatched = {
        name: (got[name], e.value, e.source)
        for name, e in expected.items()
        if not e.holds(got[name])
    }
    print(f"fidelity {store.store_name}: {relative_errors(got, expected)}")  # shown by -rA
    assert mismatched == {}
    assert 0.1 < got["http_req_failed_rate"] < 0.3  # the target fails every 5th iteration

    served = target.served_between(load_run.start, load_run.end)
    sent = event["data"]["get-sli"]
    window = event_window_seconds(sent["start"], sent["end"])
    assert served > 0
    assert got["http_reqs_total"] == served
    assert got["http_reqs_per_second"] == pytest.approx(served / window, rel=1e-6)
    # k6's own rate divides by its test duration, which excludes k6's start-up (0.1-0.3 s of a
    # 3 s run on a busy machine): same order, not the same number.
    k6_rate = load_run.summary["metrics"]["http_reqs"]["values"]["rate"]
    assert got["http_reqs_per_second"] == pytest.approx(k6_rate, rel=0.25)


async def test_prometheus_service_sli_yaml_works_unchanged(
    service: ServiceFactory, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    """A prometheus-service-style sli.yaml at project level, overridden per indicator by service."""
    fake_keptn.set_resource(
        'spec_version: "1.0"\n'
        "indicators:\n"
        '  throughput: sum(last_over_time(k6_http_reqs_total{keptn_project="$PROJECT",'
        'keptn_stage="$STAGE",keptn_service="$SERVICE",keptn_context="$LABEL.run"}[$DURATION_SECONDS]))\n'
        "  error_rate: 'max(k6_this_is_overridden)'\n",
        "k6/sli.yaml",
        project=load_tags.project,
    )
    fake_keptn.set_resource(
        "indicators:\n"
        "  error_rate: avg(last_over_time(k6_http_req_failed_rate{keptn_service='$SERVICE',"
        "keptn_context='$LABEL.run'}[$DURATION_SECONDS]))\n",
        "k6/sli.yaml",
        project=load_tags.project,
        stage=load_tags.stage,
        service=load_tags.service,
    )
    event = trigger_for(
        load_run, load_tags, ["throughput", "error_rate"], labels={"run": load_tags.context}
    )
    async with service() as url:
        await post_event(url, event)
        finished = await answer(fake_keptn, event)
    values = values_of(finished)
    m = load_run.summary["metrics"]
    assert values["throughput"]["value"] == m["http_reqs"]["values"]["count"]
    assert values["error_rate"]["value"] == pytest.approx(
        m["http_req_failed"]["values"]["rate"], abs=1e-6
    )
    assert f'keptn_context="{load_tags.context}"' in values["throughput"]["query"]
    # Three levels were read, with the event's commit.
    paths = [r.path for r in fake_keptn.resource_requests]
    assert len(paths) == 3 and all(p.endswith("/resource/k6%2Fsli.yaml") for p in paths)


async def test_outcome_warning_and_fail(
    service: ServiceFactory, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    warning = trigger_for(load_run, load_tags, ["http_reqs_total", "no_such_sli"])
    fail = trigger_for(
        load_run, load_tags, ["no_such_sli", "also_missing"], context=str(uuid.uuid4())
    )
    async with service() as url:
        await post_event(url, warning)
        await post_event(url, fail)
        warned = await answer(fake_keptn, warning)
        failed = await answer(fake_keptn, fail)
    assert (warned["data"]["status"], warned["data"]["result"]) == ("succeeded", "warning")
    missing = values_of(warned)["no_such_sli"]
    assert missing["success"] is False and missing["value"] == 0
    assert "unknown indicator" in missing["message"]
    assert (failed["data"]["status"], failed["data"]["result"]) == ("succeeded", "fail")
    assert "no_such_sli" in failed["data"]["message"]


async def test_no_data_and_several_series_fail_the_indicator(
    service: ServiceFactory,
    fake_keptn: FakeKeptn,
    store: MetricsStore,
    store_load_run: LoadRun,
    load_tags: RunTags,
) -> None:
    """In each store (MetricsQL answers an empty sum and a multi-series result as PromQL does)."""
    load_run = store_load_run
    fake_keptn.set_resource(
        "indicators:\n"
        "  nothing: sum(k6_metric_that_does_not_exist)\n"
        "  nothing_is_zero: {query: 'sum(k6_metric_that_does_not_exist)', on_empty: zero}\n"
        '  many: last_over_time({__name__=~"k6_http_req_duration_p(50|90)",keptn_context="$CONTEXT"}[$DURATION_SECONDS])\n',
        "k6/sli.yaml",
        project=load_tags.project,
    )
    event = trigger_for(
        load_run, load_tags, ["nothing", "many", "http_reqs_total", "nothing_is_zero"]
    )
    async with service(prometheus_url=store.url) as url:
        await post_event(url, event)
        finished = await answer(fake_keptn, event)
    values = values_of(finished)
    assert finished["data"]["result"] == "warning"
    assert values["nothing"]["message"].startswith("no data")
    assert "2 series" in values["many"]["message"]
    assert (values["nothing_is_zero"]["success"], values["nothing_is_zero"]["value"]) == (True, 0)


async def test_hostile_filter_and_label_values_cannot_change_the_query(
    service: ServiceFactory, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    """`or vector(1)` in a label or filter stays a label value: the query finds no data."""
    fake_keptn.set_resource(
        'indicators:\n  probe: sum(last_over_time(k6_http_reqs_total{keptn_context="$LABEL.run"}[$DURATION_SECONDS]))\n',
        "k6/sli.yaml",
        project=load_tags.project,
    )
    hostile = 'x"} or vector(1) or {a="'
    event = trigger_for(
        load_run,
        load_tags,
        ["probe", "http_reqs_total"],
        labels={"run": hostile},
        custom_filters=[{"key": "scenario", "value": '=~.*"} or vector(1)'}],
    )
    async with service() as url:
        await post_event(url, event)
        finished = await answer(fake_keptn, event)
    values = values_of(finished)
    assert values["probe"]["success"] is False
    assert values["probe"]["message"].startswith("no data"), values["probe"]
    # The filter names no placeholder of the built-in, so it does not reach its query at all.
    assert values["http_reqs_total"]["success"] is True
    assert finished["data"]["result"] == "warning"  # one of two indicators has a value


async def test_errored_when_sli_yaml_is_broken(
    service: ServiceFactory, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    fake_keptn.set_resource("indicators: [unclosed", "k6/sli.yaml", project=load_tags.project)
    event = trigger_for(load_run, load_tags, ["http_reqs_total"])
    async with service() as url:
        await post_event(url, event)
        finished = await answer(fake_keptn, event)
    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert "not valid YAML" in finished["data"]["message"]


async def test_errored_when_prometheus_is_unreachable(
    service: ServiceFactory, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    event = trigger_for(load_run, load_tags, ["http_reqs_total", "vus_max"])
    async with service(prometheus_url=f"http://127.0.0.1:{free_port()}") as url:
        await post_event(url, event)
        finished = await answer(fake_keptn, event)
    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert "unreachable" in finished["data"]["message"]


async def test_other_providers_events_get_no_reply(
    service: ServiceFactory, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    theirs = trigger_for(load_run, load_tags, ["http_reqs_total"], sli_provider="prometheus")
    ours = trigger_for(load_run, load_tags, ["http_reqs_total"], context=str(uuid.uuid4()))
    async with service() as url:
        status, body = await post_event(url, theirs)
        assert (status, body["status"]) == (202, "ignored")
        await post_event(url, ours)
        await answer(fake_keptn, ours)
    assert fake_keptn.events_for(theirs["shkeptncontext"]) == []


async def test_redelivered_event_is_handled_once(
    service: ServiceFactory, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    event = trigger_for(load_run, load_tags, ["http_reqs_total"])
    async with service() as url:
        first = await post_event(url, event)
        second = await post_event(url, event)
        await answer(fake_keptn, event)
    assert first[1]["status"] == "accepted" and second[1]["status"] == "duplicate"
    assert len(fake_keptn.events_for(event["shkeptncontext"])) == 2


async def test_binary_mode_event_is_accepted(
    service: ServiceFactory, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    event = trigger_for(load_run, load_tags, ["iterations_total"])
    headers = {f"ce-{k}": str(v) for k, v in event.items() if k not in ("data", "datacontenttype")}
    headers["Content-Type"] = "application/json"
    async with service() as url, aiohttp.ClientSession() as session:
        async with session.post(url + "/", json=event["data"], headers=headers) as response:
            assert response.status == 202
        finished = await answer(fake_keptn, event)
    assert finished["data"]["result"] == "pass"


async def test_keptn_api_mode_uses_token_for_events_and_resources(
    service: ServiceFactory, load_run: LoadRun, load_tags: RunTags
) -> None:
    async with FakeKeptn(api_token="s3cret") as keptn:
        keptn.set_resource(
            'indicators:\n  reqs: sum(last_over_time(k6_http_reqs_total{keptn_context="$CONTEXT"}[$DURATION_SECONDS]))\n',
            "k6/sli.yaml",
            project=load_tags.project,
            stage=load_tags.stage,
        )
        event = trigger_for(load_run, load_tags, ["reqs"])
        async with service(keptn_api_url=keptn.url, keptn_api_token=Secret("s3cret")) as url:
            await post_event(url, event)
            finished = await answer(keptn, event)
        assert (
            values_of(finished)["reqs"]["value"]
            == load_run.summary["metrics"]["http_reqs"]["values"]["count"]
        )
        assert {r.route for r in keptn.event_posts} == {"/v1/event"}
        assert all(r.headers.get("x-token") == "s3cret" for r in keptn.resource_requests)


async def test_replies_are_retried_on_5xx(
    service: ServiceFactory, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    fake_keptn.fail_events_with(503, times=2)
    event = trigger_for(load_run, load_tags, ["vus_max"])
    async with service() as url:
        await post_event(url, event)
        finished = await answer(fake_keptn, event)
    assert finished["data"]["result"] == "pass"


async def test_local_mode_reads_sli_config_dir(
    service: ServiceFactory,
    fake_keptn: FakeKeptn,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    level = tmp_path / load_tags.project / load_tags.stage / "k6"
    level.mkdir(parents=True)
    (level / "sli.yaml").write_text(
        'indicators:\n  iters: sum(last_over_time(k6_iterations_total{keptn_context="$CONTEXT"}[$DURATION_SECONDS]))\n'
    )
    event = trigger_for(load_run, load_tags, ["iters"])
    async with service(sli_config_dir=tmp_path) as url:
        await post_event(url, event)
        finished = await answer(fake_keptn, event)
    assert (
        values_of(finished)["iters"]["value"]
        == load_run.summary["metrics"]["iterations"]["values"]["count"]
    )
    assert fake_keptn.resource_requests == []


async def test_window_without_the_runs_series_uses_the_whole_scope(
    service: ServiceFactory,
    fake_keptn: FakeKeptn,
    store: MetricsStore,
    store_load_run: LoadRun,
    load_tags: RunTags,
) -> None:
    """A context that wrote no k6 series: the values describe every k6 sample of the scope."""
    load_run = store_load_run
    event = trigger_for(
        load_run, load_tags, ["vus_max", "http_reqs_total"], context=str(uuid.uuid4())
    )
    async with service(prometheus_url=store.url) as url:
        await post_event(url, event)
        finished = await answer(fake_keptn, event)
    values = values_of(finished)
    assert "keptn_context=" not in values["vus_max"]["query"]
    assert values["vus_max"]["value"] == load_run.summary["metrics"]["vus_max"]["values"]["max"]
    assert (
        values["http_reqs_total"]["value"]
        >= load_run.summary["metrics"]["http_reqs"]["values"]["count"]
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.mark.parametrize(
    ("body", "headers", "status", "needle"),
    [
        (b"{not json", {}, 400, "not JSON"),
        (b"[1, 2]", {}, 400, "JSON object"),
        (b'{"specversion": "1.0", "type": "x"}', {}, 400, "id, source"),
        (b"", {}, 400, "empty body"),
        (b"x" * (1024 * 1024 + 10), {}, 413, "Maximum request body size 1048576 exceeded"),
        (
            b'{"specversion":"1.0","id":"1","source":"s","type":"sh.keptn.event.get-sli.triggered",'
            b'"shkeptncontext":"c","data":{}}',
            {},
            400,
            "sliProvider",
        ),
        (
            b'{"specversion":"1.0","id":"1","source":"s","type":"sh.keptn.event.get-sli.triggered"}',
            {},
            400,
            "shkeptncontext",
        ),
    ],
)
async def test_bad_input_gets_a_clear_4xx(
    service: ServiceFactory,
    session: aiohttp.ClientSession,
    body: bytes,
    headers: dict[str, str],
    status: int,
    needle: str,
) -> None:
    async with service() as url:
        async with session.post(url + "/", data=io.BytesIO(body), headers=headers) as response:
            assert response.status == status
            text = await response.text()
            assert needle in text
            if status == 400:
                assert (await response.json())["error"]
        # The same service is still up after the bad input.
        async with session.get(url + "/health") as health:
            assert health.status == 200


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"start": "not-a-time"}, "start"),
        ({"end": "2000-01-01T00:00:00.000Z"}, "before start"),
    ],
)
async def test_invalid_data_of_our_event_gets_started_then_errored(
    service: ServiceFactory,
    fake_keptn: FakeKeptn,
    load_run: LoadRun,
    load_tags: RunTags,
    change: dict[str, str],
    reason: str,
) -> None:
    event = trigger_for(load_run, load_tags, ["http_reqs_total"])
    event["data"]["get-sli"].update(change)
    async with service() as url:
        status, _ = await post_event(url, event)
        assert status == 202
        finished = await answer(fake_keptn, event)
    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert reason in finished["data"]["message"]


async def test_missing_project_still_gets_started_and_errored_finished(
    service: ServiceFactory, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    event = trigger_for(load_run, load_tags, ["http_reqs_total"])
    del event["data"]["project"]
    async with service() as url:
        await post_event(url, event)
        await fake_keptn.wait_for_events(
            type="sh.keptn.event.get-sli.finished", shkeptncontext=event["shkeptncontext"]
        )
    started, finished = fake_keptn.events_for(event["shkeptncontext"])
    assert started["type"] == "sh.keptn.event.get-sli.started"
    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert "data.project is missing" in finished["data"]["message"]


async def test_preview_post_and_get_with_token(
    service: ServiceFactory, session: aiohttp.ClientSession, load_run: LoadRun, load_tags: RunTags
) -> None:
    body = {
        "project": load_tags.project,
        "stage": load_tags.stage,
        "service": load_tags.service,
        "start": format_keptn(load_run.start),
        "end": format_keptn(load_run.end),
        "context": load_tags.context,
        "indicators": ["http_reqs_total", "nope"],
    }
    async with service(preview_token=Secret("tok")) as url:
        async with session.post(url + "/preview", json=body) as response:
            assert response.status == 401
        async with session.post(
            url + "/preview", json=body, headers={"Authorization": "Bearer wrong"}
        ) as response:
            assert response.status == 401
        auth = {"Authorization": "Bearer tok"}
        async with session.post(url + "/preview", json=body, headers=auth) as response:
            assert response.status == 200
            posted = (await response.json())["indicators"]
        params = [(k, v) for k, v in body.items() if k != "indicators"] + [
            ("indicators", "http_reqs_total,nope")
        ]
        async with session.get(url + "/preview", params=params, headers=auth) as response:
            assert response.status == 200
            got = (await response.json())["indicators"]
        async with session.post(url + "/preview", json={"project": "x"}, headers=auth) as response:
            assert response.status == 400
            assert "is required" in (await response.json())["error"]
    assert [i["metric"] for i in posted] == ["http_reqs_total", "nope"]
    assert posted[0]["value"] == load_run.summary["metrics"]["http_reqs"]["values"]["count"]
    assert posted[0]["success"] and not posted[1]["success"]
    assert set(posted[0]) == {"metric", "query", "value", "success", "message", "duration_ms"}
    assert [(i["metric"], i["value"]) for i in got] == [(i["metric"], i["value"]) for i in posted]


async def test_preview_without_token_lists_every_builtin(
    service: ServiceFactory, session: aiohttp.ClientSession, load_run: LoadRun, load_tags: RunTags
) -> None:
    body = {
        "project": load_tags.project,
        "stage": load_tags.stage,
        "service": load_tags.service,
        "start": load_run.start,
        "end": load_run.end,
        "context": load_tags.context,
    }
    async with service() as url, session.post(url + "/preview", json=body) as response:
        assert response.status == 200
        metrics = [i["metric"] for i in (await response.json())["indicators"]]
    assert sorted(metrics) == sorted(BUILTINS)


async def test_health_ready_and_metrics(
    service: ServiceFactory,
    session: aiohttp.ClientSession,
    fake_keptn: FakeKeptn,
    load_run: LoadRun,
    load_tags: RunTags,
) -> None:
    event = trigger_for(load_run, load_tags, ["vus_max"])
    async with service() as url:
        async with session.get(url + "/ready") as response:
            assert response.status == 200
        await post_event(url, event)
        await answer(fake_keptn, event)
        async with session.get(url + "/metrics") as response:
            text = await response.text()
    assert (
        'sli_provider_events_answered_total{result="pass",status="succeeded",task="get-sli"} 1.0'
        in text
    )
    assert "sli_provider_query_duration_seconds_bucket" in text
    async with (
        service(prometheus_url=f"http://127.0.0.1:{free_port()}") as url,
        session.get(url + "/ready") as response,
    ):
        assert response.status == 503


async def test_shutdown_sends_errored_finished_for_work_in_flight(
    service: ServiceFactory, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    """An event still waiting on Prometheus at shutdown gets its errored finished reply."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept and never answer, like a hung Prometheus

    blackhole = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = blackhole.sockets[0].getsockname()[1]
    event = trigger_for(load_run, load_tags, ["vus_max"])
    try:
        async with service(
            prometheus_url=f"http://127.0.0.1:{port}", shutdown_grace_seconds=0.5
        ) as url:
            await post_event(url, event)
            await fake_keptn.wait_for_events(
                type="sh.keptn.event.get-sli.started", shkeptncontext=event["shkeptncontext"]
            )
        finished = await answer(fake_keptn, event)
    finally:
        for writer in held:
            writer.close()
        blackhole.close()
        await blackhole.wait_closed()
    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert "shut down" in finished["data"]["message"]


async def test_queries_retry_5xx_and_429_but_never_bad_data(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    """A proxy in front of the real Prometheus answers 503 then 429 before forwarding: the
    indicator still gets its value, and the retries are counted. A query Prometheus rejects as
    bad_data (400) is sent exactly once."""
    fake_keptn.set_resource(
        "indicators:\n  broken: sum(rate(k6_http_reqs_total[$DURATION_SECONDS])\n",
        "k6/sli.yaml",
        project=load_tags.project,
    )
    async with TenantGateway(prometheus.url, tenant=None, token=None) as proxy:
        settings = Settings(
            prometheus_url=proxy.url,
            distributor_url=fake_keptn.url,
            query_attempts=4,
            retry_max_wait_seconds=0.2,
            query_concurrency=1,
            metrics_store="prometheus",  # the injected failures are for queries, not build info
        )
        async with running_service(settings) as url:
            proxy.fail_next(503, 1)
            proxy.fail_next(429, 1)
            good = trigger_for(load_run, load_tags, ["iterations_total"], context=load_tags.context)
            await post_event(url, good)
            finished = await answer(fake_keptn, good)
            assert values_of(finished)["iterations_total"]["success"]
            before = len(proxy.seen)
            bad = trigger_for(load_run, load_tags, ["broken"], context=str(uuid.uuid4()))
            await post_event(url, bad)
            rejected = await answer(fake_keptn, bad)
            async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as r:
                metrics = await r.text()
    assert (
        values_of(finished)["iterations_total"]["value"]
        == (load_run.summary["metrics"]["iterations"]["values"]["count"])
    )
    assert 'sli_provider_retries_total{target="prometheus"} 2.0' in metrics
    assert len(proxy.seen) - before == 1  # bad_data: no retry (and no probe: no built-ins)
    assert "bad_data" in values_of(rejected)["broken"]["message"]


async def test_retry_after_is_honoured(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    """429 with Retry-After: 1 → the retry waits about a second, not the short backoff."""
    async with TenantGateway(prometheus.url, tenant=None, token=None) as proxy:
        settings = Settings(
            prometheus_url=proxy.url,
            distributor_url=fake_keptn.url,
            retry_max_wait_seconds=5,  # no build info asked: the 429 is
            metrics_store="prometheus",
        )  # for the query
        body = {
            "project": load_tags.project,
            "stage": load_tags.stage,
            "service": load_tags.service,
            "start": load_run.start,
            "end": load_run.end,
            "indicators": ["vus_max"],
        }
        async with running_service(settings) as url, aiohttp.ClientSession() as session:
            proxy.fail_next(429, 1, retry_after="1")
            async with session.post(url + "/preview", json=body) as response:
                (item,) = (await response.json())["indicators"]
    assert item["success"], item
    assert item["duration_ms"] >= 1000
