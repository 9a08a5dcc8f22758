"""ServiceSystem: a whole stack config deployed as namespace, images, database and services."""

from __future__ import annotations

from pathlib import Path

import pulumi

from .build import BuildSpec, build_spec
from .config import ImageBuild, ImageSpec, StackConfig
from .image import ServiceImage
from .labels import Labels
from .namespace import SecureNamespace
from .network import Peer
from .postgres import URL_KEY, PostgreSQL
from .stack_config import StackSecrets
from .workload import HardenedService, SecretFile, peer_url_env


def stack_build_spec(
    config: StackConfig, name: str, build: ImageBuild, *, version: str, revision: str
) -> BuildSpec:
    """What ``image.build`` of ``name`` in a stack builds: its build with the stack's registry,
    platform and source, tagged ``sha-<revision>`` and ``version``.

    The one place a stack's image parameters are put together, for :class:`ServiceSystem`
    and for anything that builds the same images outside ``pulumi up``.
    """
    return build_spec(
        name,
        context=build.context,
        containerfile=build.containerfile,
        target=build.target,
        registry=config.registry,
        version=version,
        revision=revision,
        platform=config.platform,
        build_args=build.args,
        source=config.source_url,
    )


class ServiceSystem(pulumi.ComponentResource):
    """Everything a :class:`~hardened_k8s.config.StackConfig` describes, wired together.

    Traffic follows the config's ``ingressFrom``/``egressTo`` and nothing else: each
    service's NetworkPolicy admits its callers on its port and lets it reach what it
    names, and the database admits exactly the services that name it in ``egressTo``.
    Those services get the database's URL as a file of its Secret, its path in
    ``DATABASE_URL_FILE``. Images are built and pushed (:class:`ServiceImage`) or taken from
    ``image.ref``.

    Pulumi children are ``f"{name}-namespace"``, ``f"{name}-{service}"``,
    ``f"{name}-{service}-image"`` and ``f"{name}-{database.name}"``.
    """

    namespace_name: pulumi.Output[str]
    """The stack's namespace."""
    endpoints: pulumi.Output[dict[str, dict[str, str]]]
    """Per service and the database: ``{"dns": <in-cluster DNS name>, "image": <ref>}``."""

    def __init__(
        self,
        name: str,
        config: StackConfig,
        secrets: StackSecrets,
        *,
        revision: str,
        root: Path = Path("."),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("hardened-k8s:system:ServiceSystem", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        version = config.kubernetes_version

        def build_image(resource: str, image_name: str, image: ImageSpec, tag: str) -> pulumi.Input[str]:
            """``image.ref`` as given, or the digest of ``image.build`` once pushed."""
            if image.build is None:
                assert image.ref is not None  # ImageSpec holds exactly one source
                return image.ref
            built = ServiceImage(
                resource,
                stack_build_spec(config, image_name, image.build, version=tag, revision=revision),
                registry_username=config.registry_username,
                registry_password=secrets.registry_password,
                opts=child,
            )
            return built.ref

        namespace = SecureNamespace(
            f"{name}-namespace",
            namespace=config.namespace,
            kubernetes_version=version,
            labels={"app.kubernetes.io/part-of": config.part_of, "app.kubernetes.io/managed-by": "pulumi"},
            # Deleting the namespace would delete the database's claims: protect it like them.
            protect=config.database is not None and config.database.protect,
            security_profile=config.security_profile,
            opts=child,
        )
        ns = namespace.namespace_name

        labels = {
            svc: Labels(svc, config.namespace, spec.version, spec.component, config.part_of)
            for svc, spec in config.services.items()
        }
        peers = {svc: Peer(svc, labels[svc].selector, spec.port) for svc, spec in config.services.items()}
        endpoints: dict[str, dict[str, pulumi.Output[str]]] = {}

        database = None
        db = config.database
        if db is not None:
            assert secrets.database_password is not None  # load_stack_config guarantees it
            db_image = build_image(f"{name}-{db.name}-image", db.name, db.image, db.version)
            db_labels = Labels(db.name, config.namespace, db.version, "database", config.part_of)
            peers[db.name] = Peer(db.name, db_labels.selector, 5432)
            database = PostgreSQL(
                f"{name}-{db.name}",
                db,
                namespace=ns,
                password=secrets.database_password,
                image=db_image,
                labels=db_labels,
                clients=[peers[svc] for svc, spec in config.services.items() if db.name in spec.egress_to],
                kubernetes_version=version,
                security_profile=config.security_profile,
                opts=child,
            )
            endpoints[db.name] = {
                "dns": database.dns_name,
                "image": pulumi.Output.from_input(db_image),
            }

        for svc, spec in config.services.items():
            image = build_image(f"{name}-{svc}-image", svc, spec.image, spec.version)
            secret_files = {}
            if database is not None and db is not None and db.name in spec.egress_to:
                secret_files[URL_KEY] = SecretFile(database.url_secret_name, URL_KEY)
            service = HardenedService(
                f"{name}-{svc}",
                spec,
                namespace=ns,
                image=image,
                labels=labels[svc],
                ingress_from=[peers[p] for p in spec.ingress_from],
                egress_to=[peers[p] for p in spec.egress_to],
                secret_files=secret_files,
                # Each HTTP peer it may call, as <PEER>_URL (never hand-written in stack files).
                platform_env=dict(peer_url_env(peers[p]) for p in spec.egress_to if p in config.services),
                auth_token=secrets.auth_token if spec.bearer_auth else None,
                production=config.production,
                kubernetes_version=version,
                security_profile=config.security_profile,
                opts=child,
            )
            endpoints[svc] = {"dns": service.dns_name, "image": service.image}

        self.namespace_name = ns
        self.endpoints = pulumi.Output.from_input(endpoints)  # type: ignore[arg-type]
        self.register_outputs({"namespaceName": self.namespace_name, "endpoints": self.endpoints})
