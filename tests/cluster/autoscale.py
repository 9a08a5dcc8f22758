"""Autoscaling on the real node: the metrics API on demand, load that makes the
HorizontalPodAutoscaler act, and what the node's cgroups say about it.

:func:`metrics_api` runs metrics-server only around the tests that need the HPAs to act: while
it runs every HPA of the cluster rescales its workload on real metrics, which changes the pods
other tests hold on to (a client pod scaled away under a request stream, a second MCP replica in
the middle of a token rotation). Once it is removed an HPA cannot read metrics and keeps its
workload's replica count.

The load comes from the tier's probe pod (a bare Pod in a namespace of its own, which no
autoscaler can remove), admitted to the store API by a NetworkPolicy of the test's own
(:func:`admit`) beside the stack's. :class:`LoadRounds` runs ``bench/load.py`` closed loop from
its network namespace, round after round, until stopped: each round is a fresh process with
fresh connections, so kube-proxy spreads them over the Service's endpoints as they are then (a
pod added by a scale-out gets its share from the next round on; one long-lived pool would stay
on the pods it first reached). ``podnet.run_load`` runs it once, closed loop or at a fixed rate.
:func:`container_cgroup`, :class:`CPUSample`, :func:`memory_mib` and :func:`oom_kills` read the
containers' CPU time, CFS throttling and memory from kubelet's cgroupfs hierarchy (cgroup v1:
``<controller>/kubepods/[<qos class>/]pod<uid>/<container id>``).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..waiting import wait_until
from .kube import Kube
from .local import LocalCluster
from .podnet import PodNet, load_argv

PRODUCTS = 5
"""Shared products of every load run here: few, so adjustments contend on them."""
CGROUP = Path("/sys/fs/cgroup")
ADMIT_PROBE = "test-admit-probe"
"""The NetworkPolicy :func:`admit` adds to a stack's namespace for the test's load."""


@contextlib.contextmanager
def metrics_api(cluster: LocalCluster, kube: Kube, namespace: str) -> Iterator[float]:
    """metrics-server while the block runs (the seconds until its API was Available); then
    removed, and every HPA of ``namespace`` seen to have stopped acting: ``ScalingActive``
    false, as an HPA is when it cannot read its metrics, which keeps the replica count."""
    started = time.monotonic()
    try:
        cluster.start_metrics_api()
        yield round(time.monotonic() - started, 1)
    finally:
        cluster.stop_metrics_api()

    def stopped() -> bool:
        for hpa in kube.list("autoscaling/v2", "HorizontalPodAutoscaler", namespace):
            conditions = {c["type"]: c["status"] for c in hpa.get("status", {}).get("conditions", [])}
            if conditions.get("ScalingActive") != "False":
                return False
        return True

    # One sync of the HPA controller (5 s here) after the metrics API is gone.
    wait_until(f"every HorizontalPodAutoscaler of {namespace} without metrics", stopped, 60, interval=1)


@contextlib.contextmanager
def admit(
    kube: Kube, namespace: str, pods: dict[str, str], port: int, source: dict[str, Any]
) -> Iterator[None]:
    """A NetworkPolicy in ``namespace`` letting ``source`` (a ``from`` peer: namespace and pod
    selectors) reach the pods labelled ``pods`` on ``port``, removed after the block. Policies
    add up: the stack's own stay as they are, and nothing else is admitted."""
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": ADMIT_PROBE,
            "namespace": namespace,
            "labels": {"hardened-k8s.dev/test": "load"},
        },
        "spec": {
            "podSelector": {"matchLabels": pods},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [source], "ports": [{"protocol": "TCP", "port": port}]}],
        },
    }
    collection = kube.path("networking.k8s.io/v1", "NetworkPolicy", namespace)
    kube.cluster.api("POST", collection, policy)
    try:
        yield
    finally:
        with contextlib.suppress(urllib.error.HTTPError):  # already gone with its namespace
            kube.cluster.api("DELETE", f"{collection}/{ADMIT_PROBE}")


@contextlib.contextmanager
def from_probe(kube: Kube, namespace: str, service: str, probe: PodNet) -> Iterator[str]:
    """``service``'s URL on its ClusterIP, reachable from the probe pod while the block runs:
    :func:`admit` lets the probe pod (matched by its namespace's and its own name) reach the
    Service's pods on their target port, then it waits until a connection from the probe gets
    through (kube-router applies a new policy within seconds)."""
    from . import matrix

    live = kube.get("v1", "Service", namespace=namespace, name=service)
    assert live is not None, f"Service/{namespace}/{service} is missing"
    selector: dict[str, str] = live["spec"]["selector"]
    [port] = live["spec"]["ports"]
    target = port.get("targetPort", port["port"])
    if isinstance(target, str):  # a named port: the number the pods give it
        pods = kube.list("v1", "Pod", namespace)
        target = next(
            p["containerPort"]
            for pod in pods
            if selector.items() <= pod["metadata"].get("labels", {}).items()
            for c in pod["spec"]["containers"]
            for p in c.get("ports", [])
            if p.get("name") == target
        )
    source = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": matrix.PROBE}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": matrix.PROBE}},
    }
    address = live["spec"]["clusterIP"]
    with admit(kube, namespace, selector, int(target), source):
        wait_until(
            f"the probe pod admitted to Service/{service}",
            lambda: probe.connect([(address, port["port"])]) == ["connected"],
            60,
        )
        yield f"http://{address}:{port['port']}"


class LoadRounds:
    """``bench/load.py`` against ``store_url`` from ``net``'s namespace, one bounded round after
    another (``requests`` at ``concurrency``, each within ``deadline`` seconds) until
    :meth:`stop` or ``max_rounds``; every round's JSON report is kept in :attr:`reports`."""

    def __init__(
        self,
        net: PodNet,
        store_url: str,
        *,
        requests: int,
        concurrency: int,
        deadline: float,
        max_rounds: int,
    ) -> None:
        self.argv = load_argv(
            net.netns,
            store_url,
            requests=requests,
            concurrency=concurrency,
            deadline=deadline,
            products=PRODUCTS,
        )
        self.deadline = deadline
        self.max_rounds = max_rounds
        self.reports: list[dict[str, Any]] = []
        self.failures: list[str] = []
        """Rounds that gave no report (the generator itself failed), with its stderr."""
        self.started = 0.0
        self.ended = 0.0
        """``time.monotonic()`` when the first round began and the last one ended."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-rounds", daemon=True)

    def start(self) -> LoadRounds:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for number in range(self.max_rounds):
                if self._stop.is_set():
                    break
                result = subprocess.run(
                    [*self.argv, "--seed", str(number)],
                    capture_output=True,
                    text=True,
                    timeout=self.deadline + 60,
                )
                try:
                    self.reports.append(json.loads(result.stdout))
                except ValueError:
                    self.failures.append(f"round {number}: exit {result.returncode}: {result.stderr[-800:]}")
        except subprocess.TimeoutExpired as exc:
            self.failures.append(f"a round outlived its deadline: {exc}")
        finally:
            self.ended = time.monotonic()

    def stop(self) -> list[dict[str, Any]]:
        """Let the round in flight finish, start no other; the reports of every round."""
        self._stop.set()
        self._thread.join(timeout=self.deadline + 90)
        assert not self._thread.is_alive(), "a load round did not end"
        return self.reports

    def errors(self) -> dict[str, int]:
        """Errors by kind over every round (a 409 refusal is not one)."""
        total: dict[str, int] = {}
        for report in self.reports:
            for kind, count in report["errors"].items():
                total[kind] = total.get(kind, 0) + count
        return total

    def completed(self) -> int:
        return sum(int(r["completed"]) for r in self.reports)


def container_cgroup(pod: dict[str, Any], controller: str) -> Path:
    """The cgroup of the pod's (only) container under ``controller`` (``cpu``, ``cpuacct``,
    ``memory``): kubelet's cgroupfs layout, the QoS class directory found, not assumed."""
    uid = pod["metadata"]["uid"]
    [status] = pod["status"]["containerStatuses"]
    container = status["containerID"].split("//", 1)[1]
    found = [p for p in (CGROUP / controller / "kubepods").rglob(f"pod{uid}") if p.is_dir()]
    assert found, f"{pod['metadata']['name']}: no {controller} cgroup pod{uid} under kubepods"
    path: Path = found[0] / container
    assert path.is_dir(), f"{pod['metadata']['name']}: no {controller} cgroup {path}"
    return path


@dataclass(frozen=True)
class CPUSample:
    """One container's CPU time and CFS counters at one moment."""

    usage_ns: int
    periods: int
    throttled_periods: int
    throttled_ns: int

    @classmethod
    def read(cls, pod: dict[str, Any]) -> CPUSample:
        usage = int((container_cgroup(pod, "cpuacct") / "cpuacct.usage").read_text())
        stat = dict(
            line.split() for line in (container_cgroup(pod, "cpu") / "cpu.stat").read_text().splitlines()
        )
        return cls(usage, int(stat["nr_periods"]), int(stat["nr_throttled"]), int(stat["throttled_time"]))

    def since(self, earlier: CPUSample, seconds: float) -> dict[str, float]:
        """CPU time, millicores and the share of CFS periods throttled between two samples."""
        periods = self.periods - earlier.periods
        throttled = self.throttled_periods - earlier.throttled_periods
        return {
            "cpu_seconds": round((self.usage_ns - earlier.usage_ns) / 1e9, 3),
            "millicores": round((self.usage_ns - earlier.usage_ns) / 1e6 / seconds, 1),
            "throttled_percent": round(100 * throttled / periods, 1) if periods else 0.0,
        }


def memory_mib(pod: dict[str, Any]) -> dict[str, float]:
    """The container's peak memory use (``max_usage_in_bytes``, page cache included) and its
    working set now (usage less inactive file pages: what kubelet and metrics-server report)."""
    path = container_cgroup(pod, "memory")
    stat = dict(line.split() for line in (path / "memory.stat").read_text().splitlines())
    usage = int((path / "memory.usage_in_bytes").read_text())
    working = max(0, usage - int(stat.get("total_inactive_file", 0)))
    peak = int((path / "memory.max_usage_in_bytes").read_text())
    return {"peak_mib": round(peak / 2**20, 1), "working_set_mib": round(working / 2**20, 1)}


def oom_kills(pod: dict[str, Any]) -> int:
    """How many processes the kernel killed in the container's memory cgroup for reaching its
    limit (``memory.oom_control``'s ``oom_kill``)."""
    path = container_cgroup(pod, "memory") / "memory.oom_control"
    stat = dict(line.split() for line in path.read_text().splitlines())
    return int(stat["oom_kill"])
