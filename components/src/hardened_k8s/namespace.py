"""SecureNamespace: a namespace that refuses weak pods and all traffic not allowed by name."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from . import network
from .config import DEFAULT_KUBERNETES_VERSION
from .profiles import DEFAULT_PROFILE, SecurityProfile, assigns_ids

PSA_LEVEL = "restricted"

OPENSHIFT_LABEL_SYNC = "security.openshift.io/scc.podSecurityLabelSync"
"""OpenShift rewrites a namespace's PSA labels to match its SCCs unless this label is "false"."""


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

    ``security_profile`` (default ``restricted``) names the cluster DNS the namespace may
    reach (:mod:`hardened_k8s.profiles`); with ``openshift-restricted-v2`` the namespace also
    turns off OpenShift's PSA label sync, so the declared ``restricted`` labels stay as
    declared (the restricted-v2 SCC's pods meet them).
    After this, a pod in the namespace can resolve names through the cluster DNS and nothing else
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
        security_profile: SecurityProfile = DEFAULT_PROFILE,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("hardened-k8s:namespace:SecureNamespace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        common = dict(labels or {})
        psa = pod_security_labels(kubernetes_version)
        if assigns_ids(security_profile):
            psa[OPENSHIFT_LABEL_SYNC] = "false"
        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=namespace, labels={**common, **psa}),
            opts=pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect),
        )
        self.namespace_name = ns.metadata.name
        for role, spec in (
            ("default-deny", network.default_deny()),
            ("allow-dns", network.dns_egress(security_profile)),
        ):
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=role, namespace=self.namespace_name, labels=common),
                spec=spec,
                opts=child,
            )
        self.register_outputs({"namespaceName": self.namespace_name})
