"""The traffic model the tests judge NetworkPolicies by: Kubernetes semantics, written out plainly.

It is independent of the policy rules (``hardened_k8s_rules.policy.selectors``) on purpose: the
rules reason about a selector's terms, the model evaluates a selector on label sets and a port
list on ports, and the property tests compare the two.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

NAMESPACE_NAME = "kubernetes.io/metadata.name"
UNNAMED = "zz-value-nobody-named"
"""A label value no selector of the tests names: the value of a stranger's labels."""


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Label-selector semantics: every ``matchLabels`` pair and every ``matchExpressions`` term."""
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for term in selector.get("matchExpressions", []):
        key, op, values = term["key"], term["operator"], term.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def strangers(selector: Mapping[str, Any], always: Collection[str] = ()) -> Iterator[dict[str, str]]:
    """Every label set over the selector's keys whose values nobody named: each key present (with
    :data:`UNNAMED`) or absent; the keys in ``always`` are always present."""
    keys = set(selector.get("matchLabels", {})) | {t["key"] for t in selector.get("matchExpressions", [])}
    optional = sorted(keys - set(always))
    for present in itertools.product((False, True), repeat=len(optional)):
        chosen = [k for k, p in zip(optional, present, strict=True) if p]
        yield {k: UNNAMED for k in (*always, *chosen)}


def admits_strangers(selector: Mapping[str, Any], always: Collection[str] = ()) -> bool:
    """Whether the selector matches an object it does not name by value: the meaning of "broad"."""
    return any(selects(selector, labels) for labels in strangers(selector, always))


@dataclass(frozen=True)
class Pod:
    """A workload's pods as NetworkPolicy sees them: namespace, labels and named ports."""

    name: str
    namespace: str
    labels: dict[str, str]
    ports: dict[str, int]


def port_matches(ports: list[dict[str, Any]], destination: Pod, port: int, protocol: str = "TCP") -> bool:
    """An absent or empty ``ports`` list allows every port; an entry without ``port`` every port of
    its protocol; named ports resolve on the destination; ``endPort`` extends a numbered port."""
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        value = p.get("port")
        number = destination.ports.get(value) if isinstance(value, str) else value
        if (
            value is None
            or number == port
            or (number is not None and number <= port <= p.get("endPort", number))
        ):
            return True
    return False


def admitted_ports(entry: dict[str, Any], destination: Pod, universe: range) -> set[int]:
    """The ports of ``universe`` one ``ports`` entry admits to ``destination``, on its protocol."""
    protocol = entry.get("protocol", "TCP")
    return {port for port in universe if port_matches([entry], destination, port, protocol)}


def label_sets(selector: Mapping[str, Any], always: Collection[str] = ()) -> Iterator[dict[str, str]]:
    """Every label set over the selector's keys and ``always``: each key absent (unless in
    ``always``), or one of the values the selector names, or :data:`UNNAMED`."""
    named_keys = set(selector.get("matchLabels", {})) | {
        t["key"] for t in selector.get("matchExpressions", [])
    }
    keys = sorted(named_keys | set(always))
    named = set(selector.get("matchLabels", {}).values()) | {
        v for t in selector.get("matchExpressions", []) for v in t.get("values", [])
    }
    choices = [([] if k in always else [None]) + sorted(named) + [UNNAMED] for k in keys]
    for values in itertools.product(*choices):
        yield {k: v for k, v in zip(keys, values, strict=True) if v is not None}


def only_matches(
    selector: Mapping[str, Any], key: str, value: str, always: Collection[str] = ()
) -> bool | None:
    """Whether every label set the selector matches has ``key: value``; None when it matches none."""
    matched = [labels for labels in label_sets(selector, always) if selects(selector, labels)]
    return None if not matched else all(labels.get(key) == value for labels in matched)


# --- NetworkPolicy semantics over rendered objects (the unit tier's model of the traffic the
# cluster tier observes on the real node) -----------------------------------------------------


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def pods_of(objects: list[dict[str, Any]]) -> dict[str, Pod]:
    return {
        w["metadata"]["name"]: Pod(
            w["metadata"]["name"],
            w["metadata"]["namespace"],
            w["spec"]["template"]["metadata"]["labels"],
            {
                port["name"]: port["containerPort"]
                for c in _containers(w)
                for port in c.get("ports", [])
                if "name" in port
            },
        )
        for w in objects
        if w["kind"] in ("Deployment", "StatefulSet")
    }


def namespace_labels(objects: list[dict[str, Any]], namespace: str) -> dict[str, str]:
    """The labels a namespace carries, including the name label the API server always sets."""
    labels: dict[str, str] = {}
    for obj in objects:
        if obj["kind"] == "Namespace" and obj["metadata"]["name"] == namespace:
            labels.update(obj["metadata"].get("labels", {}))
    return {**labels, "kubernetes.io/metadata.name": namespace}


def peer_matches(objects: list[dict[str, Any]], entry: dict[str, Any], policy_ns: str, pod: Pod) -> bool:
    """Does one ``from``/``to`` entry of a policy in ``policy_ns`` match ``pod``?

    ``namespaceSelector`` picks namespaces by their labels (``{}`` is every namespace) and,
    with a ``podSelector`` beside it, pods there; without it the ``podSelector`` stays in the
    policy's own namespace. An ``ipBlock`` may cover any pod address, so it counts as a match.
    """
    if "ipBlock" in entry:
        return True
    if "namespaceSelector" in entry:
        if not selects(entry["namespaceSelector"], namespace_labels(objects, pod.namespace)):
            return False
    elif pod.namespace != policy_ns:
        return False
    return selects(entry.get("podSelector", {}), pod.labels)


def admits(objects: list[dict[str, Any]], direction: str, subject: str, peer: str, port: int) -> bool:
    """NetworkPolicy semantics over rendered objects, one direction: do the policies selecting
    ``subject`` let it receive from (Ingress) or send to (Egress) ``peer`` on TCP ``port``?"""
    pods = pods_of(objects)
    me, other = pods[subject], pods[peer]
    applying = [
        (p["metadata"]["namespace"], p["spec"])
        for p in objects
        if p["kind"] == "NetworkPolicy"
        and p["metadata"]["namespace"] == me.namespace
        and direction in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"]["podSelector"], me.labels)
    ]
    assert applying, f"no {direction} policy selects {subject}"
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    destination = me if direction == "Ingress" else other
    return any(
        (not rule.get(peers_key) or any(peer_matches(objects, x, ns, other) for x in rule[peers_key]))
        and port_matches(rule.get("ports", []), destination, port)
        for ns, spec in applying
        for rule in spec.get(key, [])
    )
