"""SecureNamespace: a namespace that refuses weak pods and all traffic not allowed by name.

No ``from __future__ import annotations`` here: the component-provider analyzer reads the
annotations of :class:`SecureNamespaceArgs` and of the component's outputs as objects.
"""

from collections.abc import Mapping
from typing import Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from hardened_k8s_rules.profiles import assigns_ids

from . import network
from .arguments import ArgsCheck, profile_of
from .config import DEFAULT_KUBERNETES_VERSION, StackConfig, StackSettings
from .inputs import SecurityProfile
from .tokens import type_token, with_former_type

PSA_LEVEL = "restricted"
"""Pod Security Admission level the namespace enforces, audits and warns at."""

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


class SecureNamespaceArgs(TypedDict, total=False):
    """The inputs of :class:`SecureNamespace`. Only ``namespace`` is required."""

    namespace: Required[pulumi.Input[str]]
    """Name of the namespace (a DNS-1123 label, not one the cluster reserves). Required."""
    kubernetes_version: str
    """Kubernetes minor version the Pod Security Admission labels pin, e.g. ``1.31``. Default: ``1.31``."""
    labels: Mapping[str, pulumi.Input[str]]
    """Labels of the namespace and of its NetworkPolicies, besides the Pod Security ones. Default: none."""
    protect: bool
    (
        "Pulumi ``protect`` and ``retain_on_delete`` on the Namespace; set it when the namespace holds data "
        "(deleting it deletes its volume claims). Default: ``false``."
    )
    security_profile: SecurityProfile
    (
        "The platform: ``openshift-restricted-v2`` sends DNS to ``openshift-dns`` and keeps OpenShift "
        "from rewriting the Pod Security labels. Default: ``restricted``."
    )


class SecureNamespace(pulumi.ComponentResource):
    """Namespace with Pod Security Admission ``restricted``, a default-deny NetworkPolicy and DNS egress.

    ``security_profile`` (default ``restricted``) names the cluster DNS the namespace may
    reach (:mod:`hardened_k8s_rules.profiles`); with ``openshift-restricted-v2`` the namespace also
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
        self, name: str, args: SecureNamespaceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            type_token("SecureNamespace"),
            name,
            None,
            with_former_type(opts, "hardened-k8s:namespace:SecureNamespace"),
        )
        kubernetes_version = args.get("kubernetes_version", DEFAULT_KUBERNETES_VERSION)
        protect = args.get("protect", False)
        check = ArgsCheck("SecureNamespace", name)
        check.fields(SecureNamespaceArgs, args)
        check.field("namespace", args["namespace"], StackConfig, "namespace")
        check.field("kubernetes_version", kubernetes_version, StackSettings, "kubernetes_version")
        given_profile = args.get("security_profile", SecurityProfile.RESTRICTED)
        check.field("security_profile", given_profile, StackSettings, "security_profile")
        check.done()
        profile = profile_of(given_profile)
        child = pulumi.ResourceOptions(parent=self)
        common = dict(args.get("labels") or {})
        psa = pod_security_labels(kubernetes_version)
        if assigns_ids(profile):
            psa[OPENSHIFT_LABEL_SYNC] = "false"
        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args["namespace"], labels={**common, **psa}),
            opts=pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect),
        )
        self.namespace_name = ns.metadata.name
        for role, spec in (
            ("default-deny", network.default_deny()),
            ("allow-dns", network.dns_egress(profile)),
        ):
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=role, namespace=self.namespace_name, labels=common),
                spec=spec,
                opts=child,
            )
        self.register_outputs({"namespaceName": self.namespace_name})
