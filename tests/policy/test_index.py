"""The stack index: the same answers as a scan of every object, at a cost linear in the stack."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from hardened_k8s_rules.policy import RULES, StackIndex, StackRule, evaluate
from hardened_k8s_rules.policy import index as index_module
from hardened_k8s_rules.policy.index import SelectorIndex
from hardened_k8s_rules.policy.objects import pod_template, selector_matches

from .stack import NS, Obj, find, hardened_stack

LABELS: list[dict[str, Any]] = [
    {},
    {"app": "api"},
    {"app": "api", "tier": "web"},
    {"app": "db", "tier": "web"},
    {"app": 1},
    {"tier": "web"},
]
SELECTORS: list[dict[str, Any]] = [
    {},
    {"matchLabels": {}},
    {"matchLabels": {"app": "api"}},
    {"matchLabels": {"app": "api", "tier": "web"}},
    {"matchLabels": {"tier": "web"}},
    {"matchLabels": {"app": None}},
    {"matchLabels": {"app": 1}},
    {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db", "api"]}]},
    {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]},
    {
        "matchLabels": {"tier": "web"},
        "matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]}],
    },
]


def test_selector_index_finds_what_a_scan_finds_in_entry_order() -> None:
    entries = [
        (position, namespace, selector)
        for position, (namespace, selector) in enumerate(itertools.product(["a", "b"], SELECTORS * 2))
    ]
    index = SelectorIndex(entries)
    for namespace, labels in itertools.product(["a", "b", "c"], LABELS):
        scanned = [p for p, ns, sel in entries if ns == namespace and selector_matches(sel, labels)]
        assert index.matching(namespace, labels) == scanned, (namespace, labels)


def _workload_copies(count: int) -> list[Obj]:
    """The namespace and ``count`` copies of the hardened store API, each with its own name."""
    objs = hardened_stack()
    namespace_wide = ("default-deny", "allow-dns")
    shared = [o for o in objs if o["kind"] == "Namespace" or o["metadata"]["name"] in namespace_wide]
    api = [o for o in objs if o["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "store-api"]
    text = json.dumps(api)
    return shared + [o for i in range(count) for o in json.loads(text.replace("store-api", f"api-{i:04d}"))]


def test_copies_of_a_hardened_workload_pass() -> None:
    objs = _workload_copies(3)
    assert {o["kind"] for o in objs} >= {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"}
    report = evaluate(objs, production=True)
    assert not report.failed, [v.rule_id + " " + v.problem for v in report.mandatory]


def _counting(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    calls = 0

    def counted(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
        nonlocal calls
        calls += 1
        return selector_matches(selector, labels)

    monkeypatch.setattr(index_module, "selector_matches", counted)

    def read() -> int:
        nonlocal calls
        seen, calls = calls, 0
        return seen

    return read


def test_stack_rules_compare_selectors_linearly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight times the workloads costs eight times the selector comparisons, not sixty-four."""
    stack_rules = [rule for rule in RULES if isinstance(rule, StackRule)]
    calls = _counting(monkeypatch)
    evaluate(_workload_copies(10), production=True, rules=stack_rules)
    small = calls()
    evaluate(_workload_copies(80), production=True, rules=stack_rules)
    large = calls()
    assert small > 0
    assert large <= 8 * small * 1.1, (small, large)


def test_index_reads_like_the_objects() -> None:
    objs = hardened_stack()
    stack = StackIndex(objs)
    assert list(stack) == objs and len(stack) == len(objs) and stack[0] is objs[0]
    assert list(stack.of_kind("Deployment")) == [o for o in objs if o["kind"] == "Deployment"]
    assert stack.of_kind("CronJob") == ()
    assert [o for o, _ in stack.workloads] == [o for o in objs if pod_template(o) is not None]


def test_index_lookups() -> None:
    objs = hardened_stack()
    api = find(objs, "Deployment", "store-api")
    twin = json.loads(json.dumps(find(objs, "Namespace")))
    twin["metadata"]["labels"]["twin"] = "yes"
    stack = StackIndex([*objs, twin])
    assert stack.namespace(NS) is find(objs, "Namespace")
    assert stack.namespace("elsewhere") is None
    assert stack.hpas_targeting(api) == (find(objs, "HorizontalPodAutoscaler"),)
    assert stack.hpas_targeting(find(objs, "StatefulSet")) == ()
    pod = pod_template(api)
    assert pod is not None
    policies = stack.selecting("NetworkPolicy", api, pod)
    assert [p["metadata"]["name"] for p in policies] == [
        o["metadata"]["name"]
        for o in objs
        if o["kind"] == "NetworkPolicy" and selector_matches(o["spec"]["podSelector"], pod.labels)
    ]
    assert "default-deny" in [p["metadata"]["name"] for p in policies]
