"""The stack file's door to the components: a checked :class:`~hardened_k8s.config.StackConfig`
turned into each component's Args.

This is the only place the camelCase stack models meet the components. A program without a
stack file builds the same Args itself; :class:`~hardened_k8s.system.ServiceSystem` builds
them here. Names follow the stack: every object of a service is named after its key in
``services``, labelled ``instance`` = the namespace and ``part-of`` = ``partOf``, and peers
are wired from ``ingressFrom``/``egressTo``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pulumi

from .build import DEFAULT_PLATFORM, BuildSpec, build_spec
from .config import (
    DEFAULT_KUBERNETES_VERSION,
    DEFAULT_REGISTRY,
    ConfigError,
    ImageBuild,
    ImageSpec,
    Resources,
    ServiceSpec,
    StackConfig,
)
from .image import ServiceImage, service_image_args
from .inputs import (
    AutoscalingArgs,
    ExposeArgs,
    ProbesArgs,
    ResourceAmountsArgs,
    ResourcesArgs,
    SecretFileArgs,
    SecurityOptOutsArgs,
    SecurityProfile,
    SslMode,
)
from .labels import Labels
from .namespace import SecureNamespaceArgs
from .network import Peer
from .postgres import CA_KEY, CA_SECRET_FILE, URL_KEY, PostgreSQLArgs
from .postgres import PORT as DATABASE_PORT
from .workload import HardenedServiceArgs, peer_url_env


def image_build_spec(
    name: str,
    build: ImageBuild,
    *,
    version: str,
    revision: str,
    registry: str = DEFAULT_REGISTRY,
    platform: str = DEFAULT_PLATFORM,
    source: str = "",
) -> BuildSpec:
    """What an ``image.build`` entry builds as ``<registry>/<name>``: its context,
    Containerfile, target and build args, tagged ``sha-<revision>`` and ``version``
    (defaults: ``quay.io/ecosystem-appeng``, ``linux/amd64``, no source label)."""
    return build_spec(
        name,
        context=build.context,
        containerfile=build.containerfile,
        target=build.target,
        registry=registry,
        version=version,
        revision=revision,
        platform=platform,
        build_args=build.args,
        source=source,
    )


def stack_build_spec(
    config: StackConfig, name: str, build: ImageBuild, *, version: str, revision: str
) -> BuildSpec:
    """What ``image.build`` of ``name`` in a stack builds: its build with the stack's registry,
    platform and source, tagged ``sha-<revision>`` and ``version``.

    The one place a stack's image parameters are put together, for :class:`~hardened_k8s.system.ServiceSystem`
    and for anything that builds the same images outside ``pulumi up``.
    """
    return image_build_spec(
        name,
        build,
        version=version,
        revision=revision,
        registry=config.registry,
        platform=config.platform,
        source=config.source_url,
    )


def image_ref(
    resource: str,
    name: str,
    image: ImageSpec,
    *,
    version: str,
    revision: str,
    registry: str = DEFAULT_REGISTRY,
    platform: str = DEFAULT_PLATFORM,
    source: str = "",
    registry_username: pulumi.Input[str] | None = None,
    registry_password: pulumi.Input[str] | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> pulumi.Input[str]:
    """The reference a workload runs for an ``image`` entry (of a stack's service or
    database, or of a program's own :class:`~hardened_k8s.config.ServiceSpec`).

    ``image.ref`` as given, registering nothing; for ``image.build``, a
    :class:`~hardened_k8s.image.ServiceImage` named ``resource`` that builds
    :func:`image_build_spec` of it as ``<registry>/<name>`` and pushes it (with
    ``registry_username``/``registry_password``, default the build machine's docker login),
    and its ``repo@sha256:<digest>``.
    """
    if image.build is None:
        assert image.ref is not None  # an ImageSpec holds exactly one of build and ref
        return image.ref
    spec = image_build_spec(
        name,
        image.build,
        version=version,
        revision=revision,
        registry=registry,
        platform=platform,
        source=source,
    )
    args = service_image_args(spec, registry_username=registry_username, registry_password=registry_password)
    return ServiceImage(resource, args, opts=opts).ref


def namespace_args(config: StackConfig) -> SecureNamespaceArgs:
    """The stack's namespace: protected whenever the database is (deleting the namespace
    would delete the database's claims)."""
    return SecureNamespaceArgs(
        namespace=config.namespace,
        kubernetes_version=config.kubernetes_version,
        labels={"app.kubernetes.io/part-of": config.part_of, "app.kubernetes.io/managed-by": "pulumi"},
        protect=config.database is not None and config.database.protect,
        security_profile=SecurityProfile(config.security_profile),
    )


def peers(config: StackConfig) -> dict[str, Peer]:
    """Every service and the database, by name, as the peers ``ingressFrom``/``egressTo`` name."""
    found = {
        name: Peer(name, workload_labels(config, name).selector, spec.port)
        for name, spec in config.services.items()
    }
    if config.database is not None:
        db = config.database.name
        found[db] = Peer(db, workload_labels(config, db).selector, DATABASE_PORT)
    return found


def workload_labels(config: StackConfig, name: str) -> Labels:
    """The recommended labels of service ``name`` or of the database."""
    db = config.database
    if db is not None and name == db.name:
        return Labels(db.name, config.namespace, db.version, "database", config.part_of)
    spec = config.services[name]
    return Labels(name, config.namespace, spec.version, spec.component, config.part_of)


def service_args(
    config: StackConfig,
    name: str,
    *,
    namespace: pulumi.Input[str],
    image: pulumi.Input[str],
    database_url_secret: pulumi.Input[str] | None = None,
    auth_token: pulumi.Input[str] | None = None,
) -> HardenedServiceArgs:
    """:class:`~hardened_k8s.workload.HardenedServiceArgs` of service ``name`` of the stack.

    :func:`service_spec_args` with the stack's names, peers, production and profile; naming
    the database in ``egressTo`` also mounts ``database_url_secret`` (the database's
    ``url_secret_name``) as ``DATABASE_URL_FILE``, and ``bearerAuth`` needs ``auth_token``
    (the stack secret ``authToken``).
    """
    spec = config.services[name]
    labels = workload_labels(config, name)
    if spec.bearer_auth and auth_token is None:
        raise missing_secret("authToken", f"{name} sets bearerAuth")
    args = service_spec_args(
        spec,
        name=name,
        namespace=namespace,
        image=image,
        auth_token=auth_token,
        instance=labels.instance,
        part_of=labels.part_of,
        peers=peers(config),
        http_peers=config.services,
        topology_spread=config.production,
        kubernetes_version=config.kubernetes_version,
        security_profile=SecurityProfile(config.security_profile),
    )
    db = config.database
    if db is not None and db.name in spec.egress_to:
        if database_url_secret is None:
            raise ConfigError(
                [(f"services.{name}.egressTo", f"names {db.name!r}, but no database URL Secret was given")]
            )
        files = {URL_KEY: SecretFileArgs(secret_name=database_url_secret, key=URL_KEY)}
        if db.tls_secret_name is not None:
            # The CA the URL's sslrootcert names (postgres.CA_PATH).
            files[CA_SECRET_FILE] = SecretFileArgs(secret_name=db.tls_secret_name, key=CA_KEY)
        args["secret_files"] = files
    return args


def service_spec_args(
    spec: ServiceSpec,
    *,
    name: str,
    namespace: pulumi.Input[str],
    image: pulumi.Input[str],
    instance: str,
    part_of: str,
    auth_token: pulumi.Input[str] | None = None,
    peers: Mapping[str, Peer] | None = None,
    http_peers: Collection[str] | None = None,
    topology_spread: bool = False,
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION,
    security_profile: SecurityProfile = SecurityProfile.RESTRICTED,
) -> HardenedServiceArgs:
    """:class:`~hardened_k8s.workload.HardenedServiceArgs` of one :class:`~hardened_k8s.config.ServiceSpec`
    (a program's own config of one service), its objects named ``name``.

    ``ingressFrom`` and ``egressTo`` are looked up in ``peers`` (by name); each peer of
    ``egressTo`` that is in ``http_peers`` (default: every peer) becomes ``<PEER>_URL`` in the
    environment. ``bearerAuth`` needs ``auth_token``; a database peer's URL Secret is the
    stack's business (:func:`service_args`). ``image`` is the reference to run (``image.ref``,
    or a built digest).
    """
    known = dict(peers or {})
    urls = known if http_peers is None else http_peers
    missing = [
        (f"{name}.{key}", f"{peer!r} is not a known peer (known: {', '.join(sorted(known)) or 'none'})")
        for key, names in (("ingressFrom", spec.ingress_from), ("egressTo", spec.egress_to))
        for peer in names
        if peer not in known
    ]
    if spec.bearer_auth and auth_token is None:
        missing.append((f"{name}.bearerAuth", "is set, but no auth_token was given; pass the bearer token"))
    if missing:
        raise ConfigError(missing)
    args = HardenedServiceArgs(
        namespace=namespace,
        image=image,
        port=spec.port,
        app_name=name,
        instance=instance,
        version=spec.version,
        component=spec.component,
        part_of=part_of,
        env={**dict(peer_url_env(known[p]) for p in spec.egress_to if p in urls), **spec.env},
        resources=resources_args(spec.resources),
        probes=ProbesArgs(
            readiness_path=spec.probes.readiness_path,
            liveness_path=spec.probes.liveness_path,
            startup_allowance_seconds=spec.probes.startup_allowance_seconds,
        ),
        ingress_from=[known[p].args() for p in spec.ingress_from],
        egress_to=[known[p].args() for p in spec.egress_to],
        run_as_user=spec.run_as_user,
        writable_paths=list(spec.writable_paths),
        opt_outs=SecurityOptOutsArgs(
            writable_root_filesystem=spec.opt_outs.writable_root_filesystem,
            service_account_token=spec.opt_outs.service_account_token,
        ),
        topology_spread=topology_spread,
        kubernetes_version=kubernetes_version,
        security_profile=security_profile,
    )
    if spec.autoscaling is not None:
        scaling = spec.autoscaling
        args["autoscaling"] = AutoscalingArgs(
            min_replicas=scaling.min_replicas,
            max_replicas=scaling.max_replicas,
            cpu_utilization=scaling.cpu_utilization,
            memory_utilization=scaling.memory_utilization,
            scale_down_stabilization_seconds=scaling.scale_down_stabilization_seconds,
        )
    else:
        args["replicas"] = spec.min_replicas
    if spec.expose is not None:
        args["expose"] = ExposeArgs(
            host=spec.expose.host,
            tls_secret_name=spec.expose.tls_secret_name,
            ingress_class_name=spec.expose.ingress_class_name,
            controller_namespace=spec.expose.controller_namespace,
        )
    if spec.bearer_auth and auth_token is not None:
        args["auth_token"] = auth_token
    return args


def database_args(
    config: StackConfig,
    *,
    namespace: pulumi.Input[str],
    image: pulumi.Input[str],
    password: pulumi.Input[str],
) -> PostgreSQLArgs:
    """:class:`~hardened_k8s.postgres.PostgreSQLArgs` of the stack's database, admitting exactly
    the services that name it in ``egressTo``."""
    db = config.database
    if db is None:
        raise ConfigError([("database", "is not set; this stack has no database")])
    labels = workload_labels(config, db.name)
    wired = peers(config)
    args = PostgreSQLArgs(
        namespace=namespace,
        image=image,
        password=password,
        app_name=db.name,
        instance=labels.instance,
        part_of=labels.part_of,
        version=db.version,
        database=db.database,
        user=db.user,
        storage=str(db.storage),
        resources=resources_args(db.resources),
        run_as_user=db.run_as_user,
        protect=db.protect,
        clients=[wired[svc].args() for svc, spec in config.services.items() if db.name in spec.egress_to],
        kubernetes_version=config.kubernetes_version,
        security_profile=SecurityProfile(config.security_profile),
    )
    if db.storage_class_name is not None:
        args["storage_class_name"] = db.storage_class_name
    if db.sslmode is not None:
        args["sslmode"] = SslMode(db.sslmode)
    if db.tls_secret_name is not None:
        args["tls_secret_name"] = db.tls_secret_name
    return args


def missing_secret(key: str, why: str) -> ConfigError:
    """The error of a required stack secret that was not given (as ``load_stack_config`` words it)."""
    return ConfigError(
        [(key, f"required secret is missing ({why}); run `pulumi config set --secret {key} <value>`")]
    )


def resources_args(resources: Resources) -> ResourcesArgs:
    """Requests and limits as Args; quantities as written in the stack file."""

    def amounts(side: str) -> ResourceAmountsArgs:
        given = getattr(resources, side)
        return ResourceAmountsArgs(
            cpu=str(given.cpu), memory=str(given.memory), ephemeral_storage=str(given.ephemeral_storage)
        )

    return ResourcesArgs(requests=amounts("requests"), limits=amounts("limits"))
