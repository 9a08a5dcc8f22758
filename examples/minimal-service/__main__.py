"""One hardened HTTP service in its own hardened namespace: the smallest use of hardened-k8s.

The program reads no stack config: the components take typed Args, so it states what it
deploys itself, and the stack's name picks the namespace (``hello-<stack>``). Every field it
leaves out keeps the library's secure default (see ``hardened_k8s.HardenedServiceArgs``).
"""

import pulumi

from hardened_k8s import HardenedService, HardenedServiceArgs, SecureNamespace, SecureNamespaceArgs

# A pre-built image, pinned by digest (any image serving /ready and /health on $PORT).
IMAGE = "quay.io/ecosystem-appeng/hello@sha256:" + "1" * 64
NAMESPACE = f"hello-{pulumi.get_stack()}"
PART_OF = "minimal-service"

namespace = SecureNamespace(
    "hello",
    SecureNamespaceArgs(
        namespace=NAMESPACE,
        labels={"app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi"},
    ),
)
service = HardenedService(
    "hello",
    HardenedServiceArgs(
        namespace=namespace.namespace_name,
        image=IMAGE,
        port=8080,
        replicas=2,
        instance=NAMESPACE,
        part_of=PART_OF,
    ),
)
pulumi.export("dns", service.dns_name)
