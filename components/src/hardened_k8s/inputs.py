"""Input types shared by the components' Args: sizing, health, scaling, peers, exposure.

Every type is a ``TypedDict``, as the Args of each component are: a Python program writes a
dict literal or calls the type (``ProbesArgs(readiness_path="/ready")``), mypy checks the
keys, and the SDK's component-provider analyzer infers the package schema from the same
annotations (field docstrings become its descriptions).

A field typed ``pulumi.Input[...]`` takes a plain value or an ``Output``; a plain field
(``int``, ``bool``, ``str`` without ``Input``) decides which objects, volumes or names exist,
so it must be known when the component is constructed. Defaults are the stack file's
defaults (:mod:`hardened_k8s.config`) and are stated on each field.

This module must not use ``from __future__ import annotations``: the analyzer reads the
annotations as objects. A long field docstring is written as adjacent string literals (one
string to Python and the analyzer), so the schema's descriptions carry no indentation.
"""

from collections.abc import Mapping
from enum import StrEnum
from typing import Required, TypedDict

import pulumi


class ResourceAmountsArgs(TypedDict, total=False):
    """CPU, memory and ephemeral storage of one container: its requests or its limits."""

    cpu: pulumi.Input[str]
    """CPU as a Kubernetes quantity, e.g. ``250m``. Default: ``100m`` requested, ``500m`` limit."""
    memory: pulumi.Input[str]
    """Memory as a Kubernetes quantity, e.g. ``256Mi``. Default: ``128Mi`` requested, ``256Mi`` limit."""
    ephemeral_storage: pulumi.Input[str]
    """Node-local scratch space, e.g. ``128Mi``. Default: ``64Mi`` requested, ``256Mi`` limit."""


class ResourcesArgs(TypedDict, total=False):
    """Requests and limits of a container; every limit must be at least its request.

    A side or an amount left out keeps its default, so ``{"limits": {"memory": "512Mi"}}``
    changes one number.
    """

    requests: ResourceAmountsArgs
    """What the scheduler reserves. Default: ``100m`` CPU, ``128Mi`` memory, ``64Mi`` ephemeral storage."""
    limits: ResourceAmountsArgs
    """Hard ceiling. Default: ``500m`` CPU, ``256Mi`` memory, ``256Mi`` ephemeral storage."""


class ProbesArgs(TypedDict, total=False):
    """HTTP health endpoints on the named port ``http``.

    Readiness and liveness differ on purpose: liveness asks only "is the process alive" and
    tolerates a busy pod; readiness also asks "can I serve" (dependencies included).
    """

    readiness_path: pulumi.Input[str]
    """Readiness path (checks dependencies; 10 s period, 3 failures). Default: ``/ready``."""
    liveness_path: pulumi.Input[str]
    """Liveness and startup path (process only; 20 s period, 6 failures). Default: ``/health``."""
    startup_allowance_seconds: int
    """Time a slow starter gets before liveness applies, 5 to 600. Default: ``60``."""


class AutoscalingArgs(TypedDict, total=False):
    """A HorizontalPodAutoscaler (autoscaling/v2) on CPU and memory utilisation.

    Scale-up is quick (double, or +2 pods, per 30 s); scale-down waits
    ``scale_down_stabilization_seconds`` and sheds at most 25 % a minute.
    """

    min_replicas: int
    """Fewest pods, 1 or more (at most ``max_replicas``). Default: ``2``."""
    max_replicas: int
    """Most pods; above 1 a PodDisruptionBudget is added. Default: ``5``."""
    cpu_utilization: pulumi.Input[int]
    """Target average CPU, percent of requests (1-100). Default: ``70``."""
    memory_utilization: pulumi.Input[int]
    """Target average memory, percent of requests (1-100). Default: ``80``."""
    scale_down_stabilization_seconds: pulumi.Input[int]
    """How long load must stay low before pods are removed, 0-3600. Default: ``300``."""


class PeerArgs(TypedDict):
    """A workload on the other side of an allowed connection: its pods' labels and its port.

    A :class:`~hardened_k8s.workload.HardenedService` gives both as its ``selector`` output
    and the port it was given.
    """

    selector: pulumi.Input[Mapping[str, pulumi.Input[str]]]
    """Labels selecting the peer's pods (in the same namespace). Required."""
    port: pulumi.Input[int]
    """TCP port connections go to (the receiving pod's port). Required."""


class SecretFileArgs(TypedDict):
    """One key of a Kubernetes Secret, mounted read-only as a file.

    The container gets the file's path (``<NAME>_FILE``), never the value.
    """

    secret_name: pulumi.Input[str]
    """Name of the Secret, in the workload's namespace. Required."""
    key: str
    """Key of the Secret to mount; also the file's name. Required."""


class ExposeArgs(TypedDict, total=False):
    """Reach a service from outside the cluster: an Ingress with TLS, and a NetworkPolicy rule
    admitting the ingress controller's namespace (and nothing else from outside)."""

    host: Required[str]
    """Public DNS name, e.g. ``mcp.example.com``. Required."""
    tls_secret_name: Required[pulumi.Input[str]]
    """Secret (type ``kubernetes.io/tls``) holding the certificate. Required."""
    ingress_class_name: pulumi.Input[str]
    """IngressClass of the Ingress. Default: ``nginx``."""
    controller_namespace: str
    """Namespace of the ingress controller, the only one admitted from outside. Default: ``ingress-nginx``."""


class SecurityOptOutsArgs(TypedDict, total=False):
    """Named exceptions to the hardened defaults; each is visible in a diff of the program."""

    writable_root_filesystem: bool
    """Mount the container's root filesystem read-write. Default: ``false``."""
    service_account_token: bool
    """Mount the Kubernetes API token into the pod. Default: ``false``."""


class SecurityProfile(StrEnum):
    """The platform the pods are made for (:mod:`hardened_k8s_rules.profiles`)."""

    RESTRICTED = "restricted"
    (
        "Pod Security Standards ``restricted`` on any cluster: fixed UIDs/GIDs of 10000 or more, DNS through"
        " kube-dns."
    )
    OPENSHIFT_RESTRICTED_V2 = "openshift-restricted-v2"
    (
        "OpenShift's ``restricted-v2`` SCC: the platform assigns UID, GID and fsGroup; DNS through "
        "``openshift-dns``."
    )


class SslMode(StrEnum):
    """libpq ``sslmode`` of the clients' ``DATABASE_URL``."""

    DISABLE = "disable"
    """Never use TLS."""
    ALLOW = "allow"
    """TLS only if the server insists."""
    PREFER = "prefer"
    """TLS when the server offers it (libpq's default)."""
    REQUIRE = "require"
    """TLS always, without checking the certificate."""
    VERIFY_CA = "verify-ca"
    """TLS with a certificate signed by a trusted CA."""
    VERIFY_FULL = "verify-full"
    """TLS with a trusted certificate naming the server."""
