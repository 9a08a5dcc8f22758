"""Property tests: the NetworkPolicy rules judge generated selectors and port lists as the traffic
model (``tests/traffic.py``) evaluates them.

The rules reason about a selector's terms; the model evaluates the selector on label sets nobody
named, and a port list on every port. For any generated peer or port list the two must agree:
a rule passes exactly what admits only named objects and few ports.
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from hardened_k8s_rules.policy import RULES_BY_ID, ObjectRule
from hardened_k8s_rules.policy.selectors import MAX_PORT_RANGE

from ..traffic import NAMESPACE_NAME, Pod, admits_strangers, admitted_ports, only_matches, port_matches

Obj = dict[str, Any]
# No example database: a failure prints its example, and the repository stays clean.
PROPERTY = settings(max_examples=200, deadline=None, database=None)

KEYS = st.sampled_from([NAMESPACE_NAME, "app", "team", "k8s-app"])
VALUES = st.sampled_from(["a", "kube-dns", "kube-system"])
OUTSIDE = {"ipBlock": {"cidr": "203.0.113.7/32"}}
NAMES = st.sampled_from(["dns", "dns-tcp", "http", "metrics"])
PROTOCOLS = st.sampled_from(["TCP", "UDP", "SCTP"])
UNIVERSE = range(1, 1025)
"""The ports the model counts: generated ports and ranges stay below 1024 (``endPort`` up to 1024)."""


@st.composite
def expressions(draw: st.DrawFn, keys: st.SearchStrategy[str] = KEYS) -> Obj:
    operator = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
    term: Obj = {"key": draw(keys), "operator": operator}
    if operator in ("In", "NotIn"):
        term["values"] = draw(st.lists(VALUES, min_size=1, max_size=3, unique=True))
    return term


@st.composite
def selectors(draw: st.DrawFn, keys: st.SearchStrategy[str] = KEYS) -> Obj:
    selector: Obj = {}
    labels = draw(st.dictionaries(keys, VALUES, max_size=2))
    if labels:
        selector["matchLabels"] = labels
    terms = draw(st.lists(expressions(keys), max_size=3))
    if terms:
        selector["matchExpressions"] = terms
    return selector


@st.composite
def port_entries(draw: st.DrawFn) -> Obj:
    entry: Obj = {}
    if draw(st.booleans()):
        entry["protocol"] = draw(PROTOCOLS)
    kind = draw(st.sampled_from(["none", "number", "range", "name"]))
    if kind == "name":
        entry["port"] = draw(NAMES)
    elif kind != "none":
        entry["port"] = draw(st.integers(1, 1000))
        if kind == "range":
            entry["endPort"] = draw(st.integers(entry["port"], 1024))
    return entry


def _policy(rule: Obj) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "generated", "namespace": "store"},
        "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Egress"], "egress": [rule]},
    }


def _problems(rule_id: str, policy: Obj) -> list[str]:
    rule = RULES_BY_ID[rule_id]
    assert isinstance(rule, ObjectRule)
    return list(rule.check(policy))


def _destination() -> Pod:
    """A destination that gives every generated name its own port: DNS names the DNS port."""
    return Pod("dest", "elsewhere", {}, {"dns": 53, "dns-tcp": 53, "http": 8080, "metrics": 9090})


@PROPERTY
@given(selectors())
def test_namespace_selector_verdict_matches_the_model(selector: Obj) -> None:
    """Every namespace carries its name label, so the model's strangers always have it."""
    peer = {"namespaceSelector": selector, "podSelector": {"matchLabels": {"app": "db"}}}
    flagged = any(".namespaceSelector:" in p for p in _problems("HARD-021", _policy(_rule(peer))))
    assert flagged == admits_strangers(selector, always=(NAMESPACE_NAME,)), selector


@PROPERTY
@given(selectors())
def test_pod_selector_verdict_matches_the_model(selector: Obj) -> None:
    flagged = any(
        ".podSelector:" in p for p in _problems("HARD-021", _policy(_rule({"podSelector": selector})))
    )
    assert flagged == admits_strangers(selector), selector


@PROPERTY
@given(st.lists(port_entries(), min_size=1, max_size=4))
def test_port_range_verdict_matches_the_model(ports: list[Obj]) -> None:
    problems = _problems("HARD-021", _policy({"to": [OUTSIDE], "ports": ports}))
    flagged = any(".ports[" in p for p in problems)
    wide = any(len(admitted_ports(entry, _destination(), UNIVERSE)) > MAX_PORT_RANGE for entry in ports)
    assert flagged == wide, ports


@PROPERTY
@given(st.lists(port_entries(), max_size=4))
def test_dns_verdict_matches_the_model(ports: list[Obj]) -> None:
    """HARD-034 fails a rule to an outside address exactly when the model lets DNS through it."""
    flagged = bool(_problems("HARD-034", _policy({"to": [OUTSIDE], "ports": ports})))
    opens = any(
        port_matches(ports, _destination(), port, protocol)
        for port in (53, 5353)
        for protocol in ("TCP", "UDP")
    )
    assert flagged == opens, ports


IN_KUBE_SYSTEM_OR_A = {"key": NAMESPACE_NAME, "operator": "In", "values": ["kube-system", "a"]}
KUBE_DNS_PODS = {"matchLabels": {"k8s-app": "kube-dns"}}


@PROPERTY
# NotIn takes back what In allowed: only kube-system is left.
@example(
    {
        "matchExpressions": [
            IN_KUBE_SYSTEM_OR_A,
            {"key": NAMESPACE_NAME, "operator": "NotIn", "values": ["a"]},
        ]
    },
    KUBE_DNS_PODS,
)
@example({"matchExpressions": [IN_KUBE_SYSTEM_OR_A]}, KUBE_DNS_PODS)  # namespace a as well
@example(
    {"matchLabels": {NAMESPACE_NAME: "kube-system"}},
    {"matchExpressions": [{"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]},
)
@given(
    selectors(st.sampled_from([NAMESPACE_NAME, NAMESPACE_NAME, "team"])),
    selectors(st.sampled_from(["k8s-app", "k8s-app", "app"])),
)
def test_cluster_dns_verdict_matches_the_model(namespaces: Obj, pods: Obj) -> None:
    """HARD-034 passes DNS to a peer exactly when every namespace it matches is kube-system and
    every pod it matches is kube-dns (peers that match nothing are left out: neither sends DNS)."""
    in_kube_system = only_matches(namespaces, NAMESPACE_NAME, "kube-system", always=(NAMESPACE_NAME,))
    is_kube_dns = only_matches(pods, "k8s-app", "kube-dns")
    assume(in_kube_system is not None and is_kube_dns is not None)
    peer = {"namespaceSelector": namespaces, "podSelector": pods}
    flagged = bool(_problems("HARD-034", _policy({"to": [peer], "ports": [{"protocol": "UDP", "port": 53}]})))
    assert flagged == (not (in_kube_system and is_kube_dns)), peer


def _rule(peer: Obj) -> Obj:
    return {"to": [peer], "ports": [{"protocol": "TCP", "port": 5432}]}
