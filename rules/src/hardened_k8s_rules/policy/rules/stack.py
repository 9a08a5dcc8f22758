"""Stack-wide rules: namespaces, identities, one shared selector, labels, secrets across objects.

What holds a stack together rather than one workload: every workload in a Namespace the
stack declares with the Pod Security Admission labels (``HARD-017``, ``HARD-018``), its own
ServiceAccount (``HARD-004``), one selector reused by every object that picks its pods
(``HARD-027``), the recommended labels (``HARD-031``), and no Secret value copied into a
ConfigMap (``HARD-016``). The cross-object ones read the evaluation's
:class:`~hardened_k8s_rules.policy.index.StackIndex`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from ..index import SelectorIndex, StackIndex
from ..objects import (
    POD_BEARING_KINDS,
    K8sObject,
    as_map,
    kind_of,
    labels_of,
    name_of,
    namespace_of,
    plain,
    pod_selector,
    pod_template,
    ref,
    selector_is_empty,
    selector_matches,
    workload_selector,
)
from .registry import ObjectRule, StackRule
from .workload import looks_secret


def _stack_service_account(stack: StackIndex) -> list[tuple[K8sObject, str]]:
    accounts = {(namespace_of(sa), name_of(sa)) for sa in stack.of_kind("ServiceAccount")}
    findings = []
    for obj, pod in stack.workloads:
        name = str(pod.spec.get("serviceAccountName") or "")
        path = f"{pod.spec_path}.serviceAccountName"
        if name in ("", "default"):
            findings.append((obj, f"{path}: uses the namespace's default ServiceAccount"))
        elif (namespace_of(obj), name) not in accounts:
            findings.append((obj, f"{path}: ServiceAccount {name!r} is not declared in this namespace"))
    return findings


def _secret_values(stack: StackIndex) -> set[str]:
    values: set[str] = set()
    for secret in stack.of_kind("Secret"):
        for value in as_map(secret.get("stringData")).values():
            if isinstance(value, str):
                values.add(value)
        for value in as_map(secret.get("data")).values():
            if isinstance(value, str):
                try:
                    values.add(base64.b64decode(value, validate=True).decode())
                except (binascii.Error, UnicodeDecodeError):
                    continue
    # Very short values ("true", "5432") would match ordinary settings by chance.
    return {v for v in values if len(v) >= 8}


def _stack_secrets_in_configmaps(stack: StackIndex) -> list[tuple[K8sObject, str]]:
    secrets = _secret_values(stack)
    findings = []
    for cm in stack.of_kind("ConfigMap"):
        for key, value in as_map(cm.get("data")).items():
            if value in secrets:
                findings.append((cm, f"data[{key}]: holds the value of a Secret; reference the Secret"))
            elif looks_secret(str(key), value):
                findings.append(
                    (cm, f"data[{key}]: looks like a secret; move it to a Secret mounted as a volume")
                )
    return findings


_PSA_LEVEL_LABELS = tuple(f"pod-security.kubernetes.io/{m}" for m in ("enforce", "audit", "warn"))
_PSA_VERSION_RE = re.compile(r"^v1\.\d+$")


def _check_psa_labels(obj: K8sObject) -> list[str]:
    labels = labels_of(obj)
    problems = [
        f"metadata.labels[{key}]: is {labels.get(key)!r}; set restricted"
        for key in _PSA_LEVEL_LABELS
        if labels.get(key) != "restricted"
    ]
    version_key = "pod-security.kubernetes.io/enforce-version"
    if not _PSA_VERSION_RE.match(str(labels.get(version_key) or "")):
        problems.append(
            f"metadata.labels[{version_key}]: is {labels.get(version_key)!r}; pin the "
            "cluster's minor version, e.g. v1.31 (not latest)"
        )
    return problems


def _stack_namespace_managed(stack: StackIndex) -> list[tuple[K8sObject, str]]:
    declared = {name_of(ns) for ns in stack.of_kind("Namespace")}
    return [
        (
            obj,
            f"metadata.namespace: {namespace_of(obj) or '(unset)'!r} is not a Namespace "
            "declared with Pod Security Admission labels",
        )
        for obj, _ in stack.workloads
        if namespace_of(obj) not in declared
    ]


_FOLLOWER_KINDS = (
    ("Service", "spec.selector"),
    ("PodDisruptionBudget", "spec.selector"),
    ("NetworkPolicy", "spec.podSelector"),
)


def _followers(stack: StackIndex) -> list[tuple[K8sObject, str, Mapping[str, Any]]]:
    """Objects that select a workload's pods: ``(object, selector path, LabelSelector)``."""
    found = [(obj, path, pod_selector(obj)) for kind, path in _FOLLOWER_KINDS for obj in stack.of_kind(kind)]
    # Empty selectors are Services with hand-managed endpoints and namespace-wide policies.
    return [f for f in found if not selector_is_empty(f[2])]


def _stack_shared_selector(stack: StackIndex) -> list[tuple[K8sObject, str]]:
    findings: list[tuple[K8sObject, str]] = []
    workloads = [(o, p) for o, p in stack.workloads if kind_of(o) != "Pod"]
    followers = _followers(stack)
    by_selector = SelectorIndex((f, namespace_of(f[0]), f[2]) for f in followers)
    used: set[int] = set()
    for obj, pod in workloads:
        selector = workload_selector(obj)
        expected = {"matchLabels": plain(as_map(selector.get("matchLabels")))}
        if not selector_matches(selector, pod.labels):
            findings.append((obj, "spec.selector: does not match the pod template's labels"))
        for follower, path, sel in by_selector.matching(namespace_of(obj), pod.labels):
            used.add(id(follower))
            if plain(sel) != expected:
                findings.append(
                    (
                        follower,
                        f"{path}: selects {ref(obj)} with {plain(sel)} instead of its selector "
                        f"{expected}; reuse the one computed selector",
                    )
                )
    for follower, path, _ in followers:
        if id(follower) not in used:
            findings.append((follower, f"{path}: selects no workload's pods"))
    targets = {(namespace_of(o), kind_of(o), name_of(o)) for o, _ in workloads}
    for hpa in stack.of_kind("HorizontalPodAutoscaler"):
        target = as_map(as_map(hpa.get("spec")).get("scaleTargetRef"))
        if (namespace_of(hpa), target.get("kind"), target.get("name")) not in targets:
            findings.append(
                (
                    hpa,
                    f"spec.scaleTargetRef: {target.get('kind')}/{target.get('name')} is not a "
                    "workload of this stack",
                )
            )
    return findings


RECOMMENDED_LABELS = tuple(
    f"app.kubernetes.io/{k}" for k in ("name", "instance", "version", "component", "part-of", "managed-by")
)
"""The ``app.kubernetes.io`` labels every workload object and pod template carries."""

_SHARED_LABELS = ("app.kubernetes.io/part-of", "app.kubernetes.io/managed-by")
_WORKLOAD_OBJECT_KINDS = POD_BEARING_KINDS | {
    "Service",
    "ServiceAccount",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
}


def _check_labels(obj: K8sObject) -> list[str]:
    # Objects shared by a namespace (default deny, DNS egress) belong to no single app: they
    # need only part-of and managed-by, unless they name an app.
    labels = labels_of(obj)
    wanted = (
        RECOMMENDED_LABELS
        if kind_of(obj) in _WORKLOAD_OBJECT_KINDS or "app.kubernetes.io/name" in labels
        else _SHARED_LABELS
    )
    problems = []
    missing = [k for k in wanted if not labels.get(k)]
    if missing:
        problems.append(f"metadata.labels: missing {', '.join(missing)}")
    pod = pod_template(obj)
    if pod is not None:
        missing = [k for k in RECOMMENDED_LABELS if not pod.labels.get(k)]
        if missing:
            problems.append(f"{pod.metadata_path}.labels: missing {', '.join(missing)}")
    return problems


RULES = (
    StackRule(
        id="HARD-004",
        severity="mandatory",
        title="Dedicated ServiceAccount",
        message="Pods on the namespace's default ServiceAccount share whatever it is granted.",
        fix="Declare a ServiceAccount per workload and set serviceAccountName to it.",
        check=_stack_service_account,
    ),
    StackRule(
        id="HARD-016",
        severity="mandatory",
        title="No secret values in ConfigMaps",
        message="ConfigMaps are not encrypted at rest nor access-restricted like Secrets.",
        fix="Move the value into a Secret and mount it as a read-only volume.",
        check=_stack_secrets_in_configmaps,
    ),
    ObjectRule(
        id="HARD-017",
        severity="mandatory",
        title="Namespace enforces Pod Security restricted",
        message="The namespace labels make the cluster itself refuse anything weaker.",
        fix="Label the Namespace pod-security.kubernetes.io/{enforce,audit,warn}: restricted and "
        "enforce-version: v1.<minor>.",
        kinds=frozenset({"Namespace"}),
        check=_check_psa_labels,
    ),
    StackRule(
        id="HARD-018",
        severity="mandatory",
        title="Workloads run in a managed namespace",
        message="Only a namespace declared here carries the Pod Security Admission labels.",
        fix="Declare the workload's Namespace in the stack and put the workload in it.",
        check=_stack_namespace_managed,
    ),
    StackRule(
        id="HARD-027",
        severity="mandatory",
        title="One selector shared by workload, Service, PDB, HPA and NetworkPolicy",
        message="Selectors computed separately drift apart and silently select nothing.",
        fix="Compute the selector once (name + instance labels) and reuse it everywhere.",
        check=_stack_shared_selector,
    ),
    ObjectRule(
        id="HARD-031",
        severity="advisory",
        title="Recommended labels",
        message="The app.kubernetes.io labels let tools and people find what belongs together.",
        fix="Label objects and pod templates with app.kubernetes.io/{name,instance,version,"
        "component,part-of,managed-by}; namespace-wide objects at least part-of and managed-by.",
        kinds=frozenset({*_WORKLOAD_OBJECT_KINDS, "NetworkPolicy", "ConfigMap", "Secret"}),
        check=_check_labels,
    ),
)
"""The stack-wide rules."""
