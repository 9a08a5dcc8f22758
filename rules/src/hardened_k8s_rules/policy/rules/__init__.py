"""The hardening rules: one :class:`Rule` per control of the project's hardening guide.

:data:`RULES` is every rule, in id order, and the one entry point for "all rules";
:data:`RULES_BY_ID` keys them by id. They are declared by concern, the way kube-linter and
Polaris group their checks:

* :mod:`~.pod_security`: the Pod Security Standards, ``PSS-001``..``PSS-018``;
* :mod:`~.workload`: the pod and its containers beyond PSS (read-only root, tokens, ids,
  resources, probes, images, secrets in the environment);
* :mod:`~.network`: default deny, NetworkPolicy coverage, narrow peers, DNS;
* :mod:`~.availability`: PodDisruptionBudgets, HPAs, rollouts, shutdown, spread;
* :mod:`~.stack`: stack-wide controls (namespaces, ServiceAccounts, one shared selector,
  labels, secrets in ConfigMaps);

with the declaration machinery (:class:`Rule`, :class:`ObjectRule`, :class:`StackRule`) and
the registry in :mod:`~.registry`.

Ids are stable and never reused, and listed in :data:`hardened_k8s_rules.controls.RULE_IDS`:
``PSS-0xx`` are the Pod Security Standards controls (baseline ``PSS-001``..``PSS-012``,
restricted ``PSS-013``..``PSS-018``), mirroring the checks of the Kubernetes
``pod-security-admission`` library; ``HARD-0xx`` are the controls scanners such as
kube-score, Polaris, kube-linter and Kubescape flag by default.

Severity: ``mandatory`` fails the render and blocks ``pulumi preview``/``up``; ``advisory``
is reported but does not fail. Every PSS control and every security control of the guide
is mandatory, and so is each availability control the components are expected to meet
out of the box (PDB, HPA, rolling update, graceful shutdown, shared selector); a mandatory
finding can only be waived by a named exemption with a reason. Advisory are the judgement
calls: a startup probe (only slow starters need one), ``minReadySeconds``, ``emptyDir``
size limits, having DNS egress to kube-dns at all, the recommended labels, and topology
spread in production (soft placement depends on the cluster's nodes and zones). Where DNS
egress goes is mandatory: port 53 only to the cluster DNS.
Production-only rules (``production_only=True``) run only when the engine is told the
stack is a production stack: at least two replicas and real image digests (mandatory) and
topology spread.

Every check is a pure function of its input and imports neither Pulumi nor a Kubernetes
client, so the offline render and the CrossGuard policy pack run exactly the same code.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import availability, network, pod_security, stack, workload
from .registry import ObjectCheck, ObjectRule, Rule, Severity, StackCheck, StackRule, build_registry
from .workload import made_up_digest

RULES: tuple[Rule, ...] = build_registry(
    pod_security.RULES, workload.RULES, network.RULES, availability.RULES, stack.RULES
)
"""Every rule, in id order."""

RULES_BY_ID: Mapping[str, Rule] = {rule.id: rule for rule in RULES}
"""Rules keyed by id."""

__all__ = [
    "RULES",
    "RULES_BY_ID",
    "ObjectCheck",
    "ObjectRule",
    "Rule",
    "Severity",
    "StackCheck",
    "StackRule",
    "made_up_digest",
]
