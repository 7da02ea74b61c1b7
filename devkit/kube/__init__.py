"""A small, real-behaving Kubernetes API server on loopback that plays k6-operator.

``async with SimulatedKubernetes(images=...) as kube:`` serves core ConfigMaps, Secrets, Pods (+log),
batch Jobs, the runners' Services (with the service proxy to their k6 REST API) and k6.io
TestRuns at ``kube.url`` behind a bearer token (``kube.kubeconfig(path)``
writes a kubeconfig for it), validates TestRuns against k6-operator's CRD schema, and runs every
TestRun with real k6 processes as the operator's runner pods (see ``operator.py``).
"""

from __future__ import annotations

from devkit.kube.images import DEFAULT_RUNNER_IMAGE, ImageTable
from devkit.kube.resources import (
    CONFIGMAPS,
    JOBS,
    PODS,
    SECRETS,
    SERVICES,
    TESTRUNS,
    ResourceType,
)
from devkit.kube.server import SimulatedKubernetes

__all__ = [
    "CONFIGMAPS",
    "DEFAULT_RUNNER_IMAGE",
    "JOBS",
    "PODS",
    "SECRETS",
    "SERVICES",
    "TESTRUNS",
    "ImageTable",
    "ResourceType",
    "SimulatedKubernetes",
]
