"""``docs/rules.md``: every hardening rule, generated from the rule registry.

Each rule's id, title, what it checks (its message), the objects it applies to, the security
profiles and stacks it runs for, whether a violation is mandatory or advisory, the fix, and the
stack-file entry that exempts it, all read from
:data:`hardened_k8s_rules.policy.rules.RULES`. ``make docs`` writes the file; ``make lint``
and a unit test fail when it differs from what this module generates, so nobody edits it by
hand and it never falls behind the registry.

    venv/bin/python scripts/rules_reference.py > docs/rules.md
"""

from __future__ import annotations

import sys

from hardened_k8s_rules.policy.rules import RULES, ObjectRule, Rule
from hardened_k8s_rules.profiles import PROFILES

HEADER = """\
<!-- Generated from the rule registry by scripts/rules_reference.py (make docs); do not edit. -->
# Hardening rules

Every rule of `hardened_k8s_rules.policy.rules.RULES`, in id order: {count} rules, {mandatory}
mandatory and {advisory} advisory. `PSS-*` are the Pod Security Standards `restricted`
controls, `HARD-*` the project's hardening controls (kube-score, Polaris, kube-linter,
Kubescape). A **mandatory** violation fails the offline render (exit 1) and `pulumi preview`
with the policy pack; an **advisory** one is reported and fails nothing.

A rule is waived only by name, for one resource, with a reason, in the stack file's
`policyExemptions` (`namespace` optional; every report shows the exemption and its reason):

```yaml
  store-inventory:policyExemptions:
    - rule: HARD-001
      resource: Deployment/store-inventory
      reason: writes its cache under /app until the cache directory is configurable
```
"""


def _applies_to(rule: Rule) -> str:
    if isinstance(rule, ObjectRule):
        return ", ".join(f"`{kind}`" for kind in sorted(rule.kinds))
    return "the whole stack (across objects)"


def _profiles(rule: Rule) -> str:
    if set(rule.profiles) == set(PROFILES):
        return "every profile"
    return ", ".join(f"`{profile}`" for profile in PROFILES if profile in rule.profiles)


def rule_section(rule: Rule) -> str:
    """The reference entry of one rule."""
    stacks = "production stacks only" if rule.production_only else "every stack"
    return "\n".join(
        [
            f"## {rule.id}: {rule.title}",
            "",
            f"- **Severity:** {rule.severity}",
            f"- **Checks:** {rule.message}",
            f"- **Applies to:** {_applies_to(rule)}; {stacks}; {_profiles(rule)}",
            f"- **Fix:** {rule.fix}",
            f"- **Exempt:** `rule: {rule.id}` in `policyExemptions`, with the `resource` and a `reason`",
            "",
        ]
    )


def rules_markdown() -> str:
    """The whole of ``docs/rules.md``."""
    mandatory = sum(rule.severity == "mandatory" for rule in RULES)
    header = HEADER.format(count=len(RULES), mandatory=mandatory, advisory=len(RULES) - mandatory)
    return header + "\n" + "\n".join(rule_section(rule) for rule in RULES)


if __name__ == "__main__":
    sys.stdout.write(rules_markdown())
