"""Typed stack configuration: what a stack file may say, its secure defaults, and its errors.

The models speak the stack file's language (camelCase keys) and are strict: an unknown or
misspelt key is an error, never silently ignored. They import neither Pulumi nor the
Kubernetes SDK, so they can be validated and tested on their own. Turning Pulumi config
into these models, with secrets kept as Pulumi secrets, is ``hardened_k8s.stack_config``.
"""

from __future__ import annotations

import re
import typing
from types import UnionType
from typing import Annotated, Literal, Self, Union

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from hardened_k8s_rules.controls import MIN_RUN_AS_ID
from hardened_k8s_rules.exemptions import Exemption
from hardened_k8s_rules.models import StrictModel
from hardened_k8s_rules.profiles import DEFAULT_PROFILE, SecurityProfile

from . import formats
from .quantities import parse_quantity, positive_quantity

DEFAULT_REGISTRY = "quay.io/ecosystem-appeng"
"""Registry organisation every image is pushed to and pulled from."""

DEFAULT_RUN_AS_USER = 10001
"""UID (and GID) workloads run as; the Containerfiles' last ``USER`` is the same number."""

DEFAULT_DATABASE_RUN_AS_USER = 10002
"""UID (and GID) of the ``postgres`` user in ``database/Containerfile``."""

DEFAULT_KUBERNETES_VERSION = "1.31"
"""Kubernetes minor version the stacks target (Pod Security Admission version pin, schemas)."""

SUPPORTED_KUBERNETES_VERSIONS = tuple(f"1.{minor}" for minor in range(25, 38))
"""Minor versions ``kubernetesVersion`` may name: those the render's schemas cover (1.25-1.37).

Kept here, not asked of ``kubernetes-validate``, so that a deploy-only install checks a stack
without the render extra; a test keeps it equal to the schemas the extra ships.
"""

DNS_1035_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
"""A Kubernetes label value: at most 63 characters, alphanumeric at both ends."""
IMAGE_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
"""An OCI image tag."""
RESERVED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
"""Namespaces the cluster owns: no PSA labels or default deny of ours may be applied to them."""
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """Stack configuration that cannot be deployed.

    ``problems`` holds ``(key path, message)`` pairs; ``str()`` shows one per line, each as
    ``services.api.autoscaling: minReplicas (5) is greater than maxReplicas (3); ...``.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        """``(key path, message)`` pairs, in the order they were found."""
        super().__init__("\n".join(f"{path}: {msg}" if path else msg for path, msg in problems))


class ConfigModel(StrictModel):
    """A strict model whose whole numbers are numbers: pydantic would read ``port: true`` as 1."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            union = typing.get_origin(annotation) in (Union, UnionType)
            whole = set(typing.get_args(annotation)) <= {int, type(None)} if union else annotation is int
            if whole:
                raise ValueError("is true or false, not a number; write a whole number such as 8080")
        return value


def _quantity(value: str | int | float) -> str:
    positive_quantity(value)
    return str(value)


def _quantity_type(value: object) -> object:
    # Before pydantic's union coerces it: true would become 1, a list three errors.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        shown = (
            "true or false" if isinstance(value, bool) else ("a map" if isinstance(value, dict) else "a list")
        )
        raise ValueError(f"is {shown}; a quantity is a number with an optional suffix, e.g. 500m or 256Mi")
    return value


Quantity = Annotated[str | int | float, BeforeValidator(_quantity_type), AfterValidator(_quantity)]
"""A Kubernetes resource quantity above zero, such as ``250m``, ``256Mi`` or ``1``; kept as written.

Zero is refused although the API server takes it for requests and limits: a zero limit is no
limit to the container runtime, and a zero request leaves the scheduler nothing to reserve and
an HPA nothing to compute utilisation from. A volume size of zero the API server refuses.
"""

DnsSubdomain = Annotated[str, AfterValidator(formats.dns_1123_subdomain)]
"""A DNS-1123 subdomain: the name of a Secret, an IngressClass or a StorageClass."""
Dns1123Label = Annotated[str, AfterValidator(formats.dns_1123_label)]
"""A DNS-1123 label: a namespace name."""
IngressHost = Annotated[str, AfterValidator(formats.ingress_host)]
"""An Ingress host: a DNS name, optionally ``*.`` and one (a wildcard host)."""
Registry = Annotated[str, AfterValidator(formats.registry)]
"""Where images are pushed: ``registry[:port][/org]``."""
Platform = Annotated[str, AfterValidator(formats.platform)]
"""A build platform BuildKit knows: ``linux/<arch>[/<variant>]``."""
ImageRepository = Annotated[str, AfterValidator(formats.repository)]
"""An image repository without tag or digest: ``registry[:port]/path``."""
ImageTag = Annotated[str, AfterValidator(formats.tag)]
"""An image tag."""
BuildStage = Annotated[str, AfterValidator(formats.build_stage)]
"""A Containerfile stage name."""
PostgresName = Annotated[str, AfterValidator(formats.postgres_identifier)]
"""A PostgreSQL database or role name."""


def _dns_label(value: str) -> str:
    if not DNS_1035_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a DNS-1035 label; use at most 63 lower-case letters, digits "
            "and '-', starting with a letter and ending with a letter or digit"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]


def _label_value(value: str) -> str:
    if not LABEL_VALUE_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Kubernetes label value; use at most 63 letters, digits, "
            "'-', '_' and '.', starting and ending with a letter or digit"
        )
    return value


LabelValue = Annotated[str, AfterValidator(_label_value)]
"""A value that ends up in a label (``app.kubernetes.io/component``, ``.../version``)."""


def _version(value: str) -> str:
    if not (IMAGE_TAG_RE.fullmatch(value) and LABEL_VALUE_RE.fullmatch(value)):
        suggestion = re.sub(r"[^A-Za-z0-9_.-]", "-", value).strip("-_.")[:63] or "0.1.0"
        raise ValueError(
            f"{value!r} is not both an image tag and a label value; use at most 63 letters, "
            f"digits, '-', '_' and '.', starting and ending with a letter or digit "
            f"(e.g. {suggestion!r})"
        )
    return value


Version = Annotated[str, AfterValidator(_version)]
"""A service version: the image's second tag and the ``app.kubernetes.io/version`` label."""

_COMMIT_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


def _commit(value: str) -> str:
    if not _COMMIT_RE.match(value):
        raise ValueError(
            f"{value!r} is not a full commit id; images are tagged sha-<commit> with all 40 hex "
            "digits (a 7-digit prefix can name two commits): use `git rev-parse HEAD`"
        )
    return value


Commit = Annotated[str, AfterValidator(_commit)]
"""A full git commit id: 40 lowercase hex digits (64 in a SHA-256 repository)."""


def scratch_volume_name(path: str) -> str:
    """Volume name of a writable path: ``/tmp`` -> ``tmp``, ``/var/cache/app`` -> ``var-cache-app``."""
    return path.strip("/").replace("/", "-").replace("_", "-").lower() or "root"


def _env_name(value: str) -> str:
    if not _ENV_NAME_RE.fullmatch(value):
        raise ValueError(
            f'"{value}" is not an environment variable name; use letters, digits and "_", not '
            "starting with a digit (e.g. LOG_LEVEL)"
        )
    return value


EnvVarName = Annotated[str, AfterValidator(_env_name)]
"""An environment variable name: a letter or ``_``, then letters, digits and ``_``."""


def _writable_paths(value: list[str]) -> list[str]:
    """Absolute paths whose volume names are valid and distinct (Kubernetes refuses others)."""
    problems = []
    seen: dict[str, str] = {}
    for path in value:
        name = scratch_volume_name(path)
        if not path.startswith("/"):
            problems.append(f"{path!r} must be an absolute path")
        elif path.strip("/") == "":
            problems.append(
                f"{path!r} would hide the whole root filesystem; name the directories to make writable"
            )
        elif not DNS_1123_LABEL_RE.fullmatch(name):
            problems.append(
                f"{path!r} gives the volume name {name!r}, which Kubernetes refuses (at most 63 "
                "lower-case letters, digits and '-'); use a path of letters, digits, '/', '-' and '_'"
            )
        elif name in seen:
            problems.append(
                f"{path!r} and {seen[name]!r} both give the volume name {name!r}; "
                "keep one of them or rename a directory"
            )
        seen.setdefault(name, path)
    if problems:
        raise ValueError("; ".join(problems))
    return value


WritablePaths = Annotated[list[str], AfterValidator(_writable_paths)]
"""Absolute paths made writable, each giving a distinct, valid volume name."""


ImageRef = Annotated[str, AfterValidator(formats.image_reference)]
"""An image reference: ``repo@sha256:<digest>``, or ``repo:tag`` where a tag is allowed."""


def is_pinned(ref: str | ImageSpec) -> bool:
    """True when an image reference carries a digest (a built image always does)."""
    if isinstance(ref, ImageSpec):
        return ref.pinned
    return "@sha256:" in ref


class ResourceAmounts(ConfigModel):
    """CPU, memory and ephemeral storage of one container (requests or limits)."""

    cpu: Quantity = Field(description="CPU cores, e.g. 100m.")
    memory: Quantity = Field(description="Memory, e.g. 256Mi (binary suffixes).")
    ephemeral_storage: Quantity = Field(description="Node-local scratch space, e.g. 128Mi.")


class Resources(ConfigModel):
    """Requests and limits; every limit must be at least its request."""

    requests: ResourceAmounts = Field(
        default=ResourceAmounts(cpu="100m", memory="128Mi", ephemeral_storage="64Mi"),
        description="Scheduling guarantee. Default 100m CPU, 128Mi memory, 64Mi ephemeral.",
    )
    limits: ResourceAmounts = Field(
        default=ResourceAmounts(cpu="500m", memory="256Mi", ephemeral_storage="256Mi"),
        description="Hard ceiling. Default 500m CPU, 256Mi memory, 256Mi ephemeral.",
    )

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Self:
        for field in ("cpu", "memory", "ephemeral_storage"):
            request = getattr(self.requests, field)
            limit = getattr(self.limits, field)
            if parse_quantity(limit) < parse_quantity(request):
                key = to_camel(field)
                raise ValueError(
                    f"limits.{key} ({limit}) is below requests.{key} ({request}); "
                    f"raise limits.{key} or lower requests.{key}"
                )
        return self


class Autoscaling(ConfigModel):
    """HorizontalPodAutoscaler bounds and targets (autoscaling/v2, CPU and memory)."""

    min_replicas: int = Field(default=2, ge=1, description="Lowest replica count. Default 2.")
    max_replicas: int = Field(default=5, ge=1, description="Highest replica count. Default 5.")
    cpu_utilization: int = Field(
        default=70, ge=1, le=100, description="Target average CPU, % of requests. Default 70."
    )
    memory_utilization: int = Field(
        default=80, ge=1, le=100, description="Target average memory, % of requests. Default 80."
    )
    scale_down_stabilization_seconds: int = Field(
        default=300,
        ge=0,
        le=3600,
        description="How long load must stay low before scaling down. Default 300 (slow).",
    )

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) is greater than maxReplicas "
                f"({self.max_replicas}); lower minReplicas or raise maxReplicas"
            )
        return self


HttpPath = Annotated[str, AfterValidator(formats.http_path)]


class Probes(ConfigModel):
    """Health endpoints. Readiness and liveness are kept different on purpose: liveness only
    asks "is the process alive" and tolerates a busy pod, readiness also asks "can I serve"."""

    readiness_path: HttpPath = Field(
        default="/ready", description="Readiness HTTP path (checks dependencies). Default /ready."
    )
    liveness_path: HttpPath = Field(
        default="/health", description="Liveness HTTP path (process only). Default /health."
    )
    startup_allowance_seconds: int = Field(
        default=60,
        ge=5,
        le=600,
        description="Time a slow starter gets before liveness applies. Default 60.",
    )

    @model_validator(mode="after")
    def _liveness_differs(self) -> Self:
        # Rule HARD-009 refuses the render otherwise: say so where the paths are written.
        if self.readiness_path == self.liveness_path:
            raise ValueError(
                f"readinessPath and livenessPath are both {self.readiness_path}; liveness must be a "
                "cheaper check than readiness (a busy pod is restarted otherwise): give livenessPath "
                "a shallow endpoint, e.g. /health"
            )
        return self


class ImageBuild(ConfigModel):
    """Build the image from source (a multi-stage Containerfile)."""

    context: str = Field(description="Build context directory, relative to the project.")
    containerfile: str = Field(default="Containerfile", description="Containerfile path inside the context.")
    target: BuildStage = Field(default="runtime", description="Stage to build. Default runtime.")
    args: dict[str, str] = Field(default_factory=dict, description="Extra build arguments.")


class ImageSpec(ConfigModel):
    """Where a service's image comes from: exactly one of ``build`` or ``ref``."""

    build: ImageBuild | None = Field(default=None, description="Build from source and push.")
    ref: ImageRef | None = Field(
        default=None,
        description="Pre-built image, pinned as repo@sha256:<digest> (a bare tag only outside production).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.build is None) == (self.ref is None):
            raise ValueError("set exactly one of build (context, containerfile, target) or ref")
        return self

    @property
    def pinned(self) -> bool:
        """True when the reference carries a digest (always true for built images)."""
        return self.ref is None or is_pinned(self.ref)


class SecurityOptOuts(ConfigModel):
    """Named exceptions to the hardened defaults. Each one is visible in a stack diff."""

    writable_root_filesystem: bool = Field(
        default=False, description="Mount the root filesystem read-write. Default false."
    )
    service_account_token: bool = Field(
        default=False,
        description="Mount the Kubernetes API token into the pod. Default false.",
    )


class Expose(ConfigModel):
    """Reach a service from outside the cluster: an Ingress with TLS, and a NetworkPolicy
    rule admitting the ingress controller's namespace (and nothing else from outside)."""

    host: IngressHost = Field(
        description="Public DNS name, e.g. mcp.example.com, or a wildcard *.example.com.",
    )
    tls_secret_name: DnsSubdomain = Field(description="Secret (type kubernetes.io/tls) with the certificate.")
    ingress_class_name: DnsSubdomain = Field(default="nginx", description="IngressClass. Default nginx.")
    controller_namespace: Dns1123Label = Field(
        default="ingress-nginx", description="Namespace of the ingress controller. Default ingress-nginx."
    )


class ServiceSpec(ConfigModel):
    """One HTTP service: image, port, sizing, scaling, health and allowed traffic."""

    image: ImageSpec = Field(description="Build or pre-built reference.")
    port: int = Field(ge=1, le=65535, description="Container port, named 'http'.")
    component: LabelValue = Field(
        default="server", description="app.kubernetes.io/component label. Default server."
    )
    version: Version = Field(
        default="0.1.0", description="Service version (image tag, version label). Default 0.1.0."
    )
    env: dict[EnvVarName, str] = Field(
        default_factory=dict, description="Plain environment; never put secrets here."
    )
    resources: Resources = Field(default_factory=Resources, description="Requests and limits.")
    replicas: int | None = Field(default=None, ge=1, description="Fixed replica count; excludes autoscaling.")
    autoscaling: Autoscaling | None = Field(default=None, description="HPA bounds; excludes replicas.")
    probes: Probes = Field(default_factory=Probes, description="Health endpoints.")
    ingress_from: list[DnsLabel] = Field(
        default_factory=list, description="Services allowed to call this one. Default none."
    )
    egress_to: list[DnsLabel] = Field(
        default_factory=list,
        description="Services (or the database) this one may call. Default none.",
    )
    run_as_user: int = Field(
        default=DEFAULT_RUN_AS_USER,
        ge=MIN_RUN_AS_ID,
        description="UID and GID (>= 10000), matching the image USER.",
    )
    writable_paths: WritablePaths = Field(
        default_factory=lambda: ["/tmp"],
        description="Writable emptyDir mounts (in memory, size-limited). Default ['/tmp'].",
    )
    opt_outs: SecurityOptOuts = Field(
        default_factory=SecurityOptOuts, description="Named exceptions to the hardening."
    )
    expose: Expose | None = Field(default=None, description="Ingress with TLS. Default: in-cluster only.")
    bearer_auth: bool = Field(
        default=False,
        description="Require `Authorization: Bearer` with the stack secret authToken "
        "(mounted as a file, its path in AUTH_TOKEN_FILE).",
    )

    @model_validator(mode="after")
    def _replicas_or_autoscaling(self) -> Self:
        if self.replicas is not None and self.autoscaling is not None:
            raise ValueError("set either replicas or autoscaling, not both: an HPA owns the replica count")
        return self

    @property
    def min_replicas(self) -> int:
        """Fewest pods the service runs with: the fixed count, the HPA floor, or 1."""
        if self.autoscaling is not None:
            return self.autoscaling.min_replicas
        return self.replicas if self.replicas is not None else 1


def _statefulset_name(value: str) -> str:
    # The StatefulSet controller labels each pod controller-revision-hash=<name>-<10-char
    # hash>; past 52 characters that label is invalid and no pod is ever created.
    if len(value) > 52:
        raise ValueError(f"{value!r} is {len(value)} characters; a StatefulSet name may have at most 52")
    return value


TLS_SSLMODES = ("require", "verify-ca", "verify-full")
"""libpq sslmodes that connect only over TLS."""

NO_TLS_SSLMODE = (
    "needs TLS, and the database serves none without tlsSecretName, so every connection would be "
    "refused; set database.tlsSecretName to a kubernetes.io/tls Secret whose certificate names the "
    "database's Service (with ca.crt, as cert-manager writes it), or use prefer, allow or disable "
    "(docs/database-day-two.md)"
)
"""Why a TLS-only ``sslmode`` without a server certificate is refused, and the fix."""


class DatabaseSpec(ConfigModel):
    """PostgreSQL in a StatefulSet, reachable in-cluster at ``<name>:5432``."""

    name: Annotated[DnsLabel, AfterValidator(_statefulset_name)] = Field(
        default="postgresql", description="Service name the clients connect to (at most 52 characters)."
    )
    image: ImageSpec = Field(
        description="build (a Containerfile, like a service) or ref repo@sha256:<digest>; a plain "
        "string is a ref."
    )
    database: PostgresName = Field(default="app", description="Database created at first start.")
    user: PostgresName = Field(default="app", description="Owner role of the database.")
    storage: Quantity = Field(default="1Gi", description="Volume size per replica. Default 1Gi.")
    storage_class_name: DnsSubdomain | None = Field(
        default=None, description="StorageClass; default: the cluster's default class."
    )
    resources: Resources = Field(
        default_factory=Resources, description="Requests and limits of the postgres container."
    )
    version: LabelValue = Field(default="16", description="PostgreSQL version (version label).")
    run_as_user: int = Field(
        default=DEFAULT_DATABASE_RUN_AS_USER,
        ge=MIN_RUN_AS_ID,
        description="UID/GID (>= 10000) of the postgres user in the image. Default 10002.",
    )
    protect: bool = Field(
        default=True,
        description="Pulumi protect + retainOnDelete on the data-bearing objects. Default true.",
    )
    tls_secret_name: DnsSubdomain | None = Field(
        default=None,
        description="kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt) the database serves TLS "
        "with; its certificate must name the Service (name). Clients get ca.crt. Default: no TLS.",
    )
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = Field(
        default=None,
        description="libpq sslmode in the clients' DATABASE_URL; require, verify-ca and verify-full "
        "need tlsSecretName. Default: unset (libpq's prefer).",
    )

    @field_validator("sslmode")
    @classmethod
    def _servable_sslmode(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Without a certificate the image starts PostgreSQL with ssl off: libpq would refuse
        # every connection in these modes, and no client pod would ever become ready.
        if value in TLS_SSLMODES and not info.data.get("tls_secret_name"):
            raise ValueError(f"{value!r} {NO_TLS_SSLMODE}")
        return value

    @field_validator("image", mode="before")
    @classmethod
    def _plain_ref(cls, value: object) -> object:
        return {"ref": value} if isinstance(value, str) else value


def _supported_kubernetes_version(value: str) -> str:
    supported = SUPPORTED_KUBERNETES_VERSIONS
    if value in supported:
        return value
    # YAML reads an unquoted 1.30 as the number 1.3: the engine hands over "1.3".
    padded = f"{value}0"
    if re.fullmatch(r"1\.[0-9]", value) and padded in supported:
        raise ValueError(
            f"is {value}, which YAML made of the number {padded}; quote the version in the stack "
            f'file: kubernetesVersion: "{padded}"'
        )
    raise ValueError(
        f'"{value}" is not a Kubernetes version this library supports; use one of '
        f'{supported[0]} to {supported[-1]} as "major.minor", quoted in YAML (e.g. "1.31")'
    )


def _not_reserved(value: str) -> str:
    if value in RESERVED_NAMESPACES:
        raise ValueError(
            f"{value!r} is reserved for the cluster itself; use a namespace of your own, "
            "e.g. the project's name"
        )
    return value


class StackSettings(ConfigModel):
    """The keys every check reads: the program, the offline render and the policy pack.

    :class:`StackConfig` extends it, so each of these keys is read by one definition,
    wherever it is read.
    """

    kubernetes_version: Annotated[str, AfterValidator(_supported_kubernetes_version)] = Field(
        default=DEFAULT_KUBERNETES_VERSION,
        description="Target minor version, e.g. 1.31. Default 1.31.",
    )
    production: bool = Field(
        default=False,
        description="Production rules: digest-pinned refs, >=2 replicas, topology spread.",
    )
    policy_exemptions: list[Exemption] = Field(
        default_factory=list,
        description="Hardening rules waived for named objects, each with a reason. Default none.",
    )
    security_profile: SecurityProfile = Field(
        default=DEFAULT_PROFILE,
        description="restricted (default): Pod Security Standards restricted with fixed ids of "
        "10000 or more; openshift-restricted-v2: OpenShift's SCC assigns the ids, DNS is "
        "openshift-dns.",
    )


class StackConfig(StackSettings):
    """Everything one stack (environment) of the project is configured with."""

    namespace: Annotated[Dns1123Label, AfterValidator(_not_reserved)] = Field(
        description="Namespace all workloads run in."
    )
    registry: Registry = Field(default=DEFAULT_REGISTRY, description="Image registry organisation.")
    kube_context: str | None = Field(default=None, description="kubeconfig context of the explicit provider.")
    part_of: DnsLabel = Field(default="app", description="app.kubernetes.io/part-of label of every object.")
    platform: Platform = Field(
        default="linux/amd64",
        description="Image build platform, linux/<arch>[/<variant>]. Default linux/amd64.",
    )
    registry_username: str | None = Field(
        default=None,
        description="Registry login; its password is the secret registryPassword. Default: "
        "the build machine's own docker login.",
    )
    source_url: str = Field(default="", description="Source repository URL (OCI label).")
    image_revision: Commit | None = Field(
        default=None,
        description="Git commit the images are built from, in full (`git rev-parse HEAD`: 40 hex "
        "digits). Default: the checkout's HEAD.",
    )
    services: dict[DnsLabel, ServiceSpec] = Field(description="Services by name.")
    database: DatabaseSpec | None = Field(default=None, description="PostgreSQL, if any.")
