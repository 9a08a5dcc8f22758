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

from ...profiles import CLUSTER_DNS, ClusterDns
from ..index import StackIndex
from ..objects import K8sObject, as_list, as_map, namespace_of, pod_selector, selector_is_empty
from ..selectors import (
    MAX_PORT_RANGE,
    NAMESPACE_KEYS,
    NAMESPACE_NAME_LABEL,
    pinned_values,
    port_entry_admits,
    port_span,
    ports_admit,
    selector_is_broad,
)
from .registry import ObjectRule, StackRule

_DNS_PORT_NAMES = ("dns", "dns-tcp")
_DNS_PROTOCOLS = ("UDP", "TCP")
_DNS_PORT_NUMBERS = tuple(sorted({port for dns in CLUSTER_DNS.values() for port in dns.ports}))
"""Ports that carry DNS: any cluster DNS's ports (as numbers, strings or ranges), and their names."""
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
    """Why a NetworkPolicy peer admits far more than one workload, or None.

    Selectors are judged by what they match (:func:`~..selectors.selector_is_broad`), so an
    ``Exists`` or ``NotIn`` expression that admits every namespace fails as ``{}`` does."""
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
    if "namespaceSelector" in peer:
        namespaces = as_map(peer.get("namespaceSelector"))
        if selector_is_broad(namespaces, NAMESPACE_KEYS):
            what = "is empty" if selector_is_empty(namespaces) else "names no namespace by value"
            return (
                f"namespaceSelector: {what}, which admits every namespace of the cluster; "
                "select one by its labels (matchLabels or an In expression)"
            )
        return None
    pods = as_map(peer.get("podSelector"))
    if selector_is_broad(pods):
        what = "is empty" if selector_is_empty(pods) else "names no pod label by value"
        return (
            f"podSelector: {what}, which admits every pod of the namespace; select the workload's "
            "pods (matchLabels or an In expression)"
        )
    return None


def _broad_port(entry: Mapping[str, Any]) -> str | None:
    """Why one ``ports`` entry admits a wide range of ports, or None."""
    span = port_span(entry)
    if span <= MAX_PORT_RANGE:
        return None
    if entry.get("port") is None:
        return "has no port, which admits every port of its protocol; name the port"
    return (
        f"endPort: {entry.get('port')}-{entry.get('endPort')} admits {span} ports; list the ports "
        f"or narrow the range to at most {MAX_PORT_RANGE}"
    )


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
            ports = as_list(rule.get("ports"))
            if not ports:
                problems.append(f"{path}.ports: is empty, which allows every port; list them")
            for p_index, entry in enumerate(ports):
                wide = _broad_port(as_map(entry))
                if wide is not None:
                    problems.append(f"{path}.ports[{p_index}]: {wide}")
            for p_index, peer in enumerate(peers):
                broad = _broad_peer(as_map(peer))
                if broad is not None:
                    problems.append(f"{path}.{peers_key}[{p_index}].{broad}")
    return problems


def _pinned_to(selector: Mapping[str, Any], key: str, value: str) -> bool:
    """Whether every object ``selector`` matches carries ``key: value``."""
    allowed = pinned_values(selector, key)
    return allowed is not None and allowed <= {value}


def _cluster_dns_of(peer: Mapping[str, Any]) -> ClusterDns | None:
    """The cluster DNS the peer is exactly (kube-dns in kube-system, or OpenShift's DNS pods in
    openshift-dns: :data:`profiles.CLUSTER_DNS`), or None. Selectors count by what they match:
    ``In: [kube-system]`` is as exact as ``matchLabels``, and extra terms only narrow."""
    if "ipBlock" in peer:
        return None
    namespaces = as_map(peer.get("namespaceSelector"))
    pods = as_map(peer.get("podSelector"))
    for dns in CLUSTER_DNS.values():
        if _pinned_to(namespaces, NAMESPACE_NAME_LABEL, dns.namespace) and all(
            _pinned_to(pods, key, value) for key, value in dns.pod_labels.items()
        ):
            return dns
    return None


def _is_cluster_dns(peer: Mapping[str, Any]) -> bool:
    """The peer is exactly a cluster DNS, nothing else."""
    return _cluster_dns_of(peer) is not None


def _opens_dns(rule: Mapping[str, Any]) -> bool:
    """Whether the rule's ports admit a DNS port over UDP or TCP: no ports at all, an entry without
    a port, a range over 53 (or 5353), the number as a string, or a DNS port name."""
    ports = as_list(rule.get("ports"))
    if not ports:
        return True
    carriers = [p for p in ports if as_map(p).get("protocol", "TCP") in _DNS_PROTOCOLS]
    return any(ports_admit(carriers, port, _DNS_PORT_NAMES) for port in _DNS_PORT_NUMBERS if carriers)


def _check_dns_destination(obj: K8sObject) -> list[str]:
    problems = []
    for index, rule in enumerate(as_list(as_map(obj.get("spec")).get("egress"))):
        rule = as_map(rule)
        if not _opens_dns(rule):
            continue
        for p_index, peer in enumerate(as_list(rule.get("to"))):
            if not _is_cluster_dns(as_map(peer)):
                problems.append(
                    f"spec.egress[{index}].to[{p_index}]: opens a DNS port (53 or 5353) to a peer "
                    "other than the cluster DNS; DNS to any other server can carry data out of the "
                    "cluster"
                )
    return problems


def _allows_dns(np: K8sObject) -> bool:
    for rule in as_list(as_map(np.get("spec")).get("egress")):
        rule = as_map(rule)
        ports = as_list(rule.get("ports"))
        for peer in as_list(rule.get("to")):
            dns = _cluster_dns_of(as_map(peer))
            if dns is None:
                continue
            protocols = {
                as_map(p).get("protocol", "TCP")
                for p in ports
                if any(port_entry_admits(as_map(p), port, _DNS_PORT_NAMES) for port in dns.ports)
            }
            if not ports or {"UDP", "TCP"} <= protocols:
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
        fix="List the allowed peers by their labels (a podSelector and a namespaceSelector that pin "
        "a label to named values with matchLabels or In, an ipBlock of /16 or narrower) and the "
        "ports in every rule (each a port, a name, or a range of at most 64).",
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
