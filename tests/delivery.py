"""Helpers the delivery tests share: Keptn's NATS as lighthouse and shipyard see it (the
``keptn`` stream, a plain publisher, a listener for the replies), `sli-provider serve`
processes, and the check that every event got exactly one started and one finished event."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import StorageType, StreamConfig

from devkit.fake_keptn import FakeKeptn
from devkit.k6run import LoadRun
from devkit.service import ServiceProcess, serve_process
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.envelope import to_keptn_model
from tests.helpers import trigger_for

STARTED, FINISHED = "sh.keptn.event.get-sli.started", "sh.keptn.event.get-sli.finished"
# The JetStream ack wait the durable-delivery tests give their replicas (NATS_ACK_WAIT_SECONDS).
ACK_WAIT = 3.0


class Listener:
    """Plays lighthouse and shipyard: collects every get-sli reply published on NATS.

    nats-py swallows what a callback raises, so checks made here are collected in
    ``problems`` for the test body to assert, instead of surfacing as a timeout."""

    def __init__(self) -> None:
        self.replies: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.problems: list[str] = []
        self.changed = asyncio.Event()

    async def on_message(self, message: Msg) -> None:
        try:
            event = json.loads(message.data)
        except ValueError as exc:
            self.problems.append(f"not JSON on {message.subject}: {exc}")
            return
        if event.get("type", "").endswith(".triggered"):
            return
        if message.subject != event.get("type"):
            self.problems.append(f"{event.get('type')} published on {message.subject}")
        if "contenttype" not in event or "datacontenttype" in event:
            self.problems.append(f"{event.get('id')} is not in Keptn's NATS model: {sorted(event)}")
        self.replies[event.get("triggeredid", "")].append(event)
        self.changed.set()

    async def wait_finished(self, count: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while (
                sum(1 for r in self.replies.values() for e in r if e["type"].endswith(".finished"))
                < count
            ):
                self.changed.clear()
                await self.changed.wait()


async def watch(client: Client) -> Listener:
    """A Listener subscribed to the get-sli events on ``client``."""
    listener = Listener()
    await client.subscribe("sh.keptn.event.get-sli.*", cb=listener.on_message)
    return listener


def trigger(run: LoadRun, tags: RunTags) -> dict[str, Any]:
    """A get-sli.triggered event for two indicators of ``run``."""
    return trigger_for(run, tags, ["vus_max", "http_reqs_total"])


async def create_keptn_stream(client: Client) -> None:
    # As shipyard-controller's stream setup: one stream for every Keptn event, file storage.
    await client.jetstream().add_stream(
        StreamConfig(name="keptn", subjects=["sh.keptn.>"], storage=StorageType.FILE)
    )


async def publish(client: Client, events: list[dict[str, Any]]) -> None:
    for event in events:  # plain core publish, as Keptn's services publish
        await client.publish(event["type"], json.dumps(to_keptn_model(event)).encode())
    await client.flush()


async def wait_ready(service: ServiceProcess, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while (await service.get("/ready"))[0] != 200:  # noqa: ASYNC110 (a process, polled)
            await asyncio.sleep(0.05)


async def metric(service: ServiceProcess, name: str) -> float:
    """The sum of the samples of ``name`` on the service's /metrics."""
    _, text = await service.get("/metrics")
    rows = [r for r in text.splitlines() if r.startswith(name) and not r.startswith("#")]
    return sum(float(r.rsplit(" ", 1)[1]) for r in rows)


def get_sli_service(
    tmp_path: Path, name: str, prometheus_url: str, distributor_url: str, **extra: str
) -> AbstractAsyncContextManager[ServiceProcess]:
    """A `sli-provider serve` process without its runner, logging to ``tmp_path/name.log``."""
    env = {
        "PROMETHEUS_URL": prometheus_url,
        "DISTRIBUTOR_URL": distributor_url,
        "RUNNER_ENABLED": "false",
        "SLI_CONFIG_DIR": str(tmp_path),
        **extra,
    }
    return serve_process(env, tmp_path / f"{name}.log")


def replies_to(keptn: FakeKeptn, event: dict[str, Any]) -> list[str]:
    """The types of the events the fake Keptn got in reply to ``event``, in order."""
    return [e["type"] for e in keptn.events if e.get("triggeredid") == event["id"]]


def once_each(
    replies: Listener | FakeKeptn, events: list[dict[str, Any]]
) -> tuple[list[str], list[str]]:
    """(lost, doubled): ids of the events without exactly one started then one finished event,
    among the replies published on NATS (a Listener) or sent to the fake Keptn."""
    lost, doubled = [], []
    for event in events:
        if isinstance(replies, Listener):
            types = [reply["type"] for reply in replies.replies.get(event["id"], [])]
        else:
            types = replies_to(replies, event)
        if types.count(STARTED) > 1 or types.count(FINISHED) > 1:
            doubled.append(event["id"])
        elif types != [STARTED, FINISHED]:
            lost.append(event["id"])
    return lost, doubled
