"""Hardening policy: the rules of the project's hardening guide as pure functions.

Shared by the offline render and the Pulumi CrossGuard policy pack (``policy/``), so a rule
is written once. This package imports neither Pulumi nor a Kubernetes SDK; the schema
check (:mod:`hardened_k8s.policy.schema`, needs ``kubernetes-validate``) is imported on
its own.

Public API::

    evaluate(objs, *, production, exemptions=()) -> Report
    format_report(report) -> str
    Exemption                      # one entry of stack config policyExemptions
    RULES, RULES_BY_ID             # the registry
    schema.validate_objects(objs, kubernetes_version) -> list[SchemaError]
"""

from .engine import ExemptedViolation, Report, Violation, evaluate, format_report, run_rule
from .exemptions import EXEMPTION_LIST, Exemption
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
    "StackRule",
    "Violation",
    "evaluate",
    "format_report",
    "run_rule",
]
