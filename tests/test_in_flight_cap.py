"""MAX_EVENTS_IN_FLIGHT with real `sli-provider serve` processes: HTTP refuses beyond it with 503
and Retry-After, core NATS keeps the waiting events in JOURNAL_PATH (or, without one, waits with
the NATS client buffering them); every event is answered once all the same."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import nats
import pytest

from devkit.fake_keptn import FakeKeptn
from devkit.gateway import TenantGateway
from devkit.k6run import LoadRun
from devkit.nats import NatsServer
from devkit.service import ServiceProcess
from sli_provider.k6.invocation import RunTags
from tests.delivery import (
    FINISHED,
    STARTED,
    get_sli_service,
    metric,
    once_each,
    publish,
    trigger,
    wait_ready,
    watch,
)

CAP = 3


async def wait_for_metric(service: ServiceProcess, name: str, value: float) -> None:
    async with asyncio.timeout(20):
        while await metric(service, name) != value:  # noqa: ASYNC110 (a process, polled)
            await asyncio.sleep(0.05)


async def test_http_beyond_the_cap_is_503_with_retry_after_and_a_retry_is_taken(
    held_prometheus: TenantGateway,
    fake_keptn: FakeKeptn,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    events = [trigger(load_run, load_tags) for _ in range(CAP + 2)]
    extra = {"MAX_EVENTS_IN_FLIGHT": str(CAP)}
    async with (
        get_sli_service(tmp_path, "s", held_prometheus.url, fake_keptn.url, **extra) as service,
        aiohttp.ClientSession() as session,
    ):
        answers = [await post_with_retry_after(session, service.url, event) for event in events]
        assert answers == [(202, None, "accepted")] * CAP + [(503, "1", "busy")] * 2
        assert await metric(service, "sli_provider_events_in_flight") == CAP
        held_prometheus.release_queries()
        await fake_keptn.wait_for_events(type=FINISHED, count=CAP)
        for event in events[CAP:]:  # the distributor's retry
            assert (await post_with_retry_after(session, service.url, event))[0] == 202
        await fake_keptn.wait_for_events(type=FINISHED, count=len(events))
        await asyncio.sleep(0.5)
        busy = 'sli_provider_events_received_total{disposition="busy"'
        assert await metric(service, busy) == 2
    assert once_each(fake_keptn, events) == ([], [])


async def test_http_with_a_journal_keeps_the_events_beyond_the_cap_on_disk(
    held_prometheus: TenantGateway,
    fake_keptn: FakeKeptn,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
) -> None:
    """JOURNAL_PATH holds what does not fit: 202 for every event, none refused or lost."""
    events = [trigger(load_run, load_tags) for _ in range(CAP + 4)]
    extra = {"MAX_EVENTS_IN_FLIGHT": str(CAP), "JOURNAL_PATH": str(tmp_path / "journal.db")}
    async with (
        get_sli_service(tmp_path, "s", held_prometheus.url, fake_keptn.url, **extra) as service,
        aiohttp.ClientSession() as session,
    ):
        answers = [await post_with_retry_after(session, service.url, event) for event in events]
        assert answers == [(202, None, "accepted")] * CAP + [(202, None, "kept")] * 4
        waiting = 'sli_provider_events_waiting{where="journal"}'
        assert await metric(service, waiting) == 4
        assert await metric(service, "sli_provider_events_in_flight") == CAP
        held_prometheus.release_queries()
        await fake_keptn.wait_for_events(type=FINISHED, count=len(events))
        await asyncio.sleep(0.5)
        assert await metric(service, waiting) == 0
    assert once_each(fake_keptn, events) == ([], [])


async def post_with_retry_after(
    session: aiohttp.ClientSession, url: str, event: dict[str, object]
) -> tuple[int, str | None, str]:
    """POST one event; its status, Retry-After header and the status its body names."""
    async with session.post(url + "/", json=event) as response:
        body = await response.json()
        return response.status, response.headers.get("Retry-After"), body["status"]


@pytest.mark.parametrize("journal", [True, False], ids=["JOURNAL_PATH", "in memory"])
async def test_core_nats_beyond_the_cap_waits_and_answers_every_event_once(
    held_prometheus: TenantGateway,
    load_run: LoadRun,
    load_tags: RunTags,
    tmp_path: Path,
    journal: bool,
) -> None:
    """With JOURNAL_PATH the waiting events are on disk, taken oldest first as room frees;
    without one the callback waits and the NATS client holds the rest."""
    events = [trigger(load_run, load_tags) for _ in range(10)]
    async with NatsServer(tmp_path / "nats.log") as server:
        client = await nats.connect(server.url)
        try:
            listener = await watch(client)
            env = {
                "NATS_URL": server.url,
                "NATS_DELIVERY": "core",
                "MAX_EVENTS_IN_FLIGHT": str(CAP),
            }
            if journal:
                env["JOURNAL_PATH"] = str(tmp_path / "journal.db")
            async with get_sli_service(
                tmp_path, "s", held_prometheus.url, "http://127.0.0.1:9", **env
            ) as service:
                await wait_ready(service)
                await publish(client, events)
                where = "journal" if journal else "memory"
                waiting = f'sli_provider_events_waiting{{where="{where}"}}'
                # In memory only the event in the callback is counted; the client holds the rest.
                await wait_for_metric(service, waiting, len(events) - CAP if journal else 1)
                assert await metric(service, "sli_provider_events_in_flight") == CAP
                if journal:
                    with sqlite3.connect(tmp_path / "journal.db") as db:
                        kept = db.execute(
                            "SELECT count(*) FROM events WHERE event IS NOT NULL AND finished = 0"
                        )
                        assert kept.fetchone()[0] == len(events)  # the waiting ones are on disk
                held_prometheus.release_queries()
                await listener.wait_finished(len(events), timeout=60)
                await asyncio.sleep(0.5)  # a double would show by now
                assert await metric(service, waiting) == 0
                assert await metric(service, "sli_provider_events_dropped_total") == 0
        finally:
            await client.close()
    assert listener.problems == []
    for event in events:
        assert [r["type"] for r in listener.replies[event["id"]]] == [STARTED, FINISHED]
