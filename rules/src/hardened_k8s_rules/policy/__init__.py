"""Hardening policy: the rules of the project's hardening guide as pure functions.

Shared by the offline render and the Pulumi CrossGuard policy pack (``policy/``), so a rule
is written once. This package needs only the standard library and pydantic (for
:class:`Exemption`): it imports neither Pulumi nor a Kubernetes SDK nor the stack
configuration, so the policy pack installs no more than that. The OpenAPI schema check is
:mod:`hardened_k8s.schema`, in the ``hardened-k8s`` library.

Public API::

    evaluate(objs, *, production, exemptions=(), rules=RULES) -> Report
    format_report(report) -> str
    Exemption, EXEMPTION_LIST      # stack config policyExemptions (from hardened_k8s_rules.exemptions)
    RULES, RULES_BY_ID             # every rule (hardened_k8s_rules.policy.rules, split by concern)
    StackIndex                     # what a stack rule's check reads, built once per evaluation
"""

from ..exemptions import EXEMPTION_LIST, Exemption
from .engine import ExemptedViolation, Report, Violation, evaluate, format_report, run_rule
from .index import StackIndex
from .rules import RULES, RULES_BY_ID, ObjectRule, Rule, StackRule

__all__ = [
    "EXEMPTION_LIST",
    "RULES",
    "RULES_BY_ID",
    "ExemptedViolation",
    "Exemption",
    "ObjectRule",
    "Report",
    "Rule",
    "StackIndex",
    "StackRule",
    "Violation",
    "evaluate",
    "format_report",
    "run_rule",
]
