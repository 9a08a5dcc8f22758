"""A local Kubernetes control plane on 127.0.0.1, with KWOK nodes instead of kubelets.

etcd, kube-apiserver (RBAC, Pod Security Admission, service-account signing keys made for
this run), kube-controller-manager and kube-scheduler are the real binaries built by
``scripts/toolchain.sh``; KWOK plays the kubelets of three fake nodes across two zones, so Pods
made by the real controllers are scheduled, start and become Ready (no container runs). PVs
for the database's claims are pre-created, since there is no storage provisioner.

Everything lives in one directory and is stopped by PID. ``make cluster`` /
``make cluster-down`` drive this module::

    python -m tests.cluster.local start [--dir DIR]   # prints the kubeconfig path
    python -m tests.cluster.local stop  [--dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = "hardened-k8s-local"
"""The kubeconfig context the local cluster is reached under."""
ZONES = {"kwok-node-1": "zone-a", "kwok-node-2": "zone-b", "kwok-node-3": "zone-a"}
"""Fake nodes and their ``topology.kubernetes.io/zone``."""
PERSISTENT_VOLUMES = 6
"""Pre-created 100Gi PVs (no class), enough for the database claims of both stacks."""
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ClusterError(RuntimeError):
    """The cluster could not be started; the message names the component and its log."""


def toolchain_dir() -> Path:
    """Where ``scripts/toolchain.sh`` puts its binaries (same defaults as the script)."""
    if os.environ.get("TOOLCHAIN_DIR"):
        return Path(os.environ["TOOLCHAIN_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "hardened-k8s" / "toolchain"


def missing_tools() -> list[str]:
    """Binaries the cluster needs that are not there yet (empty when it can start)."""
    bin_dir = toolchain_dir() / "bin"
    missing = [name for name in BINARIES if not (bin_dir / name).is_file()]
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
    """One control plane in ``directory``; :meth:`start` it, then :meth:`stop` it."""

    directory: Path
    bin_dir: Path = field(default_factory=lambda: toolchain_dir() / "bin")
    pids: dict[str, int] = field(default_factory=dict)
    api_port: int = 0

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig.yaml"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> None:
        """Start every component and wait until the fake nodes are Ready."""
        missing = missing_tools()
        if missing:
            raise ClusterError(f"missing {', '.join(missing)}; run scripts/toolchain.sh")
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self._certificates()
            self._start_etcd()
            self._start_apiserver(timeout)
            self._write_kubeconfig()
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
                    # Node IPAM would need a pod CIDR per node; KWOK assigns pod IPs itself.
                    "--controllers=*,-nodeipam",
                    "--concurrent-deployment-syncs=2",
                    # A loaded 2-core machine can delay KWOK's lease renewals past the default
                    # 40 s; a node marked NotReady would take every pod's readiness with it.
                    "--node-monitor-grace-period=2m",
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
                    "--cidr=10.244.0.1/16",
                    "--server-address=127.0.0.1:0",
                    *config,
                ],
            )
            self._create_nodes_and_volumes()
            self._wait_nodes_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self._save_state()

    def stop(self) -> None:
        """Stop every component by PID (TERM, then KILL after 10 s)."""
        for name, pid in reversed(list(self.pids.items())):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.killpg(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            del self.pids[name]
        state = self.directory / "state.json"
        if state.exists():
            state.unlink()

    # -- pieces ---------------------------------------------------------------------------

    def _pki(self, name: str) -> Path:
        return self.directory / "pki" / name

    def _openssl(self, *args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=self.directory / "pki")

    def _certificates(self) -> None:
        """A CA, the API server's serving certificate and this run's service-account keys."""
        (self.directory / "pki").mkdir(exist_ok=True)
        self._openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=hardened-k8s-local-ca",
        )  # fmt: skip
        self._openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key",
            "-out", "apiserver.csr", "-subj", "/CN=kube-apiserver",
        )  # fmt: skip
        (self._pki("san.ext")).write_text(
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc\n"
        )
        self._openssl(
            "x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", "apiserver.crt", "-extfile", "san.ext",
        )  # fmt: skip
        self._openssl("genrsa", "-out", "sa.key", "2048")
        self._openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        token = os.urandom(24).hex()
        # One administrator identity for the tests and the controllers (system:masters).
        self._pki("tokens.csv").write_text(f'{token},admin,admin,"system:masters"\n')
        self._pki("tokens.csv").chmod(0o600)
        self._token = token

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
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                f"--tls-cert-file={self._pki('apiserver.crt')}",
                f"--tls-private-key-file={self._pki('apiserver.key')}",
                f"--client-ca-file={self._pki('ca.crt')}",
                f"--token-auth-file={self._pki('tokens.csv')}",
                "--authorization-mode=RBAC",
                "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,"
                "DefaultStorageClass,ResourceQuota,PodSecurity,NodeRestriction",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self._pki('sa.pub')}",
                f"--service-account-signing-key-file={self._pki('sa.key')}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--endpoint-reconciler-type=none",
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
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CONTEXT,
                    "cluster": {"server": self.server, "certificate-authority": str(self._pki("ca.crt"))},
                }
            ],
            "users": [{"name": f"{CONTEXT}-admin", "user": {"token": self._token}}],
            "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": f"{CONTEXT}-admin"}}],
            "current-context": CONTEXT,
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)

    def _create_nodes_and_volumes(self) -> None:
        objects: list[dict[str, Any]] = []
        for node, zone in ZONES.items():
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": node,
                        "annotations": {"kwok.x-k8s.io/node": "fake"},
                        "labels": {
                            "kubernetes.io/hostname": node,
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
        for i in range(PERSISTENT_VOLUMES):
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": f"local-pv-{i}"},
                    "spec": {
                        "capacity": {"storage": "100Gi"},
                        "accessModes": ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Delete",
                        "hostPath": {"path": f"/var/lib/hardened-k8s-local/pv-{i}"},
                    },
                }
            )
        for obj in objects:
            self.api("POST", _collection(obj), obj)

    def _wait_nodes_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive("kwok")
            nodes = self.api("GET", "/api/v1/nodes")["items"]
            ready = [
                n["metadata"]["name"]
                for n in nodes
                for c in n.get("status", {}).get("conditions", [])
                if c["type"] == "Ready" and c["status"] == "True"
            ]
            if len(ready) == len(ZONES):
                return
            time.sleep(0.5)
        raise ClusterError(f"KWOK nodes not Ready after {timeout:.0f}s; see {self._log('kwok')}")

    # -- plumbing -------------------------------------------------------------------------

    def api(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One request to the API server as the administrator."""
        context = ssl.create_default_context(cafile=str(self._pki("ca.crt")))
        request = urllib.request.Request(
            f"{self.server}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": content_type},
        )
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    def _log(self, name: str) -> Path:
        return self.directory / "logs" / f"{name}.log"

    def _spawn(self, name: str, argv: Sequence[str]) -> None:
        self._log(name).parent.mkdir(exist_ok=True)
        with self._log(name).open("wb") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,  # its own process group: stop() signals it as a whole
            )
        self.pids[name] = process.pid
        self._processes = {**getattr(self, "_processes", {}), name: process}

    def _check_alive(self, name: str) -> None:
        process = getattr(self, "_processes", {}).get(name)
        if process is not None and process.poll() is not None:
            tail = self._log(name).read_text(errors="replace")[-2000:]
            raise ClusterError(f"{name} exited with {process.returncode}; {self._log(name)}:\n{tail}")

    def _save_state(self) -> None:
        state = {"pids": self.pids, "api_port": self.api_port, "kubeconfig": str(self.kubeconfig)}
        (self.directory / "state.json").write_text(json.dumps(state, indent=2))

    @classmethod
    def from_state(cls, directory: Path) -> LocalCluster:
        state = json.loads((directory / "state.json").read_text())
        cluster = cls(directory, pids=dict(state["pids"]), api_port=state["api_port"])
        return cluster


class IngressStatus:
    """What an ingress controller does to Ingresses of its class: publish an address.

    The local cluster runs no ingress controller, and ``pulumi up`` waits for an Ingress
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
                    meta = ingress["metadata"]
                    self.cluster.api(
                        "PATCH",
                        f"/apis/networking.k8s.io/v1/namespaces/{meta['namespace']}/ingresses/"
                        f"{meta['name']}/status",
                        {"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}},
                        content_type="application/merge-patch+json",
                    )


def _collection(obj: dict[str, Any]) -> str:
    plural = {"Node": "nodes", "PersistentVolume": "persistentvolumes"}[obj["kind"]]
    return f"/api/v1/{plural}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument(
        "--dir",
        type=Path,
        default=ROOT / "build" / "cluster",
        help="where the cluster keeps its data, logs, keys and kubeconfig (default: build/cluster)",
    )
    args = parser.parse_args(argv)
    directory: Path = args.dir.resolve()
    if args.action == "start":
        if (directory / "state.json").exists():
            print(f"a cluster already runs from {directory}; stop it first", file=sys.stderr)
            return 1
        if directory.exists():
            shutil.rmtree(directory)
        cluster = LocalCluster(directory)
        started = time.monotonic()
        try:
            cluster.start()
        except ClusterError as exc:
            print(f"cluster: {exc}", file=sys.stderr)
            return 1
        print(f"cluster ready in {time.monotonic() - started:.1f}s at {cluster.server}", file=sys.stderr)
        print(f"  export KUBECONFIG={cluster.kubeconfig}  # context {CONTEXT}", file=sys.stderr)
        print(cluster.kubeconfig)
        return 0
    if not (directory / "state.json").exists():
        print(f"no cluster runs from {directory}", file=sys.stderr)
        return 0
    LocalCluster.from_state(directory).stop()
    print(f"cluster in {directory} stopped", file=sys.stderr)
    return 0


def temporary_cluster() -> LocalCluster:
    """A cluster in a fresh temporary directory (the caller starts and stops it)."""
    return LocalCluster(Path(tempfile.mkdtemp(prefix="hardened-k8s-cluster-")))


if __name__ == "__main__":
    sys.exit(main())
