"""Two scopes with one real k6 run each, for the gate endpoint and its callers' stand-ins:
a service that passes its slo.yaml and one that fails it (every second request fails)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from devkit.k6run import LoadRun, run_load
from sli_provider.k6.invocation import RunTags

# Scored on the built-ins; the failing service's failed-request rate breaks the key SLI.
GATE_SLO = """\
spec_version: "1.0"
comparison:
  compare_with: "single_result"
  include_result_with_score: "pass"
objectives:
  - sli: http_req_failed_rate
    displayName: Failed requests
    key_sli: true
    pass:
      - criteria: ["<=0.05"]
  - sli: http_reqs_total
    pass:
      - criteria: [">=1"]
  - sli: http_req_duration_p95
    pass:
      - criteria: ["<=+50%", "<2000"]
total_score:
  pass: "90%"
  warning: "75%"
"""


@dataclass(frozen=True)
class GateScope:
    tags: RunTags
    run: LoadRun

    @property
    def scope(self) -> dict[str, str]:
        return {
            "project": self.tags.project,
            "stage": self.tags.stage,
            "service": self.tags.service,
        }


def write_slo(config_dir: Path, tags: RunTags, text: str = GATE_SLO) -> None:
    """``<dir>/<project>/<stage>/<service>/slo.yaml``, where SLI_CONFIG_DIR keeps it."""
    path = config_dir / tags.project / tags.stage / tags.service / "slo.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def gate_scope(
    prometheus_url: str, target_url: str, workdir: Path, *, failing: bool
) -> GateScope:
    """A fresh scope (its own service name) and one 2 s run in it."""
    service = f"{'failing' if failing else 'passing'}-{uuid.uuid4().hex[:8]}"
    tags = RunTags("gate", "staging", service, str(uuid.uuid4()))
    run = await run_load(
        prometheus_url=prometheus_url,
        target_url=target_url,
        tags=tags,
        workdir=workdir,
        vus=2,
        duration="2s",
        fail_every=2 if failing else 0,
    )
    return GateScope(tags, run)
