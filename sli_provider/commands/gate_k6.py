"""``sli-provider run``'s k6 part: the script checked before k6 starts, then k6 run through
the service's runner core (commands/gate.py scores and reports the run)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sli_provider.errors import SliProviderError
from sli_provider.k6.invocation import RunTags
from sli_provider.k6.script_env import unset_env_reads
from sli_provider.metrics import ServiceMetrics
from sli_provider.ports.querier import PrometheusError
from sli_provider.runner.backend import RunnerError
from sli_provider.runner.binaries import K6BinaryError
from sli_provider.runner.core import RunResult, run_plan
from sli_provider.runner.local import LocalK6Backend
from sli_provider.runner.plan import LocalScript, RunPlan
from sli_provider.runner.series import prometheus_series_check
from sli_provider.runner.summary import K6_EXIT_MEANINGS
from sli_provider.runner.workloads import keptn_script_env
from sli_provider.wiring import Configuration, load_k6_registry, make_prometheus


class GateError(SliProviderError):
    """The gate cannot run; the message is for the user."""


def check_script(script: Path) -> None:
    """A script k6 cannot open would only fail as k6's "could not start (bad option?)"."""
    try:
        with script.open("rb"):
            pass
    except OSError as exc:
        raise GateError(f"before starting k6: cannot read {script}: {exc.strerror}") from None


def check_script_env(args: argparse.Namespace) -> None:
    """A variable the script reads but nobody sets: one sentence instead of k6's error per
    request. Only the script's own file is read (not the modules it imports)."""
    try:
        text = args.script.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return  # check_script has said it
    given = dict(_script_env_args(args))
    given["TARGET_URL"] = args.target
    for name in unset_env_reads(text, given):
        how = "--target URL" if name == "TARGET_URL" else f"--env {name}=VALUE"
        raise GateError(
            f"before starting k6: {args.script} reads __ENV.{name}, which is not set: give {how}"
        )


def _script_env_args(args: argparse.Namespace) -> list[tuple[str, str]]:
    pairs = []
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            raise GateError(f"--env {item!r} is not KEY=VALUE")
        pairs.append((key, value))
    return pairs


async def run_k6(configuration: Configuration, args: argparse.Namespace, context: str) -> RunResult:
    """The same plan, back-end and series check as the service's runner, for a local script."""
    extra = dict(_script_env_args(args))
    tags = RunTags(args.g_project, args.g_stage, args.g_service, context)
    # The same target and credentials the service's runner would use for this project.
    prometheus = make_prometheus(configuration, ServiceMetrics())
    plan = RunPlan(
        tags=tags,
        script=LocalScript(args.script.resolve()),
        remote_write=prometheus.access_for(tags.project).remote_write_target(),
        script_env=keptn_script_env(tags, target_url=args.target, extra=extra),
        vus=args.vus,
        duration=args.duration,
        timeout_seconds=args.timeout,
        k6=args.k6,
    )
    binaries = configuration.k6 or load_k6_registry(configuration.settings)
    if args.k6 is not None and args.k6 not in {b.name for b in binaries.binaries}:
        # A path is fine here: it is the user's own machine (the service takes names only).
        try:
            binaries = binaries.including(args.k6, args.k6)
        except K6BinaryError as exc:
            raise GateError(f"--k6: {exc}") from None
    backend = LocalK6Backend(
        binaries=binaries,
        auto_extension_resolution=configuration.settings.k6_auto_extension_resolution,
        work_dir=configuration.settings.runner_work_dir,
        on_line=lambda line: print(line, file=sys.stderr),
    )
    try:
        check = prometheus_series_check(prometheus.for_project(tags.project))
        run = await run_plan(plan, backend, series_check=check)
    except RunnerError as exc:
        raise GateError(str(exc)) from None
    except PrometheusError as exc:
        raise GateError(f"could not check k6's metrics in Prometheus: {exc}") from None
    finally:
        await prometheus.aclose()
    if not run.completed:
        raise GateError(script_failure_message(run.returncode, run.outcome.output_tail))
    return run


def script_failure_message(returncode: int, output_tail: Sequence[str]) -> str:
    """What happened, then k6's error lines (its last lines when none is marked an error)."""
    meaning = K6_EXIT_MEANINGS.get(returncode, "k6 stopped before the test completed")
    errors = [line for line in output_tail if "level=error" in line or "ERRO" in line]
    shown = (errors or list(output_tail))[-15:]
    return f"k6 could not run the script: {meaning} (k6 exit code {returncode})" + "".join(
        f"\n  {line}" for line in shown
    )
