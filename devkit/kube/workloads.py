"""The Job and Pod objects k6-operator's Jobs produce, and their status as they run."""

from __future__ import annotations

import contextlib
import secrets
import string
from collections.abc import Callable, Mapping
from typing import Any

from devkit.kube.resources import JOBS, PODS
from devkit.kube.status import ApiError
from devkit.kube.store import Store, now_rfc3339

CONTAINER = "k6"


def owner_reference(owner: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def job_object(
    name: str, labels: Mapping[str, str], owner: Mapping[str, Any], container: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": dict(labels),
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "hostname": name,
                    "restartPolicy": "Never",
                    "containers": [dict(container)],
                },
            },
        },
        "status": {"active": 1, "startTime": now_rfc3339()},
    }


def service_object(name: str, job: Mapping[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    """k6-operator's Service in front of one runner's k6 REST API (``NewRunnerService``): the
    runner's labels, port ``http-api`` 6565, selecting the pod of the runner's Job."""
    octets = secrets.randbelow(250) + 1, secrets.randbelow(250) + 1
    cluster_ip = f"10.96.{octets[0]}.{octets[1]}"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "labels": dict(job["metadata"]["labels"]),
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {
            "ports": [{"name": "http-api", "port": 6565, "protocol": "TCP", "targetPort": 6565}],
            "selector": {"job-name": job["metadata"]["name"]},
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "sessionAffinity": "None",
        },
        "status": {"loadBalancer": {}},
    }


def pod_object(job: Mapping[str, Any]) -> dict[str, Any]:
    suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
    template = job["spec"]["template"]
    job_name, job_uid = job["metadata"]["name"], job["metadata"]["uid"]
    # The Job controller's labels on its pods.
    labels = {
        **template["metadata"]["labels"],
        "job-name": job_name,
        "batch.kubernetes.io/job-name": job_name,
        "controller-uid": job_uid,
        "batch.kubernetes.io/controller-uid": job_uid,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{job['metadata']['name']}-{suffix}",
            "labels": labels,
            "ownerReferences": [owner_reference(job)],
        },
        "spec": {**template["spec"], "nodeName": "sim-node"},
        "status": pending_status(job["spec"]["template"]["spec"]["containers"][0]["image"]),
    }


def _container_status(image: str, state: dict[str, Any], *, ready: bool = False) -> dict[str, Any]:
    return {
        "name": CONTAINER,
        "image": image,
        "imageID": "",
        "ready": ready,
        "restartCount": 0,
        "started": "running" in state,
        "state": state,
    }


def pending_status(
    image: str, reason: str = "ContainerCreating", message: str = ""
) -> dict[str, Any]:
    waiting: dict[str, Any] = {"reason": reason}
    if message:
        waiting["message"] = message
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [_container_status(image, {"waiting": waiting})],
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "startTime": now_rfc3339(),
        "qosClass": "BestEffort",
    }


def running_status(previous: Mapping[str, Any], image: str, started_at: str) -> dict[str, Any]:
    return {
        **previous,
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
        "containerStatuses": [
            _container_status(image, {"running": {"startedAt": started_at}}, ready=True)
        ],
    }


def terminated_status(
    previous: Mapping[str, Any], image: str, exit_code: int, started_at: str, finished_at: str
) -> dict[str, Any]:
    terminated = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "startedAt": started_at,
        "finishedAt": finished_at,
        "containerID": "",
    }
    return {
        **previous,
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "PodCompleted"},
        ],
        "containerStatuses": [_container_status(image, {"terminated": terminated})],
    }


def finished_job_status(previous: Mapping[str, Any], succeeded: bool) -> dict[str, Any]:
    now = now_rfc3339()
    status: dict[str, Any] = {"startTime": previous.get("startTime", now), "active": 0}
    if succeeded:
        status.update(succeeded=1, completionTime=now)
        condition = {"type": "Complete", "status": "True"}
    else:
        status["failed"] = 1
        condition = {
            "type": "Failed",
            "status": "True",
            "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit",
        }
    status["conditions"] = [{**condition, "lastProbeTime": now, "lastTransitionTime": now}]
    return status


class Lifecycle:
    """Writes a pod's (and its Job's) status as the kubelet and the Job controller would."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def waiting(self, namespace: str, pod: Mapping[str, Any], reason: str, message: str) -> None:
        image = _image(pod)
        self._update_pod(namespace, pod, lambda _: pending_status(image, reason, message))

    def running(self, namespace: str, pod: Mapping[str, Any]) -> None:
        image = _image(pod)
        self._update_pod(namespace, pod, lambda s: running_status(s, image, now_rfc3339()))

    def terminated(
        self,
        namespace: str,
        pod: Mapping[str, Any],
        job: Mapping[str, Any],
        code: int,
        started: str,
        finished: str,
    ) -> None:
        image = _image(pod)
        self._update_pod(
            namespace, pod, lambda s: terminated_status(s, image, code, started, finished)
        )
        with contextlib.suppress(ApiError):  # the Job may be gone with its TestRun
            current = self._store.get(JOBS, namespace, job["metadata"]["name"])
            current["status"] = finished_job_status(current.get("status") or {}, code == 0)
            self._store.update(JOBS, namespace, current)

    def _update_pod(
        self,
        namespace: str,
        pod: Mapping[str, Any],
        change: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> None:
        with contextlib.suppress(ApiError):  # the pod may be gone (deleted with its owner)
            current = self._store.get(PODS, namespace, pod["metadata"]["name"])
            current["status"] = change(current.get("status") or {})
            self._store.update(PODS, namespace, current)


def _image(pod: Mapping[str, Any]) -> str:
    image: str = pod["spec"]["containers"][0]["image"]
    return image
