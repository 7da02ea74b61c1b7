"""Checks a Keptn control plane applies (or should) to events an integration sends back.

Pure functions plus one small stateful tracker, shared by the fake control plane and usable on
their own (e.g. to check an event before sending it). Rules: keptn-protocol.md §1, §2.4, §4.2.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, TypeGuard

TASK_STATUSES = frozenset({"succeeded", "errored", "aborted"})
TASK_RESULTS = frozenset({"pass", "warning", "fail"})
GET_SLI_FINISHED = "sh.keptn.event.get-sli.finished"
# RFC 3339 as Go writes and parses it: any number of fraction digits, Z or a numeric offset.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class NonFiniteNumber(ValueError):
    """The JSON text holds NaN, Infinity or a number that overflows a float64."""


def _reject_constant(name: str) -> float:
    raise NonFiniteNumber(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NonFiniteNumber(text)
    return value


def parse_json_strict(body: bytes | str) -> Any:
    """Parse JSON the way Go does: NaN/Infinity and overflowing numbers are errors."""
    return json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)


def parse_event_body(body: bytes) -> tuple[Any, list[str]]:
    """Parse a request body; non-finite numbers become violations instead of a rejection.

    Raises ``ValueError`` for anything that is not JSON at all.
    """
    try:
        return parse_json_strict(body), []
    except NonFiniteNumber as exc:
        problem = (
            f"body contains non-finite number {exc} (invalid JSON; Go consumers such as "
            "lighthouse reject the whole event)"
        )
        return json.loads(body), [problem]


def _non_empty(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def task_phase(event_type: str) -> tuple[str, str] | None:
    """``("sh.keptn.event.get-sli", "finished")`` for task replies, else None."""
    prefix, _, phase = event_type.rpartition(".")
    if phase in ("started", "finished") and prefix.startswith("sh.keptn.event."):
        return prefix, phase
    return None


def check_reply(event: Mapping[str, Any]) -> list[str]:
    """Everything wrong with one reply event; an empty list means Keptn would accept it."""
    where = f"{event.get('type', '<no type>')} (id {event.get('id', '<none>')!r})"
    problems = [f"{where}: {p}" for p in _envelope_problems(event)]
    data = event.get("data")
    if not isinstance(data, Mapping):
        problems.append(f"{where}: data must be a JSON object, got {type(data).__name__}")
        return problems
    event_type = event.get("type")
    phase = task_phase(event_type) if isinstance(event_type, str) else None
    if phase is not None:
        problems += [f"{where}: {p}" for p in _task_problems(event, data, phase[1])]
    if event_type == GET_SLI_FINISHED:
        problems += [f"{where}: {p}" for p in _get_sli_finished_problems(data)]
    return problems


def _envelope_problems(event: Mapping[str, Any]) -> list[str]:
    problems = []
    if event.get("specversion") != "1.0":
        problems.append(f"specversion must be '1.0', got {event.get('specversion')!r}")
    for key in ("id", "source", "type", "shkeptncontext"):
        if not _non_empty(event.get(key)):
            problems.append(f"{key} must be a non-empty string, got {event.get(key)!r}")
    event_type = event.get("type")
    if _non_empty(event_type) and not str(event_type).startswith("sh.keptn."):
        problems.append(f"type must start with 'sh.keptn.', got {event_type!r}")
    event_time = event.get("time")
    if not (isinstance(event_time, str) and _RFC3339.match(event_time)):
        # Listed as required by Keptn's schema; shipyard's HTTP intake rejects a zero time.
        problems.append(f"time must be an RFC 3339 timestamp, got {event_time!r}")
    return problems


def _task_problems(event: Mapping[str, Any], data: Mapping[str, Any], phase: str) -> list[str]:
    problems = []
    if not _non_empty(event.get("triggeredid")):
        problems.append(
            f"triggeredid must be the id of the .triggered event, got {event.get('triggeredid')!r}"
        )
    for key in ("project", "stage", "service"):
        if not _non_empty(data.get(key)):
            problems.append(f"data.{key} must be a non-empty string, got {data.get(key)!r}")
    if "temporaryData" in data:
        problems.append("data.temporaryData (added by the distributor) must not be echoed back")
    if phase == "finished":
        if data.get("status") not in TASK_STATUSES:
            problems.append(
                f"data.status must be one of {sorted(TASK_STATUSES)}, got {data.get('status')!r}"
            )
        if data.get("result") not in TASK_RESULTS:
            problems.append(
                f"data.result must be one of {sorted(TASK_RESULTS)}, got {data.get('result')!r}"
            )
    return problems


def _get_sli_finished_problems(data: Mapping[str, Any]) -> list[str]:
    get_sli = data.get("get-sli")
    if not isinstance(get_sli, Mapping):
        return ["data['get-sli'] must be an object with start, end and indicatorValues"]
    problems = []
    for key in ("start", "end"):
        if not _non_empty(get_sli.get(key)):
            problems.append(f"data['get-sli'].{key} must echo the triggered value")
    for key in ("status", "result", "message"):
        if key in get_sli:
            problems.append(f"data['get-sli'].{key} is ignored by lighthouse; set data.{key}")
    values = get_sli.get("indicatorValues", [])
    if not isinstance(values, list):
        return [*problems, "data['get-sli'].indicatorValues must be a list"]
    for index, item in enumerate(values):
        problems += [
            f"data['get-sli'].indicatorValues[{index}]: {p}" for p in _indicator_problems(item)
        ]
    return problems


def _indicator_problems(item: Any) -> list[str]:
    if not isinstance(item, Mapping):
        return ["must be an object"]
    problems = []
    if not _non_empty(item.get("metric")):
        problems.append("metric must be a non-empty string")
    value = item.get("value")
    if not (_is_number(value) and math.isfinite(value)):
        problems.append(f"value must be a finite number, got {value!r}")
    if not isinstance(item.get("success"), bool):
        problems.append(f"success must be a boolean, got {item.get('success')!r}")
    if "message" in item and not isinstance(item["message"], str):
        problems.append("message must be a string")
    return problems


class TaskOrderTracker:
    """Shipyard completes a task only once every .started has a .finished, and >0 of each."""

    def __init__(self) -> None:
        self._phase: dict[tuple[str, str, str], str] = {}

    def observe(self, event: Mapping[str, Any]) -> list[str]:
        event_type, context, triggered = (
            event.get("type"),
            event.get("shkeptncontext"),
            event.get("triggeredid"),
        )
        if not (isinstance(event_type, str) and _non_empty(context) and _non_empty(triggered)):
            return []  # check_reply already reports the missing fields
        phase = task_phase(event_type)
        if phase is None:
            return []
        task, now = phase
        key = (str(context), str(triggered), task)
        before = self._phase.get(key)
        where = f"{event_type} for triggeredid {triggered!r}"
        problems = []
        if now == "started" and before == "finished":
            problems.append(f"{where}: .started arrived after the .finished")
        elif now == "finished" and before is None:
            problems.append(f"{where}: .finished without a preceding .started never completes")
        elif now == "finished" and before == "finished":
            problems.append(f"{where}: more than one .finished for the same triggered event")
        if before != "finished":
            self._phase[key] = now
        return problems
