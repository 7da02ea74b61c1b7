"""The test task: what shipyard sends in test.triggered, what test.finished carries (§2.5-2.7)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sli_provider.errors import SliProviderError
from sli_provider.keptn.envelope import KeptnEvent, Scope
from sli_provider.keptn.names import name_problem
from sli_provider.keptn.timestamps import format_keptn

TASK = "test"


@dataclass(frozen=True)
class TestRequest:
    __test__ = False  # not a pytest test class

    scope: Scope
    teststrategy: str
    uris_local: tuple[str, ...]
    uris_public: tuple[str, ...]
    context: str
    gitcommitid: str


class InvalidTestRequest(SliProviderError, ValueError):
    """A test.triggered whose values cannot be used; the message says which and why."""


def parse_test_request(event: KeptnEvent) -> TestRequest:
    """Raises InvalidTestRequest for a name that would become part of a path and is not a
    plain name; an empty one is left to the runner (it makes the event not ours)."""
    data = event.data
    test = data.get("test")
    strategy = test.get("teststrategy") if isinstance(test, Mapping) else None
    strategy = strategy if isinstance(strategy, str) else ""
    scope = Scope.from_data(data)
    names = {
        "data.project": scope.project,
        "data.stage": scope.stage,
        "data.service": scope.service,
        "data.test.teststrategy": strategy,
    }
    for field, value in names.items():
        problem = name_problem(field, value) if value else None
        if problem is not None:
            raise InvalidTestRequest(problem)
    deployment = data.get("deployment")
    deployment = deployment if isinstance(deployment, Mapping) else {}
    return TestRequest(
        scope=scope,
        teststrategy=strategy,
        uris_local=_strings(deployment.get("deploymentURIsLocal")),
        uris_public=_strings(deployment.get("deploymentURIsPublic")),
        context=event.shkeptncontext,
        gitcommitid=event.gitcommitid,
    )


def _strings(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(item for item in raw if isinstance(item, str) and item)


def test_finished_payload(
    start: float | None, end: float | None, k6: Mapping[str, Any]
) -> dict[str, Any]:
    """``data.test`` with start/end in go-utils' format, and what k6 reported."""
    payload: dict[str, Any] = {"k6": dict(k6)}
    if start is not None and end is not None:
        payload["test"] = {"start": format_keptn(start), "end": format_keptn(end)}
    return payload
