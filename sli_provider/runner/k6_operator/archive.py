"""This service's own k6 on a run's script, before the TestRun: ``k6 archive`` and ``k6 inspect``.

k6-operator mounts the script ConfigMap flat at /test/, so ``import './lib/x.js'`` cannot
resolve there. ``k6 archive`` packs the script, every module it imports and every file it opens
in its init context into one ``.tar`` that ``k6 run`` accepts as its script. ``k6 inspect``
prints the script's options, its thresholds among them, which the service judges on the whole
test (``whole_test.py``). Both run here, in a private directory, with nothing of this process's
environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from sli_provider.k6.thresholds import ThresholdError, ThresholdSpec, parse_inspect
from sli_provider.runner.backend import K6StartError
from sli_provider.runner.plan import StagedScript

ARCHIVE_TIMEOUT_SECONDS = 60.0
ARCHIVE_NAME = "archive.tar"
_OUTPUT_LIMIT = 4 * 1024 * 1024


async def k6_archive(k6: str, script: StagedScript) -> bytes:
    """The archive of ``script`` with its files; ``K6StartError`` when k6 refuses it."""
    root = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="k6-archive-"))
    try:
        out = root / ARCHIVE_NAME
        args = ("archive", "--include-system-env-vars=false", "-O", str(out), script.entry)
        await _k6(k6, script, root, args, "archive")
        return await asyncio.to_thread(out.read_bytes)
    except OSError as exc:
        raise K6StartError(f"cannot archive {script.entry!r}: {exc}") from None
    finally:
        await asyncio.to_thread(shutil.rmtree, root, True)


async def k6_thresholds(
    k6: str, script: StagedScript, script_env: Mapping[str, str]
) -> list[ThresholdSpec]:
    """The script's thresholds as ``k6 inspect`` reads its options, with the run's ``__ENV``."""
    root = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="k6-inspect-"))
    try:
        env_flags = [f for key, value in script_env.items() for f in ("--env", f"{key}={value}")]
        # --execution-requirements: k6 also checks each threshold against its metric (an
        # unknown metric, an aggregation its type lacks), as `k6 run` would before a local run.
        args = (
            "inspect",
            "--execution-requirements",
            "--include-system-env-vars=false",
            *env_flags,
            script.entry,
        )
        output = await _k6(k6, script, root, args, "inspect", merge_stderr=False)
        return parse_inspect(output)
    except ThresholdError as exc:
        raise K6StartError(f"cannot read the thresholds of {script.entry!r}: {exc}") from None
    except OSError as exc:
        raise K6StartError(f"cannot inspect {script.entry!r}: {exc}") from None
    finally:
        await asyncio.to_thread(shutil.rmtree, root, True)


async def _k6(
    k6: str,
    script: StagedScript,
    root: Path,
    args: tuple[str, ...],
    what: str,
    *,
    merge_stderr: bool = True,
) -> bytes:
    """k6 ``args`` in ``root/files`` (the script's files staged there); its stdout."""
    await asyncio.to_thread(_stage, root, script)
    process = await asyncio.create_subprocess_exec(
        k6,
        *args,
        cwd=root / "files",
        env={"HOME": str(root), "K6_NO_USAGE_REPORT": "true"},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
    )
    try:
        output, errors = await asyncio.wait_for(process.communicate(), ARCHIVE_TIMEOUT_SECONDS)
    except TimeoutError:
        await kill_if_running(process)
        raise K6StartError(
            f"k6 {what} of {script.entry!r} took over {ARCHIVE_TIMEOUT_SECONDS:g} s"
        ) from None
    except BaseException:  # cancellation: the process goes with it
        await kill_if_running(process)
        raise
    if process.returncode != 0:
        text = (output + (errors or b"")).decode(errors="replace")
        # Paths as the script's files name them, not this service's temporary directory.
        text = text.replace(f"file://{root}/files/", "").replace(f"{root}/files/", "")
        tail = "\n".join(text.strip().splitlines()[-10:])
        raise K6StartError(f"k6 {what} of {script.entry!r} failed:\n{tail}")
    return output[:_OUTPUT_LIMIT]


async def kill_if_running(process: asyncio.subprocess.Process) -> None:
    # It may have exited between the deadline and the kill.
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()


def _stage(root: Path, script: StagedScript) -> None:
    for relative, content in script.files.items():
        # StagedScript admits only relative paths without '..'.
        path = root.joinpath("files", *relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
