"""PostgreSQL: a single-instance StatefulSet with its credentials, Services and allow-list."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

import pulumi
import pulumi_kubernetes as k8s

from . import network, pod
from .config import DEFAULT_KUBERNETES_VERSION, DatabaseSpec
from .labels import Labels
from .profiles import DEFAULT_PROFILE, SecurityProfile, assigns_ids

PORT = 5432
PORT_NAME = "postgres"
DATA_DIR = "/var/lib/postgresql/data"
URL_KEY = "DATABASE_URL"
"""Key of the connection-URL Secret; clients get it as a file, named by ``DATABASE_URL_FILE``."""
PASSWORD_KEY = "password"
"""Key of the server's password in the ``<name>-credentials`` Secret."""
PASSWORD_FILE_VAR = "POSTGRES_PASSWORD_FILE"
"""Variable naming the mounted password file; the image's entrypoint gives it to ``initdb --pwfile``."""
CREDENTIALS_VOLUME = "credentials"
"""Secret volume of the server's password, mounted read-only under :data:`pod.SECRETS_DIR`."""

STARTUP_ALLOWANCE_SECONDS = 120
"""First start runs initdb on an empty volume, which is slow on network storage."""


class PostgreSQL(pulumi.ComponentResource):
    """PostgreSQL in a StatefulSet with a volume claim template, reachable at ``spec.name``.

    The password is a Pulumi secret and reaches the cluster only inside Secrets: one for
    the server (``<name>-credentials``) and one with the clients' ``DATABASE_URL``
    (``<name>-url``), which uses the Service name, never localhost. The pod runs as the
    image's non-root ``postgres`` UID (>= 10000) with a read-only root filesystem (emptyDir
    for the socket directory and ``/tmp``). The password reaches the server as a file of a
    read-only Secret volume (``POSTGRES_PASSWORD_FILE``), never as an environment variable,
    and clients mount the URL Secret the same way; its NetworkPolicy admits only ``clients`` on 5432.
    ``spec.protect`` (default true) sets Pulumi ``protect`` and ``retain_on_delete`` on the
    StatefulSet and the credentials, and the claims are retained when the set is deleted
    or scaled down in any case. ``security_profile`` ``openshift-restricted-v2`` leaves the
    pod's ids to OpenShift's SCC (the image runs under an arbitrary UID in group 0).
    """

    service_name: pulumi.Output[str]
    """Name of the ClusterIP Service the clients connect to."""
    dns_name: pulumi.Output[str]
    """In-cluster DNS name, ``<spec.name>.<namespace>.svc.cluster.local``."""
    url_secret_name: pulumi.Output[str]
    """Name of the Secret holding ``DATABASE_URL`` under key :data:`URL_KEY`."""

    def __init__(
        self,
        name: str,
        spec: DatabaseSpec,
        *,
        namespace: pulumi.Input[str],
        password: pulumi.Output[str],
        image: pulumi.Input[str] | None = None,
        labels: Labels,
        clients: Sequence[network.Peer] = (),
        kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
        security_profile: SecurityProfile = DEFAULT_PROFILE,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("hardened-k8s:database:PostgreSQL", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(parent=self, protect=spec.protect, retain_on_delete=spec.protect)

        def metadata(object_name: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=namespace, labels=labels.all)

        password = pulumi.Output[str].secret(password)
        credentials = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=metadata(f"{spec.name}-credentials"),
            type="Opaque",
            string_data={"username": spec.user, PASSWORD_KEY: password, "database": spec.database},
            opts=keep,
        )
        url: pulumi.Output[str] = pulumi.Output[str].secret(
            pulumi.Output.concat(
                "postgresql://",
                quote(spec.user, safe=""),
                ":",
                password.apply(lambda value: quote(value, safe="")),
                f"@{spec.name}:{PORT}/{spec.database}",
                f"?sslmode={spec.sslmode}" if spec.sslmode else "",
            )
        )
        url_secret = k8s.core.v1.Secret(
            f"{name}-url",
            metadata=metadata(f"{spec.name}-url"),
            type="Opaque",
            string_data={URL_KEY: url},
            opts=child,
        )
        k8s.core.v1.ServiceAccount(
            f"{name}-serviceaccount",
            metadata=metadata(spec.name),
            automount_service_account_token=False,
            opts=child,
        )
        ports = [
            k8s.core.v1.ServicePortArgs(name=PORT_NAME, port=PORT, target_port=PORT_NAME, protocol="TCP")
        ]
        headless = k8s.core.v1.Service(
            f"{name}-headless",
            metadata=metadata(f"{spec.name}-headless"),
            spec=k8s.core.v1.ServiceSpecArgs(cluster_ip="None", selector=labels.selector, ports=ports),
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata(spec.name),
            spec=k8s.core.v1.ServiceSpecArgs(type="ClusterIP", selector=labels.selector, ports=ports),
            opts=child,
        )
        k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata=metadata(spec.name),
            spec=_statefulset_spec(
                spec,
                labels=labels,
                governing_service=headless.metadata.name,
                credentials=credentials.metadata.name,
                image=image if image is not None else _ref(spec),
                kubernetes_version=kubernetes_version,
                assigned_ids=assigns_ids(security_profile),
            ),
            opts=keep,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-networkpolicy",
            metadata=metadata(spec.name),
            spec=network.allow_list(labels.selector, port=PORT, ingress_from=clients, egress_to=()),
            opts=child,
        )
        self.service_name = service.metadata.name
        self.dns_name = network.service_dns_name(service)
        self.url_secret_name = url_secret.metadata.name
        self.register_outputs(
            {
                "serviceName": self.service_name,
                "dnsName": self.dns_name,
                "urlSecretName": self.url_secret_name,
            }
        )


def _statefulset_spec(
    spec: DatabaseSpec,
    *,
    labels: Labels,
    governing_service: pulumi.Input[str],
    credentials: pulumi.Input[str],
    image: pulumi.Input[str],
    kubernetes_version: str,
    assigned_ids: bool,
) -> k8s.apps.v1.StatefulSetSpecArgs:
    uid = None if assigned_ids else spec.run_as_user
    volumes, mounts = pod.scratch_volumes({"run": "/var/run/postgresql", "tmp": "/tmp"})
    secret_volume, secret_mount = pod.secret_volume(CREDENTIALS_VOLUME, credentials, [PASSWORD_KEY])
    volumes.append(secret_volume)
    mounts.append(secret_mount)
    ready = k8s.core.v1.ExecActionArgs(
        command=["pg_isready", "-h", "127.0.0.1", "-p", str(PORT), "-U", spec.user, "-d", spec.database]
    )
    container = k8s.core.v1.ContainerArgs(
        name="postgres",
        image=image,
        image_pull_policy="IfNotPresent",
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
        lifecycle=pod.pre_stop(kubernetes_version),
        security_context=pod.container_security_context(uid),
        volume_mounts=[k8s.core.v1.VolumeMountArgs(name="data", mount_path=DATA_DIR), *mounts],
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
                service_account_name=spec.name,
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
                metadata=k8s.meta.v1.ObjectMetaArgs(name="data", labels=labels.all),
                spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                    access_modes=["ReadWriteOnce"],
                    storage_class_name=spec.storage_class_name,
                    resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                        requests={"storage": str(spec.storage)}
                    ),
                ),
            )
        ],
    )


def _ref(spec: DatabaseSpec) -> str:
    if spec.image.ref is None:
        raise ValueError(f"{spec.name}: image.build must be built first; pass the pushed ref as image=")
    return spec.image.ref
