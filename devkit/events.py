"""Build the events Keptn's control plane would send, as plain dicts (keptn-protocol.md §2)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from sli_provider.keptn.timestamps import format_keptn

GET_SLI_TRIGGERED = "sh.keptn.event.get-sli.triggered"


def keptn_timestamp(unix_seconds: float) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC, the format go-utils writes (keptn-protocol.md §7)."""
    return format_keptn(unix_seconds)


def get_sli_triggered(
    *,
    project: str,
    stage: str,
    service: str,
    start: str,
    end: str,
    indicators: list[str] | None,
    sli_provider: str = "k6",
    context: str | None = None,
    labels: Mapping[str, str] | None = None,
    custom_filters: list[dict[str, str]] | None = None,
    deployment: str | None = None,
    gitcommitid: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A ``get-sli.triggered`` as lighthouse-service sends it.

    Like lighthouse (Go, ``omitempty``), empty optional fields are left out rather than sent
    as empty values, and there is no ``triggeredid``.
    """
    get_sli: dict[str, Any] = {"sliProvider": sli_provider, "start": start, "end": end}
    if indicators:
        get_sli["indicators"] = list(indicators)
    if custom_filters:
        get_sli["customFilters"] = [dict(item) for item in custom_filters]
    data: dict[str, Any] = {"project": project, "stage": stage, "service": service}
    if labels:
        data["labels"] = dict(labels)
    data["get-sli"] = get_sli
    if deployment:
        data["deployment"] = deployment
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": "lighthouse-service",
        "type": GET_SLI_TRIGGERED,
        "time": keptn_timestamp(time.time()),
        "datacontenttype": "application/json",
        "shkeptncontext": context or str(uuid.uuid4()),
    }
    if gitcommitid:
        event["gitcommitid"] = gitcommitid
    event["data"] = data
    return event


TEST_TRIGGERED = "sh.keptn.event.test.triggered"


def make_test_triggered(
    *,
    project: str,
    stage: str,
    service: str,
    teststrategy: str,
    uris_local: list[str] | None = None,
    uris_public: list[str] | None = None,
    context: str | None = None,
    labels: Mapping[str, str] | None = None,
    gitcommitid: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A ``test.triggered`` as shipyard-controller sends it (keptn-protocol.md §2.5)."""
    data: dict[str, Any] = {
        "project": project,
        "stage": stage,
        "service": service,
        "labels": dict(labels or {}),
        "status": "succeeded",
        "result": "pass",
        "message": "",
        "test": {"teststrategy": teststrategy},
        "deployment": {
            "deploymentstrategy": "direct",
            "deploymentNames": ["direct"],
            "deploymentURIsLocal": list(uris_local or []),
            "deploymentURIsPublic": list(uris_public or []),
        },
    }
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": "shipyard-controller",
        "type": TEST_TRIGGERED,
        "time": keptn_timestamp(time.time()),
        "datacontenttype": "application/json",
        "shkeptncontext": context or str(uuid.uuid4()),
        "shkeptnspecversion": "0.2.4",
        "data": data,
    }
    if gitcommitid:
        event["gitcommitid"] = gitcommitid
    return event
