"""The NetworkPolicy traffic matrix: every source pod to every pod and Service port of a stack,
observed on the real node and predicted by the traffic model of the unit tier.

Sources are each workload's pod and a probe pod in a namespace of its own (no policy there:
it stands for any other tenant). Targets are each workload's pod IP on each container port,
and each Service's ClusterIP on each port (kube-proxy's DNAT, then the policy on the pod).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..traffic import admits
from .podnet import PodNet

PROBE = "traffic-probe"
"""The probe pod's name and namespace (and its model workload's name)."""


@dataclass(frozen=True)
class Target:
    """A port to connect to: a pod's, or a Service's (``pod_port``: where the Service sends it,
    the port the destination pod's policies see)."""

    workload: str
    kind: str  # "pod" or "service"
    address: str
    port: int
    pod_port: int

    def __str__(self) -> str:
        return f"{self.kind} {self.workload}:{self.port}"


def probe_objects() -> list[dict[str, Any]]:
    """The probe's namespace and a workload of it, as the model reads them."""
    labels = {"app.kubernetes.io/name": PROBE}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROBE}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": PROBE, "namespace": PROBE},
            "spec": {
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "probe"}]}}
            },
        },
    ]


def probe_pod(namespace_labels: dict[str, str], image: str) -> list[dict[str, Any]]:
    """A restricted pod that runs only the sandbox's pause process: the probes run in its
    network namespace from the node."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROBE, "labels": namespace_labels}},
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": PROBE, "namespace": PROBE, "labels": {"app.kubernetes.io/name": PROBE}},
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "probe",
                        "image": image,
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True,
                        },
                        "resources": {"limits": {"cpu": "50m", "memory": "16Mi"}},
                    }
                ],
            },
        },
    ]


def predicted(objects: list[dict[str, Any]], source: str, target: Target) -> bool:
    """What the model says: the source may send (egress) and the target may receive (ingress)."""
    model = objects + probe_objects()
    out = True if source == PROBE else admits(model, "Egress", source, target.workload, target.pod_port)
    into = admits(model, "Ingress", target.workload, source, target.pod_port)
    return out and into


def observe(sources: dict[str, PodNet], targets: list[Target]) -> dict[tuple[str, str], str]:
    """Each source tries every target (not its own pod); the outcome of each pair."""
    observed: dict[tuple[str, str], str] = {}
    for name, net in sources.items():
        mine = [t for t in targets if not (t.workload == name and t.kind == "pod")]
        outcomes = net.connect([(t.address, t.port) for t in mine])
        for target, outcome in zip(mine, outcomes, strict=True):
            observed[(name, str(target))] = outcome
    return observed
