"""Run rendered Kubernetes objects with Debian's ``podman kube play``, in a private netns.

Everything lives in throwaway places this module creates and removes:

* a network namespace (``ip netns add``) holding only loopback and the podman bridge, so no
  pod can send a packet anywhere else; every podman command runs inside it, and the test
  reaches the pods from a thread that has joined it (:meth:`Cluster.call`);
* podman storage, run state and network config in a temporary directory;
* a podman bridge network with DNS, on which each pod gets the names of the Services that
  select it (``--network NET:alias=<service>``), which is how clients find
  ``store-inventory-postgresql`` and ``store-inventory`` as in a cluster.

podman plays Deployments (one pod per replica) and PersistentVolumeClaims itself, and gets
each Secret's data through ``podman secret create`` (:meth:`Cluster.create_secret`).
It has no StatefulSet controller, so :func:`statefulset_pods` does what that controller does,
and nothing more: the pod ``<name>-0`` from ``spec.template`` unchanged, plus the claim
``<claim>-<name>-0`` from each volume claim template, mounted under the template's name.
podman does not run readiness, liveness or startup probes; :func:`probe` runs them as rendered.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import copy
import ctypes
import fcntl
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

T = TypeVar("T")

TOOLS = {
    "podman": "Debian package podman",
    "catatonit": "Debian package catatonit",
    "ip": "Debian package iproute2",
    "nsenter": "Debian package util-linux",
    "psql": "Debian package postgresql-client",
}
SUBNET = "10.89.77.0/24"
CLONE_NEWNET = 0x40000000
LOCK = Path("/run/lock/hardened-k8s-e2e.lock")
"""Held while a :class:`Cluster` exists. podman 4.3's netavark keeps one aardvark-dns and one
IPAM database per host (``/run/containers/networks``), whatever ``--root``/``--runroot`` say:
a second run at the same time would find aardvark-dns already serving from the first run's
network namespace, and its pods could not resolve each other. So runs take turns."""


class PodmanError(RuntimeError):
    """A podman command failed; the message has its output."""


def missing_tools() -> list[str]:
    """Host tools the e2e tier needs and cannot find, with the package providing each."""
    missing = [f"{tool} ({pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if shutil.which("catatonit") is None and Path("/usr/libexec/podman/catatonit").exists():
        missing = [m for m in missing if not m.startswith("catatonit")]
    return missing


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


@dataclass
class Cluster:
    """A netns, a podman store and a DNS-enabled bridge network; a context manager."""

    name: str = field(default_factory=lambda: f"hk8s-e2e-{os.getpid()}")
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="hk8s-e2e-")))
    _pool: concurrent.futures.ThreadPoolExecutor | None = None
    _lock: int | None = None

    def __enter__(self) -> Self:
        try:
            self._take_turn()
            subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
            self._ns(["ip", "link", "set", "lo", "up"])
            (self.workdir / "networks").mkdir()
            self.podman("network", "create", "--subnet", SUBNET, self.name)
            netns_path = f"/run/netns/{self.name}"
            # Threads of this pool live in the netns: sockets they open can reach the pods only.
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=16, thread_name_prefix="netns", initializer=_setns, initargs=(netns_path,)
            )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take_turn(self) -> None:
        """Wait until no other run on this host holds :data:`LOCK`, then hold it."""
        LOCK.parent.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"\nanother e2e run holds {LOCK}; waiting for it", flush=True)
            fcntl.flock(self._lock, fcntl.LOCK_EX)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        with contextlib.suppress(Exception):
            self.podman("pod", "rm", "--all", "--force", "--time", "5", check=False, timeout=120)
        with contextlib.suppress(Exception):
            self.podman("volume", "prune", "--force", check=False)
        with contextlib.suppress(Exception):
            self.podman("secret", "rm", "--all", check=False)
        with contextlib.suppress(Exception):
            self.podman("network", "rm", "--force", self.name, check=False)
        with contextlib.suppress(Exception):
            self.podman("system", "reset", "--force", check=False, timeout=120)
        subprocess.run(["ip", "netns", "delete", self.name], check=False, capture_output=True)
        subprocess.run(
            ["umount", "--recursive", "--lazy", str(self.workdir)], check=False, capture_output=True
        )
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    # -- commands ----------------------------------------------------------------------------
    @property
    def enter(self) -> list[str]:
        """Prefix running a program in the netns only (``ip netns exec`` would also remount
        /sys, hiding the cgroup hierarchy podman needs)."""
        return ["nsenter", f"--net=/run/netns/{self.name}"]

    def _ns(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.enter, *argv], check=True, capture_output=True, text=True, **kwargs)

    def podman_argv(self, *args: str, netns: bool = True) -> list[str]:
        base = [
            "podman",
            "--root", str(self.workdir / "storage"),
            "--runroot", str(self.workdir / "run"),
            "--network-config-dir", str(self.workdir / "networks"),
            "--tmpdir", str(self.workdir / "tmp"),
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
        ]  # fmt: skip
        return (self.enter if netns else []) + base + list(args)

    def podman(
        self,
        *args: str,
        netns: bool = True,
        check: bool = True,
        timeout: float = 300,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """Run podman (inside the netns unless ``netns=False``); its stdout."""
        proc = subprocess.run(
            self.podman_argv(*args, netns=netns),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
        if check and proc.returncode != 0:
            raise PodmanError(f"podman {' '.join(args[:3])} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
        return proc.stdout

    def pull(self, ref: str) -> None:
        """Pull from the local registry on the host's loopback (outside the netns)."""
        self.podman("pull", "--quiet", "--tls-verify=false", ref, netns=False, timeout=600)

    def play(self, objects: Sequence[Mapping[str, Any]], *, aliases: Sequence[str] = ()) -> None:
        """``podman kube play`` the objects, with the Service names ``aliases`` on the network."""
        path = Path(tempfile.mkstemp(prefix="kube-", suffix=".yaml", dir=self.workdir)[1])
        try:
            # JSON documents (JSON is YAML). Secrets are not among them: create_secret stores
            # them first, where the pods' Secret volumes look them up.
            path.write_text("\n---\n".join(json.dumps(obj) for obj in objects) + "\n")
            path.chmod(0o600)
            network = self.name + "".join(
                f":alias={a}" if i == 0 else f",alias={a}" for i, a in enumerate(aliases)
            )
            self.podman(
                "kube", "play", "--network", network, "--log-driver", "k8s-file", str(path), timeout=600
            )
        finally:
            path.unlink(missing_ok=True)  # it may hold a Secret

    def create_secret(self, secret: Mapping[str, Any]) -> None:
        """Store a Secret for the ``secret`` volumes that mount it, as the Secret document.

        podman 4.3's ``kube play`` reads a Secret volume's source from its secret store and
        parses it as a Secret; it writes each ``data`` key as a file of a named volume called
        after the Secret (root-owned, mode 0644: it ignores ``items`` and ``defaultMode``).
        The document goes over stdin, never on a command line or in a file.
        """
        # podman 4.3 writes each ``data`` value to its file byte for byte, without the
        # base64 decoding Kubernetes does, and ignores ``stringData`` entirely; so the
        # document carries the decoded values under ``data``.
        values = {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}
        values.update({key: str(value) for key, value in (secret.get("stringData") or {}).items()})
        document = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret["metadata"]["name"]},
            "type": secret.get("type", "Opaque"),
            "data": values,
        }
        proc = subprocess.run(
            self.podman_argv("secret", "create", secret["metadata"]["name"], "-"),
            input=json.dumps(document),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if proc.returncode != 0:
            raise PodmanError(f"podman secret create exited {proc.returncode}:\n{proc.stderr[-2000:]}")

    def call(self, fn: Callable[[], T], timeout: float | None = None) -> T:
        """Run ``fn`` on a thread inside the netns; its result."""
        assert self._pool is not None, "cluster not started"
        return self._pool.submit(fn).result(timeout=timeout)

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        assert self._pool is not None, "cluster not started"
        return self._pool.submit(fn)

    def ns_run(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 60
    ) -> str:
        """Run a host program inside the netns; its stdout."""
        proc = subprocess.run(
            [*self.enter, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
        if proc.returncode != 0:
            raise PodmanError(f"{argv[0]} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        return proc.stdout

    # -- inspection --------------------------------------------------------------------------
    def pods(self) -> list[str]:
        return [line for line in self.podman("pod", "ps", "--format", "{{.Name}}").split() if line]

    def pod_ip(self, pod: str) -> str:
        infra = json.loads(self.podman("pod", "inspect", pod))
        infra = infra[0] if isinstance(infra, list) else infra
        data = json.loads(self.podman("inspect", infra["InfraContainerID"]))[0]
        ip: str = data["NetworkSettings"]["Networks"][self.name]["IPAddress"]
        return ip

    def exec(
        self, container: str, *argv: str, env: Sequence[str] = (), timeout: float = 30
    ) -> tuple[int, str]:
        """``podman exec``: exit status and combined output."""
        env_args = [a for name in env for a in ("--env", name)]
        proc = subprocess.run(
            self.podman_argv("exec", *env_args, container, *argv),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return proc.returncode, proc.stdout + proc.stderr

    def logs(self, container: str) -> str:
        """The container's output, both streams: ``podman logs`` writes what the container
        wrote to stderr (Python's logging, uvicorn's server messages) to its own stderr."""
        proc = subprocess.run(
            self.podman_argv("logs", container),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
        )
        return proc.stdout

    def exits(self, container: str, since: float) -> list[tuple[int, float]]:
        """Each time ``container`` exited since ``since`` (epoch seconds): exit status and time.

        Read from podman's event log, because a pod's restart policy (``Always`` for a
        Deployment) starts the container again at once, before ``podman wait`` could see it.
        """
        out = self.podman(
            "events",
            "--since", str(int(since) - 1),
            "--until", str(int(time.time()) + 1),
            "--filter", f"container={container}",
            "--filter", "event=died",
            "--format", "{{.ContainerExitCode}} {{.Time.UnixNano}}",
            timeout=60,
        )  # fmt: skip
        found = []
        for line in out.splitlines():
            code, nanos = line.split()
            when = int(nanos) / 1e9
            if when >= since:
                found.append((int(code), when))
        return found


def statefulset_pods(sts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the StatefulSet controller creates for ordinal 0: claims, then the pod.

    The pod template is copied unchanged; each volume claim template becomes a claim named
    ``<template>-<set>-0`` and a pod volume of the template's name that mounts it.
    """
    name = sts["metadata"]["name"]
    pod_name = f"{name}-0"
    template = copy.deepcopy(sts["spec"]["template"])
    objects: list[dict[str, Any]] = []
    volumes = template["spec"].setdefault("volumes", [])
    for claim in sts["spec"].get("volumeClaimTemplates", []):
        claim_name = f"{claim['metadata']['name']}-{pod_name}"
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim_name, "labels": claim["metadata"].get("labels", {})},
                "spec": claim["spec"],
            }
        )
        volumes.append(
            {"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}}
        )
    metadata = {**template.get("metadata", {}), "name": pod_name}
    if "namespace" in sts["metadata"]:
        metadata["namespace"] = sts["metadata"]["namespace"]
    objects.append({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]})
    return objects


def selects(service: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """True when the Service's selector matches pod ``labels``."""
    selector = service.get("spec", {}).get("selector") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# -- probes, as the kubelet runs them ----------------------------------------------------------
@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str


def probe(
    cluster: Cluster, container: str, ip: str, spec: Mapping[str, Any], ports: Mapping[str, int]
) -> ProbeResult:
    """Run one rendered probe (httpGet, tcpSocket or exec) once, within its timeoutSeconds."""
    timeout = float(spec.get("timeoutSeconds", 1))
    if "httpGet" in spec:
        get = spec["httpGet"]
        port = ports[get["port"]] if isinstance(get["port"], str) else int(get["port"])
        url = f"http://{ip}:{port}{get.get('path', '/')}"

        def fetch() -> ProbeResult:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    return ProbeResult(200 <= resp.status < 400, f"{url} -> {resp.status}")
            except urllib.error.HTTPError as err:
                return ProbeResult(False, f"{url} -> {err.code}")
            except OSError as err:
                return ProbeResult(False, f"{url} -> {err}")

        return cluster.call(fetch)
    if "tcpSocket" in spec:
        sock_port = spec["tcpSocket"]["port"]
        port = ports[sock_port] if isinstance(sock_port, str) else int(sock_port)

        def connect() -> ProbeResult:
            try:
                with socket.create_connection((ip, port), timeout=timeout):
                    return ProbeResult(True, f"tcp {ip}:{port} open")
            except OSError as err:
                return ProbeResult(False, f"tcp {ip}:{port}: {err}")

        return cluster.call(connect)
    if "exec" in spec:
        try:
            code, out = cluster.exec(container, *spec["exec"]["command"], timeout=timeout + 5)
        except subprocess.TimeoutExpired:
            return ProbeResult(False, "exec timed out")
        return ProbeResult(code == 0, out.strip())
    raise ValueError(f"unsupported probe {spec}")


def wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    """Poll ``check`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not reached within {timeout:.0f}s (last: {last!r})")
