"""A planned k6 run: a pure value that says what to run, with what, for which Keptn scope.

Every launcher (the service's test.triggered handler, ``sli-provider run``, the devkit) builds a
``RunPlan`` and hands it to a back-end (``runner/backend.py``); how and where k6 runs is the
back-end's business, so the plan holds no binary path, no directory and no revealed secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sli_provider.k6.invocation import K6Invocation, RemoteWriteTarget, RunTags, build_invocation
from sli_provider.runner.distribution import Distribution
from sli_provider.runner.workloads import DEFAULT_TIMEOUT_SECONDS, check_relative_path


@dataclass(frozen=True)
class StagedScript:
    """A script and the files it needs, by relative path, to be written into a private
    directory before k6 starts (the service's case: the files come from Keptn's resources)."""

    entry: str
    files: Mapping[str, bytes]

    def __post_init__(self) -> None:
        # The one guard between a resource path and the back-end's file system: a path that
        # could leave the private directory cannot even be planned.
        for path in self.files:
            check_relative_path(path, "staged files")
        if self.entry not in self.files:
            raise ValueError(f"the script {self.entry!r} is not among the staged files")


@dataclass(frozen=True)
class LocalScript:
    """A script already on this machine, run where it is so its relative imports resolve
    (``sli-provider run --script``, the devkit)."""

    path: Path

    def __post_init__(self) -> None:
        if not self.path.is_absolute():
            raise ValueError(f"a local script needs an absolute path, not {self.path}")


ScriptSource = StagedScript | LocalScript


@dataclass(frozen=True)
class RunPlan:
    tags: RunTags
    script: ScriptSource
    remote_write: RemoteWriteTarget
    # What the script sees in __ENV, and nothing else (see k6/invocation.py).
    script_env: Mapping[str, str] = field(default_factory=dict)
    vus: int | None = None
    duration: str | None = None
    iterations: int | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    # A configured binary's name (a workload's ``k6:``), never a path; None: the back-end
    # chooses by the extensions the script imports.
    k6: str | None = None
    # Further k6 options (a distributed run's --execution-segment, --paused, --tag instance_id).
    extra_args: tuple[str, ...] = ()
    # None: one local k6 process; else a k6-operator TestRun spread like this.
    distribution: Distribution | None = None
    # The test.triggered event's id, which a cluster back-end labels its objects with so that a
    # replica that takes the event over can find them.
    triggered_id: str | None = None

    def invocation(self, script_path: str | Path) -> K6Invocation:
        """k6's arguments for this plan, with the script where the back-end put it."""
        return build_invocation(
            script=script_path,
            remote_write=self.remote_write,
            tags=self.tags,
            script_env=self.script_env,
            vus=self.vus,
            duration=self.duration,
            iterations=self.iterations,
            extra_args=self.extra_args,
        )
