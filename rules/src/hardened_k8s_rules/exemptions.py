"""Named, reasoned opt-outs from a rule for one resource (stack config ``policyExemptions``).

A mandatory finding can only be waived here, in the stack file, so that every insecure
choice shows up in review with the reason next to it::

    policyExemptions:
      - rule: HARD-001
        resource: StatefulSet/postgres
        namespace: store          # optional: any namespace when omitted
        reason: PostgreSQL writes its socket under /var/run/postgresql; tracked upstream.

Shared by the stack configuration (:mod:`hardened_k8s.config`) and the policy
(:mod:`hardened_k8s_rules.policy`, which re-exports it) and importing neither: rule ids are
checked against :data:`hardened_k8s_rules.controls.RULE_IDS`.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, TypeAdapter

from .controls import RULE_IDS
from .models import StrictModel

_RESOURCE_RE = re.compile(r"^[A-Z][A-Za-z0-9]*/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def _known_rule(value: str) -> str:
    if value not in RULE_IDS:
        raise ValueError(
            f"rule: {value!r} is not a known rule id; use one of {', '.join(RULE_IDS)} "
            "(see hardened_k8s_rules.policy.rules)"
        )
    return value


def _resource_ref(value: str) -> str:
    if not _RESOURCE_RE.match(value):
        raise ValueError(
            f"resource: {value!r} is not '<Kind>/<name>'; write it as the report names it, "
            "e.g. 'Deployment/store-api' (put the namespace in 'namespace')"
        )
    return value


def _reason_given(value: str) -> str:
    if not value.strip():
        raise ValueError(
            "reason: is missing or empty; say why the rule cannot apply to this resource and "
            "what replaces the control (it is shown in every report)"
        )
    return value


class Exemption(StrictModel):
    """One rule waived for one resource, with the reason shown in every report."""

    rule: Annotated[str, AfterValidator(_known_rule)] = Field(
        description="Id of the rule to waive, e.g. HARD-001."
    )
    resource: Annotated[str, AfterValidator(_resource_ref)] = Field(
        description="'<Kind>/<name>' of the object the rule is waived for."
    )
    namespace: str | None = Field(
        default=None, description="Namespace of the object; any namespace when omitted."
    )
    # Defaulted so that a missing reason gets the same actionable message as an empty one.
    reason: Annotated[str, AfterValidator(_reason_given)] = Field(
        default="",
        validate_default=True,
        description="Why the rule cannot apply and what replaces the control. Required.",
    )

    def matches(self, rule_id: str, kind: str, name: str, namespace: str) -> bool:
        """Whether this exemption covers a finding of ``rule_id`` on that object."""
        resource_kind, _, resource_name = self.resource.partition("/")
        return (
            self.rule == rule_id
            and resource_kind == kind
            and resource_name == name
            and (self.namespace is None or self.namespace == namespace)
        )


EXEMPTION_LIST: TypeAdapter[list[Exemption]] = TypeAdapter(list[Exemption])
"""Validates a whole ``policyExemptions`` list: ``EXEMPTION_LIST.validate_python(raw)``."""
