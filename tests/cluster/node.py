"""The real node: containerd and runc, the CNI bridge, kubelet, kube-proxy and kube-router.

Debian's containerd runs as a process with its own config, state and socket in the cluster's
directory; its CRI plugin pulls images by digest from the local registry through containerd's
registry configuration (``quay.io`` is mirrored to it, as production pulls from quay.io) and
starts sandboxes from a locally built ``FROM scratch`` pause image. kubelet (cgroupfs driver,
webhook authn/authz, node identity ``system:node:<name>``), kube-proxy (iptables mode) and
kube-router (firewall only: the NetworkPolicy enforcer) come from the toolchain.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from .host import BRIDGE, NODE_IP, POD_SUBNET, SERVICE_CIDR

if TYPE_CHECKING:
    from .local import LocalCluster

NODE_NAME = "hk8s-node"
NODE_ZONE = "zone-a"
CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
REGISTRY = "127.0.0.1:5000"
MIRRORED = ("quay.io",)
"""Registries whose pulls containerd sends to :data:`REGISTRY` (the local stand-in)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def containerd_config(directory: Path, sandbox_image: str) -> str:
    """containerd 1.6's config: CRI with the OOM-score restriction, cgroupfs, our CNI config."""
    root = directory / "containerd"
    return f"""version = 2
root = "{root / "root"}"
state = "{root / "state"}"
# Plugins that would write outside the directory or need what this machine lacks.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{root / "containerd.sock"}"

[ttrpc]
  address = "{root / "containerd.sock.ttrpc"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  # root lacks CAP_SYS_RESOURCE here: runc must not lower oom_score_adj below the caller's.
  restrict_oom_score_adj = true
  enable_unprivileged_ports = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{directory / "cni" / "net.d"}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{root / "certs.d"}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
"""


def registry_hosts(directory: Path) -> None:
    """containerd's ``hosts.toml``: quay.io and the registry itself resolve to the local one."""
    for name in (*MIRRORED, REGISTRY):
        host_dir = directory / "containerd" / "certs.d" / name
        host_dir.mkdir(parents=True, exist_ok=True)
        server = f"http://{REGISTRY}" if name == REGISTRY else f"https://{name}"
        (host_dir / "hosts.toml").write_text(
            f'server = "{server}"\n\n[host."http://{REGISTRY}"]\n  capabilities = ["pull", "resolve"]\n'
        )


def cni_config(directory: Path) -> None:
    """The bridge network: pods on :data:`POD_SUBNET`, routed only to each other and Services."""
    net_d = directory / "cni" / "net.d"
    net_d.mkdir(parents=True, exist_ok=True)
    config = {
        "cniVersion": "0.4.0",
        "name": "hk8s",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                    # No default route: a pod reaches other pods and Services, nothing beyond.
                    "routes": [{"dst": SERVICE_CIDR}],
                    "dataDir": str(directory / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (net_d / "10-hk8s.conflist").write_text(json.dumps(config, indent=2))


def start_containerd(cluster: LocalCluster, sandbox_image: str) -> Path:
    """Start containerd; returns its socket once it answers."""
    directory = cluster.directory
    (directory / "containerd").mkdir(exist_ok=True)
    config = directory / "containerd" / "config.toml"
    config.write_text(containerd_config(directory, sandbox_image))
    registry_hosts(directory)
    cni_config(directory)
    sock = directory / "containerd" / "containerd.sock"
    cluster._spawn("containerd", ["containerd", "--config", str(config)])
    deadline = time.monotonic() + 30
    while not sock.exists():
        cluster._check_alive("containerd")
        if time.monotonic() > deadline:
            raise cluster.error("containerd", "its socket did not appear within 30s")
        time.sleep(0.1)
    return sock


def kubelet_config(cluster: LocalCluster, sock: Path) -> dict[str, object]:
    pki = cluster.directory / "pki"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": _free_port(),
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": f"unix://{sock}",
        "clusterDNS": [CLUSTER_DNS],
        "clusterDomain": CLUSTER_DOMAIN,
        # Pods resolve through the cluster DNS only; the host's resolvers are not theirs.
        "resolvConf": "",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki / "kubelet.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet.key"),
        "failSwapOn": False,
        "serializeImagePulls": False,
        # A test machine's disk is shared: evict only when it is really full.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "2%",
            "imagefs.available": "2%",
            "nodefs.inodesFree": "2%",
        },
        "imageGCHighThresholdPercent": 99,
        "imageGCLowThresholdPercent": 98,
        "nodeStatusUpdateFrequency": "4s",
        "syncFrequency": "10s",
        "maxPods": 60,
        "rotateCertificates": False,
    }


def start_kubelet(cluster: LocalCluster, sock: Path) -> None:
    directory = cluster.directory
    config = directory / "kubelet-config.yaml"
    config.write_text(yaml.safe_dump(kubelet_config(cluster, sock)))
    kubeconfig = cluster.write_kubeconfig("kubelet", cert="node")
    cluster._spawn(
        "kubelet",
        [
            str(cluster.bin_dir / "kubelet"),
            f"--config={config}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={directory / 'kubelet'}",
            f"--cert-dir={directory / 'kubelet-pki'}",
            f"--node-ip={NODE_IP}",
            f"--hostname-override={NODE_NAME}",
            f"--node-labels=topology.kubernetes.io/zone={NODE_ZONE},hardened-k8s.dev/node=real",
            "--v=1",
        ],
    )


def start_kube_proxy(cluster: LocalCluster) -> None:
    cluster._spawn(
        "kube-proxy",
        [
            str(cluster.bin_dir / "kube-proxy"),
            f"--kubeconfig={cluster.kubeconfig}",
            "--proxy-mode=iptables",
            "--cluster-cidr=10.244.0.0/16",
            f"--hostname-override={NODE_NAME}",
            f"--bind-address={NODE_IP}",
            f"--nodeport-addresses={NODE_IP}/32",
            f"--healthz-bind-address=127.0.0.1:{_free_port()}",
            f"--metrics-bind-address=127.0.0.1:{_free_port()}",
            # Leave the machine's conntrack table size alone.
            "--conntrack-max-per-core=0",
        ],
    )


def start_kube_router(cluster: LocalCluster) -> None:
    """kube-router as the NetworkPolicy enforcer only: no routing, no service proxy."""
    cluster._spawn(
        "kube-router",
        [
            str(cluster.bin_dir / "kube-router"),
            f"--kubeconfig={cluster.kubeconfig}",
            "--run-firewall=true",
            "--run-router=false",
            "--run-service-proxy=false",
            f"--hostname-override={NODE_NAME}",
            "--health-port=0",
            "--metrics-port=0",
            "--iptables-sync-period=30s",
        ],
    )
