"""A workload's ``executor`` and, for ``k6-operator``, how its runners are spread and dressed.

k6.conf.yaml keys (next to a workload's ``script``)::

    executor: k6-operator      # or local (the default)
    parallelism: 4             # runner pods; k6 splits the load between them (execution segments)
    separate: true             # at most one runner per node
    runner:                    # the runner pods, as k6-operator's TestRun spec.runner takes them
      image: grafana/k6:1.1.0
      resources: {limits: {cpu: "1", memory: 512Mi}}
      nodeSelector: {pool: load}
      tolerations: [{key: load, operator: Exists, effect: NoSchedule}]
      env: {GODEBUG: "madvdontneed=1"}

Validated strictly here, so a typo is an errored test.finished that names it rather than a TestRun
the API server rejects with a message about the CRD.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sli_provider.errors import SliProviderError

Executor = Literal["local", "k6-operator"]
EXECUTORS: tuple[Executor, ...] = ("local", "k6-operator")
# One TestRun's runner count; beyond this a typo is likelier than a plan.
MAX_PARALLELISM = 1000

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i?|[mkunM])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})
_RUNNER_KEYS = frozenset({"image", "resources", "nodeSelector", "tolerations", "env"})
# The runner's remote-write target and credentials are the service's to set; a workload that
# could override them could send a project's metrics elsewhere.
_RESERVED_ENV_PREFIX = "K6_PROMETHEUS_RW_"


class DistributionError(SliProviderError, ValueError):
    """A workload's executor settings cannot be used; the text names the problem."""


@dataclass(frozen=True)
class RunnerPod:
    """What the workload says about the runner pods; empty means the service's defaults."""

    image: str | None = None
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Distribution:
    """A run on k6-operator: ``parallelism`` runner pods, optionally one per node."""

    parallelism: int = 1
    separate: bool = False
    runner: RunnerPod = field(default_factory=RunnerPod)


DISTRIBUTION_KEYS = frozenset({"executor", "parallelism", "separate", "runner"})


def parse_distribution(item: Mapping[str, Any], where: str) -> Distribution | None:
    """None for a local run; the k6-operator settings otherwise."""
    executor = item.get("executor", "local")
    if executor not in EXECUTORS:
        raise DistributionError(
            f"{where}: 'executor' must be local or k6-operator, not {executor!r}"
        )
    given = sorted(k for k in ("parallelism", "separate", "runner") if k in item)
    if executor == "local":
        if given:
            raise DistributionError(
                f"{where}: {', '.join(repr(k) for k in given)} only apply to 'executor: k6-operator'"
            )
        return None
    parallelism = item.get("parallelism", 1)
    if (
        not isinstance(parallelism, int)
        or isinstance(parallelism, bool)
        or not 1 <= parallelism <= MAX_PARALLELISM
    ):
        raise DistributionError(
            f"{where}: 'parallelism' must be an integer from 1 to {MAX_PARALLELISM}"
        )
    separate = item.get("separate", False)
    if not isinstance(separate, bool):
        raise DistributionError(f"{where}: 'separate' must be true or false")
    return Distribution(parallelism, separate, _runner(item.get("runner") or {}, where))


def _runner(raw: object, where: str) -> RunnerPod:
    where = f"{where} runner"
    if not isinstance(raw, Mapping):
        raise DistributionError(f"{where}: must be a mapping")
    unknown = set(raw) - _RUNNER_KEYS
    if unknown:
        raise DistributionError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
            f"known: {', '.join(sorted(_RUNNER_KEYS))}"
        )
    image = raw.get("image")
    if image is not None and (not isinstance(image, str) or not image or image.strip() != image):
        raise DistributionError(
            f"{where}: 'image' must be an image reference such as grafana/k6:1.1.0"
        )
    return RunnerPod(
        image=image,
        resources=_resources(raw.get("resources") or {}, where),
        node_selector=_node_selector(raw.get("nodeSelector") or {}, where),
        tolerations=_tolerations(raw.get("tolerations") or [], where),
        env=_env(raw.get("env") or {}, where),
    )


def _resources(raw: object, where: str) -> dict[str, dict[str, str]]:
    if not isinstance(raw, Mapping) or not set(raw) <= {"limits", "requests"}:
        raise DistributionError(f"{where}: 'resources' takes 'limits' and 'requests'")
    resources: dict[str, dict[str, str]] = {}
    for kind, amounts in raw.items():
        if not isinstance(amounts, Mapping):
            raise DistributionError(
                f"{where}: 'resources.{kind}' must map resource names to amounts"
            )
        resources[kind] = {}
        for name, amount in amounts.items():
            text = str(amount) if isinstance(amount, int | float | str) else ""
            if not isinstance(name, str) or isinstance(amount, bool) or not _QUANTITY.match(text):
                raise DistributionError(
                    f"{where}: 'resources.{kind}.{name}' must be a quantity such as 500m or 1Gi"
                )
            resources[kind][name] = text
    return resources


def _node_selector(raw: object, where: str) -> dict[str, str]:
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and _LABEL_KEY.match(k) and isinstance(v, str | int | float | bool)
        for k, v in raw.items()
    ):
        raise DistributionError(f"{where}: 'nodeSelector' must map label names to values")
    return {k: _label_text(v) for k, v in raw.items()}


def _label_text(value: object) -> str:
    # YAML reads `ssd: true` as a boolean; the node label is the text "true".
    return str(value).lower() if isinstance(value, bool) else str(value)


def _tolerations(raw: object, where: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(raw, list):
        raise DistributionError(f"{where}: 'tolerations' must be a list")
    tolerations = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, Mapping) or not set(item) <= _TOLERATION_KEYS:
            raise DistributionError(
                f"{where}: toleration {i} takes only {', '.join(sorted(_TOLERATION_KEYS))}"
            )
        toleration: dict[str, Any] = {}
        for key, value in item.items():
            if key == "tolerationSeconds":
                if not isinstance(value, int) or isinstance(value, bool):
                    raise DistributionError(
                        f"{where}: toleration {i}: 'tolerationSeconds' must be an integer"
                    )
                toleration[key] = value
            elif not isinstance(value, str):
                raise DistributionError(f"{where}: toleration {i}: {key!r} must be a string")
            else:
                toleration[key] = value
        if toleration.get("operator", "Equal") not in ("Equal", "Exists"):
            raise DistributionError(f"{where}: toleration {i}: 'operator' must be Equal or Exists")
        if toleration.get("effect", "NoSchedule") not in (
            "NoSchedule",
            "PreferNoSchedule",
            "NoExecute",
        ):
            raise DistributionError(
                f"{where}: toleration {i}: 'effect' must be NoSchedule, PreferNoSchedule or NoExecute"
            )
        tolerations.append(toleration)
    return tuple(tolerations)


def _env(raw: object, where: str) -> dict[str, str]:
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and _ENV_NAME.match(k) for k in raw
    ):
        raise DistributionError(f"{where}: 'env' must map variable names to values")
    reserved = sorted(k for k in raw if k.startswith(_RESERVED_ENV_PREFIX))
    if reserved:
        raise DistributionError(
            f"{where}: 'env' cannot set {', '.join(reserved)}: the service sets the remote write"
        )
    return {k: _label_text(v) for k, v in raw.items()}
