"""SecureNamespace: a namespace that refuses weak pods and all traffic not allowed by name."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from . import network
from .config import DEFAULT_KUBERNETES_VERSION

PSA_LEVEL = "restricted"


def pod_security_labels(kubernetes_version: str) -> dict[str, str]:
    """Pod Security Admission labels: enforce, audit and warn ``restricted``, version pinned.

    Pinning the version keeps the rules fixed when the cluster is upgraded; raise it with
    ``kubernetesVersion`` after checking the workloads against the new rules.
    """
    version = f"v{kubernetes_version}"
    labels: dict[str, str] = {}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = PSA_LEVEL
        labels[f"pod-security.kubernetes.io/{mode}-version"] = version
    return labels


class SecureNamespace(pulumi.ComponentResource):
    """Namespace with PSA ``restricted``, a default-deny NetworkPolicy and DNS egress.

    After this, a pod in the namespace can resolve names through kube-dns and nothing else
    until a workload's own NetworkPolicy allows it. ``protect`` sets Pulumi ``protect`` and
    ``retain_on_delete`` on the Namespace: deleting a namespace deletes every object in it,
    volume claims included, so the namespace of protected data must be protected like it.
    """

    namespace_name: pulumi.Output[str]
    """Name of the namespace (``namespace`` as given)."""

    def __init__(
        self,
        name: str,
        *,
        namespace: str,
        kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
        labels: Mapping[str, str] | None = None,
        protect: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("hardened-k8s:namespace:SecureNamespace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        common = dict(labels or {})
        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=namespace, labels={**common, **pod_security_labels(kubernetes_version)}
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect),
        )
        self.namespace_name = ns.metadata.name
        for role, spec in (("default-deny", network.default_deny()), ("allow-dns", network.dns_egress())):
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=role, namespace=self.namespace_name, labels=common),
                spec=spec,
                opts=child,
            )
        self.register_outputs({"namespaceName": self.namespace_name})
