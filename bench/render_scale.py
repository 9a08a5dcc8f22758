"""Render wall time, CPU time and peak memory of synthetic stacks with 1, 10, 50 and 100 services.

Each size is rendered by the real command, ``python -m hardened_k8s.render``, in a fresh
process (interpreter start, imports and exit included, as a user's ``make render`` pays them)
on a generated project that reuses this repository's ``__main__.py``: N services in a call
chain (service i calls i+1), the last one calling PostgreSQL. Schema and policy checks are
included. Prints a markdown table; the best (least wall time) of ``--repeat`` runs counts.

    venv/bin/python bench/render_scale.py [--sizes 1 10 50 100] [--repeat 3]

:mod:`cdk8s_compare` reuses the stack generator and :func:`time_render`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STACK = "bench"
# A digest shaped like a registry's: production stacks refuse placeholders such as "b" * 64 (HARD-035).
REF = "quay.io/ecosystem-appeng/bench@sha256:" + hashlib.sha256(b"bench").hexdigest()
DATABASE = "bench-postgresql"


def service_names(n: int) -> list[str]:
    """``svc-000`` ... in call order."""
    return [f"svc-{i:03d}" for i in range(n)]


def synthetic_stack(n: int, *, database: bool = True) -> dict[str, object]:
    """A production stack file of ``n`` autoscaled services calling each other in a chain.

    With ``database`` the last service also calls PostgreSQL (a StatefulSet, two Services,
    two Secrets, a ServiceAccount and a NetworkPolicy more).
    """
    names = service_names(n)
    services = {}
    for i, name in enumerate(names):
        egress = names[i + 1 : i + 2] + ([DATABASE] if database and i == n - 1 else [])
        services[name] = {
            "image": {"ref": REF},
            "port": 8000,
            "autoscaling": {"minReplicas": 2, "maxReplicas": 4},
            "ingressFrom": names[i - 1 : i] if i else [],
            "egressTo": egress,
        }
    p = STACK
    config: dict[str, object] = {
        f"{p}:namespace": "bench",
        f"{p}:production": True,
        f"{p}:services": services,
    }
    if database:
        config[f"{p}:databasePassword"] = {"secure": "v1:placeholder"}
        config[f"{p}:database"] = {"name": DATABASE, "image": REF}
    return {"config": config}


def make_project(directory: Path, n: int, *, database: bool = True, checkout: Path = ROOT) -> None:
    """A Pulumi project in ``directory`` with ``checkout``'s program (default this repository's)
    and the stack ``bench``."""
    (directory / "Pulumi.yaml").write_text(f"name: {STACK}\nruntime: python\n")
    (directory / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(synthetic_stack(n, database=database)))
    shutil.copy(checkout / "__main__.py", directory / "__main__.py")


@dataclass(frozen=True)
class Run:
    """One timed process: wall seconds, CPU seconds (user + system) and peak RSS."""

    wall: float
    cpu: float
    peak_mib: float


def timed(command: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
    """Run ``command`` to completion: its wall time, and the CPU time and peak RSS of the
    process and every child it waited for (``wait4``). Fails with the output on a non-zero exit.
    """
    with tempfile.TemporaryFile("w+") as output:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            output.seek(0)
            raise SystemExit(f"{' '.join(command)} exited {proc.returncode}:\n{output.read()}")
    # ru_maxrss: the largest of the process and its waited-for children (KiB on Linux).
    return Run(wall=wall, cpu=usage.ru_utime + usage.ru_stime, peak_mib=usage.ru_maxrss / 1024)


def time_render(project: Path, out: Path, *, library: Path | None = None) -> Run:
    """``python -m hardened_k8s.render --stack bench`` of ``project`` into ``out``, timed.

    ``library``: another ``components/src`` to render with (put first on ``PYTHONPATH``),
    e.g. an older commit's for a before/after figure; default the installed library.
    """
    command = [sys.executable, "-m", "hardened_k8s.render", "--stack", STACK]
    env = None
    if library is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(library), os.environ.get("PYTHONPATH", "")])}
    return timed([*command, "--project-dir", str(project), "--out", str(out)], env=env)


def best(runs: list[Run]) -> Run:
    """The run with the least wall time: the one least disturbed by other load."""
    return min(runs, key=lambda r: r.wall)


def measure(n: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        make_project(project, n)
        runs = [time_render(project, project / "build") for _ in range(repeat)]
        objects = len(list((project / "build" / STACK).iterdir()))
    run = best(runs)
    return {"n": n, "objects": objects, "wall": run.wall, "cpu": run.cpu, "peak": run.peak_mib}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = [measure(n, args.repeat) for n in args.sizes]
    print("| services | objects | wall time (s) | CPU (s) | ms per added service | peak RSS (MiB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    previous = None
    for r in rows:
        # Growth is linear when each added service costs the same, whatever the size.
        added = (
            ""
            if previous is None
            else f"{1000 * (r['wall'] - previous['wall']) / (r['n'] - previous['n']):.0f}"
        )
        cells = [f"{r['n']:.0f}", f"{r['objects']:.0f}", f"{r['wall']:.2f}", f"{r['cpu']:.2f}", added]
        print("| " + " | ".join([*cells, f"{r['peak']:.0f}"]) + " |")
        previous = r


if __name__ == "__main__":
    main()
