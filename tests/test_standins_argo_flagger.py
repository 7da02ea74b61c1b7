"""The Argo Rollouts and Flagger stand-ins follow their sources' rules (devkit/reference/*/SOURCE.md)
and refuse what they do not play, so an example cannot lean on something untested."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from devkit import argo, flagger
from devkit._http import LoopbackServer

BOTH = {"successCondition": 'result == "pass"', "failureCondition": 'result == "fail"'}


@pytest.mark.parametrize(
    ("metric", "result", "phase"),
    [
        ({}, "anything", argo.SUCCESSFUL),  # neither condition
        (BOTH, "pass", argo.SUCCESSFUL),
        (BOTH, "fail", argo.FAILED),
        (BOTH, "warning", argo.INCONCLUSIVE),  # both given, neither true
        ({"successCondition": 'result == "pass"'}, "warning", argo.FAILED),  # only success, false
        ({"failureCondition": 'result == "fail"'}, "warning", argo.SUCCESSFUL),  # only failure
        ({"successCondition": "true", "failureCondition": "true"}, 1, argo.FAILED),  # failure wins
    ],
)
def test_phase_rules(metric: dict[str, str], result: Any, phase: str) -> None:
    assert argo.evaluate_result(result, metric) == phase


@pytest.mark.parametrize(
    ("condition", "result", "expected"),
    [
        ("result.score >= 90 && result.ok", {"score": 95, "ok": True}, True),
        ("result.score >= 90 || !result.ok", {"score": 50, "ok": True}, False),
        ('result.missing == "x"', {}, False),  # a missing key is nil
        ("result == 1", 1.0, True),
        ('result == "1"', 1, False),  # no conversion between types
        ("(result > 2) && (result < 4)", 3, True),
    ],
)
def test_expr_subset(condition: str, result: Any, expected: bool) -> None:
    assert argo.condition(condition, result) is expected


@pytest.mark.parametrize(
    ("condition", "result"),
    [("result", "pass"), ("result > 5", "pass"), ("result.x", None), ("result && true", 1)],
)
def test_expr_errors_are_error_measurements(condition: str, result: Any) -> None:
    with pytest.raises(argo.MeasurementError):
        argo.condition(condition, result)


@pytest.mark.parametrize("condition", ['result in ["a"]', "len(result) > 0", "result[0] == 1"])
def test_expr_beyond_the_subset_is_refused(condition: str) -> None:
    with pytest.raises(argo.Unsupported):
        argo.condition(condition, "a")


def test_json_path_subset() -> None:
    document = {"a": {"b": [1]}, "result": "pass"}
    assert argo.json_path("{$}", document) == document
    assert argo.json_path("{$.result}", document) == "pass"
    assert argo.json_path("{.a.b}", document) == [1]
    with pytest.raises(argo.MeasurementError, match="not found"):
        argo.json_path("{$.nothing}", document)
    for unsupported in ("{$.a.b[0]}", "{range .items[*]}{.name}{end}", "$.result"):
        with pytest.raises(argo.Unsupported):
            argo.json_path(unsupported, document)


def template(*metrics: dict[str, Any], args: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "AnalysisTemplate", "spec": {"args": args, "metrics": list(metrics)}}


def test_args_are_substituted_json_escaped_and_must_resolve() -> None:
    metric = {
        "name": "m",
        "provider": {"web": {"url": "http://x/{{ args.a }}", "jsonBody": {"v": "{{args.b}}"}}},
    }
    resolved = argo.resolve_metric(
        template(metric, args=[{"name": "a", "value": "p"}, {"name": "b"}]),
        "m",
        {"b": 'say "hi"\n', "unknown": "ignored"},
    )
    assert resolved["provider"]["web"] == {"url": "http://x/p", "jsonBody": {"v": 'say "hi"\n'}}
    with pytest.raises(argo.MeasurementError, match=r"args\.b was not resolved"):
        argo.resolve_metric(
            template(metric, args=[{"name": "a", "value": "p"}, {"name": "b"}]), "m", {}
        )
    with pytest.raises(argo.MeasurementError, match="failed to resolve"):
        argo.resolve_metric(template(metric, args=[{"name": "b", "value": "v"}]), "m", {})


async def test_flagger_status_rule_payload_and_retries() -> None:
    seen: list[dict[str, Any]] = []
    answers = iter([200, 202, 203, 500, 500, 503, 200])

    async def hook(request: web.Request) -> web.Response:
        seen.append({"body": await request.json(), "type": request.content_type})
        return web.json_response({"n": len(seen)}, status=next(answers))

    app = web.Application()
    app.router.add_post("/hook", hook)
    canary = {"metadata": {"name": "web", "namespace": "shop"}}
    async with LoopbackServer(app) as server:
        url = server.url + "/hook"
        plain = {"name": "h", "url": url}
        calls = [await flagger.call(canary, plain) for _ in range(3)]
        retried = await flagger.call(canary, {**plain, "retries": 1})  # 500, 500: gives up
        recovered = await flagger.call(canary, {**plain, "retries": 2, "metadata": {"k": "v"}})
    assert [c.failed for c in calls] == [False, False, True]  # above 202 fails
    assert retried.failed and "giving up after 2 attempt(s)" in retried.message
    assert not recovered.failed and recovered.status == 200  # 503 retried, then 200
    assert seen[0]["type"] == "application/json"
    assert set(seen[0]["body"]) == {"name", "namespace", "phase", "checksum"}  # no metadata
    assert seen[-1]["body"]["metadata"] == {"k": "v"}
    assert seen[-1]["body"]["phase"] == "Progressing"
