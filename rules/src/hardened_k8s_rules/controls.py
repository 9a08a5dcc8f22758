"""What the stack configuration and the hardening policy both need to know about the controls.

A neutral module: it imports nothing, so :mod:`hardened_k8s.config` can refuse an exemption
for an unknown rule or a UID below the policy's floor without loading the policy, and the
policy (:mod:`hardened_k8s_rules.policy`) depends on these values rather than on the config.
"""

from __future__ import annotations

# The ids are the contract with stack files (``policyExemptions``) and with the policy pack's
# config: stable and never reused. Listing them here, apart from the checks, is what lets the
# config validate an exemption without importing the rules; the rule registry refuses to load
# when its rules and this list disagree.
RULE_IDS: tuple[str, ...] = (
    *(f"PSS-{n:03d}" for n in range(1, 19)),
    *(f"HARD-{n:03d}" for n in range(1, 41)),
)
"""Id of every hardening rule, in report order: ``PSS-001``..``PSS-018`` (the Pod Security
Standards controls), then ``HARD-001``..``HARD-040`` (the project's hardening controls)."""

MIN_RUN_AS_ID = 10000
"""Lowest UID/GID a container may run as: lower ids belong to the node's own users and
system accounts, which a process escaping its container would then act as."""
