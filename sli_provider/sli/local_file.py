"""The CLI outside a Keptn cluster: one sli.yaml in the working directory for every scope.

``sli-provider run|evaluate|preview`` with no Keptn API and no sidecar configured (none of
KEPTN_API_URL, DISTRIBUTOR_URL, RESOURCE_SERVICE_URL, SLI_CONFIG_DIR set, as variable or flag)
read ``./<SLI_RESOURCE>`` (``./k6/sli.yaml``) as the project-level sli.yaml; no stage or service
levels. No such file: the built-ins alone. The layered layout stays ``--sli-config-dir``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

from sli_provider.ports.resources import ResourceError

# Any of these, as environment variable or flag, means Keptn (or a layered local directory) is
# where sli.yaml comes from; the CLI then keeps reading it from there.
RESOURCE_SOURCE_SETTINGS = {
    "keptn_api_url": "KEPTN_API_URL",
    "distributor_url": "DISTRIBUTOR_URL",
    "resource_service_url": "RESOURCE_SERVICE_URL",
    "sli_config_dir": "SLI_CONFIG_DIR",
}


def outside_keptn(environ: Mapping[str, str], flags: Mapping[str, object]) -> bool:
    """Whether no source of Keptn resources was configured at all."""
    return not any(
        flags.get(name) or environ.get(env) for name, env in RESOURCE_SOURCE_SETTINGS.items()
    )


class WorkingDirectorySLIFile:
    """A ResourceReader that knows one file, at the project level only."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def describe(self, uri: str, project: str, stage: str | None, service: str | None) -> str:
        return str(self._path)

    async def read(
        self, uri: str, project: str, stage: str | None, service: str | None, commit: str
    ) -> bytes | None:
        if stage is not None or service is not None:
            return None
        try:
            return await asyncio.to_thread(self._path.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ResourceError(f"{self._path}: {exc.strerror}") from None
