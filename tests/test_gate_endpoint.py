"""/gate on `serve`: a scope's slo.yaml scored on its latest k6 run, found in a real Prometheus."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from devkit.gate_runs import GATE_SLO, GateScope, gate_scope, write_slo
from devkit.k6run import LoadRun, run_load
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.stores import MetricsStore
from devkit.target import TargetServer
from sli_provider.adapters.history_store import HistoryStore
from sli_provider.adapters.prometheus import PrometheusClient
from sli_provider.config import Secret
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.timestamps import format_keptn
from sli_provider.service.gate_request import fields_of_body
from sli_provider.service.preview import PreviewError
from sli_provider.sli.k6_runs import Scope, find_runs, in_progress
from sli_provider.sli.window import SLIWindow
from tests.helpers import gate_settings, post_gate, validate


@pytest.fixture(scope="module")
async def passing(
    prometheus: PrometheusServer, target: TargetServer, tmp_path_factory: pytest.TempPathFactory
) -> GateScope:
    return await gate_scope(
        prometheus.url, target.url, tmp_path_factory.mktemp("pass"), failing=False
    )


@pytest.fixture(scope="module")
async def failing(
    prometheus: PrometheusServer, target: TargetServer, tmp_path_factory: pytest.TempPathFactory
) -> GateScope:
    return await gate_scope(
        prometheus.url, target.url, tmp_path_factory.mktemp("fail"), failing=True
    )


async def test_the_latest_run_is_scored_and_stored_once(
    prometheus: PrometheusServer, passing: GateScope, tmp_path: Path
) -> None:
    write_slo(tmp_path / "config", passing.tags)
    settings = gate_settings(prometheus, tmp_path)
    async with running_service(settings) as url:
        status, first = await post_gate(url, passing.scope)
        again_status, again = await post_gate(url, passing.scope)
    assert status == 200, first
    validate(first)
    assert first["result"] == "pass" and first["evaluation"]["result"] == "pass"
    assert first["schemaVersion"] == "1.0" and first["reasons"] == []
    assert first["run"]["context"] == passing.tags.context
    # The window found from the run's own samples holds the whole run: k6's own count.
    values = {o["sli"]: o["value"] for o in first["objectives"]}
    count = passing.run.summary["metrics"]["http_reqs"]["values"]["count"]
    assert values["http_reqs_total"] == count
    assert first["history"]["stored"] is True
    # Measured again (Argo measures on an interval): the same verdict, no second entry.
    assert again_status == 200 and again["result"] == "pass"
    assert again["history"] == {**first["history"], "stored": False}
    with HistoryStore(settings.gate_history) as store:
        entries = store.list("gate", "staging", passing.tags.service)
    assert [e.context for e in entries] == [passing.tags.context]


async def test_a_failing_run_fails_with_lighthouses_score(
    prometheus: PrometheusServer, failing: GateScope, tmp_path: Path
) -> None:
    write_slo(tmp_path / "config", failing.tags)
    async with running_service(gate_settings(prometheus, tmp_path)) as url:
        status, answer = await post_gate(url, failing.scope)
        webhook_status, webhook = await post_gate(url, failing.scope, path="/gate/webhook")
    assert status == 200, answer
    validate(answer)
    assert answer["result"] == "fail"
    (failed,) = [o for o in answer["objectives"] if o["sli"] == "http_req_failed_rate"]
    assert failed["status"] == "fail" and failed["value"] > 0.4
    assert webhook_status == 412 and webhook["result"] == "fail"


async def test_nothing_to_judge_is_never_a_pass(
    prometheus: PrometheusServer, passing: GateScope, tmp_path: Path
) -> None:
    other = {**passing.scope, "service": "never-ran"}
    write_slo(tmp_path / "config", passing.tags)
    (tmp_path / "config" / "gate" / "staging" / "never-ran").mkdir(parents=True)
    (tmp_path / "config" / "gate" / "staging" / "never-ran" / "slo.yaml").write_text(
        (tmp_path / "config" / "gate" / "staging" / passing.tags.service / "slo.yaml").read_text()
    )
    async with running_service(gate_settings(prometheus, tmp_path)) as url:
        no_run = await post_gate(url, other)
        no_slo = await post_gate(url, {**passing.scope, "stage": "prod"})
        webhook = await post_gate(url, other, path="/gate/webhook")
    async with running_service(
        gate_settings(prometheus, tmp_path, prometheus_url="http://127.0.0.1:9")
    ) as url:
        down = await post_gate(url, passing.scope)
    for status, answer in (no_run, no_slo, webhook, down):
        assert status in (422, 502, 504), answer
        assert answer["result"] == "cannot_judge" and answer["reasons"], answer
        validate(answer)
    assert "no k6 run" in no_run[1]["error"]
    assert "no slo.yaml" in no_slo[1]["error"]
    assert down[0] == 502


async def test_a_given_window_and_context_and_the_token(
    prometheus: PrometheusServer, passing: GateScope, tmp_path: Path
) -> None:
    write_slo(tmp_path / "config", passing.tags)
    body = {
        **passing.scope,
        "context": passing.tags.context,
        "start": format_keptn(passing.run.start),
        "end": format_keptn(passing.run.end),
    }
    settings = gate_settings(prometheus, tmp_path, preview_token=Secret("s3cret"))
    async with running_service(settings) as url:
        refused, _ = await post_gate(url, body)
        status, answer = await post_gate(url, body, headers={"Authorization": "Bearer s3cret"})
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                url + "/gate",
                params={**passing.scope, "recent": "10m", "store": "false"},
                headers={"Authorization": "Bearer s3cret"},
            ) as response,
        ):
            recent = response.status, await response.json()
        bad = await post_gate(
            url,
            {"project": "../x", "start": "soon", "lookbak": "1h"},
            headers={"Authorization": "Bearer s3cret"},
        )
    assert refused == 401
    assert status == 200 and answer["result"] == "pass", answer
    count = passing.run.summary["metrics"]["http_reqs"]["values"]["count"]
    assert {o["sli"]: o["value"] for o in answer["objectives"]}["http_reqs_total"] == count
    assert recent[0] == 200 and recent[1]["history"]["stored"] is False, recent
    assert bad[0] == 400 and len(bad[1]["problems"]) >= 4, json.dumps(bad[1])
    assert "unknown field 'lookbak'" in bad[1]["error"]


async def test_k6_thresholds_judged_on_the_whole_run(
    prometheus: PrometheusServer, passing: GateScope, tmp_path: Path
) -> None:
    """The script's thresholds, in k6's format, on the run's whole-run values: crossed ones make
    the verdict worse as `sli-provider run` does (--thresholds), lighthouse's result stays."""
    write_slo(tmp_path / "config", passing.tags)
    held = {"http_req_failed": ["rate<0.01"], "http_req_duration": ["p(95)<2000", "max<60000"]}
    crossed = {**held, "http_reqs": [{"threshold": "count<1", "abortOnFail": True}]}
    body = {**passing.scope, "store": "false"}
    async with running_service(gate_settings(prometheus, tmp_path)) as url:
        ok = await post_gate(url, {**body, "thresholds": held})
        failed = await post_gate(url, {**body, "thresholds": crossed})
        warned = await post_gate(
            url, {**body, "thresholds": json.dumps(crossed), "thresholdPolicy": "warning"}
        )
        refused = await post_gate(
            url,
            {
                **body,
                "thresholds": {"http_req_duration{status:200}": ["p(95)<1"], "vus": ["value<3"]},
            },
        )
    assert ok[0] == 200 and ok[1]["result"] == "pass", ok
    assert [t["ok"] for t in ok[1]["k6"]["thresholds"]] == [True, True, True]
    validate(failed[1])
    assert (failed[1]["result"], failed[1]["evaluation"]["result"]) == ("fail", "pass")
    assert "k6 thresholds crossed: http_reqs: count<1" in failed[1]["reasons"][0]
    assert failed[1]["k6"]["exitCode"] == 99
    assert warned[1]["result"] == "warning"
    assert [w["code"] for w in warned[1]["warnings"]] == ["thresholds_crossed"]
    assert refused[0] == 400 and "has no whole-run value here" in refused[1]["error"], refused


async def test_the_run_and_its_span_are_found_in_either_store(
    store: MetricsStore, store_load_run: LoadRun, load_tags: RunTags
) -> None:
    """The lookup's two queries (a subquery of counts, then the run's raw samples) in Prometheus
    and in VictoriaMetrics: the run's span lies within k6's own run and holds all of it."""
    client = PrometheusClient(store.url, concurrency=2, timeout=10, attempts=1, max_wait=0)
    scope = Scope(load_tags.project, load_tags.stage, load_tags.service)
    try:
        (run,) = await find_runs(client, scope, time.time(), 3600, load_tags.context)
        window = SLIWindow(
            scope.project, scope.stage, scope.service, run.start_s, run.end_s, context=run.context
        )
        count = await client.instant(
            f"sum(last_over_time(k6_http_reqs_total{{{scope.selector(run.context)}}}"
            f"[{int(run.end_s - run.start_s) + 1}s]))",
            run.end_s,
        )
        running = await in_progress(client, window, time.time())
    finally:
        await client.aclose()
    assert store_load_run.start <= run.first_sample_s <= run.last_sample_s <= store_load_run.end
    assert (
        float(count[0]["value"][1])
        == store_load_run.summary["metrics"]["http_reqs"]["values"]["count"]
    )
    assert running is False


async def test_the_history_keeps_the_gates_verdict_for_later_comparisons(
    prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    """A run whose gate failed on k6's thresholds (lighthouse passed it) is stored as failed, so
    the next run's relative criteria (include_result_with_score: pass) do not compare with it;
    one whose gate passed is compared with."""
    first = await gate_scope(prometheus.url, target.url, tmp_path, failing=False)
    # Relative, so earlier runs are compared with; loose, so a loaded machine's p95 passes it.
    write_slo(tmp_path / "config", first.tags, GATE_SLO.replace('"<=+50%"', '"<=+100000%"'))
    crossed = {"http_reqs": ["count<1"]}

    async def next_run() -> None:
        tags = RunTags(first.tags.project, first.tags.stage, first.tags.service, str(uuid.uuid4()))
        await run_load(
            prometheus_url=prometheus.url,
            target_url=target.url,
            tags=tags,
            workdir=tmp_path,
            vus=2,
            duration="2s",
            fail_every=0,
        )

    async with running_service(gate_settings(prometheus, tmp_path)) as url:
        failed = await post_gate(url, {**first.scope, "thresholds": crossed})
        await next_run()
        after_failed = await post_gate(url, first.scope)
        await next_run()
        after_passed = await post_gate(url, first.scope)
    assert (failed[1]["result"], failed[1]["evaluation"]["result"]) == ("fail", "pass")
    assert after_failed[1]["result"] == "pass"
    assert after_failed[1]["history"]["compared"] == 0  # the failed gate is no baseline
    assert after_passed[1]["history"]["compared"] == 1
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        entries = store.list(*first.scope.values())
    assert [e.result for e in entries] == ["pass", "pass", "fail"]
    assert entries[-1].data["evaluation"]["result"] == "pass"  # lighthouse's, kept


def test_a_flagger_payload_without_metadata_says_where_the_scope_goes() -> None:
    payload = {"name": "web", "namespace": "shop", "phase": "Progressing", "checksum": "x"}
    with pytest.raises(PreviewError, match="webhook's metadata"):
        fields_of_body(payload)
    assert fields_of_body({**payload, "metadata": {"project": "p"}}) == {"project": "p"}
