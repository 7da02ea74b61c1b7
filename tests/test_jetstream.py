"""Durable delivery (NATS_DELIVERY=jetstream) with a real nats-server, real replicas, real Prometheus.

The ``keptn`` stream is created here as Keptn's shipyard-controller creates it (subjects
``sh.keptn.>``, file storage, default limits); events are published with plain core NATS, as
Keptn's services publish, and replies are watched by a plain core subscriber, as lighthouse and
the shipyard-controller see them.
"""

from __future__ import annotations

import asyncio
import json
import signal
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path

import nats
from nats.aio.client import Client

from devkit.fake_keptn import FakeKeptn
from devkit.gateway import TenantGateway
from devkit.k6run import LoadRun
from devkit.nats import NatsServer
from devkit.prometheus import PrometheusServer
from devkit.service import ServiceProcess, serve_process
from devkit.target import TargetServer
from sli_provider.k6.invocation import RunTags
from tests.delivery import (
    ACK_WAIT,
    Listener,
    create_keptn_stream,
    metric,
    once_each,
    publish,
    trigger,
    wait_ready,
    watch,
)
from tests.helpers import (
    LOAD_JS,
    install,
    k6_processes_under,
    load_workload,
    run_trigger,
    workloads,
)


def replica(
    nats_url: str, prometheus_url: str, tmp_path: Path, name: str, **extra: str
) -> AbstractAsyncContextManager[ServiceProcess]:
    env = {
        "NATS_URL": nats_url,
        "PROMETHEUS_URL": prometheus_url,
        "RUNNER_ENABLED": "false",
        "SLI_CONFIG_DIR": str(tmp_path),
        "NATS_ACK_WAIT_SECONDS": str(ACK_WAIT),
        "NATS_QUEUE_GROUP": "k6-durable",
        **extra,
    }
    return serve_process(env, tmp_path / f"{name}.log")


async def test_waits_for_the_keptn_stream_and_never_creates_it(
    nats_server: NatsServer,
    prometheus: PrometheusServer,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    client = await nats.connect(nats_server.url)
    try:
        listener = await watch(client)
        async with replica(nats_server.url, prometheus.url, tmp_path, "r") as service:
            await asyncio.sleep(1.5)
            status, body = await service.get("/ready")
            assert (status, json.loads(body)["status"]) == (
                503,
                "waiting for the JetStream stream 'keptn'",
            )
            assert [s.config.name for s in await client.jetstream().streams_info()] == []
            await create_keptn_stream(client)
            await wait_ready(service)
            event = trigger(load_run, load_tags)
            await publish(client, [event])
            await listener.wait_finished(1, timeout=20)
        log = (tmp_path / "r.log").read_text()
        assert "waiting for the JetStream stream 'keptn'" in log
        info = await client.jetstream().stream_info("keptn")
        assert info.config.subjects == ["sh.keptn.>"]  # as created above, unchanged
    finally:
        await client.close()
    assert listener.problems == []
    assert once_each(listener, [event]) == ([], [])


async def test_the_same_event_published_twice_is_answered_once(
    nats_server: NatsServer,
    keptn_nats: Client,
    prometheus: PrometheusServer,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    listener = await watch(keptn_nats)
    async with AsyncExitStack() as stack:
        replicas = [
            await stack.enter_async_context(
                replica(nats_server.url, prometheus.url, tmp_path, f"r{i}")
            )
            for i in range(2)
        ]
        for r in replicas:
            await wait_ready(r)
        events = [trigger(load_run, load_tags) for _ in range(5)]
        await publish(keptn_nats, events + events)
        await listener.wait_finished(5, timeout=30)
        await asyncio.sleep(ACK_WAIT + 1)  # a double, or a redelivery, would show by now
        duplicates = 'sli_provider_events_received_total{disposition="duplicate"'
        suppressed = sum([await metric(r, duplicates) for r in replicas])
        journal = await keptn_nats.jetstream().key_value("k6-durable_journal")
        assert (await journal.status()).ttl == 86400  # JOURNAL_TTL_SECONDS' default
    assert listener.problems == []
    assert once_each(listener, events) == ([], [])
    assert suppressed == 5


async def test_events_published_while_every_replica_is_down_are_answered_once(
    nats_server: NatsServer,
    keptn_nats: Client,
    prometheus: PrometheusServer,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    listener = await watch(keptn_nats)
    # The first start creates the durable consumers (deliver_policy new: from then on).
    async with replica(nats_server.url, prometheus.url, tmp_path, "first") as first:
        await wait_ready(first)
    events = [trigger(load_run, load_tags) for _ in range(50)]
    await publish(keptn_nats, events)  # nobody is subscribed now
    loop = asyncio.get_running_loop()
    async with AsyncExitStack() as stack:
        started_at = loop.time()
        replicas = [
            await stack.enter_async_context(
                replica(nats_server.url, prometheus.url, tmp_path, f"r{i}")
            )
            for i in range(3)
        ]
        await listener.wait_finished(50, timeout=60)
        answered_in = loop.time() - started_at
        await asyncio.sleep(1)
        pending = 'sli_provider_consumer_pending{consumer="k6-durable-get-sli-triggered"}'
        assert [await metric(r, pending) for r in replicas] == [0, 0, 0]
        assert "sli_provider_consumer_pending{" in (await replicas[0].get("/metrics"))[1]
    print(f"\nreplicas down: events 50, lost 0, answered {answered_in:.1f} s after the start")
    assert listener.problems == []
    assert once_each(listener, events) == ([], [])


async def test_a_replica_killed_with_events_in_flight_loses_and_doubles_nothing(
    nats_server: NatsServer,
    keptn_nats: Client,
    prometheus: PrometheusServer,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    """Three replicas share 300 events; one of them sees a Prometheus that never answers, so
    it holds its events in flight (started event sent, finished event not) when it is
    SIGKILLed. JetStream redelivers them after the ack wait; the journal sends their started
    events once."""
    listener = await watch(keptn_nats)
    async with AsyncExitStack() as stack:
        stuck = await stack.enter_async_context(
            TenantGateway(prometheus.url, tenant=None, token=None)
        )
        stuck.hold_queries_containing(load_tags.project)
        doomed = await stack.enter_async_context(
            replica(nats_server.url, stuck.url, tmp_path, "doomed")
        )
        healthy = [
            await stack.enter_async_context(
                replica(nats_server.url, prometheus.url, tmp_path, f"r{i}")
            )
            for i in range(2)
        ]
        for r in (doomed, *healthy):
            await wait_ready(r)
        events = [trigger(load_run, load_tags) for _ in range(300)]
        await publish(keptn_nats, events)
        async with asyncio.timeout(60):  # every event taken somewhere: a started event each
            while len(listener.replies) < len(events):
                listener.changed.clear()
                await listener.changed.wait()
        held = await metric(doomed, "sli_provider_events_in_flight")
        assert held > 0, "the doomed replica holds no event"
        await asyncio.sleep(0.5)  # its journal records follow its starteds
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        doomed.process.send_signal(signal.SIGKILL)
        assert await doomed.process.wait() == -signal.SIGKILL
        restarted = await stack.enter_async_context(
            replica(nats_server.url, prometheus.url, tmp_path, "restarted")
        )
        await listener.wait_finished(300, timeout=120)
        recovered_in = loop.time() - killed_at
        await asyncio.sleep(ACK_WAIT + 1)  # a double would show by now
        recoveries = sum(
            [
                await metric(r, "sli_provider_journal_recoveries_total")
                for r in (*healthy, restarted)
            ]
        )
        redeliveries = sum(
            [await metric(r, "sli_provider_redeliveries_total") for r in (*healthy, restarted)]
        )
    lost, doubled = once_each(listener, events)
    print(
        f"\nkill -9: events 300, held by the killed replica {held:g}, lost {len(lost)}, "
        f"doubled {len(doubled)}, recovered in {recovered_in:.1f} s, "
        f"redeliveries {redeliveries:g}, recoveries {recoveries:g}"
    )
    assert listener.problems == []
    assert (lost, doubled) == ([], [])
    assert recoveries >= held
    assert recovered_in < ACK_WAIT + 30


async def test_a_test_event_whose_replica_dies_during_k6_is_answered_errored_by_another(
    nats_server: NatsServer,
    keptn_nats: Client,
    prometheus: PrometheusServer,
    fake_keptn: FakeKeptn,
    target: TargetServer,
    tmp_path: Path,
) -> None:
    """The k6 run dies with its replica (SIGKILL); another replica gets the redelivered event
    and, the journal showing its started event, sends only the errored finished event."""
    install(
        fake_keptn,
        workloads(load_workload(env={"VUS": "1", "DURATION": "60s"})),
        {"k6/load.js": LOAD_JS},
    )
    listener = Listener()
    await keptn_nats.subscribe("sh.keptn.event.test.*", cb=listener.on_message)
    dirs = {name: tmp_path / name for name in ("doomed", "heir")}
    for path in dirs.values():
        path.mkdir()

    def runner(name: str) -> AbstractAsyncContextManager[ServiceProcess]:
        env = {
            "NATS_URL": nats_server.url,
            "PROMETHEUS_URL": prometheus.url,
            "DISTRIBUTOR_URL": fake_keptn.url,
            "RUNNER_WORK_DIR": str(dirs[name]),
            "NATS_ACK_WAIT_SECONDS": str(ACK_WAIT),
            "NATS_QUEUE_GROUP": "k6-runner",
        }
        return serve_process(env, tmp_path / f"{name}.log")

    event = run_trigger(target)
    async with runner("doomed") as doomed:
        await wait_ready(doomed)
        await publish(keptn_nats, [event])
        async with asyncio.timeout(30):
            while not k6_processes_under(dirs["doomed"]):  # noqa: ASYNC110 (a process, polled)
                await asyncio.sleep(0.05)
        async with runner("heir") as heir:
            await wait_ready(heir)
            doomed.process.send_signal(signal.SIGKILL)
            await doomed.process.wait()
            await listener.wait_finished(1, timeout=ACK_WAIT + 20)
            await asyncio.sleep(ACK_WAIT + 1)  # a second finished event would show by now
            assert k6_processes_under(dirs["doomed"]) == []
            assert k6_processes_under(dirs["heir"]) == []
    assert listener.problems == []
    replies = listener.replies[event["id"]]
    assert [r["type"] for r in replies] == [
        "sh.keptn.event.test.started",
        "sh.keptn.event.test.finished",
    ]
    finished = replies[1]["data"]
    assert (finished["status"], finished["result"]) == ("errored", "fail")
    assert finished["message"] == "the k6 run was interrupted when its replica stopped"


async def test_a_task_longer_than_the_ack_wait_is_kept_alive_not_redelivered(
    nats_server: NatsServer,
    keptn_nats: Client,
    prometheus: PrometheusServer,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    """A get-sli whose Prometheus hangs runs until its deadline, three ack waits; in-progress
    acks keep its message, so it is answered once and never redelivered."""
    listener = await watch(keptn_nats)
    async with TenantGateway(prometheus.url, tenant=None, token=None) as stuck:
        stuck.hold_queries_containing(load_tags.project)
        async with replica(
            nats_server.url, stuck.url, tmp_path, "slow", GET_SLI_DEADLINE_SECONDS=str(3 * ACK_WAIT)
        ) as slow:
            await wait_ready(slow)
            event = trigger(load_run, load_tags)
            await publish(keptn_nats, [event])
            await listener.wait_finished(1, timeout=6 * ACK_WAIT)
            await asyncio.sleep(ACK_WAIT + 1)
            redeliveries = await metric(slow, "sli_provider_redeliveries_total")
            duplicates = 'sli_provider_events_received_total{disposition="duplicate"'
            assert await metric(slow, duplicates) == 0
    assert listener.problems == []
    assert once_each(listener, [event]) == ([], [])
    assert redeliveries == 0


async def test_an_event_that_finds_the_journal_unreachable_is_delivered_again_later(
    nats_server: NatsServer,
    keptn_nats: Client,
    prometheus: PrometheusServer,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    """Its journal bucket deleted under it, the replica cannot take an event: the message is
    nak'ed, the consumer keeps fetching, and once the bucket is back the event is answered."""
    listener = await watch(keptn_nats)
    js = keptn_nats.jetstream()
    async with replica(nats_server.url, prometheus.url, tmp_path, "r") as service:
        await wait_ready(service)
        await js.delete_key_value("k6-durable_journal")
        event = trigger(load_run, load_tags)
        await publish(keptn_nats, [event])
        await asyncio.sleep(2)
        assert listener.replies == {}
        await js.create_key_value(bucket="k6-durable_journal", ttl=86400)
        await listener.wait_finished(1, timeout=20)
        assert (await service.get("/ready"))[0] == 200
    assert "not taken, delivered again later" in (tmp_path / "r.log").read_text()
    assert listener.problems == []
    assert once_each(listener, [event]) == ([], [])


async def test_sigterm_answers_what_the_replica_holds_and_acks_it(
    nats_server: NatsServer,
    keptn_nats: Client,
    prometheus: PrometheusServer,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    """A graceful stop answers its event (errored, after the grace) and acks it, so the other
    replica, which would have good values, does not answer it a second time."""
    listener = await watch(keptn_nats)
    async with AsyncExitStack() as stack:
        stuck = await stack.enter_async_context(
            TenantGateway(prometheus.url, tenant=None, token=None)
        )
        stuck.hold_queries_containing(load_tags.project)
        stopping = await stack.enter_async_context(
            replica(nats_server.url, stuck.url, tmp_path, "stopping", SHUTDOWN_GRACE_SECONDS="1")
        )
        await wait_ready(stopping)
        event = trigger(load_run, load_tags)
        await publish(keptn_nats, [event])
        async with asyncio.timeout(10):
            while not listener.replies.get(event["id"]):
                listener.changed.clear()
                await listener.changed.wait()
        other = await stack.enter_async_context(
            replica(nats_server.url, prometheus.url, tmp_path, "other")
        )
        await wait_ready(other)
        stopping.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(stopping.process.wait(), 15) == 0
        await listener.wait_finished(1, timeout=5)
        await asyncio.sleep(ACK_WAIT + 1)  # a redelivery would be answered by now
        assert await metric(other, "sli_provider_redeliveries_total") == 0
    assert listener.problems == []
    assert once_each(listener, [event]) == ([], [])
    finished = listener.replies[event["id"]][1]["data"]
    assert (finished["status"], finished["result"]) == ("errored", "fail")
    assert "shut down" in finished["message"]
