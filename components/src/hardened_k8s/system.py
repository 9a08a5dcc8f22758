"""ServiceSystem: a whole stack config deployed as namespace, images, database and services.

No ``from __future__ import annotations`` here: ``TypedDict`` reads ``Required`` off
evaluated annotations only.
"""

from typing import Required, TypedDict

import pulumi

from . import stack_args
from .arguments import ArgsCheck
from .config import ImageSpec, StackConfig
from .namespace import SecureNamespace
from .postgres import PostgreSQL
from .stack_config import StackSecrets
from .tokens import type_token, with_former_type
from .workload import HardenedService


class ServiceSystemArgs(TypedDict, total=False):
    """The inputs of :class:`ServiceSystem`: a stack file, read and checked."""

    config: Required[StackConfig]
    """The stack's config, from :func:`~hardened_k8s.stack_config.load_stack_config` (or
    :func:`~hardened_k8s.validation.parse_stack_config`). Required."""
    revision: Required[str]
    """Git commit built images are tagged with (``sha-<full commit>``); see
    :func:`~hardened_k8s.stack_config.source_revision`. Required."""
    secrets: StackSecrets
    """The stack's secrets, each a secret ``Output``; the database password is required with a
    database, the auth token with ``bearerAuth``. Default: none."""


class ServiceSystem(pulumi.ComponentResource):
    """Everything a :class:`~hardened_k8s.config.StackConfig` describes, wired together.

    Each child gets the Args :mod:`hardened_k8s.stack_args` builds from the config. Traffic
    follows the config's ``ingressFrom``/``egressTo`` and nothing else: each service's
    NetworkPolicy admits its callers on its port and lets it reach what it names, and the
    database admits exactly the services that name it in ``egressTo``. Those services get
    the database's URL as a file of its Secret, its path in ``DATABASE_URL_FILE``. Images
    are built and pushed (:class:`~hardened_k8s.image.ServiceImage`) or taken from ``image.ref``.

    Pulumi children are ``f"{name}-namespace"``, ``f"{name}-{service}"``,
    ``f"{name}-{service}-image"`` and ``f"{name}-{database.name}"``.
    """

    namespace_name: pulumi.Output[str]
    """The stack's namespace."""
    endpoints: pulumi.Output[dict[str, dict[str, str]]]
    """Per service and the database: ``{"dns": <in-cluster DNS name>, "image": <ref>}``."""

    def __init__(
        self, name: str, args: ServiceSystemArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            type_token("ServiceSystem"),
            name,
            None,
            with_former_type(opts, "hardened-k8s:system:ServiceSystem"),
        )
        check = ArgsCheck("ServiceSystem", name)
        check.fields(ServiceSystemArgs, args)
        check.done()
        child = pulumi.ResourceOptions(parent=self)
        config = args["config"]
        secrets = args.get("secrets") or StackSecrets()
        revision = args["revision"]

        def image_ref(resource: str, image_name: str, image: ImageSpec, tag: str) -> pulumi.Input[str]:
            """``image.ref`` as given, or the digest of ``image.build`` once pushed."""
            return stack_args.image_ref(
                resource,
                image_name,
                image,
                version=tag,
                revision=revision,
                registry=config.registry,
                platform=config.platform,
                source=config.source_url,
                registry_username=config.registry_username,
                registry_password=secrets.registry_password,
                opts=child,
            )

        namespace = SecureNamespace(f"{name}-namespace", stack_args.namespace_args(config), opts=child)
        ns = namespace.namespace_name
        endpoints: dict[str, dict[str, pulumi.Output[str]]] = {}

        database = None
        db = config.database
        if db is not None:
            if secrets.database_password is None:
                raise stack_args.missing_secret("databasePassword", "the stack has a database")
            db_image = image_ref(f"{name}-{db.name}-image", db.name, db.image, db.version)
            database = PostgreSQL(
                f"{name}-{db.name}",
                stack_args.database_args(
                    config, namespace=ns, image=db_image, password=secrets.database_password
                ),
                opts=child,
            )
            endpoints[db.name] = {"dns": database.dns_name, "image": pulumi.Output.from_input(db_image)}

        for svc, spec in config.services.items():
            service = HardenedService(
                f"{name}-{svc}",
                stack_args.service_args(
                    config,
                    svc,
                    namespace=ns,
                    image=image_ref(f"{name}-{svc}-image", svc, spec.image, spec.version),
                    database_url_secret=database.url_secret_name if database is not None else None,
                    auth_token=secrets.auth_token,
                ),
                opts=child,
            )
            endpoints[svc] = {"dns": service.dns_name, "image": service.image}

        self.namespace_name = ns
        self.endpoints = pulumi.Output.from_input(endpoints)  # type: ignore[arg-type]
        self.register_outputs({"namespaceName": self.namespace_name, "endpoints": self.endpoints})
