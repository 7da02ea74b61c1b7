"""`sli-provider run` goes through the runner core as the service does: env, thresholds, series."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from devkit.prometheus import PrometheusServer
from devkit.target import TargetServer
from sli_provider.adapters.history_store import HistoryStore
from tests.helpers import ANY_REQUESTS_SLO, RUN_SCOPE, run_script

REPO = Path(__file__).resolve().parents[1]
ENV_SCRIPT = """
import http from 'k6/http';
export const options = {
  vus: 1, iterations: 2, thresholds: { http_req_failed: ['rate<0.01'] },
};
export default function () {
  console.log('SCRIPT_ENV=' + JSON.stringify(__ENV));
  http.get(__ENV.TARGET_URL + '/fail');
}
"""
SLO = ANY_REQUESTS_SLO


async def run_cli(
    tmp_path: Path,
    prometheus_url: str,
    target_url: str,
    *extra: str,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``sli-provider run`` with a script that prints its __ENV and crosses its threshold."""
    env = {"PROMETHEUS_URL": prometheus_url, "SLI_CONFIG_DIR": str(tmp_path), **(env or {})}
    return await run_script(
        tmp_path,
        ("env.js", ENV_SCRIPT),
        SLO,
        target_url,
        "--env",
        "EXTRA=1",
        *extra,
        cwd=REPO,
        env=env,
    )


async def test_run_gives_the_script_the_services_env_and_reports_crossed_thresholds(
    prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    result = await run_cli(tmp_path, prometheus.url, target.url, "--thresholds", "ignore")

    assert result.returncode == 0, result.stderr[-3000:]  # the SLO passes; k6's thresholds do not
    assert json.loads(result.stdout)["result"] == "pass"
    assert "k6 exited with 99 (thresholds crossed)" in result.stderr
    assert "threshold crossed: http_req_failed: rate<0.01" in result.stderr
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        (record,) = store.list(*RUN_SCOPE)
    line = next(line for line in result.stderr.splitlines() if "SCRIPT_ENV=" in line)
    env = json.loads(line.split("SCRIPT_ENV=", 1)[1].split('" source=')[0].replace('\\"', '"'))
    assert env == {
        "TARGET_URL": target.url,
        "KEPTN_PROJECT": RUN_SCOPE[0],
        "KEPTN_STAGE": RUN_SCOPE[1],
        "KEPTN_SERVICE": RUN_SCOPE[2],
        "KEPTN_CONTEXT": record.context,  # the tag the fetched SLIs were filtered on
        "EXTRA": "1",
    }


async def test_run_without_metrics_in_prometheus_cannot_gate(
    prometheus: PrometheusServer, target: TargetServer, tmp_path: Path
) -> None:
    """k6 exits 0 or 99 when its remote write fails; the gate must not score an empty run.
    (k6 writes into another Prometheus, so the pre-flight's remote-write probe passes.)"""
    write_url = prometheus.remote_write_url
    async with PrometheusServer(tmp_path / "no-rw", remote_write_receiver=False) as plain:
        result = await run_cli(
            tmp_path, plain.url, target.url, env={"PROMETHEUS_REMOTE_WRITE_URL": write_url}
        )

    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"sli-provider run: k6 wrote no metrics to Prometheus ({write_url}): is its "
        "remote-write receiver enabled (--web.enable-remote-write-receiver)? k6 itself exits 99"
    ), last
    assert result.stdout == ""  # nothing scored
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        assert store.list(*RUN_SCOPE) == []
