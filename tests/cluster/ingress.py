"""A real Ingress controller: Traefik, run outside the cluster with the cluster's credentials.

Traefik's Kubernetes Ingress provider watches Ingresses of the ``traefik`` IngressClass,
routes to the pods' IPs on the node's pod network, serves TLS from the Secrets the Ingresses
name, redirects plain HTTP to HTTPS, and publishes 127.0.0.1 in each Ingress's status (what
``pulumi up`` waits for). It listens on loopback only.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .local import LocalCluster

INGRESS_CLASS = "traefik"
CONTROLLER = "traefik.io/ingress-controller"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ingress_class() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": INGRESS_CLASS},
        "spec": {"controller": CONTROLLER},
    }


@dataclass(frozen=True)
class Ingress:
    """Where Traefik listens: ``https://127.0.0.1:<https_port>`` and plain HTTP on ``http_port``."""

    http_port: int
    https_port: int
    ping_port: int


def start_traefik(cluster: LocalCluster, timeout: float = 60.0) -> Ingress:
    """Start Traefik against ``cluster``; returns its ports once it answers its ping."""
    ports = Ingress(_free_port(), _free_port(), _free_port())
    cluster.apply(ingress_class())
    cluster._spawn(
        "traefik",
        [
            str(cluster.bin_dir / "traefik"),
            f"--entryPoints.web.address=127.0.0.1:{ports.http_port}",
            f"--entryPoints.websecure.address=127.0.0.1:{ports.https_port}",
            "--entryPoints.websecure.http.tls=true",
            # Plain HTTP only ever redirects: no data leaves without TLS.
            "--entryPoints.web.http.redirections.entryPoint.to=websecure",
            "--entryPoints.web.http.redirections.entryPoint.scheme=https",
            f"--entryPoints.ping.address=127.0.0.1:{ports.ping_port}",
            "--ping.entryPoint=ping",
            # The cluster is reached through KUBECONFIG (the token stays off the command line).
            "--providers.kubernetesingress=true",
            "--providers.kubernetesingress.ingressEndpoint.ip=127.0.0.1",
            "--global.checkNewVersion=false",
            "--global.sendAnonymousUsage=false",
            "--log.level=INFO",
        ],
        env={"KUBECONFIG": str(cluster.kubeconfig)},
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cluster._check_alive("traefik")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports.ping_port}/ping", timeout=2) as response:
                if response.status == 200:
                    return ports
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise cluster.error("traefik", f"no answer on its ping port within {timeout:.0f}s")
