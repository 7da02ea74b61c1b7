"""Direct NATS mode with a real nats-server and real `sli-provider serve` processes."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import nats
import pytest
from nats.aio.msg import Msg

from devkit.events import get_sli_triggered
from devkit.k6run import LoadRun
from devkit.nats import NatsServer
from devkit.prometheus import PrometheusServer
from devkit.service import ServiceProcess, serve_process
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.envelope import to_keptn_model
from sli_provider.keptn.timestamps import format_keptn


@pytest.fixture(scope="module")
async def nats_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NatsServer]:
    async with NatsServer(tmp_path_factory.mktemp("nats") / "nats.log") as server:
        yield server


def replica(env: dict[str, str], log: Path) -> AbstractAsyncContextManager[ServiceProcess]:
    return serve_process({"RUNNER_ENABLED": "false", **env}, log)


class Listener:
    """Plays lighthouse and shipyard: collects every get-sli reply published on NATS."""

    def __init__(self) -> None:
        self.replies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.changed = asyncio.Event()

    async def on_message(self, message: Msg) -> None:
        event = json.loads(message.data)
        if event["type"].endswith(".triggered"):
            return
        assert message.subject == event["type"]
        assert "contenttype" in event and "datacontenttype" not in event  # Keptn's NATS model
        self.replies[event["triggeredid"]].append(event)
        self.changed.set()

    async def wait_finished(self, count: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while (
                sum(1 for r in self.replies.values() for e in r if e["type"].endswith(".finished"))
                < count
            ):
                self.changed.clear()
                await self.changed.wait()


def trigger(run: LoadRun, tags: RunTags) -> dict[str, Any]:
    return get_sli_triggered(
        project=tags.project, stage=tags.stage, service=tags.service,
        start=format_keptn(run.start), end=format_keptn(run.end),
        indicators=["vus_max", "http_reqs_total"], context=tags.context,
    )  # fmt: skip


async def test_three_replicas_share_300_events_exactly_once(
    nats_server: NatsServer, prometheus: PrometheusServer, load_run: LoadRun, load_tags: RunTags,
    tmp_path: Path,
) -> None:  # fmt: skip
    # Local mode for sli.yaml: no resource service here, the built-in SLIs are enough.
    env = {"NATS_URL": nats_server.url, "PROMETHEUS_URL": prometheus.url,
           "SLI_CONFIG_DIR": str(tmp_path)}  # fmt: skip
    listener = Listener()
    client = await nats.connect(nats_server.url)
    try:
        await client.subscribe("sh.keptn.event.get-sli.*", cb=listener.on_message)
        async with AsyncExitStack() as stack:
            replicas = [
                await stack.enter_async_context(replica(env, tmp_path / f"replica-{i}.log"))
                for i in range(3)
            ]
            for r in replicas:
                assert (await r.get("/ready"))[0] == 200
            events = [trigger(load_run, load_tags) for _ in range(300)]
            for event in events:
                await client.publish(
                    "sh.keptn.event.get-sli.triggered", json.dumps(to_keptn_model(event)).encode()
                )
            await client.flush()
            await listener.wait_finished(300, timeout=120)
            # HTTP ingress keeps working beside NATS; its replies go to NATS too.
            extra = trigger(load_run, load_tags)
            async with (
                aiohttp.ClientSession() as session,
                session.post(replicas[0].url + "/", json=extra) as response,
            ):
                assert response.status == 202
            await listener.wait_finished(301, timeout=30)
            handled = []
            for r in replicas:
                _, text = await r.get("/metrics")
                line = next(
                    (row for row in text.splitlines()
                     if row.startswith("sli_provider_events_received_total{")
                     and 'disposition="accepted"' in row), None,
                )  # fmt: skip
                handled.append(float(line.rsplit(" ", 1)[1]) if line else 0.0)
    finally:
        await client.close()

    counts = {e["id"]: [r["type"] for r in listener.replies[e["id"]]] for e in [*events, extra]}
    wrong = {k: v for k, v in counts.items()
             if v != ["sh.keptn.event.get-sli.started", "sh.keptn.event.get-sli.finished"]}  # fmt: skip
    assert wrong == {}
    finished = [r[1] for r in listener.replies.values()]
    assert {(f["data"]["status"], f["data"]["result"]) for f in finished} == {("succeeded", "pass")}
    assert sum(handled) == 301
    assert all(h > 0 for h in handled), handled


async def test_sigterm_drains_not_ready_then_errored_finished_and_exit_zero(
    nats_server: NatsServer, load_run: LoadRun, load_tags: RunTags, tmp_path: Path
) -> None:
    """1. A replica's Prometheus hangs, so an event stays in flight.
    2. SIGTERM: /ready turns 503 while the event gets its grace period.
    3. After the grace period the event is answered errored and the process exits 0."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    blackhole = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = blackhole.sockets[0].getsockname()[1]
    env = {"NATS_URL": nats_server.url, "PROMETHEUS_URL": f"http://127.0.0.1:{port}",
           "SHUTDOWN_GRACE_SECONDS": "2", "NATS_QUEUE_GROUP": "drain-test",
           "SLI_CONFIG_DIR": str(tmp_path)}  # fmt: skip
    listener = Listener()
    client = await nats.connect(nats_server.url)
    try:
        await client.subscribe("sh.keptn.event.get-sli.*", cb=listener.on_message)
        async with replica(env, tmp_path / "replica.log") as r:
            event = trigger(load_run, load_tags)
            await client.publish("sh.keptn.event.get-sli.triggered",
                                 json.dumps(to_keptn_model(event)).encode())  # fmt: skip
            async with asyncio.timeout(10):
                while not listener.replies.get(event["id"]):
                    listener.changed.clear()
                    await listener.changed.wait()
            loop = asyncio.get_running_loop()
            signalled = loop.time()
            r.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            status, _ = await r.get("/ready")
            assert status == 503
            assert await asyncio.wait_for(r.process.wait(), 15) == 0
            elapsed = loop.time() - signalled
        await listener.wait_finished(1, timeout=5)
    finally:
        await client.close()
        for writer in held:
            writer.close()
        blackhole.close()
        await blackhole.wait_closed()
    types = [e["type"] for e in listener.replies[event["id"]]]
    assert types == ["sh.keptn.event.get-sli.started", "sh.keptn.event.get-sli.finished"]
    finished = listener.replies[event["id"]][1]
    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert "shut down" in finished["data"]["message"]
    assert 2.0 <= elapsed < 8.0
