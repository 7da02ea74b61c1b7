"""A TestRun's ``status`` as k6-operator writes it: the stage and the conditions
(``api/v1alpha1/k6conditions.go``, ``pkg/types/conditions.go``)."""

from __future__ import annotations

from typing import Any

from devkit.kube.resources import TESTRUNS
from devkit.kube.store import Store, now_rfc3339

# The operator's reason for each condition type and status.
_REASONS = {
    ("CloudTestRun", "Unknown"): "TestRunTypeUnknown",
    ("CloudTestRun", "False"): "TestRunTypeOSS",
    ("TestRunRunning", "Unknown"): "TestRunPreparation",
    ("TestRunRunning", "True"): "TestRunRunningTrue",
    ("TestRunRunning", "False"): "TestRunRunningFalse",
    ("TeardownExecuted", "False"): "TeardownExecutedFalse",
    ("CloudTestRunAborted", "False"): "CloudTestRunAbortedFalse",
    ("CloudPLZTestRun", "False"): "CloudPLZTestRunFalse",
}
# v1alpha1.Initialize for a test run that is not a cloud one.
_INITIAL = (
    ("CloudTestRun", "Unknown"),
    ("TestRunRunning", "Unknown"),
    ("TeardownExecuted", "False"),
    ("CloudTestRunAborted", "False"),
    ("CloudPLZTestRun", "False"),
)


class TestRunStatus:
    """Each call is one status update (one resourceVersion, one MODIFIED event), as the
    operator's ``UpdateStatus`` calls are."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, store: Store) -> None:
        self._store = store

    def set(self, namespace: str, name: str, **fields: Any) -> None:
        current = self._store.get(TESTRUNS, namespace, name)
        current["status"] = {**(current.get("status") or {}), **fields}
        self._store.update(TESTRUNS, namespace, current)

    def initialize_conditions(self, namespace: str, name: str) -> None:
        now = now_rfc3339()
        self.set(namespace, name, conditions=[_condition(t, s, now) for t, s in _INITIAL])

    def condition(self, namespace: str, name: str, kind: str, status: str) -> None:
        """``meta.SetStatusCondition``: replaced in place, the transition time kept when the
        status does not change, appended when new."""
        current = self._store.get(TESTRUNS, namespace, name)
        conditions = list((current.get("status") or {}).get("conditions", []))
        new = _condition(kind, status, now_rfc3339())
        for index, old in enumerate(conditions):
            if old["type"] == kind:
                if old["status"] == status:
                    new["lastTransitionTime"] = old["lastTransitionTime"]
                conditions[index] = new
                break
        else:
            conditions.append(new)
        self.set(namespace, name, conditions=conditions)


def _condition(kind: str, status: str, at: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "lastTransitionTime": at,
        "reason": _REASONS[(kind, status)],
        "message": "",
    }
