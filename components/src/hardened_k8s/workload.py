"""HardenedService: one HTTP service as a hardened Deployment with everything around it.

No ``from __future__ import annotations`` here: the component-provider analyzer reads the
annotations of :class:`HardenedServiceArgs` and of the component's outputs as objects.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from hardened_k8s_rules.profiles import assigns_ids

from . import autoscaling, network, pod
from .arguments import ArgsCheck, default_of, profile_of, whole, with_defaults
from .config import (
    DEFAULT_KUBERNETES_VERSION,
    DEFAULT_RUN_AS_USER,
    Autoscaling,
    DnsLabel,
    DnsSubdomain,
    EnvVarName,
    Expose,
    ImageRef,
    LabelValue,
    Probes,
    Resources,
    SecurityOptOuts,
    ServiceSpec,
    StackConfig,
    StackSettings,
)
from .inputs import (
    AutoscalingArgs,
    ExposeArgs,
    PeerArgs,
    ProbesArgs,
    ResourcesArgs,
    SecretFileArgs,
    SecurityOptOutsArgs,
    SecurityProfile,
)
from .labels import Labels
from .tokens import type_token, with_former_type

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
    """The directory under :data:`~hardened_k8s.pod.SECRETS_DIR` the secret ``name`` is mounted
    at: ``database-url``."""
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


class HardenedServiceArgs(TypedDict, total=False):
    """The inputs of :class:`HardenedService`. Only ``namespace``, ``image`` and ``port`` are
    required; everything else has the hardened default stated on its field."""

    namespace: Required[pulumi.Input[str]]
    """Namespace every object is created in. Required."""
    image: Required[pulumi.Input[str]]
    """Image the container runs; give ``repo@sha256:<digest>`` so a new image is a new rollout. Required."""
    port: Required[int]
    (
        "Container port (1-65535), named ``http``: the Service's and the probes' port, the NetworkPolicy's, "
        "and ``PORT`` in the environment. Required."
    )
    app_name: str
    (
        "Name of every Kubernetes object (the Service answers at ``<app_name>.<namespace>.svc``) and the "
        "``app.kubernetes.io/name`` label. Default: the resource name."
    )
    instance: str
    """``app.kubernetes.io/instance`` label, part of the pod selector. Default: ``app_name``."""
    version: str
    (
        "``app.kubernetes.io/version`` label (not in the selector, so a release never orphans pods). "
        "Default: ``0.1.0``."
    )
    component: str
    """``app.kubernetes.io/component`` label. Default: ``server``."""
    part_of: str
    """``app.kubernetes.io/part-of`` label. Default: ``app``."""
    env: Mapping[str, pulumi.Input[str]]
    (
        "Plain environment variables; never secrets (see ``secret_files``). ``PORT``, ``ALLOWED_HOSTS`` and "
        "the ``*_FILE`` variables are the component's. Default: none."
    )
    secret_files: Mapping[str, SecretFileArgs]
    (
        "Secrets as files, by variable name: ``NAME`` mounts the Secret key read-only under "
        "``/etc/secrets/<name>/`` and sets ``NAME_FILE`` to the file's path. Default: none."
    )
    auth_token: pulumi.Input[str]
    (
        "Bearer token clients must present: stored (as a Pulumi secret) in the Secret ``<app_name>-auth`` "
        "and mounted like ``secret_files``, its path in ``AUTH_TOKEN_FILE``. Default: none."
    )
    resources: ResourcesArgs
    (
        "Requests and limits of CPU, memory and ephemeral storage. Default: ``100m``/``128Mi``/``64Mi`` "
        "requested, ``500m``/``256Mi``/``256Mi`` limits."
    )
    replicas: int
    """Fixed pod count, 1 or more; excludes ``autoscaling``. Default: 1 when ``autoscaling`` is not set."""
    autoscaling: AutoscalingArgs
    (
        "A HorizontalPodAutoscaler owning the pod count (the Deployment leaves ``replicas`` unset); excludes"
        " ``replicas``. Default: none."
    )
    probes: ProbesArgs
    """Readiness, liveness and startup probes. Default: ``/ready``, ``/health``, 60 s to start."""
    ingress_from: Sequence[PeerArgs]
    """Workloads allowed to connect to ``port``; nothing else is admitted. Default: none."""
    egress_to: Sequence[PeerArgs]
    """Workloads the pods may connect to (besides DNS); nothing else is reachable. Default: none."""
    expose: ExposeArgs
    (
        "An Ingress with TLS, and ``ALLOWED_HOSTS`` for the app's DNS-rebinding checks. Default: none "
        "(in-cluster only)."
    )
    run_as_user: int
    """UID and GID of the container (10000 or more), equal to the image's ``USER``. Default: ``10001``."""
    writable_paths: Sequence[str]
    (
        "Directories made writable as in-memory ``emptyDir`` mounts of 64Mi each; the root filesystem "
        'stays read-only. Default: ``["/tmp"]``.'
    )
    opt_outs: SecurityOptOutsArgs
    """Named exceptions to the hardening. Default: none."""
    topology_spread: bool
    (
        "Spread pods over zones (best effort) and nodes (required, skew 1), with a preferred "
        "hostname pod anti-affinity beside it. Default: ``false``; "
        ":class:`~hardened_k8s.system.ServiceSystem` sets it in production."
    )
    kubernetes_version: str
    (
        "Kubernetes minor version of the cluster, e.g. ``1.31``; from 1.30 the preStop delay is the "
        "kubelet's ``sleep`` action. Default: ``1.31``."
    )
    security_profile: SecurityProfile
    (
        "The platform: ``openshift-restricted-v2`` leaves UID, GID and fsGroup to OpenShift's SCC "
        "instead of ``run_as_user``. Default: ``restricted``."
    )


class HardenedService(pulumi.ComponentResource):
    """One HTTP service: ServiceAccount, Deployment, Service, NetworkPolicy, and Ingress, HPA,
    PodDisruptionBudget and token Secret where they apply.

    Secure by default: Pod Security Standards ``restricted`` security contexts, read-only
    root filesystem with in-memory ``emptyDir`` scratch paths, no API token, requests and
    limits, readiness, liveness and startup probes, ``maxUnavailable: 0`` rolling updates
    with a preStop delay, secrets as read-only files, and a NetworkPolicy that admits only
    ``ingress_from`` and reaches only ``egress_to``. With ``autoscaling`` an HPA owns the
    replica count; a PodDisruptionBudget (``maxUnavailable: 1``) is added whenever the
    service can run more than one pod. ``security_profile`` ``openshift-restricted-v2`` leaves
    the pod's ids to OpenShift's SCC instead of ``run_as_user``.

    Kubernetes objects are named ``app_name``; Pulumi children are ``f"{name}-{role}"``.
    Invalid Args raise :class:`~hardened_k8s.arguments.ArgsError` before any child exists.
    """

    service_name: pulumi.Output[str]
    """Name of the ClusterIP Service."""
    dns_name: pulumi.Output[str]
    """In-cluster DNS name, ``<app_name>.<namespace>.svc.cluster.local``."""
    image: pulumi.Output[str]
    """Image reference the Deployment runs."""
    selector: pulumi.Output[dict[str, str]]
    """Labels selecting the pods: with the port, the ``PeerArgs`` other workloads name this one by."""

    def __init__(
        self, name: str, args: HardenedServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            type_token("HardenedService"),
            name,
            None,
            with_former_type(opts, "hardened-k8s:workload:HardenedService"),
        )
        child = pulumi.ResourceOptions(parent=self)
        service = _settings(name, args)
        labels = service.labels
        app = labels.name
        namespace = args["namespace"]

        def metadata(object_name: str = app) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=namespace, labels=labels.all)

        secret_files = dict(args.get("secret_files") or {})
        auth_token = args.get("auth_token")
        if auth_token is not None:
            token_value: pulumi.Output[str] = pulumi.Output[str].secret(auth_token)
            token = k8s.core.v1.Secret(
                f"{name}-auth",
                metadata=metadata(f"{app}-auth"),
                type="Opaque",
                string_data={AUTH_TOKEN_KEY: token_value},
                opts=child,
            )
            secret_files[AUTH_TOKEN_KEY] = SecretFileArgs(secret_name=token.metadata.name, key=AUTH_TOKEN_KEY)
        expose = service.expose
        env: dict[str, pulumi.Input[str]] = {**(args.get("env") or {}), "PORT": str(service.port)}
        if expose is not None:
            env["ALLOWED_HOSTS"] = allowed_hosts(expose["host"], app, namespace)

        account = k8s.core.v1.ServiceAccount(
            f"{name}-serviceaccount",
            metadata=metadata(),
            automount_service_account_token=service.opt_outs["service_account_token"],
            opts=child,
        )
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=metadata(),
            spec=_deployment_spec(
                service,
                image=args["image"],
                account=account.metadata.name,
                env=env,
                secret_files=secret_files,
            ),
            opts=child,
        )
        k8s_service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata(),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=labels.selector,
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name=PORT_NAME,
                        port=service.port,
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
                port=service.port,
                ingress_from=args.get("ingress_from") or (),
                egress_to=args.get("egress_to") or (),
                ingress_namespaces=[expose["controller_namespace"]] if expose else [],
            ),
            opts=child,
        )
        if expose is not None:
            k8s.networking.v1.Ingress(
                f"{name}-ingress",
                metadata=metadata(),
                spec=k8s.networking.v1.IngressSpecArgs(
                    ingress_class_name=expose["ingress_class_name"],
                    tls=[
                        k8s.networking.v1.IngressTLSArgs(
                            hosts=[expose["host"]], secret_name=expose["tls_secret_name"]
                        )
                    ],
                    rules=[
                        k8s.networking.v1.IngressRuleArgs(
                            host=expose["host"],
                            http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                                paths=[
                                    k8s.networking.v1.HTTPIngressPathArgs(
                                        path="/",
                                        path_type="Prefix",
                                        backend=k8s.networking.v1.IngressBackendArgs(
                                            service=k8s.networking.v1.IngressServiceBackendArgs(
                                                name=k8s_service.metadata.name,
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
        if service.autoscaling is not None:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa",
                metadata=metadata(),
                spec=autoscaling.hpa_spec(app, service.autoscaling),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[deployment]),
            )
        if service.max_replicas > 1:
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=metadata(),
                spec=autoscaling.pdb_spec(labels.selector, service.kubernetes_version),
                opts=child,
            )

        self.service_name = k8s_service.metadata.name
        self.dns_name = network.service_dns_name(k8s_service)
        self.image = pulumi.Output.from_input(args["image"])
        self.selector = pulumi.Output.from_input(labels.selector)
        self.register_outputs(
            {
                "serviceName": self.service_name,
                "dnsName": self.dns_name,
                "image": self.image,
                "selector": self.selector,
            }
        )


@dataclass(frozen=True)
class _Service:
    """A service's Args with defaults applied and checked: what its objects are built from."""

    labels: Labels
    port: int
    resources: dict[str, Any]
    probes: dict[str, Any]
    autoscaling: dict[str, Any] | None
    replicas: int
    expose: dict[str, Any] | None
    opt_outs: dict[str, Any]
    run_as_user: int
    writable_paths: list[str]
    topology_spread: bool
    kubernetes_version: str
    security_profile: SecurityProfile

    @property
    def assigned_ids(self) -> bool:
        """The platform assigns UID, GID and fsGroup (``openshift-restricted-v2``): the pod sets none."""
        return assigns_ids(profile_of(self.security_profile))

    @property
    def max_replicas(self) -> int:
        """Most pods the service runs: the HPA's ceiling or the fixed count."""
        return self.autoscaling["max_replicas"] if self.autoscaling else self.replicas


def _settings(name: str, args: HardenedServiceArgs) -> _Service:
    """``args`` over the stack file's defaults, checked by the stack file's constraints."""
    check = ArgsCheck("HardenedService", name)
    check.fields(HardenedServiceArgs, args)
    app = args.get("app_name", name)
    labels = Labels(
        name=app,
        instance=args.get("instance", app),
        version=args.get("version", default_of(ServiceSpec, "version")),
        component=args.get("component", default_of(ServiceSpec, "component")),
        part_of=args.get("part_of", default_of(StackConfig, "part_of")),
    )
    check.field("namespace", args["namespace"], StackConfig, "namespace")
    check.value("app_name", app, DnsLabel)
    check.value("image", args["image"], ImageRef)
    for key, secret in (args.get("secret_files") or {}).items():
        if "secret_name" in secret:
            check.value(f"secret_files.{key}.secret_name", secret["secret_name"], DnsSubdomain)
    for key in ("instance", "component", "part_of"):
        check.value(key, getattr(labels, key), LabelValue)
    check.field("version", labels.version, ServiceSpec, "version")
    for key in ("port", "replicas", "run_as_user", "writable_paths"):
        if key in args:
            check.field(key, args[key], ServiceSpec, key)  # type: ignore[literal-required]
    check.field(
        "kubernetes_version",
        args.get("kubernetes_version", DEFAULT_KUBERNETES_VERSION),
        StackSettings,
        "kubernetes_version",
    )
    scaling = None
    if "autoscaling" in args:
        scaling = with_defaults(Autoscaling, args["autoscaling"])
        check.model("autoscaling", scaling, Autoscaling)
        if "replicas" in args:
            check.add(
                "replicas", "set either replicas or autoscaling, not both: an HPA owns the replica count"
            )
    expose = None
    if "expose" in args:
        expose = with_defaults(Expose, args["expose"])
        check.model("expose", expose, Expose)
    service = _Service(
        labels=labels,
        port=whole(args["port"]),
        resources=with_defaults(Resources, args.get("resources")),
        probes=with_defaults(Probes, args.get("probes")),
        autoscaling=scaling,
        replicas=whole(args.get("replicas", 1)),
        expose=expose,
        opt_outs=with_defaults(SecurityOptOuts, args.get("opt_outs")),
        run_as_user=whole(args.get("run_as_user", DEFAULT_RUN_AS_USER)),
        writable_paths=list(args.get("writable_paths", default_of(ServiceSpec, "writable_paths"))),
        topology_spread=args.get("topology_spread", False),
        kubernetes_version=args.get("kubernetes_version", DEFAULT_KUBERNETES_VERSION),
        security_profile=args.get("security_profile", SecurityProfile.RESTRICTED),
    )
    check.field("security_profile", service.security_profile, StackSettings, "security_profile")
    check.model("resources", service.resources, Resources)
    check.model("probes", service.probes, Probes)
    check.model("opt_outs", service.opt_outs, SecurityOptOuts)
    _check_env(check, args, expose is not None)
    check.done()
    return service


def _check_env(check: ArgsCheck, args: HardenedServiceArgs, exposed: bool) -> None:
    """Variable names, and no variable the component sets itself or a secret's value."""
    env = args.get("env") or {}
    secrets = set(args.get("secret_files") or {}) | ({AUTH_TOKEN_KEY} if "auth_token" in args else set())
    owned = {"PORT": "port", **({"ALLOWED_HOSTS": "expose"} if exposed else {})}
    owned |= {file_variable(secret): "secret_files" for secret in secrets}
    for key in env:
        check.value(f"env.{key}", key, EnvVarName)
        if key in owned:
            check.add(f"env.{key}", f"is set by the component from {owned[key]}; remove it from env")
        if key in secrets:
            check.add(
                f"env.{key}",
                f"is a secret the component mounts as a file (path in {file_variable(key)}); remove it "
                "from env: a secret in an environment variable leaks into every child process",
            )
    for key in args.get("secret_files") or {}:
        check.value(f"secret_files.{key}", key, EnvVarName)


def _deployment_spec(
    service: _Service,
    *,
    image: pulumi.Input[str],
    account: pulumi.Input[str],
    env: Mapping[str, pulumi.Input[str]],
    secret_files: Mapping[str, SecretFileArgs],
) -> k8s.apps.v1.DeploymentSpecArgs:
    labels = service.labels
    uid = None if service.assigned_ids else service.run_as_user
    volumes, mounts = pod.scratch_volumes(pod.scratch_names(service.writable_paths))
    readiness, liveness, startup = pod.http_probes(
        PORT_NAME,
        readiness_path=service.probes["readiness_path"],
        liveness_path=service.probes["liveness_path"],
        startup_allowance_seconds=service.probes["startup_allowance_seconds"],
    )
    # Secrets are files on read-only Secret volumes; the environment holds only their paths.
    env = dict(env)
    for key, ref in sorted(secret_files.items()):
        directory = secret_directory(key)
        volume, mount = pod.secret_volume(
            f"secret-{directory}", ref["secret_name"], [ref["key"]], directory=directory
        )
        volumes.append(volume)
        mounts.append(mount)
        env[file_variable(key)] = pod.secret_path(directory, ref["key"])
    env_vars = [k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in sorted(env.items())]
    container = k8s.core.v1.ContainerArgs(
        name=labels.name,
        image=image,
        # Always: the node asks the registry whether this pod's credentials may pull the image
        # instead of starting a copy it cached for someone else; by digest that is one request.
        image_pull_policy="Always",
        ports=[k8s.core.v1.ContainerPortArgs(name=PORT_NAME, container_port=service.port, protocol="TCP")],
        env=env_vars,
        resources=pod.resource_requirements(service.resources),
        readiness_probe=readiness,
        liveness_probe=liveness,
        startup_probe=startup,
        lifecycle=pod.pre_stop(service.kubernetes_version),
        security_context=pod.container_security_context(
            uid, writable_root_filesystem=service.opt_outs["writable_root_filesystem"]
        ),
        volume_mounts=mounts,
    )
    return k8s.apps.v1.DeploymentSpecArgs(
        # An HPA owns the count; a replicas field here would fight it on every update.
        replicas=None if service.autoscaling else service.replicas,
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
                automount_service_account_token=service.opt_outs["service_account_token"],
                # Service links inject every Service of the namespace as env vars.
                enable_service_links=False,
                security_context=pod.pod_security_context(uid),
                termination_grace_period_seconds=pod.TERMINATION_GRACE_SECONDS,
                containers=[container],
                volumes=volumes,
                topology_spread_constraints=pod.topology_spread(labels.selector)
                if service.topology_spread
                else None,
                affinity=pod.host_anti_affinity(labels.selector) if service.topology_spread else None,
            ),
        ),
    )
