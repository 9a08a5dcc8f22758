"""The dev stack again beside itself, with some of its hardening taken out, to measure what
each control costs on the real node.

A variant is the rendered dev system (both services and PostgreSQL, their Services and
ServiceAccounts, the live Secrets' values) in a namespace of its own, without the controls
named in ``strip``:

- ``securityContext``: no pod or container security context (the images' own users run);
- ``resources``: no requests or limits (no CPU quota, no memory cap);
- ``policies``: no NetworkPolicy and no Pod Security Admission labels.

What holds data is left out of every variant: PostgreSQL keeps its data in an ``emptyDir``, and
the HPA, PDB and Ingress, which act on the deployed stack only, are not copied.
"""

from __future__ import annotations

import copy
from typing import Any

from .kube import Kube
from .local import LocalCluster

CONTROLS = frozenset({"securityContext", "resources", "policies"})
COPIED = ("Namespace", "Secret", "ServiceAccount", "Service", "NetworkPolicy", "Deployment", "StatefulSet")


def variant(
    rendered: list[dict[str, Any]],
    namespace: str,
    strip: frozenset[str],
    secrets: dict[str, dict[str, str]],
    images: dict[str, str],
) -> list[dict[str, Any]]:
    """The objects of one variant: ``rendered`` moved to ``namespace`` without ``strip``;
    each Secret's ``data`` from ``secrets`` and each container's image from ``images`` (by
    name: what the deployed stack runs, where the render has digests of its own)."""
    unknown = strip - CONTROLS
    if unknown:
        raise ValueError(f"unknown controls {sorted(unknown)}; known: {sorted(CONTROLS)}")
    objects: list[dict[str, Any]] = []
    for original in rendered:
        kind = original["kind"]
        if kind not in COPIED or (kind == "NetworkPolicy" and "policies" in strip):
            continue
        obj = copy.deepcopy(original)
        meta = obj["metadata"]
        if kind == "Namespace":
            meta["name"] = namespace
            if "policies" in strip:
                labels = meta.get("labels", {})
                meta["labels"] = {k: v for k, v in labels.items() if not k.startswith("pod-security.")}
        else:
            meta["namespace"] = namespace
        if kind == "Secret":
            obj.pop("stringData", None)
            obj["data"] = secrets[meta["name"]]
        if kind in ("Deployment", "StatefulSet"):
            _strip_workload(obj, strip)
            pod = obj["spec"]["template"]["spec"]
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                container["image"] = images[container["name"]]
        objects.append(obj)
    return objects


def _strip_workload(workload: dict[str, Any], strip: frozenset[str]) -> None:
    spec = workload["spec"]
    pod = spec["template"]["spec"]
    for template in spec.pop("volumeClaimTemplates", []):
        pod.setdefault("volumes", []).append({"name": template["metadata"]["name"], "emptyDir": {}})
    spec.pop("persistentVolumeClaimRetentionPolicy", None)
    spec["replicas"] = 1
    containers = [*pod.get("initContainers", []), *pod["containers"]]
    if "securityContext" in strip:
        pod.pop("securityContext", None)
        for container in containers:
            container.pop("securityContext", None)
        # Secret files are 0440 for the pod's fsGroup; without one, the kubelet's default
        # (0644) is what lets the images' own users read them, as in any plain Deployment.
        for volume in pod.get("volumes", []):
            volume.get("secret", {}).pop("defaultMode", None)
    if "resources" in strip:
        for container in containers:
            container.pop("resources", None)


def deploy(cluster: LocalCluster, kube: Kube, objects: list[dict[str, Any]]) -> None:
    """Create ``objects`` (namespace first) and wait until every pod of theirs is Ready."""
    for obj in objects:
        meta = obj["metadata"]
        cluster.api("POST", kube.path(obj["apiVersion"], obj["kind"], meta.get("namespace")), obj)
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            labels = obj["spec"]["selector"]["matchLabels"]
            cluster.wait_ready(obj["metadata"]["namespace"], labels, timeout=180)


def remove(cluster: LocalCluster, namespace: str) -> None:
    """Delete a variant's namespace (and with it everything in it)."""
    cluster.api("DELETE", f"/api/v1/namespaces/{namespace}")
