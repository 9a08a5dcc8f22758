"""Availability: disruption budgets, autoscaling, rollouts, graceful shutdown and spread.

The controls a workload needs to survive node drains, rollouts and load: a
PodDisruptionBudget that allows evictions (``HARD-023``, ``HARD-024``), an autoscaling/v2
HPA on CPU and memory that owns the replica count (``HARD-025``, ``HARD-026``), rolling
updates without unavailability (``HARD-028``), a graceful shutdown (``HARD-029``),
``minReadySeconds`` (``HARD-030``) and, in production, two replicas or more spread across
nodes and zones (``HARD-032``, ``HARD-033``). The stack-wide ones find a workload's HPA and
PDBs in the evaluation's :class:`~hardened_k8s_rules.policy.index.StackIndex`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..index import StackIndex
from ..objects import (
    LONG_RUNNING_KINDS,
    SCALABLE_KINDS,
    K8sObject,
    as_int,
    as_list,
    as_map,
    containers,
    declares,
    is_positive_int,
    kind_of,
    pod_template,
    ref,
    selector_matches,
)
from .registry import ObjectRule, StackRule
from .workload import RESOURCE_NAMES


def _replica_range(stack: StackIndex, workload: K8sObject) -> tuple[int, int]:
    """``(fewest, most)`` replicas the workload runs: from its HPA, else ``spec.replicas``."""
    for hpa in stack.hpas_targeting(workload):
        spec = as_map(hpa.get("spec"))
        low = as_int(spec.get("minReplicas", 1)) or 1
        high = as_int(spec.get("maxReplicas")) or low
        return low, high
    replicas = as_int(as_map(workload.get("spec")).get("replicas", 1))
    replicas = 1 if replicas is None else replicas
    return replicas, replicas


def _scaled_amount(value: Any, total: int) -> int | None:
    """An int-or-percent PDB field as a number of pods (percent of ``total``, rounded up)."""
    if as_int(value) is not None:
        return as_int(value)
    if isinstance(value, str) and value.endswith("%"):
        try:
            return math.ceil(total * int(value[:-1]) / 100)
        except ValueError:
            return None
    return None


def _stack_pdb_present(stack: StackIndex) -> list[tuple[K8sObject, str]]:
    findings = []
    for obj, pod in stack.workloads:
        if kind_of(obj) not in SCALABLE_KINDS:
            continue
        _, high = _replica_range(stack, obj)
        if high > 1 and not stack.selecting("PodDisruptionBudget", obj, pod):
            findings.append(
                (obj, f"spec.selector: runs up to {high} replicas and no PodDisruptionBudget selects them")
            )
    return findings


def _stack_pdb_consistent(stack: StackIndex) -> list[tuple[K8sObject, str]]:
    findings = []
    for obj, pod in stack.workloads:
        if kind_of(obj) not in SCALABLE_KINDS:
            continue
        low, _ = _replica_range(stack, obj)
        for pdb in stack.selecting("PodDisruptionBudget", obj, pod):
            spec = as_map(pdb.get("spec"))
            if "minAvailable" in spec:
                amount = _scaled_amount(spec.get("minAvailable"), low)
                if amount is None or amount >= low:
                    findings.append(
                        (
                            pdb,
                            f"spec.minAvailable: {spec.get('minAvailable')!r} is not below the "
                            f"{low} replica(s) {ref(obj)} may run, so no pod can ever be evicted; "
                            "use maxUnavailable: 1",
                        )
                    )
            elif "maxUnavailable" in spec:
                amount = _scaled_amount(spec.get("maxUnavailable"), low)
                if amount is None or amount < 1:
                    findings.append(
                        (
                            pdb,
                            f"spec.maxUnavailable: {spec.get('maxUnavailable')!r} blocks every "
                            "eviction; use 1",
                        )
                    )
            else:
                findings.append((pdb, "spec: sets neither minAvailable nor maxUnavailable"))
    return findings


def _check_hpa(obj: K8sObject) -> list[str]:
    problems = []
    if obj.get("apiVersion") != "autoscaling/v2":
        problems.append(f"apiVersion: is {obj.get('apiVersion')!r}; use autoscaling/v2")
    spec = as_map(obj.get("spec"))
    resources = {
        as_map(as_map(m).get("resource")).get("name")
        for m in as_list(spec.get("metrics"))
        if as_map(m).get("type") == "Resource"
    }
    for name in RESOURCE_NAMES:
        if name not in resources:
            problems.append(f"spec.metrics: has no Resource target for {name}")
    scale_down = as_map(as_map(spec.get("behavior")).get("scaleDown"))
    if not scale_down:
        problems.append(
            "spec.behavior.scaleDown: is not set; add a stabilization window and a rate "
            "limit so scale-down is slow"
        )
    return problems


def _stack_replicas_unset(stack: StackIndex) -> list[tuple[K8sObject, str]]:
    return [
        (
            obj,
            f"spec.replicas: is set while {ref(stack.hpas_targeting(obj)[0])} manages it; leave it "
            "unset so every apply does not reset the HPA's choice",
        )
        for obj, _ in stack.workloads
        if stack.hpas_targeting(obj) and declares(obj, "spec", "replicas")
    ]


def _check_rolling_update(obj: K8sObject) -> list[str]:
    strategy = as_map(as_map(obj.get("spec")).get("strategy"))
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return [f"spec.strategy.type: is {strategy.get('type')!r}; use RollingUpdate"]
    value = as_map(strategy.get("rollingUpdate")).get("maxUnavailable")
    if value in (0, "0", "0%") and not isinstance(value, bool):
        return []
    return [
        f"spec.strategy.rollingUpdate.maxUnavailable: is {value!r} (the default is 25%); "
        "set 0 so capacity never drops during a rollout"
    ]


def _check_graceful_shutdown(obj: K8sObject) -> list[str]:
    pod = pod_template(obj)
    if pod is None:
        return []
    problems = []
    if not is_positive_int(pod.spec.get("terminationGracePeriodSeconds")):
        problems.append(
            f"{pod.spec_path}.terminationGracePeriodSeconds: is not set; set it explicitly, "
            "longer than the preStop delay plus the longest request"
        )
    if kind_of(obj) == "Deployment":
        for c in containers(pod, "containers"):
            if not as_map(as_map(c.spec.get("lifecycle")).get("preStop")):
                problems.append(
                    f"{c.path}.lifecycle.preStop: is not set; add a short sleep so endpoints "
                    "are removed before the process gets SIGTERM"
                )
    return problems


def _check_min_ready(obj: K8sObject) -> list[str]:
    value = as_map(obj.get("spec")).get("minReadySeconds")
    if is_positive_int(value):
        return []
    return [f"spec.minReadySeconds: is {value!r}; set a few seconds"]


def _stack_production_replicas(stack: StackIndex) -> list[tuple[K8sObject, str]]:
    findings = []
    for obj, _ in stack.workloads:
        if kind_of(obj) != "Deployment":
            continue
        low, _ = _replica_range(stack, obj)
        if low < 2:
            findings.append(
                (
                    obj,
                    f"spec.replicas: at most {low} replica may be running in production; run at "
                    "least 2 (HPA minReplicas or replicas)",
                )
            )
    return findings


def _check_topology_spread(obj: K8sObject) -> list[str]:
    pod = pod_template(obj)
    if pod is None:
        return []
    # Anti-affinity no longer stands in for the spread: HARD-040 asks for it beside the spread.
    if as_list(pod.spec.get("topologySpreadConstraints")):
        return []
    return [f"{pod.spec_path}.topologySpreadConstraints: is not set; spread replicas across nodes and zones"]


HOSTNAME = "kubernetes.io/hostname"
"""The node label a hostname anti-affinity spreads replicas over."""


def _spreads_over_hosts(term: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """Whether an anti-affinity term keeps these pods off each other's node: hostname topology and
    a label selector that matches the pods themselves (by meaning, not by spelling)."""
    return term.get("topologyKey") == HOSTNAME and selector_matches(as_map(term.get("labelSelector")), labels)


def _check_host_anti_affinity(obj: K8sObject) -> list[str]:
    pod = pod_template(obj)
    if pod is None:
        return []
    anti = as_map(as_map(pod.spec.get("affinity")).get("podAntiAffinity"))
    preferred = (
        as_map(as_map(t).get("podAffinityTerm"))
        for t in as_list(anti.get("preferredDuringSchedulingIgnoredDuringExecution"))
    )
    required = (as_map(t) for t in as_list(anti.get("requiredDuringSchedulingIgnoredDuringExecution")))
    if any(_spreads_over_hosts(term, pod.labels) for term in (*preferred, *required)):
        return []
    return [
        f"{pod.spec_path}.affinity.podAntiAffinity: has no term on {HOSTNAME} that selects these "
        "pods; add preferredDuringSchedulingIgnoredDuringExecution with topologyKey "
        f"{HOSTNAME} and the workload's selector"
    ]


RULES = (
    StackRule(
        id="HARD-023",
        severity="mandatory",
        title="PodDisruptionBudget for multi-replica workloads",
        message="Without a PDB a node drain can evict every replica at once.",
        fix="Declare a PodDisruptionBudget with the workload's selector and maxUnavailable: 1.",
        check=_stack_pdb_present,
    ),
    StackRule(
        id="HARD-024",
        severity="mandatory",
        title="PodDisruptionBudget consistent with the replica count",
        message="A PDB that allows no eviction blocks node drains and cluster upgrades.",
        fix="Use maxUnavailable: 1, or minAvailable below the HPA's minReplicas.",
        check=_stack_pdb_consistent,
    ),
    ObjectRule(
        id="HARD-025",
        severity="mandatory",
        title="HPA autoscaling/v2 with CPU, memory and behavior",
        message="Scaling on one resource misses the other; without behavior scale-down flaps.",
        fix="Use autoscaling/v2 with Resource metrics for cpu and memory and a behavior.scaleDown "
        "stabilization window.",
        kinds=frozenset({"HorizontalPodAutoscaler"}),
        check=_check_hpa,
    ),
    StackRule(
        id="HARD-026",
        severity="mandatory",
        title="No replicas on HPA-managed workloads",
        message="Each apply would reset the replica count the HPA chose.",
        fix="Leave spec.replicas unset when an HPA targets the workload.",
        check=_stack_replicas_unset,
    ),
    ObjectRule(
        id="HARD-028",
        severity="mandatory",
        title="Rolling update without unavailability",
        message="With the default maxUnavailable 25% a rollout removes serving capacity.",
        fix="Use strategy RollingUpdate with maxUnavailable: 0 (and a maxSurge).",
        kinds=frozenset({"Deployment"}),
        check=_check_rolling_update,
    ),
    ObjectRule(
        id="HARD-029",
        severity="mandatory",
        title="Graceful shutdown",
        message="Without a preStop delay and a grace period, in-flight requests are cut off.",
        fix="Set terminationGracePeriodSeconds and a preStop sleep on every serving container.",
        kinds=LONG_RUNNING_KINDS,
        check=_check_graceful_shutdown,
    ),
    ObjectRule(
        id="HARD-030",
        severity="advisory",
        title="minReadySeconds",
        message="A pod that crashes right after becoming ready should not count as available.",
        fix="Set spec.minReadySeconds to a few seconds.",
        kinds=frozenset({"Deployment"}),
        check=_check_min_ready,
    ),
    StackRule(
        id="HARD-032",
        severity="mandatory",
        title="At least two replicas in production",
        message="One replica means downtime on every node drain, crash and rollout hiccup.",
        fix="Set the HPA's minReplicas (or replicas) to at least 2 in the production stack.",
        production_only=True,
        check=_stack_production_replicas,
    ),
    ObjectRule(
        id="HARD-033",
        severity="advisory",
        title="Replicas spread across nodes and zones in production",
        message="Replicas on one node or zone fail together.",
        fix="Add topologySpreadConstraints on kubernetes.io/hostname and "
        "topology.kubernetes.io/zone (and the hostname anti-affinity of HARD-040 beside them).",
        kinds=frozenset({"Deployment"}),
        production_only=True,
        check=_check_topology_spread,
    ),
    ObjectRule(
        id="HARD-040",
        severity="mandatory",
        title="Preferred hostname anti-affinity in production",
        message="Topology spread alone is skipped by schedulers and scanners that read only "
        "podAntiAffinity; without it replicas may land on one node and fail together.",
        fix="Add podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution with topologyKey "
        "kubernetes.io/hostname and the workload's selector, next to the topology spread (a "
        "preference never leaves a pod Pending).",
        kinds=frozenset({"Deployment"}),
        production_only=True,
        check=_check_host_anti_affinity,
    ),
)
"""The availability rules."""
