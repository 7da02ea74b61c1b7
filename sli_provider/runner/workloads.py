"""k6.conf.yaml: which script runs for a test strategy, with what, against which target."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import yaml

from sli_provider.errors import SliProviderError
from sli_provider.k6.invocation import RunTags
from sli_provider.keptn.test_task import TestRequest
from sli_provider.runner.distribution import (
    DISTRIBUTION_KEYS,
    Distribution,
    DistributionError,
    Executor,
    parse_distribution,
)
from sli_provider.yaml_problem import yaml_problem

DEFAULT_TIMEOUT_SECONDS = 30 * 60
TIMEOUT_SLACK_SECONDS = 60
_DURATION = re.compile(
    r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$"
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The same names K6_BINARIES accepts: never a path, so the config repository cannot make the
# service's pod run a program of its choosing.
_BINARY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class WorkloadError(SliProviderError, ValueError):
    """k6.conf.yaml exists but cannot be used; the text names the problem."""


@dataclass(frozen=True)
class Workload:
    teststrategy: str
    script: str
    vus: int | None = None
    duration: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float | None = None
    target: Literal["local", "public"] = "local"
    on_threshold_failure: Literal["fail", "warning"] = "fail"
    files: tuple[str, ...] = ()
    # A name from K6_BINARIES (or "default"); None: chosen by the script's extension imports.
    k6: str | None = None
    # None: a local run; else the k6-operator settings (``executor: k6-operator``).
    distribution: Distribution | None = None

    @property
    def executor(self) -> Executor:
        return "local" if self.distribution is None else "k6-operator"

    def effective_timeout(self) -> float:
        """The workload's own timeout, else its duration plus a minute, else 30 minutes."""
        if self.timeout_seconds is not None:
            return self.timeout_seconds
        if self.duration is not None:
            return parse_duration(self.duration) + TIMEOUT_SLACK_SECONDS
        return DEFAULT_TIMEOUT_SECONDS


def parse_duration(text: str) -> float:
    """k6-style durations: ``90s``, ``5m``, ``1h30m``, ``500ms``, or plain seconds."""
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    match = _DURATION.match(value)
    if not value or match is None or not any(match.groups()):
        raise WorkloadError(f"{text!r} is not a duration such as 90s, 5m or 1h30m")
    hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def default_workload(teststrategy: str) -> Workload:
    """Without k6.conf.yaml: ``k6/<teststrategy>.js`` with the script's own options."""
    return Workload(teststrategy=teststrategy, script=f"k6/{teststrategy}.js")


def parse_workloads(text: str | bytes, origin: str) -> list[Workload]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WorkloadError(f"{origin}: not valid YAML: {yaml_problem(exc)}") from None
    if not isinstance(document, Mapping) or not isinstance(document.get("workloads"), list):
        raise WorkloadError(f"{origin}: expected 'workloads:' with a list of workloads")
    return [
        _workload(item, f"{origin} workload {i + 1}")
        for i, item in enumerate(document["workloads"])
    ]


def _workload(item: object, where: str) -> Workload:
    if not isinstance(item, Mapping):
        raise WorkloadError(f"{where}: must be a mapping")
    unknown = set(item) - {
        "teststrategy",
        "script",
        "vus",
        "duration",
        "env",
        "timeout",
        "target",
        "on_threshold_failure",
        "files",
        "k6",
        *DISTRIBUTION_KEYS,
    }
    if unknown:
        raise WorkloadError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    strategy, script = item.get("teststrategy"), item.get("script")
    if not isinstance(strategy, str) or not strategy:
        raise WorkloadError(f"{where}: 'teststrategy' is required")
    if not isinstance(script, str) or not script:
        raise WorkloadError(f"{where}: 'script' is required")
    vus = item.get("vus")
    if vus is not None and (not isinstance(vus, int) or isinstance(vus, bool) or vus < 1):
        raise WorkloadError(f"{where}: 'vus' must be a positive integer")
    duration = item.get("duration")
    if duration is not None:
        duration = str(duration)
        parse_duration(duration)
    timeout = item.get("timeout")
    timeout_seconds = parse_duration(str(timeout)) if timeout is not None else None
    env = item.get("env") or {}
    if not isinstance(env, Mapping) or not all(
        isinstance(k, str) and _ENV_NAME.match(k) for k in env
    ):
        raise WorkloadError(f"{where}: 'env' must map variable names to values")
    target = item.get("target", "local")
    if target not in ("local", "public"):
        raise WorkloadError(f"{where}: 'target' must be local or public")
    on_failure = item.get("on_threshold_failure", "fail")
    if on_failure not in ("fail", "warning"):
        raise WorkloadError(f"{where}: 'on_threshold_failure' must be fail or warning")
    files = item.get("files") or []
    if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
        raise WorkloadError(f"{where}: 'files' must be a list of resource paths")
    for path in [script, *files]:
        check_relative_path(path, where)
    k6 = item.get("k6")
    if k6 is not None and (not isinstance(k6, str) or not _BINARY_NAME.fullmatch(k6)):
        raise WorkloadError(
            f"{where}: 'k6' must be the name of a binary from K6_BINARIES (or 'default'), "
            f"not {k6!r}; paths are not allowed"
        )
    try:
        distribution = parse_distribution(item, where)
    except DistributionError as exc:
        raise WorkloadError(str(exc)) from None
    if distribution is not None and vus is not None and vus < distribution.parallelism:
        # k6-operator's initializer refuses such a TestRun (a runner without a VU).
        raise WorkloadError(
            f"{where}: 'vus' ({vus}) must be at least 'parallelism' ({distribution.parallelism})"
        )
    return Workload(
        teststrategy=strategy,
        script=script,
        vus=vus,
        duration=duration,
        env={k: str(v) for k, v in env.items()},
        timeout_seconds=timeout_seconds,
        target=target,
        on_threshold_failure=on_failure,
        files=tuple(files),
        k6=k6,
        distribution=distribution,
    )


def check_relative_path(path: str, where: str) -> None:
    """A resource path that stays inside the run's private directory."""
    parts = path.split("/")
    if path.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in path:
        raise WorkloadError(f"{where}: {path!r} must be a relative path without '..'")


def select(workloads: Sequence[Workload], teststrategy: str) -> Workload | None:
    return next((w for w in workloads if w.teststrategy == teststrategy), None)


def target_url(request: TestRequest, workload: Workload) -> str:
    """deploymentURIsLocal first (as jmeter-service did), or public first with ``target: public``."""
    order = (request.uris_local, request.uris_public)
    if workload.target == "public":
        order = (request.uris_public, request.uris_local)
    for uris in order:
        if uris:
            return uris[0]
    return ""


def script_env(request: TestRequest, workload: Workload) -> dict[str, str]:
    """What the script sees in ``__ENV``: the event's facts, then the workload's own env."""
    return keptn_script_env(
        RunTags(request.scope.project, request.scope.stage, request.scope.service, request.context),
        target_url=target_url(request, workload),
        teststrategy=request.teststrategy,
        labels=request.scope.labels,
        extra=workload.env,
    )


def keptn_script_env(
    tags: RunTags,
    *,
    target_url: str,
    teststrategy: str | None = None,
    labels: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The script's ``__ENV`` for a run of ``tags``, the same for every launcher."""
    env = {
        "TARGET_URL": target_url,
        "KEPTN_PROJECT": tags.project,
        "KEPTN_STAGE": tags.stage,
        "KEPTN_SERVICE": tags.service,
        "KEPTN_CONTEXT": tags.context,
    }
    if teststrategy is not None:
        env["KEPTN_TESTSTRATEGY"] = teststrategy
    for key, value in (labels or {}).items():
        env["LABEL_" + re.sub(r"[^A-Za-z0-9_]", "_", key).upper()] = value
    env.update(extra or {})
    return env
