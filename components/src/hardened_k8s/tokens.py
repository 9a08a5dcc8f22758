"""Type tokens of the components: ``hardened-k8s:index:<Component>``, as the package's schema
names them, with an alias of the token each component had before 0.2.0 so that stacks
deployed with it keep their URNs (and their children's)."""

from __future__ import annotations

import pulumi

PACKAGE = "hardened-k8s"
"""Name of the Pulumi package (the component provider's name, the tokens' first part)."""


def type_token(component: str) -> str:
    """``hardened-k8s:index:<component>``."""
    return f"{PACKAGE}:index:{component}"


def with_former_type(opts: pulumi.ResourceOptions | None, former: str) -> pulumi.ResourceOptions:
    """``opts`` plus an alias of the component's former type token (``hardened-k8s:workload:...``)."""
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=former)]))
