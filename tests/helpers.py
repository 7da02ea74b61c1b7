"""Helpers the test modules share: sending events and previews to a running service."""

from __future__ import annotations

from typing import Any

import aiohttp

# What Keptn's distributor sends: a structured CloudEvent.
CLOUDEVENTS_JSON = {"Content-Type": "application/cloudevents+json"}


async def post_event(
    url: str, event: dict[str, Any], *, session: aiohttp.ClientSession | None = None
) -> tuple[int, Any]:
    """POST one event to the service at ``url`` as Keptn's distributor does; return the status
    and the body (parsed when it is JSON, else the text)."""
    if session is None:
        async with aiohttp.ClientSession() as own:
            return await post_event(url, event, session=own)
    async with session.post(url + "/", json=event, headers=CLOUDEVENTS_JSON) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def send_event(url: str, event: dict[str, Any]) -> None:
    """POST one event and check the service took it (202 Accepted)."""
    status, body = await post_event(url, event)
    assert status == 202, body


async def post_preview(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST a ``/preview`` request that must succeed; return its JSON answer."""
    async with aiohttp.ClientSession() as session, session.post(url + "/preview", json=body) as r:
        assert r.status == 200, await r.text()
        answer: dict[str, Any] = await r.json()
        return answer
