"""Inbound CloudEvents (structured or binary HTTP mode) → KeptnEvent, or a 4xx-worthy reason."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_http
from cloudevents.core.exceptions import BaseCloudEventException, CloudEventValidationError
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from sli_provider.errors import SliProviderError
from sli_provider.keptn.envelope import KeptnEvent

_FORMAT = JSONFormat()


class BadEvent(SliProviderError, ValueError):
    """The request is not a usable CloudEvent; the text is safe to return to the sender."""


def parse_cloudevent(headers: Mapping[str, str], body: bytes) -> KeptnEvent:
    lowered = {k.lower(): v for k, v in headers.items()}
    binary = any(k.startswith("ce-") for k in lowered)
    if not body and not binary:
        raise BadEvent("empty body: expected a CloudEvent")
    if not binary:
        # Check the JSON ourselves: the SDK's errors for a non-object body are not helpful.
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadEvent(f"body is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise BadEvent("body must be a JSON object (a structured-mode CloudEvent)")
        missing = [a for a in ("specversion", "id", "source", "type") if not document.get(a)]
        if missing:
            raise BadEvent(f"not a CloudEvent: missing required attribute(s) {', '.join(missing)}")
        if document.get("specversion") != "1.0":
            raise BadEvent(f"unsupported CloudEvents specversion {document.get('specversion')!r}")
    try:
        event = from_http(HTTPMessage(headers=dict(lowered), body=body), _FORMAT, CloudEvent)
    except CloudEventValidationError as exc:
        raise BadEvent(f"not a valid CloudEvent: {exc}") from None
    except (BaseCloudEventException, ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise BadEvent(f"not a valid CloudEvent: {exc}") from None
    return _to_keptn(event)


def _to_keptn(event: BaseCloudEvent) -> KeptnEvent:
    data: Any = event.get_data()
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadEvent("data is not JSON: Keptn events carry a JSON object") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadEvent("data must be a JSON object")
    attributes = event.get_attributes()

    # A missing or empty shkeptncontext is the dispatcher's to reject, the same on every ingress.
    def extension(name: str) -> str:
        value = attributes.get(name)
        return value if isinstance(value, str) else ""

    return KeptnEvent(
        id=event.get_id(),
        type=event.get_type(),
        source=event.get_source(),
        shkeptncontext=extension("shkeptncontext"),
        gitcommitid=extension("gitcommitid"),
        triggeredid=extension("triggeredid"),
        data=data,
    )
