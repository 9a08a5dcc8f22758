"""One stack's objects with the lookups stack-wide rules need, each built once.

A stack rule asks questions per workload: which NetworkPolicies select its pods, which HPA
targets it, is its namespace declared. Answered by scanning every object, each question
costs the size of the stack and a rule costs its square. :class:`StackIndex` answers them
from dictionaries built on first use, and :func:`~hardened_k8s_rules.policy.evaluate` builds one
per evaluation for every stack rule, so the policy's cost grows linearly with the stack.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any, Generic, TypeVar, overload

from .objects import (
    K8sObject,
    PodTemplate,
    as_map,
    kind_of,
    name_of,
    namespace_of,
    pod_selector,
    pod_template,
    selector_matches,
)

T = TypeVar("T")


class SelectorIndex(Generic[T]):
    """Entries with a namespace and a ``LabelSelector``, found by the pod labels they select.

    Each entry is filed under one ``matchLabels`` pair it requires, the one fewest entries
    share, so a lookup reads only entries that could match (a Service, its PDB and its
    NetworkPolicy for a workload's labels) rather than every entry of the namespace. Entries
    without a string ``matchLabels`` value (empty selectors, ``matchExpressions`` only) are
    checked for every lookup in their namespace; a namespace has few (the default deny,
    the DNS egress policy).
    """

    def __init__(self, entries: Iterable[tuple[T, str, Mapping[str, Any]]]) -> None:
        """``entries``: ``(item, namespace, selector)`` in the order lookups return them."""
        self._entries = list(entries)
        pairs = [(namespace, _string_pairs(selector)) for _, namespace, selector in self._entries]
        shared = Counter((namespace, pair) for namespace, entry_pairs in pairs for pair in entry_pairs)
        self._keyed: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        self._unkeyed: dict[str, list[int]] = defaultdict(list)
        for position, (namespace, entry_pairs) in enumerate(pairs):
            if entry_pairs:
                key, value = min(entry_pairs, key=lambda pair: shared[namespace, pair])
                self._keyed[namespace, key, value].append(position)
            else:
                self._unkeyed[namespace].append(position)

    def matching(self, namespace: str, labels: Mapping[str, Any]) -> list[T]:
        """Items in ``namespace`` whose selector selects ``labels``, in entry order."""
        positions = list(self._unkeyed.get(namespace, ()))
        for key, value in labels.items():
            if isinstance(key, str) and isinstance(value, str):
                positions += self._keyed.get((namespace, key, value), ())
        return [
            self._entries[p][0] for p in sorted(positions) if selector_matches(self._entries[p][2], labels)
        ]


def _string_pairs(selector: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The ``matchLabels`` pairs a selected pod must carry as they are (string values only).

    Other values are left to :func:`~hardened_k8s_rules.policy.objects.selector_matches`: ``None``
    also matches a pod without the label, and a non-string never equals a label value.
    """
    return [
        (key, value)
        for key, value in as_map(selector.get("matchLabels")).items()
        if isinstance(key, str) and isinstance(value, str)
    ]


class StackIndex(Sequence[K8sObject]):
    """The objects of one stack, in their order, and lookups over them built on first use.

    A ``Sequence`` of the objects itself, so a check written against a plain list keeps
    working. The objects are read, never copied or changed: build a new index after
    changing them.
    """

    def __init__(self, objs: Iterable[K8sObject]) -> None:
        self._objs = tuple(objs)
        self._selectors: dict[str, SelectorIndex[K8sObject]] = {}

    @overload
    def __getitem__(self, index: int) -> K8sObject: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[K8sObject]: ...

    def __getitem__(self, index: int | slice) -> K8sObject | Sequence[K8sObject]:
        return self._objs[index]

    def __len__(self) -> int:
        return len(self._objs)

    def __iter__(self) -> Iterator[K8sObject]:
        return iter(self._objs)

    @cached_property
    def workloads(self) -> tuple[tuple[K8sObject, PodTemplate], ...]:
        """Every pod-bearing object with its pod template, in stack order."""
        found = []
        for obj in self._objs:
            pod = pod_template(obj)
            if pod is not None:
                found.append((obj, pod))
        return tuple(found)

    @cached_property
    def _by_kind(self) -> dict[str, tuple[K8sObject, ...]]:
        kinds: dict[str, list[K8sObject]] = defaultdict(list)
        for obj in self._objs:
            kinds[kind_of(obj)].append(obj)
        return {kind: tuple(objs) for kind, objs in kinds.items()}

    def of_kind(self, kind: str) -> tuple[K8sObject, ...]:
        """The objects of ``kind``, in stack order."""
        return self._by_kind.get(kind, ())

    @cached_property
    def _namespaces(self) -> dict[str, K8sObject]:
        first: dict[str, K8sObject] = {}
        for ns in self.of_kind("Namespace"):
            first.setdefault(name_of(ns), ns)
        return first

    def namespace(self, name: str) -> K8sObject | None:
        """The Namespace object called ``name`` (the first, if declared twice), or ``None``."""
        return self._namespaces.get(name)

    @cached_property
    def _hpas(self) -> dict[tuple[str, str, str], list[K8sObject]]:
        targets: dict[tuple[str, str, str], list[K8sObject]] = defaultdict(list)
        for hpa in self.of_kind("HorizontalPodAutoscaler"):
            target = as_map(as_map(hpa.get("spec")).get("scaleTargetRef"))
            kind, name = target.get("kind"), target.get("name")
            # A target that is not a string names no object: kind and name are strings.
            if isinstance(kind, str) and isinstance(name, str):
                targets[namespace_of(hpa), kind, name].append(hpa)
        return targets

    def hpas_targeting(self, workload: K8sObject) -> tuple[K8sObject, ...]:
        """HPAs in the workload's namespace whose ``scaleTargetRef`` names it, in stack order."""
        return tuple(self._hpas.get((namespace_of(workload), kind_of(workload), name_of(workload)), ()))

    def selecting(self, kind: str, workload: K8sObject, pod: PodTemplate) -> list[K8sObject]:
        """Objects of ``kind`` in the workload's namespace whose pod selector picks its pods.

        ``kind`` is one of the kinds :func:`~hardened_k8s_rules.policy.objects.pod_selector` reads
        (Service, PodDisruptionBudget, NetworkPolicy); results are in stack order.
        """
        index = self._selectors.get(kind)
        if index is None:
            index = SelectorIndex((obj, namespace_of(obj), pod_selector(obj)) for obj in self.of_kind(kind))
            self._selectors[kind] = index
        return index.matching(namespace_of(workload), pod.labels)
