"""What the real node runs besides the stacks: the sandbox image, cluster DNS, the metrics API
and local storage.

The sandbox (pause), CoreDNS and metrics-server images are built ``FROM scratch`` around
static binaries (Debian's catatonit, CoreDNS and metrics-server from the toolchain) by the
image harness's engine and pushed to the local registry, so containerd pulls them by digest
like every other image. CoreDNS runs as a Deployment in ``kube-system`` behind the ``kube-dns``
Service at :data:`node.CLUSTER_DNS`, the pods and port the rendered DNS egress rules name,
under a restricted security context. metrics-server runs the same way behind the
``v1beta1.metrics.k8s.io`` APIService: it scrapes the real node's kubelet
(``/metrics/resource``, verified against the cluster CA, authorised by kubelet's webhook) and
serves the resource metrics API the HorizontalPodAutoscaler controller and ``kubectl top`` read.
Its image is built with the node's; it runs only when asked for
(:meth:`.local.LocalCluster.start_metrics_api`). Storage is a ``local`` StorageClass with
pre-made PersistentVolumes on the node: the kubelet applies a pod's ``fsGroup`` to them as a
provisioner's volumes would get it.
"""

from __future__ import annotations

import base64
import io
import shutil
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .node import CLUSTER_DNS, CLUSTER_DOMAIN, NODE_NAME, REGISTRY

if TYPE_CHECKING:
    from tests.image.engine import Harness


IMAGES = f"{REGISTRY}/hardened-k8s"
STORAGE_CLASS = "local"
LOCAL_VOLUMES = 6
"""PersistentVolumes on the real node, enough for the database claims of a stack and its tests."""
DNS_LABELS = {"k8s-app": "kube-dns"}
METRICS_LABELS = {"k8s-app": "metrics-server"}
METRICS_API = "v1beta1.metrics.k8s.io"
METRICS_SERVER_DNS = "metrics-server.kube-system.svc"
"""The name the aggregator verifies metrics-server's serving certificate for."""
METRICS_RESOLUTION = "15s"
"""How often metrics-server scrapes kubelet (its own default is 60 s; 10 s is its minimum)."""


def _scratch_image(harness: Harness, name: str, files: dict[str, Path], entrypoint: list[str]) -> str:
    """Build a ``FROM scratch`` image holding ``files`` (path in image -> host file), push it,
    and return its ``repo@digest`` reference."""
    buffer = io.BytesIO()
    lines = ["FROM scratch"]
    with tarfile.open(fileobj=buffer, mode="w") as context:
        for target, source in files.items():
            context.add(str(source), arcname=Path(target).name)
            lines.append(f"COPY {Path(target).name} {target}")
        lines.append("USER 65532:65532")
        lines.append(f"ENTRYPOINT {entrypoint!r}".replace("'", '"'))
        dockerfile = ("\n".join(lines) + "\n").encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        context.addfile(info, io.BytesIO(dockerfile))
    buffer.seek(0)
    repo = f"{IMAGES}/{name}"
    harness.client.images.build(fileobj=buffer, custom_context=True, tag=f"{repo}:local", rm=True, pull=False)
    digest = ""
    for chunk in harness.client.api.push(repo, tag="local", stream=True, decode=True):
        if "error" in chunk:
            raise RuntimeError(f"push of {repo} failed: {chunk['error']}")
        digest = (chunk.get("aux") or {}).get("Digest", digest)
    if not digest:
        raise RuntimeError(f"push of {repo} reported no digest")
    return f"{repo}@{digest}"


def build_images(harness: Harness, bin_dir: Path) -> dict[str, str]:
    """The pause, CoreDNS and metrics-server images, pushed; ``{name: repo@digest}``."""
    catatonit = shutil.which("catatonit")
    if catatonit is None:
        raise RuntimeError("catatonit is missing (Debian package catatonit)")
    return {
        # -P: catatonit as a pause process, reaping the sandbox's children.
        "pause": _scratch_image(harness, "pause", {"/pause": Path(catatonit)}, ["/pause", "-P"]),
        "coredns": _scratch_image(
            harness,
            "coredns",
            {"/coredns": bin_dir / "coredns"},
            ["/coredns", "-conf", "/etc/coredns/Corefile"],
        ),
        "metrics-server": _scratch_image(
            harness, "metrics-server", {"/metrics-server": bin_dir / "metrics-server"}, ["/metrics-server"]
        ),
    }


COREFILE = f""".:53 {{
    errors
    health :8080
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
    loop
    reload
}}
"""
"""Cluster names only: pods on this node have no route beyond the pod and Service networks."""


RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}
"""The add-ons' container security context: what PSA ``restricted`` asks, and a read-only root."""


def _node_deployment(
    meta: dict[str, Any],
    labels: dict[str, str],
    container: dict[str, Any],
    volumes: list[dict[str, Any]],
    sysctls: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """An add-on's Deployment: one replica on the real node, as its own service account
    (``meta``'s name), non-root 65532 with the runtime's seccomp profile, ``container`` with
    :data:`RESTRICTED_CONTAINER`."""
    pod_security: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if sysctls:
        pod_security["sysctls"] = sysctls
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": meta["name"],
                    "nodeSelector": {"kubernetes.io/hostname": NODE_NAME},
                    "securityContext": pod_security,
                    "containers": [{**container, "securityContext": RESTRICTED_CONTAINER}],
                    "volumes": volumes,
                },
            },
        },
    }


def dns_objects(image: str) -> list[dict[str, Any]]:
    """CoreDNS in ``kube-system``: its identity, read access, config, Deployment and Service."""
    ns = "kube-system"
    meta = {"name": "coredns", "namespace": ns}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": ns}],
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"Corefile": COREFILE}},
        _node_deployment(
            meta,
            DNS_LABELS,
            {
                "name": "coredns",
                "image": image,
                "ports": [
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                ],
                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
                "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
                "resources": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
            },
            [{"name": "config", "configMap": {"name": "coredns"}}],
            # Port 53 without a capability: a namespaced, safe sysctl.
            sysctls=[{"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}],
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": ns, "labels": DNS_LABELS},
            "spec": {
                "clusterIP": CLUSTER_DNS,
                "selector": DNS_LABELS,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        },
    ]


def metrics_objects(image: str, ca: str, cert: str, key: str) -> list[dict[str, Any]]:
    """metrics-server in ``kube-system``: its identity and the access it needs, its serving
    certificate (``cert``/``key``, signed by the cluster CA ``ca`` for
    :data:`METRICS_SERVER_DNS`), the CA it checks kubelet's serving certificate against, the
    Deployment, its Service and the APIService the aggregator routes ``metrics.k8s.io`` by.

    Its access is what upstream's manifests grant: read pods and nodes, ``nodes/metrics`` (what
    kubelet's webhook authorizer asks for ``/metrics/resource``), delegated authentication and
    authorization of the aggregator's requests, and the front proxy's CA from
    ``extension-apiserver-authentication``.
    """
    ns = "kube-system"
    meta = {"name": "metrics-server", "namespace": ns, "labels": METRICS_LABELS}
    subject = [{"kind": "ServiceAccount", "name": "metrics-server", "namespace": ns}]

    def binding(
        kind: str, name: str, role_kind: str, role: str, namespace: str | None = None
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": name}
        if namespace:
            metadata["namespace"] = namespace
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": kind,
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": subject,
        }

    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:metrics-server"},
            "rules": [
                {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]},
            ],
        },
        binding("ClusterRoleBinding", "system:metrics-server", "ClusterRole", "system:metrics-server"),
        binding(
            "ClusterRoleBinding",
            "metrics-server:system:auth-delegator",
            "ClusterRole",
            "system:auth-delegator",
        ),
        binding(
            "RoleBinding",
            "metrics-server-auth-reader",
            "Role",
            "extension-apiserver-authentication-reader",
            ns,
        ),
        {
            # Who may read the metrics: whoever may view (kubectl top); the HPA controller has
            # its own grant in the bootstrap policy.
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": "system:aggregated-metrics-reader",
                "labels": {
                    f"rbac.authorization.k8s.io/aggregate-to-{verb}": "true"
                    for verb in ("view", "edit", "admin")
                },
            },
            "rules": [
                {
                    "apiGroups": ["metrics.k8s.io"],
                    "resources": ["pods", "nodes"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": "metrics-server-tls", "namespace": ns},
            "data": {
                "tls.crt": base64.b64encode(cert.encode()).decode(),
                "tls.key": base64.b64encode(key.encode()).decode(),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "metrics-server-kubelet-ca", "namespace": ns},
            "data": {"ca.crt": ca},
        },
        _node_deployment(
            meta,
            METRICS_LABELS,
            {
                "name": "metrics-server",
                "image": image,
                "args": [
                    "--secure-port=10250",
                    "--tls-cert-file=/etc/metrics-server/tls/tls.crt",
                    "--tls-private-key-file=/etc/metrics-server/tls/tls.key",
                    # kubelet's serving certificate is the cluster CA's, for the
                    # node's IP: verified, not skipped (no --kubelet-insecure-tls).
                    "--kubelet-certificate-authority=/etc/metrics-server/kubelet-ca/ca.crt",
                    "--kubelet-preferred-address-types=InternalIP",
                    "--kubelet-use-node-status-port",
                    # The KWOK nodes have no kubelet to scrape.
                    "--node-selector=hardened-k8s.dev/node=real",
                    f"--metric-resolution={METRICS_RESOLUTION}",
                ],
                "ports": [{"name": "https", "containerPort": 10250, "protocol": "TCP"}],
                "volumeMounts": [
                    {"name": "tls", "mountPath": "/etc/metrics-server/tls", "readOnly": True},
                    {
                        "name": "kubelet-ca",
                        "mountPath": "/etc/metrics-server/kubelet-ca",
                        "readOnly": True,
                    },
                ],
                "readinessProbe": {
                    "httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"},
                    "periodSeconds": 5,
                },
                "livenessProbe": {
                    "httpGet": {"path": "/livez", "port": "https", "scheme": "HTTPS"},
                    "periodSeconds": 10,
                    "failureThreshold": 6,
                },
                "resources": {
                    "requests": {"cpu": "20m", "memory": "48Mi"},
                    "limits": {"memory": "200Mi"},
                },
            },
            [
                {"name": "tls", "secret": {"secretName": "metrics-server-tls"}},
                {"name": "kubelet-ca", "configMap": {"name": "metrics-server-kubelet-ca"}},
            ],
        ),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "selector": METRICS_LABELS,
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"}],
            },
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": METRICS_API},
            "spec": {
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "service": {"name": "metrics-server", "namespace": ns, "port": 443},
                # Verified against the cluster CA (upstream's manifest skips the check).
                "caBundle": base64.b64encode(ca.encode()).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]


def storage_objects(directory: Path, nodes: list[str]) -> list[dict[str, Any]]:
    """A ``local`` StorageClass (the default) and :data:`LOCAL_VOLUMES` volumes per node."""
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete",
        }
    ]
    for node_name in nodes:
        for i in range(LOCAL_VOLUMES):
            path = directory / "volumes" / node_name / f"pv-{i}"
            path.mkdir(parents=True, exist_ok=True)
            term = {
                "matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [node_name]}
                ]
            }
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": f"{node_name}-pv-{i}"},
                    "spec": {
                        "capacity": {"storage": "100Gi"},
                        "accessModes": ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Retain",
                        "storageClassName": STORAGE_CLASS,
                        "local": {"path": str(path)},
                        "nodeAffinity": {"required": {"nodeSelectorTerms": [term]}},
                    },
                }
            )
    return objects
