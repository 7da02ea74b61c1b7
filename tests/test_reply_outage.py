"""Keptn refusing replies for a while (a control-plane rollout): every event still gets exactly
one started event and one finished event, from the same process, once Keptn is back. One test
per ingress.

Real `sli-provider serve` processes, a real Prometheus, a real nats-server (stopped and started
again on its port and store, as Keptn's NATS restarts); Keptn's API is the devkit's fake, which
answers 503 or refuses connections for the outage. The outage lasts OUTAGE_SECONDS
(SLI_PROVIDER_TEST_OUTAGE_SECONDS; a minute-long one is run by hand the same way).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import nats
import pytest
from nats.aio.client import Client

from devkit.fake_keptn import FakeKeptn
from devkit.gateway import TenantGateway
from devkit.k6run import LoadRun
from devkit.nats import NatsServer
from devkit.prometheus import PrometheusServer
from devkit.service import serve_process
from sli_provider.k6.invocation import RunTags
from tests.delivery import (
    FINISHED,
    STARTED,
    create_keptn_stream,
    get_sli_service,
    metric,
    once_each,
    publish,
    trigger,
    wait_ready,
)
from tests.helpers import post_event

OUTAGE_SECONDS = float(os.environ.get("SLI_PROVIDER_TEST_OUTAGE_SECONDS", "4"))
EVENTS = 20
# Tries again every half second at most, so the replies follow the outage's end closely.
PATIENT = {"RETRY_MAX_WAIT_SECONDS": "0.5", "HTTP_TIMEOUT_SECONDS": "2"}


@pytest.mark.parametrize(
    ("journal", "refusal"),
    [(False, 503), (True, None)],
    ids=["in memory, 503", "JOURNAL_PATH, connection refused"],
)
async def test_http_replies_refused_for_a_while_are_delivered_once_afterwards(
    prometheus: PrometheusServer,
    fake_keptn: FakeKeptn,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
    journal: bool,
    refusal: int | None,
) -> None:
    extra = dict(PATIENT)
    if journal:
        extra["JOURNAL_PATH"] = str(tmp_path / "journal.db")
    events = [trigger(load_run, load_tags) for _ in range(EVENTS)]
    async with (
        get_sli_service(tmp_path, "s", prometheus.url, fake_keptn.url, **extra) as service,
        aiohttp.ClientSession() as session,
    ):
        async with fake_keptn.outage(status=refusal):
            statuses = await asyncio.gather(
                *(post_event(service.url, e, session=session) for e in events)
            )
            assert {status for status, _ in statuses} == {202}
            await asyncio.sleep(OUTAGE_SECONDS)
            assert fake_keptn.events == []  # nothing got through meanwhile
            refused = await metric(service, 'sli_provider_retries_total{target="reply"}')
            assert refused >= EVENTS  # each started event at least once
        ended = asyncio.get_running_loop().time()
        await fake_keptn.wait_for_events(type=FINISHED, count=EVENTS, timeout=30)
        print(
            f"\nHTTP outage of {OUTAGE_SECONDS:g} s: {EVENTS} events answered "
            f"{asyncio.get_running_loop().time() - ended:.1f} s after it ended"
        )
        await asyncio.sleep(1)  # a double would show by now
        assert service.process.returncode is None  # the same process answered them
        assert await metric(service, "sli_provider_replies_undelivered_total") == 0
    assert once_each(fake_keptn, events) == ([], [])
    assert fake_keptn.violations == []
    if refusal is not None:
        assert {p.status for p in fake_keptn.event_posts} == {refusal, 200}
    if journal:
        with sqlite3.connect(tmp_path / "journal.db") as db:
            left = db.execute(
                "SELECT count(*) FROM events WHERE finished = 0 AND event IS NOT NULL"
            ).fetchone()[0]
        assert left == 0  # nothing left for a restart to resume
    for event in events:
        finished = next(
            e
            for e in fake_keptn.events
            if e["type"] == FINISHED and e["triggeredid"] == event["id"]
        )
        assert finished["data"]["result"] == "pass", finished["data"].get("message")


async def stream_replies(client: Client) -> dict[str, list[str]]:
    """The get-sli replies in the ``keptn`` stream, by triggered id, in the order stored: what
    the shipyard-controller and lighthouse read, whoever was connected at the time."""
    js = client.jetstream()
    last = (await js.stream_info("keptn")).state.last_seq
    replies: dict[str, list[str]] = defaultdict(list)
    for seq in range(1, last + 1):
        message = await js.get_msg("keptn", seq)
        if message.subject in (STARTED, FINISHED) and message.data:
            event = json.loads(message.data)
            replies[event["triggeredid"]].append(event["type"])
    return replies


async def wait_for_stream_replies(
    client: Client, kind: str, count: int, timeout: float
) -> dict[str, list[str]]:
    async with asyncio.timeout(timeout):
        while True:
            try:
                replies = await stream_replies(client)
            except (nats.errors.Error, TimeoutError):  # the test's client still reconnecting
                replies = {}
            if sum(types.count(kind) for types in replies.values()) >= count:
                return replies
            await asyncio.sleep(0.2)


def lost_or_doubled(replies: dict[str, list[str]], events: list[dict[str, Any]]) -> list[str]:
    return [
        f"{e['id']}: {replies.get(e['id'])}"
        for e in events
        if replies.get(e["id"]) != [STARTED, FINISHED]
    ]


@pytest.mark.parametrize("delivery", ["core", "jetstream"])
async def test_nats_replies_held_up_by_a_nats_restart_are_published_once_afterwards(
    held_prometheus: TenantGateway,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
    delivery: str,
) -> None:
    """The events are taken and their started replies out; Keptn's NATS goes down before the
    values are ready, so every finished reply meets the outage."""
    events = [trigger(load_run, load_tags) for _ in range(EVENTS)]
    env = {
        "NATS_URL": "",
        "NATS_DELIVERY": delivery,
        "PROMETHEUS_URL": held_prometheus.url,
        "RUNNER_ENABLED": "false",
        "SLI_CONFIG_DIR": str(tmp_path),
        "NATS_QUEUE_GROUP": "k6-outage",
        **PATIENT,
    }
    async with NatsServer(tmp_path / "nats.log", store_dir=tmp_path / "store") as server:
        env["NATS_URL"] = server.url
        client = await nats.connect(
            server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, error_cb=_quiet
        )
        try:
            await create_keptn_stream(client)
            async with serve_process(env, tmp_path / "service.log") as service:
                await wait_ready(service)
                await publish(client, events)
                await wait_for_stream_replies(client, STARTED, EVENTS, timeout=30)
                async with server.down():
                    held_prometheus.release_queries()  # the values are ready; NATS is not
                    await asyncio.sleep(OUTAGE_SECONDS)
                    retried = await metric(service, 'sli_provider_retries_total{target="reply"}')
                ended = asyncio.get_running_loop().time()
                replies = await wait_for_stream_replies(client, FINISHED, EVENTS, timeout=60)
                print(
                    f"\nNATS ({delivery}) outage of {OUTAGE_SECONDS:g} s: {EVENTS} events "
                    f"answered {asyncio.get_running_loop().time() - ended:.1f} s after it ended"
                )
                await asyncio.sleep(1)  # a double would show by now
                replies = await stream_replies(client)
                assert service.process.returncode is None
                assert await metric(service, "sli_provider_replies_undelivered_total") == 0
                if delivery == "jetstream":
                    info = await client.jetstream().consumer_info(
                        "keptn", "k6-outage-get-sli-triggered"
                    )
                    assert info.num_ack_pending == 0  # every message acked, none given up
        finally:
            await client.close()
    if delivery == "core":  # each finished event met the outage and was held back, then tried again
        assert retried >= EVENTS
    # With jetstream each send first asks the journal (a key-value bucket on the same NATS)
    # whether the reply went out already; that request waits for the reconnect instead.
    assert lost_or_doubled(replies, events) == []


async def _quiet(_error: Exception) -> None:
    """The test's own client reconnecting through the outage: expected, not worth a traceback."""
