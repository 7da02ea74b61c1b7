"""``k6 archive``: a script with modules in sub-directories as one file for the ConfigMap.

k6-operator mounts the script ConfigMap flat at /test/, so ``import './lib/x.js'`` cannot
resolve there. ``k6 archive`` packs the script, every module it imports and every file it opens
in its init context into one ``.tar`` that ``k6 run`` accepts as its script. It runs here, with
this service's own k6, in a private directory, with nothing of this process's environment.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from sli_provider.runner.backend import K6StartError
from sli_provider.runner.plan import StagedScript

ARCHIVE_TIMEOUT_SECONDS = 60.0
ARCHIVE_NAME = "archive.tar"


async def k6_archive(k6: str, script: StagedScript) -> bytes:
    """The archive of ``script`` with its files; ``K6StartError`` when k6 refuses it."""
    root = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="k6-archive-"))
    try:
        await asyncio.to_thread(_stage, root, script)
        out = root / ARCHIVE_NAME
        process = await asyncio.create_subprocess_exec(
            k6,
            "archive",
            "--include-system-env-vars=false",
            "-O",
            str(out),
            script.entry,
            cwd=root / "files",
            env={"HOME": str(root), "K6_NO_USAGE_REPORT": "true"},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), ARCHIVE_TIMEOUT_SECONDS)
        except BaseException:  # the deadline, or cancellation: the process goes with it
            process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            tail = "\n".join(output.decode(errors="replace").strip().splitlines()[-10:])
            raise K6StartError(f"k6 archive of {script.entry!r} failed:\n{tail}")
        return await asyncio.to_thread(out.read_bytes)
    except TimeoutError:
        raise K6StartError(
            f"k6 archive of {script.entry!r} took over {ARCHIVE_TIMEOUT_SECONDS:g} s"
        ) from None
    except OSError as exc:
        raise K6StartError(f"cannot archive {script.entry!r}: {exc}") from None
    finally:
        await asyncio.to_thread(shutil.rmtree, root, True)


def _stage(root: Path, script: StagedScript) -> None:
    for relative, content in script.files.items():
        # StagedScript admits only relative paths without '..'.
        path = root.joinpath("files", *relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
