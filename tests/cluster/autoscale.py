"""Load that makes the HorizontalPodAutoscaler act, and what the node's cgroups say about it.

:class:`LoadRounds` runs ``bench/load.py`` from inside a pod's network namespace, round after
round, until stopped: each round is a fresh process with fresh connections, so kube-proxy
spreads them over the Service's endpoints as they are then (a pod added by a scale-out gets
its share from the next round on; one long-lived pool would stay on the pods it first
reached). :func:`container_cgroup` and :class:`CPUSample` read the containers' CPU time,
CFS throttling and memory from kubelet's cgroupfs hierarchy (cgroup v1:
``<controller>/kubepods/[<qos class>/]pod<uid>/<container id>``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .podnet import PodNet

ROOT = Path(__file__).resolve().parents[2]
LOAD = ROOT / "bench" / "load.py"
CGROUP = Path("/sys/fs/cgroup")


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
        self.argv = [
            "ip", "netns", "exec", net.netns, sys.executable, str(LOAD),
            "--store-url", store_url, "--allow-pod-network",
            "--requests", str(requests), "--concurrency", str(concurrency),
            "--deadline", str(deadline), "--products", "5",
        ]  # fmt: skip
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
        """Millicores used and the share of CFS periods throttled between two samples."""
        periods = self.periods - earlier.periods
        throttled = self.throttled_periods - earlier.throttled_periods
        return {
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
