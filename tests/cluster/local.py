"""A local Kubernetes cluster: a real control plane, a real node and KWOK nodes.

etcd, kube-apiserver (RBAC and the Node authorizer, Pod Security Admission, service-account
signing keys made for this run), kube-controller-manager and kube-scheduler are the real
binaries built by ``scripts/toolchain.sh``. The real node (:mod:`.node`) runs the pods:
containerd and runc, the CNI bridge, kubelet, kube-proxy, kube-router as the NetworkPolicy
enforcer, CoreDNS as the cluster DNS (:mod:`.addons`) and Traefik as the Ingress controller
(:mod:`.ingress`); metrics-server, the resource metrics API the HorizontalPodAutoscaler reads,
when asked for (:meth:`LocalCluster.start_metrics_api`: ``make cluster`` and ``make up`` start
it, the cluster tier only around its autoscaling tests). The API server listens on the node's
address on the pod network, so pods reach it through the ``kubernetes`` Service. KWOK plays the
kubelets of three fake nodes across two zones, for the prod stack's spread rules; they stay
cordoned unless a test places a stack there (:meth:`LocalCluster.place`). Local
PersistentVolumes are pre-created per node.

Everything lives in one directory and is stopped by PID; a stop then removes what the node
left on the machine (:func:`.host.clean`). ``python -m tests.cluster`` drives it (``make
cluster``, ``make up``, ``make down``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import addons, host, node
from .ingress import INGRESS_CLASS, Ingress, start_traefik

if TYPE_CHECKING:  # the image harness pulls in the Docker SDK
    from tests.image.engine import Harness

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = "hardened-k8s-local"
"""The kubeconfig context the local cluster is reached under."""
ZONES = {"kwok-node-1": "zone-a", "kwok-node-2": "zone-b", "kwok-node-3": "zone-a"}
"""Fake nodes and their ``topology.kubernetes.io/zone``."""
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NODE_BINARIES = ("kubelet", "kube-proxy", "kube-router", "coredns", "traefik", "metrics-server")
"""What the real node adds to :data:`BINARIES` (all from ``scripts/toolchain.sh``)."""


class ClusterError(RuntimeError):
    """The cluster could not be started; the message names the component and its log."""


def toolchain_dir() -> Path:
    """Where ``scripts/toolchain.sh`` puts its binaries (same defaults as the script)."""
    if os.environ.get("TOOLCHAIN_DIR"):
        return Path(os.environ["TOOLCHAIN_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "hardened-k8s" / "toolchain"


def missing_tools(real_node: bool = True) -> list[str]:
    """Binaries the cluster needs that are not there yet (empty when it can start)."""
    bin_dir = toolchain_dir() / "bin"
    wanted = BINARIES + (NODE_BINARIES if real_node else ())
    missing = [name for name in wanted if not (bin_dir / name).is_file()]
    if shutil.which("etcd") is None:
        missing.append("etcd")
    if shutil.which("openssl") is None:
        missing.append("openssl")
    if not any((toolchain_dir() / "kwok-stages").glob("*/.complete")):
        missing.append("kwok stages")
    return missing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalCluster:
    """One control plane in ``directory``, with a real node unless ``real_node`` is false;
    :meth:`start` it, then :meth:`stop` it."""

    directory: Path
    bin_dir: Path = field(default_factory=lambda: toolchain_dir() / "bin")
    pids: dict[str, int] = field(default_factory=dict)
    api_port: int = 0
    real_node: bool = True
    images: dict[str, str] = field(default_factory=dict)
    """The node's own images (pause, CoreDNS, metrics-server) as ``repo@digest``."""
    harness: Any = None
    """The image engine and registry the node pulls from, when this process started them."""
    ingress: Ingress | None = None
    """Traefik's ports (a real node only)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds each start phase took (``node Ready``, ``cluster DNS Ready``...)."""
    _node_lock: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)
    _node_lock_fds: list[int] = field(default_factory=list, repr=False)

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig.yaml"

    @property
    def address(self) -> str:
        """Where the API server listens: the node's IP on the pod network, so pods (CoreDNS,
        the ``kubernetes`` Service) reach it too; loopback without a real node."""
        return host.NODE_IP if self.real_node else "127.0.0.1"

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.api_port}"

    def error(self, name: str, what: str) -> ClusterError:
        tail = self._log(name).read_text(errors="replace")[-2000:] if self._log(name).exists() else ""
        return ClusterError(f"{name}: {what}; {self._log(name)}:\n{tail}")

    # -- lifecycle ------------------------------------------------------------------------

    def start(
        self, harness: Harness | None = None, timeout: float = 180.0, metrics_api: bool = False
    ) -> None:
        """Start every component and wait until the nodes are Ready.

        With a real node, ``harness`` (the image tier's engine and registry) builds and pushes
        the node's own images, and must stay open while the cluster runs: containerd pulls
        from its registry. ``metrics_api`` also starts metrics-server and waits for the
        metrics API (:meth:`start_metrics_api`).
        """
        missing = missing_tools(self.real_node)
        if missing:
            raise ClusterError(f"missing {', '.join(missing)}; run scripts/toolchain.sh")
        if self.real_node:
            if harness is None:
                raise ClusterError("a real node needs the image harness's registry for its images")
            problems = host.preflight()
            if problems:
                raise ClusterError("the real node cannot start:\n" + "\n".join(f"  - {p}" for p in problems))
            try:
                self._node_lock_fds.append(self._node_lock.enter_context(host.hold_node()))
            except host.NodeBusyError as exc:
                raise ClusterError(str(exc)) from None
        self.directory.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            if self.real_node:
                host.save_sysctls()
                host.create_bridge()
            self._certificates()
            self._start_etcd()
            self._start_apiserver(timeout)
            self._write_kubeconfig()
            self._start_controllers()
            self._create_nodes_and_volumes()
            self._wait_nodes_ready(timeout, list(ZONES))
            self.timings["control plane Ready"] = round(time.monotonic() - started, 1)
            if self.real_node:
                assert harness is not None
                self._start_node(harness, timeout)
                if metrics_api:
                    self.start_metrics_api(timeout)
        except BaseException:
            self.stop()
            raise
        self.timings["cluster Ready"] = round(time.monotonic() - started, 1)
        self._save_state()

    def _start_controllers(self) -> None:
        self._spawn(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={self._pki('sa.key')}",
                f"--root-ca-file={self._pki('ca.crt')}",
                # Node IPAM would need a pod CIDR per node; the CNI config and KWOK assign
                # pod IPs themselves.
                "--controllers=*,-nodeipam",
                "--concurrent-deployment-syncs=2",
                # A loaded 2-core machine can delay KWOK's lease renewals past the default
                # 40 s; a node marked NotReady would take every pod's readiness with it.
                "--node-monitor-grace-period=2m",
                # The HPA's default sync is 15 s; the scale-down window is the stack's own.
                "--horizontal-pod-autoscaler-sync-period=5s",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(self.bin_dir / "kube-scheduler"),
                f"--kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                "--secure-port=0",
                "--leader-elect=false",
            ],
        )
        stages = sorted((toolchain_dir() / "kwok-stages").glob("*/.complete"))[-1].parent
        config = [f"--config={p}" for p in sorted(stages.glob("*.yaml"))]
        self._spawn(
            "kwok",
            [
                str(self.bin_dir / "kwok"),
                f"--kubeconfig={self.kubeconfig}",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-ip=127.0.0.1",
                # Heartbeats through node leases; without them the node lifecycle
                # controller marks the nodes NotReady after its grace period.
                "--node-lease-duration-seconds=40",
                "--cidr=10.245.0.1/16",
                "--server-address=127.0.0.1:0",
                *config,
            ],
        )

    def _start_node(self, harness: Harness, timeout: float) -> None:
        """containerd, kubelet, kube-proxy, kube-router and the cluster DNS on the real node."""
        started = time.monotonic()
        self.images = addons.build_images(harness, self.bin_dir)
        self.timings["node images built"] = round(time.monotonic() - started, 1)
        sock = node.start_containerd(self, self.images["pause"])
        spawned = time.monotonic()
        node.start_kubelet(self, sock)
        self._wait_nodes_ready(timeout, [node.NODE_NAME])
        self.timings["kubelet start to node Ready"] = round(time.monotonic() - spawned, 1)
        node.start_kube_proxy(self)
        node.start_kube_router(self)
        for obj in addons.dns_objects(self.images["coredns"]):
            self.apply(obj)
        self.wait_ready("kube-system", addons.DNS_LABELS, timeout)
        self.timings["cluster DNS Ready"] = round(time.monotonic() - started, 1)
        self.ingress = start_traefik(self)
        # Stacks go to the real node; the KWOK nodes wait cordoned until a test places a
        # stack there (:meth:`place`).
        self.place(real=True)

    def place(self, *, real: bool) -> None:
        """Make either the real node or the KWOK nodes schedulable, and cordon the others."""
        names = [node.NODE_NAME] if self.real_node else []
        for name in [*ZONES, *names]:
            schedulable = (name == node.NODE_NAME) == real
            self.api(
                "PATCH",
                f"/api/v1/nodes/{name}",
                {"spec": {"unschedulable": not schedulable}},
                content_type="application/merge-patch+json",
            )

    def wait_ready(self, namespace: str, labels: dict[str, str], timeout: float) -> None:
        """Until every pod matching ``labels`` in ``namespace`` is Ready (and one exists)."""
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in ("kubelet", "containerd"):
                self._check_alive(name)
            pods = self.api("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")["items"]
            if (
                pods
                and all(
                    c["type"] != "Ready" or c["status"] == "True"
                    for p in pods
                    for c in p.get("status", {}).get("conditions", [{"type": "Ready", "status": "False"}])
                )
                and all(
                    any(c["type"] == "Ready" for c in p.get("status", {}).get("conditions", [])) for p in pods
                )
            ):
                return
            time.sleep(0.5)
        raise self.error("kubelet", f"pods {selector} in {namespace} not Ready after {timeout:.0f}s")

    def start_metrics_api(self, timeout: float = 180.0) -> None:
        """metrics-server in ``kube-system`` behind the ``v1beta1.metrics.k8s.io`` APIService
        (:func:`addons.metrics_objects`), until the API is Available and answers for the real
        node. From then on every HorizontalPodAutoscaler acts on real metrics."""
        started = time.monotonic()
        pki = self.directory / "pki"
        for obj in addons.metrics_objects(
            self.images["metrics-server"],
            ca=(pki / "ca.crt").read_text(),
            cert=(pki / "metrics-server.crt").read_text(),
            key=(pki / "metrics-server.key").read_text(),
        ):
            self.apply(obj)
        self.wait_metrics_api(timeout)
        self.timings["metrics API Available"] = round(time.monotonic() - started, 1)

    def stop_metrics_api(self, timeout: float = 120.0) -> None:
        """Remove metrics-server and its APIService, and wait until both are gone.

        The APIService goes first: an aggregated API that is registered but not served fails
        API discovery, and the namespace controller (and the garbage collector) stop deleting
        while discovery fails. Once it is gone a HorizontalPodAutoscaler cannot read metrics,
        and an HPA without metrics keeps its target's replica count (within its minimum and
        maximum): the autoscalers stop acting.
        """
        objects = addons.metrics_objects("", "", "", "")  # their identities; the contents do not matter
        objects.sort(key=lambda o: o["kind"] != "APIService")
        for obj in objects:
            with contextlib.suppress(urllib.error.HTTPError):  # already gone (404)
                self.api("DELETE", f"{_collection(obj)}/{obj['metadata']['name']}")
        selector = ",".join(f"{k}={v}" for k, v in addons.METRICS_LABELS.items())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pods = self.api("GET", f"/api/v1/namespaces/kube-system/pods?labelSelector={selector}")["items"]
            served = {g["name"] for g in self.api("GET", "/apis")["groups"]}
            if not pods and "metrics.k8s.io" not in served:
                return
            time.sleep(0.5)
        raise self.error("kubelet", f"metrics-server still there {timeout:.0f}s after its removal")

    def wait_metrics_api(self, timeout: float) -> None:
        """Until the aggregated metrics API (metrics-server) is Available and answers for the
        real node: what ``kubectl top`` and the HorizontalPodAutoscaler controller read."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            self._check_alive("kubelet")
            try:
                path = f"/apis/apiregistration.k8s.io/v1/apiservices/{addons.METRICS_API}"
                conditions = self.api("GET", path).get("status", {}).get("conditions", [])
                last = [c for c in conditions if c["type"] == "Available"]
                if last and last[0]["status"] == "True":
                    self.api("GET", f"/apis/metrics.k8s.io/v1beta1/nodes/{node.NODE_NAME}")
                    return
            except (OSError, ValueError) as exc:
                last = exc
            time.sleep(1)
        raise self.error("kubelet", f"the metrics API is not Available after {timeout:.0f}s ({last})")

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj`` (core, apps, rbac, storage kinds the add-ons use)."""
        return self.api("POST", _collection(obj), obj)

    def stop(self) -> None:
        """Stop every component by PID (TERM, then KILL after 10 s); with a real node, then
        remove what it left on the machine (:func:`host.clean`)."""
        for name, pid in reversed(list(self.pids.items())):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                del self.pids[name]
                continue
            if not _wait_gone(pid, getattr(self, "_processes", {}).get(name), 10):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                _wait_gone(pid, getattr(self, "_processes", {}).get(name), 10)
            del self.pids[name]
        if self.real_node:
            # The node is ours: release the lock, then remove what containerd's shims,
            # kubelet, kube-proxy, kube-router and the CNI plugins left (the shims inherited
            # the lock from containerd and hold it until they are gone).
            self._node_lock.close()
            self._node_lock_fds.clear()
            host.clean(self.directory, owned=True)
        state = self.directory / "state.json"
        if state.exists():
            state.unlink()

    # -- pieces ---------------------------------------------------------------------------

    def _pki(self, name: str) -> Path:
        return self.directory / "pki" / name

    def _openssl(self, *args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.directory / "pki")

    def _certificates(self) -> None:
        """A CA, the API server's serving certificate, this run's service-account keys and,
        with a real node, kubelet's serving certificate and node identity."""
        (self.directory / "pki").mkdir(exist_ok=True)
        self._openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=hardened-k8s-local-ca",
        )  # fmt: skip
        sans = "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc"
        if self.real_node:
            sans += f",IP:{host.NODE_IP},IP:10.96.0.1,DNS:kubernetes.default.svc.cluster.local"
        self._sign("apiserver", "/CN=kube-apiserver", sans)
        # The aggregation layer: the API server proxies the metrics API to metrics-server as
        # ``front-proxy-client``, a certificate of a CA of its own (a client certificate of the
        # cluster CA must not be able to assert another user through the X-Remote-* headers).
        self._openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", "front-proxy-ca.key", "-out", "front-proxy-ca.crt",
            "-subj", "/CN=hardened-k8s-local-front-proxy-ca",
        )  # fmt: skip
        self._sign("front-proxy-client", "/CN=front-proxy-client", None, ca="front-proxy-ca")
        if self.real_node:
            self._sign("kubelet", f"/CN={node.NODE_NAME}", f"IP:{host.NODE_IP},DNS:{node.NODE_NAME}")
            self._sign("node", f"/O=system:nodes/CN=system:node:{node.NODE_NAME}", None)
            # The name the aggregator checks metrics-server's serving certificate against.
            self._sign("metrics-server", "/CN=metrics-server", f"DNS:{addons.METRICS_SERVER_DNS}")
        self._openssl("genrsa", "-out", "sa.key", "2048")
        self._openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        token = os.urandom(24).hex()
        # One administrator identity for the tests and the controllers (system:masters).
        self._pki("tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
        self._pki("tokens.csv").chmod(0o600)
        self._token = token

    def _sign(self, name: str, subject: str, sans: str | None, ca: str = "ca") -> None:
        """``pki/<name>.key`` and ``pki/<name>.crt``, signed by the cluster's CA (or ``pki/<ca>``)."""
        self._openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", subject,
        )  # fmt: skip
        extra: list[str] = []
        if sans:
            self._pki(f"{name}.ext").write_text(f"subjectAltName={sans}\n")
            extra = ["-extfile", f"{name}.ext"]
        self._openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", *extra,
        )  # fmt: skip

    def _start_etcd(self) -> None:
        client, peer = _free_port(), _free_port()
        self._etcd = f"http://127.0.0.1:{client}"
        self._spawn(
            "etcd",
            [
                "etcd",
                f"--data-dir={self.directory / 'etcd'}",
                f"--listen-client-urls={self._etcd}",
                f"--advertise-client-urls={self._etcd}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",
            ],
        )

    def _start_apiserver(self, timeout: float) -> None:
        self.api_port = _free_port()
        self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={self._etcd}",
                f"--bind-address={self.address}",
                f"--advertise-address={self.address}",
                f"--secure-port={self.api_port}",
                f"--tls-cert-file={self._pki('apiserver.crt')}",
                f"--tls-private-key-file={self._pki('apiserver.key')}",
                f"--client-ca-file={self._pki('ca.crt')}",
                f"--token-auth-file={self._pki('tokens.csv')}",
                "--authorization-mode=Node,RBAC",
                # kubelet's address is its InternalIP; no resolver here knows its name.
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-certificate-authority={self._pki('ca.crt')}",
                f"--kubelet-client-certificate={self._pki('apiserver.crt')}",
                f"--kubelet-client-key={self._pki('apiserver.key')}",
                # The aggregation layer (metrics.k8s.io from metrics-server): the API server
                # authenticates to it as the front proxy, and it trusts the X-Remote-* headers
                # only from that certificate. Aggregated APIs are reached at their endpoints'
                # pod IPs, not through a Service IP only kube-proxy's rules know.
                f"--requestheader-client-ca-file={self._pki('front-proxy-ca.crt')}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={self._pki('front-proxy-client.crt')}",
                f"--proxy-client-key-file={self._pki('front-proxy-client.key')}",
                "--enable-aggregator-routing=true",
                "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,"
                "DefaultStorageClass,ResourceQuota,PodSecurity,NodeRestriction",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self._pki('sa.pub')}",
                f"--service-account-signing-key-file={self._pki('sa.key')}",
                "--service-cluster-ip-range=10.96.0.0/16",
                # With a real node the ``kubernetes`` Service points at this server for pods;
                # without one nothing in the cluster dials it.
                f"--endpoint-reconciler-type={'lease' if self.real_node else 'none'}",
                "--profiling=false",
            ],
        )
        context = ssl.create_default_context(cafile=str(self._pki("ca.crt")))
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_alive("kube-apiserver")
            try:
                request = urllib.request.Request(
                    f"{self.server}/readyz", headers={"Authorization": f"Bearer {self._token}"}
                )
                with urllib.request.urlopen(request, context=context, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.5)
        raise ClusterError(
            f"kube-apiserver not ready after {timeout:.0f}s ({last}); see {self._log('kube-apiserver')}"
        )

    def _write_kubeconfig(self) -> None:
        self.write_kubeconfig("kubeconfig")
        if self.real_node:
            # The API server calls kubelet (logs, exec, port-forward) as ``kube-apiserver``.
            self.api("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "kube-apiserver-kubelet-api-admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "system:kubelet-api-admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                              "name": "kube-apiserver"}],
            })  # fmt: skip

    def write_kubeconfig(self, name: str, cert: str | None = None, token: str | None = None) -> Path:
        """``<name>.yaml`` in the directory: the administrator's token, another identity's
        ``token``, or the client certificate ``pki/<cert>.crt`` (kubelet's node identity)."""
        user: dict[str, str] = {"token": token or self._token}
        if cert is not None:
            user = {
                "client-certificate": str(self._pki(f"{cert}.crt")),
                "client-key": str(self._pki(f"{cert}.key")),
            }
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CONTEXT,
                    "cluster": {"server": self.server, "certificate-authority": str(self._pki("ca.crt"))},
                }
            ],
            "users": [{"name": f"{CONTEXT}-{name}", "user": user}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": f"{CONTEXT}-{name}"}}],
            "current-context": CONTEXT,
        }
        path = self.directory / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _create_nodes_and_volumes(self) -> None:
        objects: list[dict[str, Any]] = []
        for name, zone in ZONES.items():
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {"kwok.x-k8s.io/node": "fake"},
                        "labels": {
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "topology.kubernetes.io/zone": zone,
                            "type": "kwok",
                        },
                    },
                    "status": {
                        "allocatable": {
                            "cpu": "16",
                            "memory": "64Gi",
                            "pods": "110",
                            "ephemeral-storage": "100Gi",
                        },
                        "capacity": {
                            "cpu": "16",
                            "memory": "64Gi",
                            "pods": "110",
                            "ephemeral-storage": "100Gi",
                        },
                    },
                }
            )
        # Local volumes per node, in the default ``local`` class: the prod stack's claims bind
        # on the KWOK nodes (nothing mounts them), the dev stack's on the real node.
        objects += addons.storage_objects(
            self.directory, [*ZONES, *([node.NODE_NAME] if self.real_node else [])]
        )
        for obj in objects:
            self.api("POST", _collection(obj), obj)

    def _wait_nodes_ready(self, timeout: float, names: list[str]) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive("kwok")
            if node.NODE_NAME in names:
                self._check_alive("kubelet")
                self._check_alive("containerd")
            nodes = self.api("GET", "/api/v1/nodes")["items"]
            ready = [
                n["metadata"]["name"]
                for n in nodes
                for c in n.get("status", {}).get("conditions", [])
                if c["type"] == "Ready" and c["status"] == "True"
            ]
            if set(names) <= set(ready):
                return
            time.sleep(0.2)
        component = "kubelet" if node.NODE_NAME in names else "kwok"
        raise self.error(component, f"nodes {', '.join(names)} not Ready after {timeout:.0f}s")

    # -- plumbing -------------------------------------------------------------------------

    def api(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
        token: str | None = None,
    ) -> dict[str, Any]:
        """One request to the API server as the administrator, or as whoever ``token`` is."""
        context = ssl.create_default_context(cafile=str(self._pki("ca.crt")))
        request = urllib.request.Request(
            f"{self.server}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token or self._token}", "Content-Type": content_type},
        )
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    def _log(self, name: str) -> Path:
        return self.directory / "logs" / f"{name}.log"

    def _spawn(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        self._log(name).parent.mkdir(exist_ok=True)
        # containerd inherits the node lock: it stays held while the node's runtime lives,
        # after the process that started it (``make up``) has exited.
        keep = tuple(self._node_lock_fds) if name == "containerd" else ()
        with self._log(name).open("wb") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,  # its own process group: stop() signals it as a whole
                pass_fds=keep,
                env={**os.environ, **env} if env else None,
            )
        self.pids[name] = process.pid
        self._processes = {**getattr(self, "_processes", {}), name: process}

    def _check_alive(self, name: str) -> None:
        process = getattr(self, "_processes", {}).get(name)
        if process is not None and process.poll() is not None:
            tail = self._log(name).read_text(errors="replace")[-2000:]
            raise ClusterError(f"{name} exited with {process.returncode}; {self._log(name)}:\n{tail}")

    def _save_state(self) -> None:
        state = {
            "pids": self.pids,
            "api_port": self.api_port,
            "real_node": self.real_node,
            "kubeconfig": str(self.kubeconfig),
            "token": self._token,
            "ingress": dataclasses.asdict(self.ingress) if self.ingress else None,
        }
        path = self.directory / "state.json"
        path.write_text(json.dumps(state, indent=2))
        path.chmod(0o600)

    @classmethod
    def from_state(cls, directory: Path) -> LocalCluster:
        state = json.loads((directory / "state.json").read_text())
        cluster = cls(
            directory, pids=dict(state["pids"]), api_port=state["api_port"], real_node=state["real_node"]
        )
        cluster._token = state["token"]
        if state.get("ingress"):
            cluster.ingress = Ingress(**state["ingress"])
        return cluster


class IngressStatus:
    """What an ingress controller does to Ingresses of its class: publish an address.

    Traefik serves the ``traefik`` class on the real node; Ingresses of other classes (the
    prod stack's, on KWOK nodes) have no controller, and ``pulumi up`` waits for an Ingress
    until its ``status.loadBalancer`` has an address; this thread writes 127.0.0.1 there,
    as a controller bound to the loopback address would.
    """

    def __init__(self, cluster: LocalCluster, interval: float = 1.0) -> None:
        self.cluster = cluster
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingress-status", daemon=True)

    def __enter__(self) -> IngressStatus:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError, KeyError):
                for ingress in self.cluster.api("GET", "/apis/networking.k8s.io/v1/ingresses")["items"]:
                    if (ingress.get("status") or {}).get("loadBalancer", {}).get("ingress"):
                        continue
                    if ingress["spec"].get("ingressClassName") == INGRESS_CLASS:
                        continue
                    meta = ingress["metadata"]
                    self.cluster.api(
                        "PATCH",
                        f"/apis/networking.k8s.io/v1/namespaces/{meta['namespace']}/ingresses/"
                        f"{meta['name']}/status",
                        {"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}},
                        content_type="application/merge-patch+json",
                    )


def _wait_gone(pid: int, process: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    """Whether the process group ``pid`` ended within ``timeout`` (a child of this process is
    reaped, so it does not linger as a zombie that still answers signal 0)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return True
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _collection(obj: dict[str, Any]) -> str:
    """The REST collection ``obj`` is created in (the kinds the cluster itself creates)."""
    plural = obj["kind"].lower() + ("es" if obj["kind"].endswith("s") else "s")
    version = obj["apiVersion"]
    base = f"/api/{version}" if "/" not in version else f"/apis/{version}"
    namespace = obj["metadata"].get("namespace")
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


def temporary_cluster() -> LocalCluster:
    """A cluster in a fresh temporary directory (the caller starts and stops it)."""
    return LocalCluster(Path(tempfile.mkdtemp(prefix="hardened-k8s-cluster-")))
