"""Network isolation: default deny, every pod covered, narrow peers, DNS only to the cluster DNS.

``HARD-019`` (a default-deny NetworkPolicy per namespace), ``HARD-020`` (every pod isolated
for ingress and egress), ``HARD-022`` (DNS egress allowed) are stack-wide: they look up the
policies that select each workload's pods in the evaluation's
:class:`~hardened_k8s_rules.policy.index.StackIndex`. ``HARD-021`` and ``HARD-034`` read one
NetworkPolicy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from ...profiles import CLUSTER_DNS
from ..index import StackIndex
from ..objects import K8sObject, as_list, as_map, namespace_of, pod_selector, selector_is_empty
from .registry import ObjectRule, StackRule

_NAMESPACE_NAME = "kubernetes.io/metadata.name"
_DNS_PORT_NAMES = ("dns", "dns-tcp")
_DNS_PORTS = (
    *(port for dns in CLUSTER_DNS.values() for port in (*dns.ports, *map(str, dns.ports))),
    *_DNS_PORT_NAMES,
)
"""Ports that carry DNS: any cluster DNS's ports, as numbers or strings, and their names."""
BROAD_PREFIX = {4: 16, 6: 48}
"""An ipBlock shorter than this prefix (/16 for IPv4, /48 for IPv6) admits too many addresses."""


def _np_types(np: K8sObject) -> set[str]:
    spec = as_map(np.get("spec"))
    types = {str(t) for t in as_list(spec.get("policyTypes"))}
    if not types:
        # The API defaults policyTypes to Ingress, plus Egress when egress rules exist.
        types = {"Ingress"} | ({"Egress"} if "egress" in spec else set())
    return types


def _is_default_deny(np: K8sObject) -> bool:
    spec = as_map(np.get("spec"))
    return (
        selector_is_empty(pod_selector(np))
        and {"Ingress", "Egress"} <= _np_types(np)
        and not as_list(spec.get("ingress"))
        and not as_list(spec.get("egress"))
    )


def _stack_default_deny(stack: StackIndex) -> list[tuple[K8sObject, str]]:
    denied = {namespace_of(np) for np in stack.of_kind("NetworkPolicy") if _is_default_deny(np)}
    findings = []
    seen: set[str] = set()
    for obj, _ in stack.workloads:
        ns = namespace_of(obj)
        if ns in denied or ns in seen:
            continue
        seen.add(ns)
        # Reported on the Namespace when the stack declares it, else on the first workload.
        anchor = stack.namespace(ns)
        findings.append(
            (
                obj if anchor is None else anchor,
                f"namespace {ns or '(unset)'!r}: has no default-deny NetworkPolicy "
                "(podSelector {}, policyTypes [Ingress, Egress], no rules)",
            )
        )
    return findings


def _stack_np_coverage(stack: StackIndex) -> list[tuple[K8sObject, str]]:
    findings = []
    for obj, pod in stack.workloads:
        types: set[str] = set()
        for np in stack.selecting("NetworkPolicy", obj, pod):
            types |= _np_types(np)
        missing = sorted({"Ingress", "Egress"} - types)
        if missing:
            findings.append(
                (
                    obj,
                    f"{pod.metadata_path}.labels: pods are not isolated for "
                    f"{' and '.join(missing)} by any NetworkPolicy",
                )
            )
    return findings


def _broad_peer(peer: Mapping[str, Any]) -> str | None:
    """Why a NetworkPolicy peer admits far more than one workload, or None."""
    if "ipBlock" in peer:
        cidr = as_map(peer.get("ipBlock")).get("cidr")
        try:
            network = ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            return f"ipBlock.cidr: {cidr!r} is not a CIDR"
        if network.prefixlen < BROAD_PREFIX[network.version]:
            return (
                f"ipBlock.cidr: {cidr} admits {network.num_addresses} addresses; narrow it to "
                f"/{BROAD_PREFIX[network.version]} or longer"
            )
        return None
    if "namespaceSelector" in peer and selector_is_empty(as_map(peer.get("namespaceSelector"))):
        return (
            "namespaceSelector: is empty, which admits every namespace of the cluster; "
            "select one by its labels"
        )
    if "namespaceSelector" not in peer and selector_is_empty(as_map(peer.get("podSelector"))):
        return "podSelector: is empty, which admits every pod of the namespace; select the workload's pods"
    return None


def _check_np_peers(obj: K8sObject) -> list[str]:
    spec = as_map(obj.get("spec"))
    problems = []
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for index, rule in enumerate(as_list(spec.get(direction))):
            rule = as_map(rule)
            path = f"spec.{direction}[{index}]"
            peers = as_list(rule.get(peers_key))
            if not peers:
                problems.append(f"{path}.{peers_key}: is empty, which allows every peer; name them")
            if not as_list(rule.get("ports")):
                problems.append(f"{path}.ports: is empty, which allows every port; list them")
            for p_index, peer in enumerate(peers):
                broad = _broad_peer(as_map(peer))
                if broad is not None:
                    problems.append(f"{path}.{peers_key}[{p_index}].{broad}")
    return problems


def _cluster_dns_of(peer: Mapping[str, Any]) -> tuple[int | str, ...] | None:
    """The ports of the cluster DNS the peer is exactly (kube-dns in kube-system, or
    OpenShift's DNS pods in openshift-dns: :data:`profiles.CLUSTER_DNS`), or None."""
    if "ipBlock" in peer:
        return None
    namespaces = as_map(as_map(peer.get("namespaceSelector")).get("matchLabels"))
    pods = as_map(as_map(peer.get("podSelector")).get("matchLabels"))
    for dns in CLUSTER_DNS.values():
        if namespaces.get(_NAMESPACE_NAME) == dns.namespace and all(
            pods.get(key) == value for key, value in dns.pod_labels.items()
        ):
            return (*dns.ports, *(str(port) for port in dns.ports), *_DNS_PORT_NAMES)
    return None


def _is_cluster_dns(peer: Mapping[str, Any]) -> bool:
    """The peer is exactly a cluster DNS, nothing else."""
    return _cluster_dns_of(peer) is not None


def _opens_dns(rule: Mapping[str, Any]) -> bool:
    return any(as_map(p).get("port") in _DNS_PORTS for p in as_list(rule.get("ports")))


def _check_dns_destination(obj: K8sObject) -> list[str]:
    problems = []
    for index, rule in enumerate(as_list(as_map(obj.get("spec")).get("egress"))):
        rule = as_map(rule)
        if not _opens_dns(rule):
            continue
        for p_index, peer in enumerate(as_list(rule.get("to"))):
            if not _is_cluster_dns(as_map(peer)):
                problems.append(
                    f"spec.egress[{index}].to[{p_index}]: opens port 53 to a peer other than the "
                    "cluster DNS; DNS to any other server can carry data out of the cluster"
                )
    return problems


def _allows_dns(np: K8sObject) -> bool:
    for rule in as_list(as_map(np.get("spec")).get("egress")):
        rule = as_map(rule)
        for peer in as_list(rule.get("to")):
            ports = _cluster_dns_of(as_map(peer))
            if ports is None:
                continue
            protocols = {
                as_map(p).get("protocol", "TCP")
                for p in as_list(rule.get("ports"))
                if as_map(p).get("port") in ports
            }
            if {"UDP", "TCP"} <= protocols:
                return True
    return False


def _stack_dns_egress(stack: StackIndex) -> list[tuple[K8sObject, str]]:
    return [
        (
            obj,
            f"{pod.metadata_path}.labels: no NetworkPolicy selecting these pods allows egress "
            "to the cluster DNS on UDP and TCP",
        )
        for obj, pod in stack.workloads
        if not any(_allows_dns(np) for np in stack.selecting("NetworkPolicy", obj, pod))
    ]


RULES = (
    StackRule(
        id="HARD-019",
        severity="mandatory",
        title="Default-deny NetworkPolicy per namespace",
        message="Without a default deny every pod can reach and be reached by any other pod.",
        fix="Add a NetworkPolicy with podSelector {} and policyTypes [Ingress, Egress] and no rules.",
        check=_stack_default_deny,
    ),
    StackRule(
        id="HARD-020",
        severity="mandatory",
        title="Every pod isolated by a NetworkPolicy",
        message="A pod no NetworkPolicy selects accepts and sends any traffic.",
        fix="Make sure a NetworkPolicy selecting the pods covers both Ingress and Egress.",
        check=_stack_np_coverage,
    ),
    ObjectRule(
        id="HARD-021",
        severity="mandatory",
        title="NetworkPolicy rules name narrow peers and ports",
        message="A rule without peers or ports, or with a peer that admits every namespace, every "
        "pod or a wide address block, allows far more than the workloads it is written for.",
        fix="List the allowed peers by their labels (a non-empty podSelector, a namespaceSelector "
        "naming namespaces, an ipBlock of /16 or narrower) and the ports in every rule.",
        kinds=frozenset({"NetworkPolicy"}),
        check=_check_np_peers,
    ),
    StackRule(
        id="HARD-022",
        severity="advisory",
        title="DNS egress to the cluster DNS",
        message="Under a default deny, pods cannot resolve names unless DNS egress is allowed.",
        fix="Allow egress to kube-dns (kube-system) on 53/UDP and 53/TCP for every pod, or to "
        "openshift-dns on 5353 on OpenShift.",
        check=_stack_dns_egress,
    ),
    ObjectRule(
        id="HARD-034",
        severity="mandatory",
        title="DNS egress only to the cluster DNS",
        message="Port 53 open to any other peer is a channel out of the cluster that looks like "
        "name resolution.",
        fix="Send DNS only to kube-dns: namespaceSelector kubernetes.io/metadata.name: kube-system "
        "and podSelector k8s-app: kube-dns.",
        kinds=frozenset({"NetworkPolicy"}),
        check=_check_dns_destination,
    ),
)
"""The NetworkPolicy rules."""
