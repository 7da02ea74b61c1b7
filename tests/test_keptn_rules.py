"""The Keptn reply rules of keptn-protocol.md §1, §2.3, §2.4 and §4.3, without I/O."""

from __future__ import annotations

import json
import math

import pytest

from sli_provider.keptn.envelope import KeptnEvent, Result, Scope, Status, build_reply, encode_event
from sli_provider.keptn.get_sli_task import (
    GetSLIRequest,
    IndicatorValue,
    InvalidRequest,
    decide_outcome,
    finished_payload,
    parse_request,
    requested_provider,
)
from sli_provider.keptn.timestamps import TimestampError, format_keptn, parse_keptn
from sli_provider.sli.window import SLIWindow


def trigger(**get_sli: object) -> KeptnEvent:
    section: dict[str, object] = {
        "sliProvider": "k6",
        "start": "2023-05-04T10:09:58.000Z",
        "end": "2023-05-04T10:14:59.000Z",
        "indicators": ["a", "b"],
    }
    section.update(get_sli)
    return KeptnEvent(
        id="trig-1",
        type="sh.keptn.event.get-sli.triggered",
        source="lighthouse-service",
        shkeptncontext="ctx-1",
        gitcommitid="abc123",
        data={
            "project": "shop",
            "stage": "staging",
            "service": "web",
            "labels": {"buildId": "142"},
            "get-sli": section,
            "deployment": "direct",
        },
    )


def test_reply_links_to_the_trigger() -> None:
    event = trigger()
    reply = build_reply(event, kind="started", source="me", scope=Scope.from_data(event.data))
    assert reply["type"] == "sh.keptn.event.get-sli.started"
    assert reply["triggeredid"] == "trig-1"
    assert reply["shkeptncontext"] == "ctx-1"
    assert reply["gitcommitid"] == "abc123"
    assert reply["data"] == {
        "project": "shop",
        "stage": "staging",
        "service": "web",
        "labels": {"buildId": "142"},
        "status": "succeeded",
    }
    assert reply["id"] != "trig-1"


def test_finished_has_status_result_message_at_data_top_level() -> None:
    event = trigger()
    reply = build_reply(
        event,
        kind="finished",
        source="me",
        scope=Scope.from_data(event.data),
        status=Status.SUCCEEDED,
        result=Result.WARNING,
        message="1 of 2",
        payload=finished_payload("s", "e", [IndicatorValue("a", 1.5, True, query="q")]),
    )
    data = reply["data"]
    assert (data["status"], data["result"], data["message"]) == ("succeeded", "warning", "1 of 2")
    assert data["get-sli"] == {
        "start": "s",
        "end": "e",
        "indicatorValues": [{"metric": "a", "value": 1.5, "success": True, "query": "q"}],
    }
    assert "temporaryData" not in data


@pytest.mark.parametrize(
    ("successes", "status", "result"),
    [
        ([True, True], Status.SUCCEEDED, Result.PASS),
        ([True, False], Status.SUCCEEDED, Result.WARNING),
        ([False, False], Status.SUCCEEDED, Result.FAIL),
        ([], Status.SUCCEEDED, Result.PASS),
    ],
)
def test_outcome_table(successes: list[bool], status: Status, result: Result) -> None:
    values = [
        IndicatorValue(f"m{i}", 1.0 if ok else 0.0, ok, "" if ok else "no data")
        for i, ok in enumerate(successes)
    ]
    outcome = decide_outcome(values)
    assert (outcome.status, outcome.result) == (status, result)
    assert [v.metric for v in outcome.indicator_values] == [v.metric for v in values]


def test_encoding_refuses_nan_and_infinity() -> None:
    with pytest.raises(ValueError):
        encode_event({"v": math.nan})
    with pytest.raises(ValueError):
        finished_payload("s", "e", [IndicatorValue("a", math.inf, True)])
    assert json.loads(encode_event({"v": 1.0})) == {"v": 1.0}


def test_provider_filter_reads_sli_provider() -> None:
    assert requested_provider(trigger()) == "k6"
    assert requested_provider(trigger(sliProvider="prometheus")) == "prometheus"


def test_valid_request_parses() -> None:
    """Every field of the event lands in the request's window; start/end text stays as sent."""
    request = parse_request(trigger(customFilters=[{"key": "scenario", "value": "x"}]))
    assert request == GetSLIRequest(
        window=SLIWindow(
            project="shop",
            stage="staging",
            service="web",
            start_s=1683194998.0,  # 2023-05-04T10:09:58Z
            end_s=1683195299.0,
            indicators=("a", "b"),
            custom_filters=(("scenario", "x"),),
            labels={"buildId": "142"},
            deployment="direct",
            context="ctx-1",
            gitcommitid="abc123",
        ),
        start="2023-05-04T10:09:58.000Z",
        end="2023-05-04T10:14:59.000Z",
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2023-05-04T10:00:00Z"}, "before start"),
        ({"indicators": "a,b"}, "indicators"),
        ({"customFilters": [{"key": 1}]}, "customFilters"),
    ],
)
def test_invalid_requests_say_why(change: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        parse_request(trigger(**change))


def test_missing_project_is_invalid() -> None:
    event = trigger()
    data = dict(event.data)
    data["project"] = ""
    with pytest.raises(InvalidRequest, match="project"):
        parse_request(KeptnEvent(event.id, event.type, event.source, "c", data))


def test_timestamps_round_trip_and_leniency() -> None:
    assert format_keptn(1683195002.4819) == "2023-05-04T10:10:02.481Z"
    assert parse_keptn("2023-05-04T10:10:02.481Z") == pytest.approx(1683195002.481)
    assert parse_keptn("2022-07-18T04:31:17.01614488Z") == pytest.approx(1658118677.016144)
    assert parse_keptn("2023-05-04T10:10:02") == parse_keptn("2023-05-04T10:10:02Z")
    assert parse_keptn("2023-05-04T12:10:02+02:00") == parse_keptn("2023-05-04T10:10:02Z")
    assert parse_keptn("1683195002") == 1683195002.0
    with pytest.raises(TimestampError):
        parse_keptn("not a time")
