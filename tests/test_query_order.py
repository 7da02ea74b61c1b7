"""Which indicator query goes out first when QUERY_CONCURRENCY holds the rest back."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from devkit.fake_keptn import FakeKeptn
from devkit.gateway import TenantGateway
from devkit.k6run import LoadRun
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from sli_provider.config import Settings
from sli_provider.k6.invocation import RunTags
from tests.helpers import answer, post_event, trigger_for, values_of


async def test_curve_queries_go_first_and_the_reply_keeps_the_requested_order(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn, load_run: LoadRun, load_tags: RunTags
) -> None:
    """One query at a time: the percentile built-in's curve query (the costliest) is sent before
    the cheap ones listed ahead of it, and the finished event lists the indicators as asked."""
    asked = ["vus_max", "iterations_total", "http_req_duration_p95"]
    async with TenantGateway(prometheus.url, tenant=None, token=None) as proxy:
        settings = Settings(
            prometheus_url=proxy.url,
            distributor_url=fake_keptn.url,
            query_concurrency=1,
            freshness_wait_seconds=0,  # no freshness check: only the run-series check and these
            metrics_store="prometheus",
        )
        async with running_service(settings) as url:
            event = trigger_for(load_run, load_tags, asked)
            await post_event(url, event)
            finished = await answer(fake_keptn, event)
    values = values_of(finished)
    assert list(values) == asked
    assert all(v["success"] for v in values.values()), values
    sent = [
        parse_qs(urlsplit(path).query)["query"][0]
        for path in proxy.paths_seen
        if path.startswith("/api/v1/query?")
    ]
    indicator_queries = [q for q in sent if q in {v["query"] for v in values.values()}]
    assert indicator_queries == [values[name]["query"] for name in (asked[2], *asked[:2])]
