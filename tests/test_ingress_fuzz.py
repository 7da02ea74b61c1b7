"""Mangled events: never a 5xx, never a crash, and every event taken on gets exactly one
started event and one finished event."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from typing import Any

import aiohttp

from devkit.events import get_sli_triggered
from devkit.fake_keptn import FakeKeptn
from devkit.prometheus import PrometheusServer
from devkit.service import running_service
from sli_provider.config import Settings

ODD_VALUES: list[Any] = [
    None,
    "",
    0,
    -1,
    1.5,
    True,
    [],
    {},
    "x" * 300,
    ["a", 1],
    {"k": None},
    "2023-13-45T99:99:99Z",
    "\u0000\n\"'}{",
    1e308,
]


def mangle(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Replace or delete a few fields anywhere in the event."""
    mangled = copy.deepcopy(event)
    for _ in range(rng.randint(1, 3)):
        node: Any = mangled
        path = []
        while isinstance(node, dict) and node and rng.random() < 0.7:
            key = rng.choice(sorted(node))
            path.append(key)
            if not isinstance(node[key], dict):
                break
            node = node[key]
        if not path:
            continue
        parent: Any = mangled
        for key in path[:-1]:
            parent = parent[key]
        if rng.random() < 0.3:
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = rng.choice(ODD_VALUES)
    return mangled


async def test_mangled_events_get_4xx_or_exactly_one_started_and_finished(
    prometheus: PrometheusServer, fake_keptn: FakeKeptn
) -> None:
    rng = random.Random(20261127)
    settings = Settings(
        prometheus_url=prometheus.url,
        distributor_url=fake_keptn.url,
        query_attempts=1,
        reply_attempts=2,
        retry_max_wait_seconds=0.1,
    )
    statuses: Counter[int] = Counter()
    accepted: list[dict[str, Any]] = []
    async with running_service(settings) as url, aiohttp.ClientSession() as session:
        for i in range(300):
            event = get_sli_triggered(
                project="fuzz",
                stage="s",
                service="v",
                start="2026-11-26T10:00:00.000Z",
                end="2026-11-26T10:05:00.000Z",
                indicators=["vus_max", "nope"],
                event_id=f"fuzz-{i}",
                context=f"ctx-{i}",
            )
            body = mangle(event, rng)
            async with session.post(
                url + "/",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/cloudevents+json"},
            ) as r:
                statuses[r.status] += 1
                answer = await r.json()
                assert r.status in (202, 400), (r.status, answer, body)
                if r.status == 400:
                    assert answer["error"]
                elif answer["status"] == "accepted":
                    accepted.append(body)
        async with session.get(url + "/health") as r:
            assert r.status == 200
        await fake_keptn.wait_for_events(
            type="sh.keptn.event.get-sli.finished", count=len(accepted), timeout=60
        )
    for body in accepted:
        types = [e["type"] for e in fake_keptn.events if e.get("triggeredid") == body["id"]]
        assert types == ["sh.keptn.event.get-sli.started", "sh.keptn.event.get-sli.finished"]
    assert statuses[400] > 20 and len(accepted) > 20  # both paths were exercised
