"""Outside a Keptn cluster: one sli.yaml and one slo.yaml in the working directory for every scope.

``sli-provider run|evaluate|preview`` with no Keptn API and no sidecar configured (none of
KEPTN_API_URL, DISTRIBUTOR_URL, RESOURCE_SERVICE_URL, SLI_CONFIG_DIR set, as variable or flag)
read ``./<SLI_RESOURCE>`` (``./k6/sli.yaml``) as the project-level sli.yaml; no stage or service
levels. No such file: the built-ins alone. The layered layout stays ``--sli-config-dir``.
``serve`` does the same when NATS_URL is unset too, and reads ``./slo.yaml`` as every service's
slo.yaml (where Keptn keeps it: the service level).
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


# Keptn's name of the quality gate's objectives, at the service level (lighthouse reads it there).
SLO_RESOURCE = "slo.yaml"


class WorkingDirectoryFiles:
    """A ResourceReader over one directory: sli.yaml at the project level only, slo.yaml at the
    service level only, each the same file for every scope."""

    def __init__(self, root: Path, sli_resource: str) -> None:
        self._root = root
        self._sli = sli_resource

    def _path(self, uri: str) -> Path:
        return self._root.joinpath(*uri.split("/"))

    def describe(self, uri: str, project: str, stage: str | None, service: str | None) -> str:
        return str(self._path(uri))

    async def read(
        self, uri: str, project: str, stage: str | None, service: str | None, commit: str
    ) -> bytes | None:
        project_level = stage is None and service is None
        service_level = stage is not None and service is not None
        if not ((uri == self._sli and project_level) or (uri == SLO_RESOURCE and service_level)):
            return None
        path = self._path(uri)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ResourceError(f"{path}: {exc.strerror}") from None
