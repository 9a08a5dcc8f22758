"""A hardened HTTP service in its own hardened namespace: the smallest use of hardened-k8s.

Config: ``namespace`` and ``service`` (a ServiceSpec: image ref, port, replicas or
autoscaling, probes, resources ...). Everything else keeps the library's secure defaults.
"""

import pulumi

from hardened_k8s.config import ConfigError, ServiceSpec
from hardened_k8s.labels import Labels
from hardened_k8s.namespace import SecureNamespace
from hardened_k8s.validation import validate_model
from hardened_k8s.workload import HardenedService

config = pulumi.Config()
spec = validate_model(ServiceSpec, config.require_object("service"), path="service")
if spec.image.ref is None:
    raise ConfigError([("service.image", "this example deploys a pre-built image; set image.ref")])

namespace = SecureNamespace("hello", namespace=config.require("namespace"))
service = HardenedService(
    "hello",
    spec,
    namespace=namespace.namespace_name,
    image=spec.image.ref,
    labels=Labels(
        name="hello",
        instance=config.require("namespace"),
        version=spec.version,
        component="server",
        part_of="minimal-service",
    ),
)
pulumi.export("dns", service.dns_name)
