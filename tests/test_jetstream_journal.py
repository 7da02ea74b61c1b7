"""The replicas' journal (a JetStream key-value bucket on a real nats-server) and the sender that
consults it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client

from devkit.nats import NatsServer
from sli_provider.adapters.journal import KvJournal, bucket_name
from sli_provider.service.dedupe import journaled


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with NatsServer(tmp_path / "nats.log") as server:
        connection = await nats.connect(server.url)
        try:
            yield connection
        finally:
            await connection.close()


async def journal_on(client: Client, recoveries: list[int]) -> KvJournal:
    journal = KvJournal(
        bucket_name("k6.test"), ttl=60, timeout=5, on_recovery=lambda: recoveries.append(1)
    )
    await journal.open(client.jetstream())
    return journal


async def test_one_claim_per_event_and_a_takeover_only_of_an_abandoned_unfinished_one(
    client: Client,
) -> None:
    recoveries: list[int] = []
    first, second = await journal_on(client, recoveries), await journal_on(client, recoveries)
    event_id = "an id that is not a valid key: spaces, dots. and ünïcode"
    assert await first.claim(event_id) is True
    assert await second.claim(event_id) is False  # another replica, same bucket
    await first.record(event_id, "started")
    assert await second.replies_sent(event_id) == {"started"}
    await second.abandon(event_id)
    assert await second.claim(event_id) is True  # taken over
    assert await first.claim(event_id) is False  # by one replica only
    assert recoveries == [1]
    await second.record(event_id, "finished")
    await first.abandon(event_id)  # finished: nothing left to take over
    assert await first.claim(event_id) is False
    assert await first.replies_sent(event_id) == {"started", "finished"}
    assert await first.replies_sent("never seen") == frozenset()


class UnreadableJournal:
    async def claim(self, event_id: str) -> bool:
        return True

    async def release(self, event_id: str) -> None:
        pass

    async def replies_sent(self, event_id: str) -> frozenset[str]:
        raise nats.errors.ConnectionClosedError

    async def record(self, event_id: str, reply: str) -> None:
        raise nats.errors.ConnectionClosedError


async def test_a_journal_that_cannot_be_read_does_not_cost_a_reply() -> None:
    sent: list[Mapping[str, Any]] = []

    async def send(reply: Mapping[str, Any]) -> None:
        sent.append(reply)

    send_once = journaled(send, UnreadableJournal(), on_suppressed=lambda: None)
    reply = {"type": "sh.keptn.event.get-sli.started", "triggeredid": "t-1"}
    await send_once(reply)
    assert sent == [reply]
