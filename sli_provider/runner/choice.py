"""The one place a plan's executor picks its back-end: a local k6 process, or k6-operator."""

from __future__ import annotations

from sli_provider.runner.backend import K6Outcome, K6StartError, RunnerBackend
from sli_provider.runner.plan import RunPlan

OPERATOR_DISABLED = (
    "the workload asks for 'executor: k6-operator', but this service runs k6 only locally "
    "(K6_OPERATOR_ENABLED is false)"
)


class ExecutorBackends:
    """A ``RunnerBackend`` that hands each plan to the back-end of its executor."""

    def __init__(self, local: RunnerBackend, k6_operator: RunnerBackend | None = None) -> None:
        self._local = local
        self._k6_operator = k6_operator

    async def execute(self, plan: RunPlan) -> K6Outcome:
        if plan.distribution is None:
            return await self._local.execute(plan)
        if self._k6_operator is None:
            raise K6StartError(OPERATOR_DISABLED)
        return await self._k6_operator.execute(plan)
