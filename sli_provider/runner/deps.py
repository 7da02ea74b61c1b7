"""What a staged script needs: its source read for imports, plus ``k6 deps --json`` where a
configured k6 has it.

The answer is the set of ``k6/x/...`` imports the script and its local modules use.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

from sli_provider.runner.binaries import K6Binary
from sli_provider.runner.extensions import EXTENSION_PREFIX, extension_imports

DEPS_TIMEOUT_SECONDS = 10.0

log = logging.getLogger(__name__)


async def needed_extensions(
    script: Path, root: Path, *, deps_binary: K6Binary | None, home: Path
) -> frozenset[str]:
    """The script's ``k6/x/...`` imports; ``root`` is where its relative modules resolve from.

    Both sources are used where ``k6 deps`` exists: k6 resolves what a reader cannot (its own
    module loader), but it does not list ``require("k6/x/...")`` calls in a local module.
    """
    read = await asyncio.to_thread(_read_imports, script, root)
    if deps_binary is not None:
        listed = await _k6_deps(deps_binary, script, home)
        if listed is not None:
            return read | listed
    return read


def parse_deps_json(text: str) -> frozenset[str] | None:
    """``k6 deps --json`` → the extension imports; None when the text is not that answer."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("imports"), list):
        return None
    # "buildDependencies" also holds what a `"use k6 with k6/x/..."` directive asks for.
    build = document.get("buildDependencies")
    names = [*document["imports"], *(build if isinstance(build, dict) else {})]
    return frozenset(str(n) for n in names if str(n).startswith(EXTENSION_PREFIX))


async def _k6_deps(binary: K6Binary, script: Path, home: Path) -> frozenset[str] | None:
    process = await asyncio.create_subprocess_exec(
        binary.path,
        "deps",
        "--json",
        str(script),
        env={"HOME": str(home), "K6_AUTO_EXTENSION_RESOLUTION": "false", "K6_NO_COLOR": "true"},
        cwd=script.parent,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(DEPS_TIMEOUT_SECONDS):
            stdout, _ = await process.communicate()
    except TimeoutError:
        await _kill(process)
        log.warning(
            "k6 deps took over %g s; reading the script's imports instead", DEPS_TIMEOUT_SECONDS
        )
        return None
    except BaseException:
        await _kill(process)
        raise
    if process.returncode != 0:
        log.info("k6 deps failed; reading the script's imports instead")
        return None
    return parse_deps_json(stdout.decode("utf-8", errors="replace"))


async def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()


def _read_imports(script: Path, root: Path) -> frozenset[str]:
    def read(relative: str) -> str | None:
        try:
            return (root / relative).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    return extension_imports(script.relative_to(root).as_posix(), read)
