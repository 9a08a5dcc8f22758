"""How a hardening rule is declared, and the registry that puts every rule in one place.

Two kinds of rule:

* :class:`ObjectRule`: ``check(obj) -> list[str]``, problems found in one object, each
  starting with the field path it is about
  (``spec.template.spec.containers[api].securityContext.allowPrivilegeEscalation: ...``).
* :class:`StackRule`: ``check(stack) -> list[(obj, problem)]``, cross-object controls
  (NetworkPolicy coverage, PDB/HPA consistency, one shared selector, secrets in ConfigMaps)
  over a :class:`~hardened_k8s_rules.policy.index.StackIndex`, built once per evaluation.

:func:`build_registry` assembles the rules of every concern module into the registry
(:data:`hardened_k8s_rules.policy.rules.RULES`), in the order of
:data:`hardened_k8s_rules.controls.RULE_IDS`, and refuses a repeated, unlisted or missing id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from ...controls import RULE_IDS
from ...profiles import PROFILES, SecurityProfile
from ..index import StackIndex
from ..objects import POD_BEARING_KINDS, K8sObject, PodTemplate, pod_template

Severity = Literal["mandatory", "advisory"]
ObjectCheck = Callable[[K8sObject], list[str]]
StackCheck = Callable[[StackIndex], list[tuple[K8sObject, str]]]
PodCheck = Callable[[PodTemplate], list[str]]

PODS = POD_BEARING_KINDS
"""The kinds a pod rule (:func:`pod_check`) applies to."""


@dataclass(frozen=True, kw_only=True)
class Rule:
    """A hardening control: what it asks, why, and how to fix a violation."""

    id: str
    """Rule id (``PSS-*`` or ``HARD-*``), listed in ``controls.RULE_IDS``."""
    severity: Severity
    """``mandatory`` (a violation fails the render and the preview) or ``advisory``."""
    title: str
    """What the control asks for, in a few words."""
    message: str
    """Why the control matters, one or two sentences."""
    fix: str
    """What to change, in the components' or the stack config's terms."""
    production_only: bool = False
    """Evaluated only for production stacks. Default false."""
    profiles: frozenset[SecurityProfile] = frozenset(PROFILES)
    """Security profiles (``securityProfile``) the rule is evaluated for; default all."""


@dataclass(frozen=True, kw_only=True)
class ObjectRule(Rule):
    """A control decided by one object alone."""

    kinds: frozenset[str]
    """Kinds the check applies to; others are skipped."""
    check: ObjectCheck = field(repr=False)
    """Problems found in one object, each starting with its field path."""


@dataclass(frozen=True, kw_only=True)
class StackRule(Rule):
    """A control decided across every object of a stack.

    ``check`` gets a :class:`~hardened_k8s_rules.policy.index.StackIndex`: the objects (it is a
    ``Sequence`` of them) and lookups shared by every stack rule of one evaluation.
    """

    check: StackCheck = field(repr=False)
    """``(object, problem)`` pairs found across the stack."""


def pod_check(body: PodCheck) -> ObjectCheck:
    """Adapt a check of a pod template to an object check (non-pod kinds pass)."""

    def check(obj: K8sObject) -> list[str]:
        pod = pod_template(obj)
        return body(pod) if pod is not None else []

    return check


def build_registry(*groups: Iterable[Rule]) -> tuple[Rule, ...]:
    """Every rule of ``groups`` in the order of :data:`~hardened_k8s_rules.controls.RULE_IDS`.

    Raises ``ValueError`` when an id is declared twice, is not in ``RULE_IDS`` (the id list
    stack configs validate exemptions against) or when an id there has no rule.
    """
    by_id: dict[str, Rule] = {}
    for rule in (rule for group in groups for rule in group):
        if rule.id in by_id:
            raise ValueError(f"rule {rule.id} is declared twice; give each control its own id")
        if rule.id not in RULE_IDS:
            raise ValueError(
                f"rule {rule.id} is not in hardened_k8s_rules.controls.RULE_IDS; add its id there "
                "(ids are never reused) so that stack configs can name it in policyExemptions"
            )
        by_id[rule.id] = rule
    missing = [rule_id for rule_id in RULE_IDS if rule_id not in by_id]
    if missing:
        raise ValueError(
            f"no rule declares {', '.join(missing)}; declare each in the concern module of "
            "hardened_k8s_rules.policy.rules it belongs to"
        )
    return tuple(by_id[rule_id] for rule_id in RULE_IDS)
