"""Recommended Kubernetes labels and the one selector every object of a workload shares."""

from __future__ import annotations

from dataclasses import dataclass

MANAGED_BY = "pulumi"
"""Value of ``app.kubernetes.io/managed-by`` on every object the components declare."""


@dataclass(frozen=True)
class Labels:
    """The ``app.kubernetes.io/*`` labels of one workload.

    ``selector`` (name + instance) is computed here once and reused by the Deployment,
    Service, PodDisruptionBudget, HPA target and every NetworkPolicy that names the workload;
    ``version`` stays out of it so that a release never orphans running pods.
    """

    name: str
    """``app.kubernetes.io/name``: the application, part of the selector."""
    instance: str
    """``app.kubernetes.io/instance``: this deployment of it, part of the selector."""
    version: str
    """``app.kubernetes.io/version``; kept out of the selector so a release keeps its pods."""
    component: str
    """``app.kubernetes.io/component``, e.g. ``server`` or ``database``."""
    part_of: str
    """``app.kubernetes.io/part-of``: the system the workload belongs to."""

    @property
    def selector(self) -> dict[str, str]:
        """Labels that select this workload's pods."""
        return {"app.kubernetes.io/name": self.name, "app.kubernetes.io/instance": self.instance}

    @property
    def all(self) -> dict[str, str]:
        """Every recommended label, for metadata of objects and pod templates."""
        return {
            **self.selector,
            "app.kubernetes.io/version": self.version,
            "app.kubernetes.io/component": self.component,
            "app.kubernetes.io/part-of": self.part_of,
            "app.kubernetes.io/managed-by": MANAGED_BY,
        }
