"""Flagger's webhook call, played as its source does (fluxcd/flagger v1.44.0,
pkg/controller/webhook.go and scheduler_hooks.go; devkit/reference/flagger/SOURCE.md).

``POST <url>`` with ``Content-Type: application/json`` and ``{"name", "namespace", "phase",
"checksum", "metadata"}`` (metadata left out when the webhook has none); ``timeout`` 10s when
unset; ``retries`` through go-retryablehttp (a connection error, 429 or a 5xx other than 501 is
tried again, and the last try's such answer is an error); any status above 202 is a failure, its
body the message. ``rollout``, ``pre-rollout`` and ``confirm-promotion`` webhooks are called
with phase ``Progressing``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

PROGRESSING_TYPES = ("rollout", "pre-rollout", "confirm-promotion", "confirm-traffic-increase")


class Unsupported(ValueError):
    pass


@dataclass(frozen=True)
class WebhookCall:
    payload: Mapping[str, Any]
    status: int | None
    body: str
    failed: bool
    message: str


def load_canary(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    if document.get("kind") != "Canary":
        raise Unsupported(f"{path} is not a Canary")
    return dict(document)


def webhook(canary: Mapping[str, Any], name: str) -> dict[str, Any]:
    (found,) = [w for w in canary["spec"]["analysis"]["webhooks"] if w["name"] == name]
    return dict(found)


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def _seconds(text: str) -> float:
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise Unsupported(f"timeout {text!r}")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


async def call(
    canary: Mapping[str, Any], hook: Mapping[str, Any], *, url: str | None = None
) -> WebhookCall:
    """One call of ``hook``; ``url`` replaces the webhook's in-cluster URL (the test's service)."""
    if hook.get("type", "rollout") not in PROGRESSING_TYPES:
        raise Unsupported(f"webhook type {hook.get('type')}")
    payload: dict[str, Any] = {
        "name": canary["metadata"]["name"],
        "namespace": canary["metadata"].get("namespace", "default"),
        "phase": "Progressing",
        "checksum": hashlib.sha256(b"{}").hexdigest()[
            :16
        ],  # stands for Flagger's hash of the status
    }
    if hook.get("metadata"):
        payload["metadata"] = dict(hook["metadata"])
    timeout = hook.get("timeout") or "10s"
    if len(timeout) < 2:
        timeout = "10s"
    retries = int(hook.get("retries", 0))
    body = json.dumps(payload, separators=(",", ":")).encode()
    status, text, message = None, "", ""
    async with aiohttp.ClientSession() as session:
        for attempt in range(retries + 1):
            try:
                async with session.post(
                    url or hook["url"],
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=aiohttp.ClientTimeout(total=_seconds(timeout)),
                ) as response:
                    status, text = response.status, await response.text()
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, text, message = None, "", str(exc) or type(exc).__name__
                continue
            retryable = status == 429 or (status >= 500 and status != 501)
            if not retryable:
                break
            if attempt == retries:
                message = f"POST {url or hook['url']} giving up after {retries + 1} attempt(s)"
    if status is None:
        return WebhookCall(payload, None, "", True, message)
    if message:
        return WebhookCall(payload, status, text, True, message)
    if status > 202:
        return WebhookCall(payload, status, text, True, text)
    return WebhookCall(payload, status, text, False, "")
