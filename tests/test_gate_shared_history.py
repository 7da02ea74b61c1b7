"""With Keptn's NATS (NATS_URL, jetstream delivery) the gate's history is a key-value bucket every
replica sees: two replicas measuring the same run at once store it once, and each compares with
what the other stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats

from devkit.gate_runs import gate_scope, write_slo
from devkit.nats import NatsServer
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from devkit.target import TargetServer
from sli_provider.adapters.gate_history import kv_bucket_name
from sli_provider.config import Settings
from tests.helpers import post_gate


async def test_two_replicas_store_a_run_once_in_the_shared_bucket(
    nats_server: NatsServer, prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    scope_run = await gate_scope(prometheus.url, target.url, tmp_path, failing=False)
    write_slo(tmp_path / "config", scope_run.tags)
    settings = Settings(
        prometheus_url=prometheus.url,
        sli_config_dir=tmp_path / "config",
        nats_url=nats_server.url,
        runner_enabled=False,
        query_attempts=1,
        gate_history=tmp_path / "unused.sqlite3",
    )
    async with running_service(settings) as one, running_service(settings) as two:
        answers = await asyncio.gather(*(post_gate(url, scope_run.scope) for url in (one, two) * 3))
    assert [status for status, _ in answers] == [200] * 6, answers
    assert {a["result"] for _, a in answers} == {"pass"}
    assert sum(a["history"]["stored"] for _, a in answers) == 1
    assert not (tmp_path / "unused.sqlite3").exists()
    client = await nats.connect(nats_server.url)
    try:
        bucket = await client.jetstream().key_value(kv_bucket_name("k6"))
        keys = await bucket.keys()
    finally:
        await client.close()
    assert len(keys) == 1
