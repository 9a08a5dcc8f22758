"""NetworkPolicy specs: namespace-wide default deny, DNS egress and per-workload allow-lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from hardened_k8s_rules.profiles import CLUSTER_DNS, DEFAULT_PROFILE, SecurityProfile

from .inputs import PeerArgs

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Label Kubernetes sets on every namespace to its name; NetworkPolicy peers select namespaces by it."""


@dataclass(frozen=True)
class Peer:
    """A workload on the other side of an allowed connection: its pod selector and port."""

    name: str
    """Name of the peer workload (its Service name)."""
    selector: Mapping[str, str]
    """Pod labels that select the peer's pods."""
    port: int
    """Port the connection goes to."""

    def args(self) -> PeerArgs:
        """This peer as a component's :class:`~hardened_k8s.inputs.PeerArgs`."""
        return PeerArgs(selector=dict(self.selector), port=self.port)


def service_dns_name(service: k8s.core.v1.Service) -> pulumi.Output[str]:
    """In-cluster DNS name of a Service: ``<name>.<namespace>.svc.cluster.local``."""
    return pulumi.Output.concat(service.metadata.name, ".", service.metadata.namespace, ".svc.cluster.local")


def default_deny() -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Select every pod of the namespace and allow nothing in either direction."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(),
        policy_types=["Ingress", "Egress"],
    )


def dns_egress(profile: SecurityProfile = DEFAULT_PROFILE) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Let every pod of the namespace resolve names through the cluster DNS, UDP and TCP.

    The DNS pods of ``profile`` (:data:`hardened_k8s_rules.profiles.CLUSTER_DNS`): kube-dns in
    ``kube-system`` on 53 by default, the DNS operator's pods in ``openshift-dns`` on 5353 on OpenShift.
    """
    dns = CLUSTER_DNS[profile]
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(),
        policy_types=["Egress"],
        egress=[
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[
                    k8s.networking.v1.NetworkPolicyPeerArgs(
                        namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                            match_labels={NAMESPACE_NAME_LABEL: dns.namespace}
                        ),
                        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(dns.pod_labels)),
                    )
                ],
                ports=[
                    k8s.networking.v1.NetworkPolicyPortArgs(protocol=proto, port=port)
                    for port in dns.ports
                    for proto in ("UDP", "TCP")
                ],
            )
        ],
    )


def allow_list(
    selector: Mapping[str, str],
    *,
    port: pulumi.Input[int],
    ingress_from: Sequence[PeerArgs],
    egress_to: Sequence[PeerArgs],
    ingress_namespaces: Sequence[str] = (),
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Admit ``ingress_from`` on ``port`` and let the pods reach each of ``egress_to``.

    ``ingress_namespaces`` also admits every pod of those namespaces on ``port`` (an exposed
    service's ingress controller), selected by the ``kubernetes.io/metadata.name`` label the
    API server sets, which no one can forge. Both policy types are declared even when a list
    is empty, so the policy documents that the workload accepts (or makes) no connections
    beyond the namespace default deny.
    """
    sources = [_pod_peer(peer) for peer in ingress_from] + [
        k8s.networking.v1.NetworkPolicyPeerArgs(
            namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NAMESPACE_NAME_LABEL: namespace})
        )
        for namespace in ingress_namespaces
    ]
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
        policy_types=["Ingress", "Egress"],
        ingress=[
            k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                from_=sources,
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port)],
            )
        ]
        if sources
        else [],
        egress=[
            k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                to=[_pod_peer(peer)],
                ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=peer["port"])],
            )
            for peer in egress_to
        ],
    )


def _pod_peer(peer: PeerArgs) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=peer["selector"])
    )
