"""HardenedService: one HTTP service as a hardened Deployment with everything around it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from . import autoscaling, network, pod
from .config import DEFAULT_KUBERNETES_VERSION, ServiceSpec
from .labels import Labels
from .profiles import DEFAULT_PROFILE, SecurityProfile, assigns_ids

PORT_NAME = "http"
"""Name of the container and Service port; probes and policies refer to it by name."""

MIN_READY_SECONDS = 10
"""A new pod must stay ready this long before the rollout counts it and moves on."""

AUTH_TOKEN_KEY = "AUTH_TOKEN"
"""Secret key of a ``bearerAuth`` service's token; the container finds the file at ``AUTH_TOKEN_FILE``."""

FILE_SUFFIX = "_FILE"
"""A secret ``NAME`` reaches the container as a file whose path is in ``NAME_FILE``."""


def file_variable(name: str) -> str:
    """The variable naming the file of the secret ``name``: ``DATABASE_URL`` -> ``DATABASE_URL_FILE``."""
    return f"{name}{FILE_SUFFIX}"


def secret_directory(name: str) -> str:
    """The directory under :data:`pod.SECRETS_DIR` the secret ``name`` is mounted at: ``database-url``."""
    return name.lower().replace("_", "-")


def peer_url_env(peer: network.Peer) -> tuple[str, str]:
    """The variable a caller finds an HTTP peer under: ``STORE_INVENTORY_URL=http://store-inventory:8000``."""
    return f"{peer.name.upper().replace('-', '_')}_URL", f"http://{peer.name}:{peer.port}"


def allowed_hosts(public_host: str, app: str, namespace: pulumi.Input[str]) -> pulumi.Output[str]:
    """``ALLOWED_HOSTS`` of an exposed service: its public name and its in-cluster Service names."""
    return pulumi.Output.from_input(namespace).apply(
        lambda ns: ",".join(
            [public_host, app, f"{app}.{ns}", f"{app}.{ns}.svc", f"{app}.{ns}.svc.cluster.local"]
        )
    )


@dataclass(frozen=True)
class SecretFile:
    """A key of a Kubernetes Secret, mounted read-only as a file; the container gets its path."""

    secret_name: pulumi.Input[str]
    key: str


class HardenedService(pulumi.ComponentResource):
    """ServiceAccount, Deployment, Service, NetworkPolicy, and HPA/PDB where they apply.

    Secure by default: PSS ``restricted`` security contexts, read-only root filesystem with
    in-memory ``emptyDir`` scratch paths, no API token, requests and limits, readiness,
    liveness and startup probes, ``maxUnavailable: 0`` rolling updates with a preStop delay,
    and a NetworkPolicy that admits only ``ingress_from`` and reaches only ``egress_to``.
    With ``spec.autoscaling`` an HPA owns the replica count and the Deployment leaves
    ``spec.replicas`` unset; a PodDisruptionBudget (``maxUnavailable: 1``) is added whenever
    the service can run more than one pod. ``production`` adds topology spread.
    ``security_profile`` (default ``restricted``) ``openshift-restricted-v2`` leaves the pod's
    ids to OpenShift's SCC instead of ``spec.runAsUser``.

    Kubernetes objects are named ``labels.name`` (so the Service answers at
    ``<labels.name>.<namespace>.svc``); Pulumi children are ``f"{name}-{role}"``.
    ``image`` should be a ``repo@sha256:<digest>`` reference.
    """

    service_name: pulumi.Output[str]
    """Name of the ClusterIP Service."""
    dns_name: pulumi.Output[str]
    """In-cluster DNS name, ``<labels.name>.<namespace>.svc.cluster.local``."""
    image: pulumi.Output[str]
    """Image reference the Deployment runs."""

    def __init__(
        self,
        name: str,
        spec: ServiceSpec,
        *,
        namespace: pulumi.Input[str],
        image: pulumi.Input[str],
        labels: Labels,
        ingress_from: Sequence[network.Peer] = (),
        egress_to: Sequence[network.Peer] = (),
        secret_files: Mapping[str, SecretFile] | None = None,
        platform_env: Mapping[str, pulumi.Input[str]] | None = None,
        auth_token: pulumi.Output[str] | None = None,
        production: bool = False,
        kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
        security_profile: SecurityProfile = DEFAULT_PROFILE,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("hardened-k8s:workload:HardenedService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        app = labels.name

        def metadata(object_name: str = app) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=namespace, labels=labels.all)

        secret_files = dict(secret_files or {})
        if spec.bearer_auth:
            if auth_token is None:
                raise ValueError(f"{app}: bearerAuth is set but no auth_token was given")
            token_value: pulumi.Output[str] = pulumi.Output[str].secret(auth_token)
            token = k8s.core.v1.Secret(
                f"{name}-auth",
                metadata=metadata(f"{app}-auth"),
                type="Opaque",
                string_data={AUTH_TOKEN_KEY: token_value},
                opts=child,
            )
            secret_files[AUTH_TOKEN_KEY] = SecretFile(token.metadata.name, AUTH_TOKEN_KEY)
        env = {**(platform_env or {}), **spec.env, "PORT": str(spec.port)}
        if spec.expose is not None:
            env["ALLOWED_HOSTS"] = allowed_hosts(spec.expose.host, app, namespace)

        account = k8s.core.v1.ServiceAccount(
            f"{name}-serviceaccount",
            metadata=metadata(),
            automount_service_account_token=spec.opt_outs.service_account_token,
            opts=child,
        )
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=metadata(),
            spec=self._deployment_spec(
                app,
                spec,
                image=image,
                labels=labels,
                account=account.metadata.name,
                env=env,
                secret_files=secret_files,
                production=production,
                kubernetes_version=kubernetes_version,
                assigned_ids=assigns_ids(security_profile),
            ),
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata(),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=labels.selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name=PORT_NAME,
                        port=spec.port,
                        target_port=PORT_NAME,
                        protocol="TCP",
                        app_protocol="http",
                    )
                ],
            ),
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-networkpolicy",
            metadata=metadata(),
            spec=network.allow_list(
                labels.selector,
                port=spec.port,
                ingress_from=ingress_from,
                egress_to=egress_to,
                ingress_namespaces=[spec.expose.controller_namespace] if spec.expose else [],
            ),
            opts=child,
        )
        if spec.expose is not None:
            k8s.networking.v1.Ingress(
                f"{name}-ingress",
                metadata=metadata(),
                spec=k8s.networking.v1.IngressSpecArgs(
                    ingress_class_name=spec.expose.ingress_class_name,
                    tls=[
                        k8s.networking.v1.IngressTLSArgs(
                            hosts=[spec.expose.host], secret_name=spec.expose.tls_secret_name
                        )
                    ],
                    rules=[
                        k8s.networking.v1.IngressRuleArgs(
                            host=spec.expose.host,
                            http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                                paths=[
                                    k8s.networking.v1.HTTPIngressPathArgs(
                                        path="/",
                                        path_type="Prefix",
                                        backend=k8s.networking.v1.IngressBackendArgs(
                                            service=k8s.networking.v1.IngressServiceBackendArgs(
                                                name=service.metadata.name,
                                                port=k8s.networking.v1.ServiceBackendPortArgs(name=PORT_NAME),
                                            )
                                        ),
                                    )
                                ]
                            ),
                        )
                    ],
                ),
                opts=child,
            )
        if spec.autoscaling is not None:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa",
                metadata=metadata(),
                spec=autoscaling.hpa_spec(app, spec.autoscaling),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[deployment]),
            )
        max_replicas = spec.autoscaling.max_replicas if spec.autoscaling else spec.min_replicas
        if max_replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb", metadata=metadata(), spec=autoscaling.pdb_spec(labels.selector), opts=child
            )

        self.service_name = service.metadata.name
        self.dns_name = network.service_dns_name(service)
        self.image = pulumi.Output.from_input(image)
        self.register_outputs(
            {"serviceName": self.service_name, "dnsName": self.dns_name, "image": self.image}
        )

    @staticmethod
    def _deployment_spec(
        name: str,
        spec: ServiceSpec,
        *,
        image: pulumi.Input[str],
        labels: Labels,
        account: pulumi.Input[str],
        env: Mapping[str, pulumi.Input[str]],
        secret_files: Mapping[str, SecretFile],
        production: bool,
        kubernetes_version: str,
        assigned_ids: bool,
    ) -> k8s.apps.v1.DeploymentSpecArgs:
        uid = None if assigned_ids else spec.run_as_user
        volumes, mounts = pod.scratch_volumes(pod.scratch_names(spec.writable_paths))
        readiness, liveness, startup = pod.http_probes(spec.probes, PORT_NAME)
        # Secrets are files on read-only Secret volumes; the environment holds only their paths.
        env = dict(env)
        for key, ref in sorted(secret_files.items()):
            directory = secret_directory(key)
            volume, mount = pod.secret_volume(
                f"secret-{directory}", ref.secret_name, [ref.key], directory=directory
            )
            volumes.append(volume)
            mounts.append(mount)
            env[file_variable(key)] = pod.secret_path(directory, ref.key)
        env_vars = [k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in sorted(env.items())]
        container = k8s.core.v1.ContainerArgs(
            name=name,
            image=image,
            image_pull_policy="IfNotPresent",
            ports=[k8s.core.v1.ContainerPortArgs(name=PORT_NAME, container_port=spec.port, protocol="TCP")],
            env=env_vars,
            resources=pod.resource_requirements(spec.resources),
            readiness_probe=readiness,
            liveness_probe=liveness,
            startup_probe=startup,
            lifecycle=pod.pre_stop(kubernetes_version),
            security_context=pod.container_security_context(
                uid, writable_root_filesystem=spec.opt_outs.writable_root_filesystem
            ),
            volume_mounts=mounts,
        )
        return k8s.apps.v1.DeploymentSpecArgs(
            # An HPA owns the count; a replicas field here would fight it on every update.
            replicas=None if spec.autoscaling else spec.min_replicas,
            revision_history_limit=5,
            min_ready_seconds=MIN_READY_SECONDS,
            progress_deadline_seconds=600,
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels.selector),
            # maxUnavailable 0: capacity never drops during a rollout; a surge pod comes first.
            strategy=k8s.apps.v1.DeploymentStrategyArgs(
                type="RollingUpdate",
                rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
            ),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels.all),
                spec=k8s.core.v1.PodSpecArgs(
                    service_account_name=account,
                    automount_service_account_token=spec.opt_outs.service_account_token,
                    # Service links inject every Service of the namespace as env vars.
                    enable_service_links=False,
                    security_context=pod.pod_security_context(uid),
                    termination_grace_period_seconds=pod.TERMINATION_GRACE_SECONDS,
                    containers=[container],
                    volumes=volumes,
                    topology_spread_constraints=pod.topology_spread(labels.selector) if production else None,
                ),
            ),
        )
