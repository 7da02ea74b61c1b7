"""One Prometheus client per distinct access (the default one, and each project's override)."""

from __future__ import annotations

from collections.abc import Callable

from sli_provider.adapters.prometheus_access import PrometheusAccess, PrometheusTargets
from sli_provider.ports.querier import Querier


class PrometheusRouter:
    def __init__(
        self,
        targets: PrometheusTargets,
        make_client: Callable[[PrometheusAccess], Querier],
    ) -> None:
        self.targets = targets
        self._make_client = make_client
        self._clients: dict[str, Querier] = {}  # keyed by project, "" for the default

    def access_for(self, project: str) -> PrometheusAccess:
        return self.targets.access_for(project)

    def for_project(self, project: str) -> Querier:
        key = project if project in self.targets.projects else ""
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._make_client(self.access_for(project))
        return client

    async def ready(self) -> bool:
        return await self.for_project("").ready()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
