"""Render wall time and peak memory of synthetic stacks with 1, 10, 50 and 100 services.

Each size runs in a fresh Python process (imports included, as a user's `make render` pays
them) on a generated project that reuses this repository's ``__main__.py``: N services in a
call chain (service i calls i+1) plus PostgreSQL. Prints a markdown table.

    venv/bin/python bench/render_scale.py [--sizes 1 10 50 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# A digest shaped like a registry's: production stacks refuse placeholders such as "b" * 64 (HARD-035).
REF = "quay.io/ecosystem-appeng/bench@sha256:" + hashlib.sha256(b"bench").hexdigest()


def synthetic_stack(n: int) -> dict[str, object]:
    names = [f"svc-{i:03d}" for i in range(n)]
    services = {}
    for i, name in enumerate(names):
        services[name] = {
            "image": {"ref": REF},
            "port": 8000,
            "autoscaling": {"minReplicas": 2, "maxReplicas": 4},
            "ingressFrom": names[i - 1 : i] if i else [],
            "egressTo": names[i + 1 : i + 2] + (["bench-postgresql"] if i == n - 1 else []),
        }
    p = "bench"
    return {
        "config": {
            f"{p}:namespace": "bench",
            f"{p}:production": True,
            f"{p}:databasePassword": {"secure": "v1:placeholder"},
            f"{p}:database": {"name": "bench-postgresql", "image": REF},
            f"{p}:services": services,
        }
    }


def make_project(directory: Path, n: int) -> None:
    (directory / "Pulumi.yaml").write_text("name: bench\nruntime: python\n")
    (directory / "Pulumi.bench.yaml").write_text(yaml.safe_dump(synthetic_stack(n)))
    shutil.copy(ROOT / "__main__.py", directory / "__main__.py")


def one(project: Path) -> None:
    """Child process: render once, print seconds and peak RSS as JSON."""
    start = time.perf_counter()
    from hardened_k8s.render import main

    with open("/dev/null", "w") as sink:
        stdout, sys.stdout = sys.stdout, sink
        try:
            status = main(["--stack", "bench", "--project-dir", str(project)])
        finally:
            sys.stdout = stdout
    seconds = time.perf_counter() - start
    objects = len(list((project / "build" / "bench").iterdir()))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"status": status, "seconds": seconds, "peak_mib": peak_kib / 1024, "objects": objects}))


def measure(n: int, repeat: int) -> dict[str, float]:
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        make_project(project, n)
        for _ in range(repeat):
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(project)], capture_output=True, text=True, check=True
            )
            wall = time.perf_counter() - start
            result = json.loads(out.stdout.strip().splitlines()[-1])
            if result["status"] != 0:
                raise SystemExit(f"render of {n} services failed:\n{out.stdout}{out.stderr}")
            result["wall"] = wall
            runs.append(result)
    best = min(runs, key=lambda r: r["wall"])
    return {
        "n": n,
        "wall": best["wall"],
        "inner": best["seconds"],
        "peak": best["peak_mib"],
        "objects": best["objects"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one)
        return
    rows = [measure(n, args.repeat) for n in args.sizes]
    print("| services | objects | wall time (s) | in-process (s) | per service (ms) | peak RSS (MiB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        per = 1000 * r["inner"] / r["n"]
        cells = [f"{r['n']}", f"{r['objects']}", f"{r['wall']:.2f}", f"{r['inner']:.2f}", f"{per:.0f}"]
        print("| " + " | ".join([*cells, f"{r['peak']:.0f}"]) + " |")


if __name__ == "__main__":
    main()
