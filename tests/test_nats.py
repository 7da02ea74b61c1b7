"""Direct NATS mode with a real nats-server and real `sli-provider serve` processes."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import nats
import pytest
from nats.aio.msg import Msg

from devkit.events import GET_SLI_TRIGGERED as GET_SLI
from devkit.events import get_sli_triggered
from devkit.k6run import LoadRun
from devkit.nats import NatsServer
from devkit.ports import free_port
from devkit.prometheus import PrometheusServer
from devkit.service import ServiceProcess, running_service, serve_process
from sli_provider.adapters.nats_bus import NatsBus, NatsError, NatsPublishError
from sli_provider.config import Settings
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.envelope import KeptnEvent, to_keptn_model
from tests.delivery import Listener, trigger
from tests.helpers import send_event


@pytest.fixture(scope="module")
async def nats_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NatsServer]:
    async with NatsServer(tmp_path_factory.mktemp("nats") / "nats.log") as server:
        yield server


def replica(env: dict[str, str], log: Path) -> AbstractAsyncContextManager[ServiceProcess]:
    return serve_process({"RUNNER_ENABLED": "false", **env}, log)


async def test_three_replicas_share_300_events_exactly_once(
    nats_server: NatsServer,
    prometheus: PrometheusServer,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    # Local mode for sli.yaml: no resource service here, the built-in SLIs are enough.
    env = {
        "NATS_URL": nats_server.url,
        "PROMETHEUS_URL": prometheus.url,
        "SLI_CONFIG_DIR": str(tmp_path),
        "NATS_DELIVERY": "core",
    }
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
            await send_event(replicas[0].url, extra)
            await listener.wait_finished(301, timeout=30)
            handled = []
            for r in replicas:
                _, text = await r.get("/metrics")
                line = next(
                    (
                        row
                        for row in text.splitlines()
                        if row.startswith("sli_provider_events_received_total{")
                        and 'disposition="accepted"' in row
                    ),
                    None,
                )
                handled.append(float(line.rsplit(" ", 1)[1]) if line else 0.0)
    finally:
        await client.close()

    assert listener.problems == []
    counts = {e["id"]: [r["type"] for r in listener.replies[e["id"]]] for e in [*events, extra]}
    wrong = {
        k: v
        for k, v in counts.items()
        if v != ["sh.keptn.event.get-sli.started", "sh.keptn.event.get-sli.finished"]
    }
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
    env = {
        "NATS_URL": nats_server.url,
        "PROMETHEUS_URL": f"http://127.0.0.1:{port}",
        "SHUTDOWN_GRACE_SECONDS": "2",
        "NATS_QUEUE_GROUP": "drain-test",
        "NATS_DELIVERY": "core",
        "SLI_CONFIG_DIR": str(tmp_path),
    }
    listener = Listener()
    client = await nats.connect(nats_server.url)
    try:
        await client.subscribe("sh.keptn.event.get-sli.*", cb=listener.on_message)
        async with replica(env, tmp_path / "replica.log") as r:
            event = trigger(load_run, load_tags)
            await client.publish(
                "sh.keptn.event.get-sli.triggered", json.dumps(to_keptn_model(event)).encode()
            )
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
    assert listener.problems == []
    types = [e["type"] for e in listener.replies[event["id"]]]
    assert types == ["sh.keptn.event.get-sli.started", "sh.keptn.event.get-sli.finished"]
    finished = listener.replies[event["id"]][1]
    assert (finished["data"]["status"], finished["data"]["result"]) == ("errored", "fail")
    assert "shut down" in finished["data"]["message"]
    assert 2.0 <= elapsed < 8.0


def received(metrics_text: str, type_: str, disposition: str) -> float:
    row = f'sli_provider_events_received_total{{disposition="{disposition}",type="{type_}"}} '
    line = next((r for r in metrics_text.splitlines() if r.startswith(row)), None)
    return float(line.rsplit(" ", 1)[1]) if line else 0.0


async def test_empty_shkeptncontext_is_rejected_the_same_on_both_ingresses(
    nats_server: NatsServer, prometheus: PrometheusServer, tmp_path: Path
) -> None:
    """One rule in the dispatcher: over HTTP a 400, over NATS no reply; both counted as
    rejected get-sli events. A NATS message that is not an event is counted like a bad body."""
    settings = Settings(
        nats_url=nats_server.url,
        prometheus_url=prometheus.url,
        sli_config_dir=tmp_path,
        nats_queue_group="empty-context",
        nats_delivery="core",
    )
    listener = Listener()
    client = await nats.connect(nats_server.url)
    try:
        for kind in ("started", "finished"):  # not *: the test's own bad message would show
            await client.subscribe(f"sh.keptn.event.get-sli.{kind}", cb=listener.on_message)
        async with running_service(settings) as url, aiohttp.ClientSession() as session:
            over_http = get_sli_triggered(
                project="p",
                stage="s",
                service="v",
                indicators=None,
                start="2026-01-01T00:00:00.000Z",
                end="2026-01-01T00:05:00.000Z",
            )
            over_nats = {**over_http, "id": "over-nats", "shkeptncontext": ""}
            over_http["shkeptncontext"] = ""
            async with session.post(url + "/", json=over_http) as response:
                assert response.status == 400
                assert "shkeptncontext" in (await response.json())["error"]
            await client.publish(GET_SLI, json.dumps(to_keptn_model(over_nats)).encode())
            await client.publish(GET_SLI, b"{not json")
            await client.flush()
            async with asyncio.timeout(10):
                while True:
                    async with session.get(url + "/metrics") as response:
                        text = await response.text()
                    if received(text, "invalid", "rejected") >= 1:
                        break
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # time for a reply that must not come
            async with session.get(url + "/metrics") as response:
                text = await response.text()
    finally:
        await client.close()
    assert received(text, GET_SLI, "rejected") == 2  # one per ingress
    assert received(text, GET_SLI, "accepted") == 0
    assert received(text, "invalid", "rejected") == 1
    assert listener.replies == {} and listener.problems == []


async def test_a_publish_whose_flush_times_out_is_not_published_twice(tmp_path: Path) -> None:
    """The server stalls after the reply was handed to the client: the flush times out, the
    reply is reported as maybe sent, and once the server is back it holds exactly one copy."""
    finished = "sh.keptn.event.get-sli.finished"
    copies: list[bytes] = []
    arrived = asyncio.Event()

    async def count(message: Msg) -> None:
        copies.append(message.data)
        arrived.set()

    async def not_subscribed(event: KeptnEvent) -> Any:
        raise AssertionError("no subscriptions in this test")

    async with NatsServer(tmp_path / "nats.log") as server:
        watcher = await nats.connect(server.url)
        bus = NatsBus(
            server.url,
            queue_group="q",
            subjects=(),
            on_event=not_subscribed,
            on_malformed=lambda reason: None,
            timeout=1.0,
            attempts=4,
            max_wait=0.05,
        )
        try:
            await watcher.subscribe(finished, cb=count)
            await watcher.flush()
            await bus.start()
            loop = asyncio.get_running_loop()
            async with server.paused():
                began = loop.time()
                with pytest.raises(NatsPublishError) as lost:
                    await bus.publish({"type": finished, "id": "once", "data": {}})
                took = loop.time() - began
            async with asyncio.timeout(10):
                await arrived.wait()
            await asyncio.sleep(1.0)  # further copies would have arrived by now
        finally:
            await bus.aclose()
            await watcher.close()
    assert len(copies) == 1
    assert lost.value.maybe_sent
    assert 0.9 < took < 3  # NATS_TIMEOUT_SECONDS bounds publish + flush


async def test_the_first_connection_has_a_deadline() -> None:
    """nats-py retries a first connection forever when reconnects are unlimited; the service
    must fail its start within NATS_TIMEOUT_SECONDS instead of hanging."""

    async def not_subscribed(event: KeptnEvent) -> Any:
        raise AssertionError("never connected")

    port = free_port()
    bus = NatsBus(
        f"nats://127.0.0.1:{port}",
        queue_group="q",
        subjects=(GET_SLI,),
        on_event=not_subscribed,
        on_malformed=lambda reason: None,
        timeout=1.0,
        attempts=1,
        max_wait=0.05,
    )
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with asyncio.timeout(15):
        with pytest.raises(NatsError, match="within 1 s") as failed:
            await bus.start()
    assert loop.time() - began < 5
    assert not bus.connected
    # Why, not an empty reason after the colon (the deadline's TimeoutError has no text).
    assert str(failed.value).endswith(f"within 1 s: Connect call failed ('127.0.0.1', {port})")
