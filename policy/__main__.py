"""Pulumi CrossGuard policy pack: the project's hardening rules (see README.md)."""

from crossguard import PACK_NAME, build_policies
from pulumi_policy import PolicyPack

PolicyPack(
    name=PACK_NAME,
    policies=build_policies(),
    description="Pod Security Standards restricted plus the project's hardening controls.",
)
