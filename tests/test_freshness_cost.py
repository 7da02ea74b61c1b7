"""What the freshness check (sli/freshness.py) costs the store, on a real k6 run in Prometheus.

The check precedes every built-in query of a get-sli, so what it reads is added to the reply's
latency. The service's queries go through a recording proxy; Prometheus
itself says how many samples each one read (``stats=all``).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from devkit.events import get_sli_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.k6run import LoadRun
from devkit.prefix_proxy import PrefixProxy
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from sli_provider.config import Settings
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.timestamps import format_keptn, parse_keptn
from sli_provider.sli.templating import duration_seconds, scope_selector
from sli_provider.sli.window import SLIWindow
from tests.helpers import send_event


async def samples_read(prometheus_url: str, query: str, at: str) -> int:
    params = {"query": query, "time": at, "stats": "all"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(prometheus_url + "/api/v1/query", params=params) as response,
    ):
        body: dict[str, Any] = await response.json()
    assert body["status"] == "success", body
    return int(body["data"]["stats"]["samples"]["totalQueryableSamples"])


async def test_the_freshness_check_of_a_final_run_reads_only_vus_max_in_the_window(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    """Prometheus shows every sample at once, so the freshness check needs the window's count of
    the run's series only to answer the run-series check, and vus_max (one series per k6
    instance) answers it.
    Counting iterations_total too would decode every one of its series in the window, a series
    per tag set a script gives its iterations: most of the check's cost (bench/README.md)."""
    start, end = format_keptn(load_run.start), format_keptn(load_run.end)
    event = get_sli_triggered(
        project=load_tags.project,
        stage=load_tags.stage,
        service=load_tags.service,
        start=start,
        end=end,
        indicators=["http_req_duration_p95", "iterations_total"],
        context=load_tags.context,
    )
    async with PrefixProxy({"/p": prometheus.url}) as proxy:
        config = Settings(prometheus_url=proxy.url + "/p", distributor_url=fake_keptn.url)
        async with running_service(config) as url:
            await send_event(url, event)
            (finished,) = await fake_keptn.wait_for_events(
                type="sh.keptn.event.get-sli.finished", shkeptncontext=event["shkeptncontext"]
            )
    values = finished["data"]["get-sli"]["indicatorValues"]
    assert all(v["success"] for v in values), values
    # The run is final and in the window: one freshness check (its two queries), which also
    # answered the run-series check.
    sent = [q for q in proxy.queries_seen if "query" in q]
    live = [q for q in sent if q["query"].startswith("(min(timestamp(k6_vus_max")]
    counts = [q for q in sent if "> bool 0) or vector(0))" in q["query"]]
    assert len(live) == 1 and len(counts) == 1, sent
    assert not [q for q in sent if q["query"].startswith("count(last_over_time(k6_")], sent

    window = SLIWindow(
        load_tags.project,
        load_tags.stage,
        load_tags.service,
        start_s=parse_keptn(start),
        end_s=parse_keptn(end),
        context=load_tags.context,
    )
    scope = scope_selector(window, with_context=True)
    vus_max_in_window = f"count(last_over_time(k6_vus_max{{{scope}}}[{duration_seconds(window)}s]))"
    at = counts[0]["time"]
    assert float(at) == window.end_s  # the count is asked at the window's end
    alone = await samples_read(prometheus.url, vus_max_in_window, at)
    assert alone > 0
    assert await samples_read(prometheus.url, counts[0]["query"], at) == alone
