"""Store inventory: the store API, its MCP server and PostgreSQL, one stack per environment.

Configuration lives in ``Pulumi.<stack>.yaml`` (see README); it is checked in full before
any resource is registered.
"""

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from hardened_k8s import ServiceSystem, ServiceSystemArgs, load_stack_config, source_revision

ROOT = Path(__file__).resolve().parent

config, secrets = load_stack_config(ROOT)
# enable_secret_mutable: a rotated secret (databasePassword, authToken) updates its Secret in
# place, so mounted files change under the running pods and nothing protected is replaced
# (docs/rotating-secrets.md).
provider = k8s.Provider(
    "kubernetes", context=config.kube_context, enable_server_side_apply=True, enable_secret_mutable=True
)
system = ServiceSystem(
    "store-inventory",
    ServiceSystemArgs(config=config, secrets=secrets, revision=source_revision(ROOT, config.image_revision)),
    opts=pulumi.ResourceOptions(providers=[provider]),
)

pulumi.export("namespace", system.namespace_name)
pulumi.export("services", system.endpoints)
