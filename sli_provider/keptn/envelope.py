"""Keptn's CloudEvent envelope: the inbound event as a typed value and the replies built from it.

Pure code: nothing here does I/O. The rules come from keptn-protocol.md §1 and §4.3:
a reply copies ``shkeptncontext`` and ``gitcommitid``, sets ``triggeredid`` to the triggered
event's id, carries project/stage/service/labels, and a ``.finished`` reply has ``status`` and
``result`` at the top of ``data``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sli_provider.errors import SliProviderError
from sli_provider.keptn.timestamps import format_keptn

EVENT_PREFIX = "sh.keptn.event."
SPEC_VERSION = "1.0"
KEPTN_SPEC_VERSION = "0.2.4"


class Status(StrEnum):
    SUCCEEDED = "succeeded"
    ERRORED = "errored"


class Result(StrEnum):
    PASS = "pass"  # noqa: S105 - a Keptn result value, not a password
    WARNING = "warning"
    FAIL = "fail"


@dataclass(frozen=True)
class Scope:
    """Where an event belongs; every reply repeats it."""

    project: str = ""
    stage: str = ""
    service: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Scope:
        """Best effort: a reply must carry whatever scope the trigger had, even when it is invalid."""

        def text(key: str) -> str:
            value = data.get(key)
            return value if isinstance(value, str) else ""

        raw_labels = data.get("labels")
        labels: dict[str, str] = {}
        if isinstance(raw_labels, Mapping):
            labels = {str(k): str(v) for k, v in raw_labels.items() if v is not None}
        return cls(text("project"), text("stage"), text("service"), labels)

    def as_data(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "stage": self.stage,
            "service": self.service,
            "labels": dict(self.labels),
        }


@dataclass(frozen=True)
class KeptnEvent:
    """An inbound Keptn event after the CloudEvents binding has checked the envelope."""

    id: str
    type: str
    source: str
    shkeptncontext: str
    data: Mapping[str, Any]
    gitcommitid: str = ""
    triggeredid: str = ""

    @property
    def task(self) -> str | None:
        """``get-sli`` for ``sh.keptn.event.get-sli.triggered``; None for anything not a task trigger."""
        if not (self.type.startswith(EVENT_PREFIX) and self.type.endswith(".triggered")):
            return None
        middle = self.type[len(EVENT_PREFIX) : -len(".triggered")]
        # Sequence events have <stage>.<sequence>; tasks have a single name.
        return middle if middle and "." not in middle else None


def build_reply(
    trigger: KeptnEvent,
    *,
    kind: str,
    source: str,
    scope: Scope,
    status: Status = Status.SUCCEEDED,
    result: Result | None = None,
    message: str = "",
    payload: Mapping[str, Any] | None = None,
    event_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A structured CloudEvent (as a dict) answering ``trigger``; ``kind`` is started or finished."""
    task = trigger.task
    if task is None:
        raise ValueError(f"{trigger.type} is not a task trigger")
    data: dict[str, Any] = scope.as_data()
    data["status"] = status.value
    if result is not None:
        data["result"] = result.value
    if message:
        data["message"] = message
    if payload:
        data.update(payload)
    event: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": f"{EVENT_PREFIX}{task}.{kind}",
        "time": format_keptn(now or datetime.now(UTC)),
        "datacontenttype": "application/json",
        "shkeptncontext": trigger.shkeptncontext,
        "triggeredid": trigger.id,
        "shkeptnspecversion": KEPTN_SPEC_VERSION,
        "data": data,
    }
    if trigger.gitcommitid:
        event["gitcommitid"] = trigger.gitcommitid
    return event


def encode_event(event: Mapping[str, Any]) -> bytes:
    """JSON for the wire. NaN and Infinity are not JSON and Go consumers reject them: refuse them."""
    return json.dumps(event, allow_nan=False, separators=(",", ":")).encode()


class InvalidKeptnMessage(SliProviderError, ValueError):
    """A NATS message that is not a Keptn event."""


def from_keptn_model(document: Any) -> KeptnEvent:
    """Keptn's own event model (NATS payloads, API responses): ``contenttype``, top-level extensions."""
    if not isinstance(document, Mapping):
        raise InvalidKeptnMessage("not a JSON object")
    missing = [
        k
        for k in ("id", "type", "source")
        if not isinstance(document.get(k), str) or not document[k]
    ]
    if missing:
        raise InvalidKeptnMessage(f"missing {', '.join(missing)}")
    data = document.get("data")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidKeptnMessage("data must be a JSON object")

    def text(key: str) -> str:
        value = document.get(key)
        return value if isinstance(value, str) else ""

    return KeptnEvent(
        id=document["id"],
        type=document["type"],
        source=document["source"],
        shkeptncontext=text("shkeptncontext"),
        gitcommitid=text("gitcommitid"),
        triggeredid=text("triggeredid"),
        data=data,
    )


def to_keptn_model(event: Mapping[str, Any]) -> dict[str, Any]:
    """A structured CloudEvent as Keptn's NATS publisher writes it (keptn-protocol.md §3.4)."""
    document = {k: v for k, v in event.items() if k != "datacontenttype"}
    document["contenttype"] = event.get("datacontenttype", "application/json")
    return document
