"""The security profile a stack targets, and what each profile fixes about the cluster.

* ``restricted`` (default): any Kubernetes cluster enforcing the Pod Security Standards
  ``restricted`` profile. Pods run as fixed UIDs/GIDs of 10000 or more that match the
  images' ``USER``, and names resolve through kube-dns in ``kube-system``.
* ``openshift-restricted-v2``: OpenShift's default SecurityContextConstraints. The SCC
  admission plugin assigns each pod a UID from the namespace's range (and the same value as
  ``fsGroup``), so pods must not fix ``runAsUser``, ``runAsGroup`` or ``fsGroup``: a fixed
  id outside the range is refused. The process then runs as that arbitrary UID with group 0,
  which is why the images keep their code root-owned and world-readable and create what
  they write under a directory they own. Names resolve through the DNS operator's pods in
  ``openshift-dns``, which listen on 5353 behind the ``dns-default`` Service's port 53.

This module imports nothing but the standard library: the configuration models, the
components and the policy rules all read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

SecurityProfile = Literal["restricted", "openshift-restricted-v2"]
"""The profiles a stack can target (``securityProfile`` in the stack file)."""

PROFILES: tuple[SecurityProfile, ...] = get_args(SecurityProfile)
"""Every profile, ``restricted`` first."""
DEFAULT_PROFILE: SecurityProfile = "restricted"
"""The profile of a stack that names none."""
OPENSHIFT: SecurityProfile = "openshift-restricted-v2"
"""OpenShift's default SecurityContextConstraints."""


@dataclass(frozen=True)
class ClusterDns:
    """Where a profile's cluster DNS runs: the pods a DNS egress rule must name, and their ports."""

    namespace: str
    """Value of the namespace's ``kubernetes.io/metadata.name`` label."""
    pod_labels: Mapping[str, str]
    """Labels of the DNS pods in that namespace."""
    ports: tuple[int, ...]
    """Ports of the DNS pods themselves (a NetworkPolicy sees traffic after the Service's DNAT)."""


CLUSTER_DNS: Mapping[SecurityProfile, ClusterDns] = {
    "restricted": ClusterDns("kube-system", {"k8s-app": "kube-dns"}, (53,)),
    "openshift-restricted-v2": ClusterDns(
        "openshift-dns", {"dns.operator.openshift.io/daemonset-dns": "default"}, (5353,)
    ),
}
"""The cluster DNS of each profile (CoreDNS keeps kube-dns's label on Kubernetes)."""


def assigns_ids(profile: SecurityProfile) -> bool:
    """Whether the platform assigns pods their UID, GID and fsGroup (the pod must not set them)."""
    return profile == OPENSHIFT
