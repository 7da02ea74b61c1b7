"""The objects a distributed run creates: a ConfigMap with the script, a TestRun that runs it.

Pure: a plan in, dictionaries out, so what the API server receives can be checked against the
CRD schema without a cluster. The runners get the SAME k6 invocation as a local run
(``RunPlan.invocation``: keptn tags, trend stats, remote write with stale markers) minus what
k6-operator adds itself (``k6 run``, the script's path, segments, ``--paused``, ``instance_id``).
Remote-write credentials reach the runners only as a Secret reference, never as a value.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sli_provider.k6.invocation import SPLIT_RUN_TREND_STATS
from sli_provider.runner.backend import K6StartError
from sli_provider.runner.distribution import Distribution
from sli_provider.runner.k6_operator.archive import ARCHIVE_NAME
from sli_provider.runner.plan import LocalScript, RunPlan

API_VERSION = "k6.io/v1alpha1"
KIND = "TestRun"
# k6-operator mounts the script ConfigMap whole at /test/ (its keys cannot hold directories).
SCRIPT_MOUNT = "/test"
# The API server refuses objects over 1 MiB; leave room for the metadata.
MAX_CONFIGMAP_BYTES = 1024 * 1024 - 16 * 1024

NO_THRESHOLDS = "--no-thresholds"

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "k6-sli-provider"
LABEL_CONTEXT = "keptn.sh/context"
LABEL_TRIGGERED_ID = "keptn.sh/triggered-id"
LABEL_PROJECT = "keptn.sh/project"
LABEL_STAGE = "keptn.sh/stage"
LABEL_SERVICE = "keptn.sh/service"
LABEL_REPLICA = "k6-sli-provider/replica"

# Remote-write settings that name files on the service's machine (PrometheusAccess).
_SERVICE_FILE_SETTINGS = frozenset(
    {
        "SSL_CERT_FILE",
        "K6_PROMETHEUS_RW_CLIENT_CERTIFICATE",
        "K6_PROMETHEUS_RW_CLIENT_CERTIFICATE_KEY",
    }
)
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_LABEL_UNSAFE = re.compile(r"[^-A-Za-z0-9_.]")


@dataclass(frozen=True)
class OperatorSettings:
    """The service's side of every TestRun (K6_OPERATOR_* settings)."""

    namespace: str
    runner_image: str
    remote_write_secret: str | None = None
    replica: str | None = None


@dataclass(frozen=True)
class Manifests:
    name: str
    config_map: dict[str, Any]
    test_run: dict[str, Any]


def new_name(context: str) -> str:
    """A TestRun name: short enough for the operator's ``<name>-service-<i>`` and the pods'
    host names (63 characters), recognisable by the Keptn context, unique per run."""
    prefix = re.sub(r"[^a-z0-9]", "", context.lower())[:8] or "run"
    return f"k6-{prefix}-{secrets.token_hex(4)}"


def label_value(text: str) -> str:
    """``text`` as a label value (63 characters of ``[-A-Za-z0-9_.]``, alphanumeric ends)."""
    return _LABEL_UNSAFE.sub("-", text)[:63].strip("-_.")


def run_labels(plan: RunPlan, replica: str | None) -> dict[str, str]:
    """The Keptn context of the run on every object, so ``kubectl get -l`` finds them."""
    labels = {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_CONTEXT: label_value(plan.tags.context),
        LABEL_PROJECT: label_value(plan.tags.project),
        LABEL_STAGE: label_value(plan.tags.stage),
        LABEL_SERVICE: label_value(plan.tags.service),
    }
    if plan.triggered_id:
        labels[LABEL_TRIGGERED_ID] = label_value(plan.triggered_id)
    if replica:
        labels[LABEL_REPLICA] = label_value(replica)
    return {key: value for key, value in labels.items() if value}


def needs_archive(plan: RunPlan) -> bool:
    """Whether some file of the plan does not sit beside its script (see ``archive.py``)."""
    script = plan.script
    if isinstance(script, LocalScript):
        raise K6StartError("a k6-operator run needs the script from Keptn's resources")
    directory = script.entry.rpartition("/")[0]
    return any(path.rpartition("/")[0] != directory for path in script.files)


def script_files(plan: RunPlan, archive: bytes | None = None) -> tuple[str, dict[str, bytes]]:
    """The script's ConfigMap key and every file by key: beside the script, mounted flat at
    /test/ so ``import './lib.js'`` and ``open('data.csv')`` resolve as they did in Keptn's
    resources; or, for files in other directories, the ``k6 archive`` of them all."""
    script = plan.script
    if isinstance(script, LocalScript):
        raise K6StartError("a k6-operator run needs the script from Keptn's resources")
    if archive is not None:
        files = {ARCHIVE_NAME: archive}
        entry = ARCHIVE_NAME
    elif needs_archive(plan):
        raise ValueError("files outside the script's directory need the k6 archive")
    else:
        entry = script.entry.rpartition("/")[2]
        files = {path.rpartition("/")[2]: content for path, content in script.files.items()}
    for key in files:
        if not _KEY.match(key):
            raise K6StartError(
                f"{key!r}: a ConfigMap key takes only letters, digits, '-', '_', '.'"
            )
    size = sum(len(content) for content in files.values())
    if size > MAX_CONFIGMAP_BYTES:
        raise K6StartError(
            f"the script and its files are {size} bytes; a ConfigMap holds at most about 1 MiB"
        )
    return entry, files


def build_manifests(
    plan: RunPlan,
    distribution: Distribution,
    settings: OperatorSettings,
    *,
    name: str,
    archive: bytes | None = None,
) -> Manifests:
    """The ConfigMap (owned by the TestRun once that exists) and the TestRun for ``plan``;
    ``archive``: the ``k6 archive`` of the plan's files when they do not sit beside the script."""
    entry, files = script_files(plan, archive)
    invocation = plan.invocation(f"{SCRIPT_MOUNT}/{entry}")
    if invocation.secrets and settings.remote_write_secret is None:
        raise K6StartError(
            "the remote write needs credentials ("
            + ", ".join(sorted(invocation.secrets))
            + "), which runner pods only get from a Secret: set K6_OPERATOR_REMOTE_WRITE_SECRET"
        )
    on_disk = sorted(set(invocation.env) & _SERVICE_FILE_SETTINGS)
    if on_disk:
        raise K6StartError(
            "the remote write uses files of the service's own pod ("
            + ", ".join(on_disk)
            + "), which runner pods do not have; use a plain or verified-by-system-CA endpoint "
            "for k6-operator runs"
        )
    labels = run_labels(plan, settings.replica)
    return Manifests(
        name=name,
        config_map=_config_map(name, settings.namespace, labels, files),
        test_run=_test_run(
            name,
            settings,
            labels,
            distribution,
            entry=entry,
            # k6-operator runs `k6 run` itself and puts the script after these. Runners do not
            # judge thresholds: each sees only its segment, so a count would fail on every
            # runner and an abortOnFail would stop one runner on its share alone; the service
            # judges them on the whole test (whole_test.py) and stops every runner itself.
            args=[*invocation.options[1:], NO_THRESHOLDS],
            env={
                **distribution.runner.env,
                **invocation.env,
                # As in a local run: never wait on Grafana's build service from a runner.
                "K6_AUTO_EXTENSION_RESOLUTION": "false",
                # The denser quantile curve that merges the runners' percentiles exactly.
                **(
                    {"K6_PROMETHEUS_RW_TREND_STATS": ",".join(SPLIT_RUN_TREND_STATS)}
                    if "K6_PROMETHEUS_RW_TREND_STATS" in invocation.env
                    else {}
                ),
            },
        ),
    )


def _config_map(
    name: str, namespace: str, labels: Mapping[str, str], files: Mapping[str, bytes]
) -> dict[str, Any]:
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for key, content in files.items():
        text = _text(content)
        if text is None:
            binary[key] = base64.b64encode(content).decode("ascii")
        else:
            data[key] = text
    config_map: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "data": data,
    }
    if binary:
        config_map["binaryData"] = binary
    return config_map


def _text(content: bytes) -> str | None:
    """The content as text, or None: not UTF-8, or with NUL bytes (a tar archive is valid
    UTF-8 but not text)."""
    if b"\x00" in content:
        return None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None


def owned_by(test_run: Mapping[str, Any]) -> dict[str, Any]:
    """An ownerReference to a created TestRun: deleting it deletes what carries this."""
    metadata = test_run["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": metadata["name"],
        "uid": metadata["uid"],
        # No blockOwnerDeletion: it would need update rights on testruns/finalizers.
    }


def _test_run(
    name: str,
    settings: OperatorSettings,
    labels: Mapping[str, str],
    distribution: Distribution,
    *,
    entry: str,
    args: list[str],
    env: Mapping[str, str],
) -> dict[str, Any]:
    pod = distribution.runner
    runner: dict[str, Any] = {
        "image": pod.image or settings.runner_image,
        "metadata": {"labels": dict(labels)},
        "env": [{"name": key, "value": value} for key, value in env.items()],
    }
    if settings.remote_write_secret is not None:
        runner["envFrom"] = [{"secretRef": {"name": settings.remote_write_secret}}]
    if pod.resources:
        runner["resources"] = {kind: dict(amounts) for kind, amounts in pod.resources.items()}
    if pod.node_selector:
        runner["nodeSelector"] = dict(pod.node_selector)
    if pod.tolerations:
        runner["tolerations"] = [dict(t) for t in pod.tolerations]
    spec: dict[str, Any] = {
        "parallelism": distribution.parallelism,
        "script": {"configMap": {"name": name, "file": entry}},
        "args": args,
        "runner": runner,
    }
    if distribution.separate:
        spec["separate"] = True
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": settings.namespace, "labels": dict(labels)},
        "spec": spec,
    }
