"""A Node.js API and the Python service it calls, as two hardened services in one namespace.

Config: ``namespace``, ``registry`` (default ``quay.io/ecosystem-appeng``), ``imageRevision``
(default: the checkout's HEAD) and ``services``, a ServiceSpec per service name. Each
``egressTo`` names a service this one may call: the NetworkPolicies admit exactly those
connections and the caller finds its peer at ``<PEER>_URL`` (``INTELLIGENCE_URL``). Each
``image.build`` is a four-stage Containerfile built and pushed, its digest deployed; every
pod keeps the library's read-only root filesystem.
"""

from pathlib import Path

import pulumi

from hardened_k8s import (
    ConfigError,
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
from hardened_k8s.labels import Labels
from hardened_k8s.network import Peer

PART_OF = "node-python-pair"

config = pulumi.Config()
namespace = config.require("namespace")
raw = config.require_object("services")
if not isinstance(raw, dict) or not raw:
    raise ConfigError([("services", "must map each service name to its spec (image, port, ...)")])
specs = {name: validate_model(ServiceSpec, value, path=f"services.{name}") for name, value in raw.items()}
unknown = [
    (f"services.{name}.{key}", f"{peer!r} is not a service of this stack (known: {', '.join(specs)})")
    for name, spec in specs.items()
    for key, peers in (("ingressFrom", spec.ingress_from), ("egressTo", spec.egress_to))
    for peer in peers
    if peer not in specs
]
if unknown:
    raise ConfigError(unknown)

registry = config.get("registry") or DEFAULT_REGISTRY
revision = source_revision(Path.cwd(), config.get("imageRevision"))
ns = SecureNamespace(
    PART_OF,
    SecureNamespaceArgs(
        namespace=namespace,
        labels={"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi"},
    ),
)
labels = {name: Labels(name, namespace, s.version, s.component, PART_OF) for name, s in specs.items()}
peers = {name: Peer(name, labels[name].selector, s.port) for name, s in specs.items()}

for name, spec in specs.items():
    image = image_ref(
        f"{name}-image", name, spec.image, version=spec.version, revision=revision, registry=registry
    )
    # Each egressTo peer is admitted by name and found at <PEER>_URL (INTELLIGENCE_URL).
    service = HardenedService(
        name,
        service_spec_args(
            spec,
            name=name,
            namespace=ns.namespace_name,
            image=image,
            instance=namespace,
            part_of=PART_OF,
            peers=peers,
        ),
    )
    pulumi.export(name, {"dns": service.dns_name, "image": service.image})
