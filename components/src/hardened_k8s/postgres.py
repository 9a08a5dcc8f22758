"""PostgreSQL: a single-instance StatefulSet with its credentials, Services and allow-list.

No ``from __future__ import annotations`` here: the component-provider analyzer reads the
annotations of :class:`PostgreSQLArgs` and of the component's outputs as objects.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Required, TypedDict
from urllib.parse import quote

import pulumi
import pulumi_kubernetes as k8s

from hardened_k8s_rules.profiles import assigns_ids

from . import network, pod
from .arguments import ArgsCheck, default_of, profile_of, whole, with_defaults
from .config import (
    DEFAULT_KUBERNETES_VERSION,
    NO_TLS_SSLMODE,
    TLS_SSLMODES,
    DatabaseSpec,
    ImageRef,
    LabelValue,
    Resources,
    StackConfig,
    StackSettings,
)
from .inputs import PeerArgs, ResourcesArgs, SecurityProfile, SslMode
from .labels import Labels
from .tokens import type_token, with_former_type

PORT = 5432
"""Port PostgreSQL listens on, and its Services' port."""
PORT_NAME = "postgres"
"""Name of that port in the container and the Services."""
DATA_DIR = "/var/lib/postgresql/data"
"""Mount path of the data volume (``PGDATA`` lives below it)."""
URL_KEY = "DATABASE_URL"
"""Key of the connection-URL Secret; clients get it as a file, named by ``DATABASE_URL_FILE``."""
PASSWORD_KEY = "password"
"""Key of the server's password in the ``<name>-credentials`` Secret."""
PASSWORD_FILE_VAR = "POSTGRES_PASSWORD_FILE"
(
    "Variable naming the mounted password file; the image's entrypoint gives it to ``initdb --pwfile`` "
    "and applies it to the owner role on every start and whenever the file changes."
)
TLS_VOLUME = "tls"
"""Secret volume of the server's certificate and key, when ``tls_secret_name`` is given."""
TLS_DIR_VAR = "POSTGRES_TLS_DIR"
"""Variable naming the directory of ``tls.crt`` and ``tls.key``; the entrypoint turns TLS on."""
CA_SECRET_FILE = "DATABASE_CA"
"""The clients' secret-file name for the CA (``ca.crt`` of the TLS Secret): mounted at :data:`CA_PATH`."""
CA_KEY = "ca.crt"
"""The key of the database's TLS Secret holding the CA certificate (what cert-manager writes)."""
CA_PATH = pod.secret_path(CA_SECRET_FILE.lower().replace("_", "-"), CA_KEY)
"""Where a client finds the CA; ``sslrootcert`` of the ``DATABASE_URL`` when the server serves TLS."""
CREDENTIALS_VOLUME = "credentials"
"""Secret volume of the server's password, mounted read-only under :data:`~hardened_k8s.pod.SECRETS_DIR`."""

READY_COMMAND = "postgres-ready"
"""The image's readiness check (``database/postgres-ready``): a session on the app database."""
CLAIM_TEMPLATE_NAME = "data"
"""Name of the volume claim template; the claim of pod 0 is ``data-<app_name>-0``."""
CLAIM_TEMPLATE_FIELDS = ["spec.volumeClaimTemplates"]
"""``ignore_changes`` of the StatefulSet: its claim template is fixed at creation."""

STARTUP_ALLOWANCE_SECONDS = 120
"""First start runs initdb on an empty volume, which is slow on network storage."""


class PostgreSQLArgs(TypedDict, total=False):
    """The inputs of :class:`PostgreSQL`. Only ``namespace``, ``image`` and ``password`` are required."""

    namespace: Required[pulumi.Input[str]]
    """Namespace every object is created in. Required."""
    image: Required[pulumi.Input[str]]
    (
        "PostgreSQL image, ``repo@sha256:<digest>``, whose entrypoint reads ``POSTGRES_PASSWORD_FILE`` "
        "(``database/Containerfile``). Required."
    )
    password: Required[pulumi.Input[str]]
    (
        "Password of the owner role; made a Pulumi secret, it reaches the cluster only inside Secrets. "
        "Required."
    )
    app_name: str
    (
        "Name of the StatefulSet and of the Service clients connect to (a DNS-1035 label of at most 52 "
        "characters); prefix of its Secrets. Default: ``postgresql``."
    )
    instance: str
    """``app.kubernetes.io/instance`` label, part of the pod selector. Default: ``app_name``."""
    part_of: str
    """``app.kubernetes.io/part-of`` label. Default: ``app``."""
    version: str
    """PostgreSQL version, the ``app.kubernetes.io/version`` label. Default: ``16``."""
    database: str
    """Database created at first start. Default: ``app``."""
    user: str
    """Owner role of the database. Default: ``app``."""
    storage: pulumi.Input[str]
    """Size of the data volume claim. Default: ``1Gi``."""
    storage_class_name: pulumi.Input[str]
    """StorageClass of the data volume claim. Default: the cluster's default class."""
    resources: ResourcesArgs
    (
        "Requests and limits of the postgres container. Default: ``100m``/``128Mi``/``64Mi`` requested, "
        "``500m``/``256Mi``/``256Mi`` limits."
    )
    run_as_user: int
    """UID and GID (10000 or more) of the image's ``postgres`` user. Default: ``10002``."""
    protect: bool
    (
        "Pulumi ``protect`` and ``retain_on_delete`` on the StatefulSet and the credentials Secret. Default:"
        " ``true``."
    )
    sslmode: SslMode
    (
        "libpq ``sslmode`` appended to the clients' ``DATABASE_URL``: ``disable``, ``allow`` or ``prefer``; "
        "the TLS-only modes are refused, the image serving no TLS. Default: unset (libpq's ``prefer``)."
    )
    tls_secret_name: pulumi.Input[str]
    (
        "``kubernetes.io/tls`` Secret (``tls.crt``, ``tls.key``, ``ca.crt``, as cert-manager writes it) the "
        "server serves TLS with; its certificate must name ``app_name`` (the Service clients connect to). "
        "TCP connections without TLS are then refused, and the ``DATABASE_URL`` names the CA at "
        ":data:`CA_PATH`, where clients mount ``ca.crt`` (``SecretFileArgs(secret_name=..., key='ca.crt')`` "
        "under ``DATABASE_CA``). Required for the TLS-only ``sslmode``\\ s. Default: no TLS."
    )
    clients: Sequence[PeerArgs]
    """Workloads admitted on 5432; nothing else is. Default: none."""
    kubernetes_version: str
    """Kubernetes minor version of the cluster, e.g. ``1.31`` (preStop form). Default: ``1.31``."""
    security_profile: SecurityProfile
    (
        "The platform: ``openshift-restricted-v2`` leaves UID, GID and fsGroup to OpenShift's SCC "
        "(the image runs as an arbitrary UID in group 0). Default: ``restricted``."
    )


class PostgreSQL(pulumi.ComponentResource):
    """PostgreSQL in a StatefulSet with a volume claim template, reachable at ``app_name:5432``.

    The password is a Pulumi secret and reaches the cluster only inside Secrets: one for
    the server (``<app_name>-credentials``) and one with the clients' ``DATABASE_URL``
    (``<app_name>-url``), which uses the Service name, never localhost. The pod runs as the
    image's non-root ``postgres`` UID (>= 10000) with a read-only root filesystem (emptyDir
    for the socket directory and ``/tmp``). The password reaches the server as a file of a
    read-only Secret volume (``POSTGRES_PASSWORD_FILE``), never as an environment variable,
    and clients mount the URL Secret the same way; its NetworkPolicy admits only ``clients`` on 5432.
    ``protect`` (default true) sets Pulumi ``protect`` and ``retain_on_delete`` on the
    StatefulSet and the credentials, and the claims are retained when the set is deleted
    or scaled down in any case. ``security_profile`` ``openshift-restricted-v2`` leaves the
    pod's ids to OpenShift's SCC (the image runs under an arbitrary UID in group 0).
    """

    service_name: pulumi.Output[str]
    """Name of the ClusterIP Service the clients connect to."""
    dns_name: pulumi.Output[str]
    """In-cluster DNS name, ``<app_name>.<namespace>.svc.cluster.local``."""
    url_secret_name: pulumi.Output[str]
    """Name of the Secret holding ``DATABASE_URL`` (key ``DATABASE_URL``): a client's ``SecretFileArgs``."""
    selector: pulumi.Output[dict[str, str]]
    """Labels selecting the database pod: with port 5432, the ``PeerArgs`` its clients reach it by."""

    def __init__(self, name: str, args: PostgreSQLArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            type_token("PostgreSQL"), name, None, with_former_type(opts, "hardened-k8s:database:PostgreSQL")
        )
        db = _settings(name, args)
        app = db.labels.name
        labels = db.labels
        namespace = args["namespace"]
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(parent=self, protect=db.protect, retain_on_delete=db.protect)

        def metadata(object_name: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=namespace, labels=labels.all)

        password: pulumi.Output[str] = pulumi.Output[str].secret(args["password"])
        credentials = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=metadata(f"{app}-credentials"),
            type="Opaque",
            string_data={"username": db.user, PASSWORD_KEY: password, "database": db.database},
            opts=keep,
        )
        query = [f"sslmode={db.sslmode}"] if db.sslmode else []
        if db.tls_secret_name is not None:
            query.append(f"sslrootcert={CA_PATH}")
        url: pulumi.Output[str] = pulumi.Output[str].secret(
            pulumi.Output.concat(
                "postgresql://",
                quote(db.user, safe=""),
                ":",
                password.apply(lambda value: quote(value, safe="")),
                f"@{app}:{PORT}/{db.database}",
                "?" + "&".join(query) if query else "",
            )
        )
        url_secret = k8s.core.v1.Secret(
            f"{name}-url",
            metadata=metadata(f"{app}-url"),
            type="Opaque",
            string_data={URL_KEY: url},
            opts=child,
        )
        k8s.core.v1.ServiceAccount(
            f"{name}-serviceaccount",
            metadata=metadata(app),
            automount_service_account_token=False,
            opts=child,
        )
        ports = [
            k8s.core.v1.ServicePortArgs(name=PORT_NAME, port=PORT, target_port=PORT_NAME, protocol="TCP")
        ]
        headless = k8s.core.v1.Service(
            f"{name}-headless",
            metadata=metadata(f"{app}-headless"),
            spec=k8s.core.v1.ServiceSpecArgs(cluster_ip="None", selector=labels.selector, ports=ports),
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata(app),
            spec=k8s.core.v1.ServiceSpecArgs(type="ClusterIP", selector=labels.selector, ports=ports),
            opts=child,
        )
        statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata=metadata(app),
            spec=_statefulset_spec(
                db,
                image=args["image"],
                governing_service=headless.metadata.name,
                credentials=credentials.metadata.name,
            ),
            # The claim template is replace-on-change for the provider and the API server
            # refuses to change it anyway: it only shapes a claim that does not exist yet.
            # The size of the existing claim follows ``storage`` through the patch below.
            opts=pulumi.ResourceOptions.merge(
                keep, pulumi.ResourceOptions(ignore_changes=CLAIM_TEMPLATE_FIELDS)
            ),
        )
        # The claim the StatefulSet controller created for pod 0, resized in place (server-side
        # apply of ``spec.resources.requests.storage`` only). The API server expands it where the
        # StorageClass has allowVolumeExpansion and refuses, at preview's dry run already, a
        # smaller size or a class that cannot expand. Deleting this patch never deletes the claim.
        k8s.core.v1.PersistentVolumeClaimPatch(
            f"{name}-data-claim",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=f"{CLAIM_TEMPLATE_NAME}-{app}-0",
                namespace=namespace,
                # The controller that created the claim owns the field; take it over. The claim
                # is Bound already: the provider's claim await would wait for the Pending phase a
                # WaitForFirstConsumer class shows only before binding, until its timeout
                # (pulumi-kubernetes #4179); an expansion's progress is the claim's own status.
                annotations={"pulumi.com/patchForce": "true", "pulumi.com/skipAwait": "true"},
            ),
            spec=k8s.core.v1.PersistentVolumeClaimSpecPatchArgs(
                resources=k8s.core.v1.VolumeResourceRequirementsPatchArgs(requests={"storage": db.storage})
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[statefulset]),
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-networkpolicy",
            metadata=metadata(app),
            spec=network.allow_list(
                labels.selector, port=PORT, ingress_from=args.get("clients") or (), egress_to=()
            ),
            opts=child,
        )
        self.service_name = service.metadata.name
        self.dns_name = network.service_dns_name(service)
        self.url_secret_name = url_secret.metadata.name
        self.selector = pulumi.Output.from_input(labels.selector)
        self.register_outputs(
            {
                "serviceName": self.service_name,
                "dnsName": self.dns_name,
                "urlSecretName": self.url_secret_name,
                "selector": self.selector,
            }
        )


@dataclass(frozen=True)
class _Database:
    """A database's Args with defaults applied and checked: what its objects are built from."""

    labels: Labels
    database: str
    user: str
    storage: pulumi.Input[str]
    storage_class_name: pulumi.Input[str] | None
    resources: dict[str, Any]
    run_as_user: int
    protect: bool
    sslmode: str | None
    tls_secret_name: pulumi.Input[str] | None
    kubernetes_version: str
    security_profile: SecurityProfile

    @property
    def assigned_ids(self) -> bool:
        """The platform assigns UID, GID and fsGroup (``openshift-restricted-v2``): the pod sets none."""
        return assigns_ids(profile_of(self.security_profile))


def _settings(name: str, args: PostgreSQLArgs) -> _Database:
    """``args`` over the stack file's defaults, checked by the stack file's constraints."""
    check = ArgsCheck("PostgreSQL", name)
    check.fields(PostgreSQLArgs, args)
    app = args.get("app_name", default_of(DatabaseSpec, "name"))
    sslmode = args.get("sslmode")
    db = _Database(
        labels=Labels(
            name=app,
            instance=args.get("instance", app),
            version=args.get("version", default_of(DatabaseSpec, "version")),
            component="database",
            part_of=args.get("part_of", default_of(StackConfig, "part_of")),
        ),
        database=args.get("database", default_of(DatabaseSpec, "database")),
        user=args.get("user", default_of(DatabaseSpec, "user")),
        storage=args.get("storage", default_of(DatabaseSpec, "storage")),
        storage_class_name=args.get("storage_class_name"),
        resources=with_defaults(Resources, args.get("resources")),
        run_as_user=whole(args.get("run_as_user", default_of(DatabaseSpec, "run_as_user"))),
        protect=args.get("protect", default_of(DatabaseSpec, "protect")),
        sslmode=SslMode(sslmode).value if sslmode is not None else None,
        tls_secret_name=args.get("tls_secret_name"),
        kubernetes_version=args.get("kubernetes_version", DEFAULT_KUBERNETES_VERSION),
        security_profile=args.get("security_profile", SecurityProfile.RESTRICTED),
    )
    check.field("security_profile", db.security_profile, StackSettings, "security_profile")
    check.field("namespace", args["namespace"], StackConfig, "namespace")
    check.field("app_name", app, DatabaseSpec, "name")
    for key in ("instance", "part_of"):
        check.value(key, getattr(db.labels, key), LabelValue)
    check.field("version", db.labels.version, DatabaseSpec, "version")
    check.value("image", args["image"], ImageRef)
    for key in ("storage", "run_as_user", "database", "user", "storage_class_name"):
        if getattr(db, key) is not None:
            check.field(key, getattr(db, key), DatabaseSpec, key)
    check.model("resources", db.resources, Resources)
    check.field("kubernetes_version", db.kubernetes_version, StackSettings, "kubernetes_version")
    if db.sslmode in TLS_SSLMODES and db.tls_secret_name is None:
        check.add(
            "sslmode", f"{db.sslmode!r} {NO_TLS_SSLMODE}".replace("database.tlsSecretName", "tls_secret_name")
        )
    check.done()
    return db


def _statefulset_spec(
    spec: _Database,
    *,
    image: pulumi.Input[str],
    governing_service: pulumi.Input[str],
    credentials: pulumi.Input[str],
) -> k8s.apps.v1.StatefulSetSpecArgs:
    labels = spec.labels
    uid = None if spec.assigned_ids else spec.run_as_user
    volumes, mounts = pod.scratch_volumes({"run": "/var/run/postgresql", "tmp": "/tmp"})
    secret_volume, secret_mount = pod.secret_volume(CREDENTIALS_VOLUME, credentials, [PASSWORD_KEY])
    volumes.append(secret_volume)
    mounts.append(secret_mount)
    tls_env = []
    if spec.tls_secret_name is not None:
        tls_volume, tls_mount = pod.secret_volume(TLS_VOLUME, spec.tls_secret_name, ["tls.crt", "tls.key"])
        volumes.append(tls_volume)
        mounts.append(tls_mount)
        tls_env = [k8s.core.v1.EnvVarArgs(name=TLS_DIR_VAR, value=f"{pod.SECRETS_DIR}/{TLS_VOLUME}")]
    # A session on the application database through the entrypoint's private socket: the
    # image's entrypoint creates the database and applies the password before that succeeds,
    # so a half-initialised volume never looks ready (pg_isready only sees the server answer).
    ready = k8s.core.v1.ExecActionArgs(command=[READY_COMMAND])
    container = k8s.core.v1.ContainerArgs(
        name="postgres",
        image=image,
        # Always: a pod starts only with an image its own credentials may pull (see workload.py).
        image_pull_policy="Always",
        ports=[k8s.core.v1.ContainerPortArgs(name=PORT_NAME, container_port=PORT, protocol="TCP")],
        env=[
            k8s.core.v1.EnvVarArgs(name="POSTGRES_DB", value=spec.database),
            k8s.core.v1.EnvVarArgs(name="POSTGRES_USER", value=spec.user),
            # The path of the password file, never the password (entrypoint.sh feeds it to initdb).
            k8s.core.v1.EnvVarArgs(
                name=PASSWORD_FILE_VAR, value=pod.secret_path(CREDENTIALS_VOLUME, PASSWORD_KEY)
            ),
            # A subdirectory, because the volume root may hold lost+found and initdb wants it empty.
            k8s.core.v1.EnvVarArgs(name="PGDATA", value=f"{DATA_DIR}/pgdata"),
            *tls_env,
        ],
        resources=pod.resource_requirements(spec.resources),
        # Readiness asks the server to accept a session on the database; liveness only
        # checks the port, so a server busy with a long checkpoint is not restarted.
        readiness_probe=k8s.core.v1.ProbeArgs(
            exec_=ready, period_seconds=10, timeout_seconds=5, failure_threshold=3
        ),
        liveness_probe=k8s.core.v1.ProbeArgs(
            tcp_socket=k8s.core.v1.TCPSocketActionArgs(port=PORT_NAME),
            period_seconds=20,
            timeout_seconds=5,
            failure_threshold=6,
        ),
        startup_probe=pod.startup_probe(ready, STARTUP_ALLOWANCE_SECONDS),
        lifecycle=pod.pre_stop(spec.kubernetes_version),
        security_context=pod.container_security_context(uid),
        volume_mounts=[k8s.core.v1.VolumeMountArgs(name=CLAIM_TEMPLATE_NAME, mount_path=DATA_DIR), *mounts],
    )
    return k8s.apps.v1.StatefulSetSpecArgs(
        replicas=1,
        service_name=governing_service,
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels.selector),
        min_ready_seconds=10,
        update_strategy=k8s.apps.v1.StatefulSetUpdateStrategyArgs(type="RollingUpdate"),
        persistent_volume_claim_retention_policy=k8s.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs(
            when_deleted="Retain", when_scaled="Retain"
        ),
        template=k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels.all),
            spec=k8s.core.v1.PodSpecArgs(
                service_account_name=labels.name,
                automount_service_account_token=False,
                enable_service_links=False,
                security_context=pod.pod_security_context(uid),
                # A clean shutdown checkpoints; give it longer than a stateless service.
                termination_grace_period_seconds=60,
                containers=[container],
                volumes=volumes,
            ),
        ),
        volume_claim_templates=[
            k8s.core.v1.PersistentVolumeClaimArgs(
                # Only the selector's labels, which never change without replacing the set
                # anyway: version and part-of change with routine releases.
                metadata=k8s.meta.v1.ObjectMetaArgs(name=CLAIM_TEMPLATE_NAME, labels=labels.selector),
                spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                    access_modes=["ReadWriteOnce"],
                    storage_class_name=spec.storage_class_name,
                    resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": spec.storage}),
                ),
            )
        ],
    )
