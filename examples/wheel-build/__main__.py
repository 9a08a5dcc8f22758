"""textstats, installed from wheels, as one hardened service in its own namespace.

Config: ``namespace``, ``registry`` (default ``quay.io/ecosystem-appeng``), ``imageRevision``
(default: the checkout's HEAD) and ``service``, a ServiceSpec. With ``service.image.build``
the program builds ``service/Containerfile``, whose builder stage makes a wheel of every
dependency and of textstats itself and whose runtime stage installs only those wheels; it
pushes the image and deploys the digest. ``service.image.ref`` deploys a published
``repo@sha256:`` instead. Everything but the stack file's numbers keeps the library's
secure defaults.
"""

from pathlib import Path

import pulumi

from hardened_k8s import (
    HardenedService,
    SecureNamespace,
    SecureNamespaceArgs,
    ServiceSpec,
    image_ref,
    service_spec_args,
    source_revision,
    validate_model,
)
from hardened_k8s.config import DEFAULT_REGISTRY

NAME = "textstats"

config = pulumi.Config()
namespace = config.require("namespace")
spec = validate_model(ServiceSpec, config.require_object("service"), path="service")

image = image_ref(
    f"{NAME}-image",
    NAME,
    spec.image,
    version=spec.version,
    revision=source_revision(Path.cwd(), config.get("imageRevision")),
    registry=config.get("registry") or DEFAULT_REGISTRY,
)

ns = SecureNamespace(
    NAME,
    SecureNamespaceArgs(
        namespace=namespace,
        labels={"app.kubernetes.io/part-of": "wheel-build", "app.kubernetes.io/managed-by": "pulumi"},
    ),
)
service = HardenedService(
    NAME,
    service_spec_args(
        spec,
        name=NAME,
        namespace=ns.namespace_name,
        image=image,
        instance=namespace,
        part_of="wheel-build",
    ),
)
pulumi.export("dns", service.dns_name)
pulumi.export("image", service.image)
