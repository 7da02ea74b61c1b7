"""The resource types the simulated API server serves, and where they live in the URL space."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    status_subresource: bool = False
    # Created and changed only by the simulated controllers (the operator's Jobs and their
    # pods), never through the API; deleting them is allowed, as on a real server.
    read_only: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How NotFound/AlreadyExists messages name it: ``configmaps``, ``testruns.k6.io``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_qualified(self) -> str:
        """How Invalid messages name it: ``ConfigMap``, ``TestRun.k6.io``."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


CONFIGMAPS = ResourceType("", "v1", "configmaps", "ConfigMap")
SECRETS = ResourceType("", "v1", "secrets", "Secret")
PODS = ResourceType("", "v1", "pods", "Pod", status_subresource=True, read_only=True)
JOBS = ResourceType("batch", "v1", "jobs", "Job", status_subresource=True, read_only=True)
# Created by the operator, one per runner (its REST API); a client reaches them through the
# service proxy.
SERVICES = ResourceType("", "v1", "services", "Service", read_only=True)
TESTRUNS = ResourceType("k6.io", "v1alpha1", "testruns", "TestRun", status_subresource=True)

ALL_RESOURCES = (CONFIGMAPS, SECRETS, PODS, JOBS, SERVICES, TESTRUNS)
