"""Wall time of the unit tier, as ``make unit`` runs it, over several runs.

Each run is a fresh ``python -m pytest`` process (interpreter start, imports, collection and
exit included) with pytest's cache off, so no run profits from an earlier one's choices.
Prints the wall and CPU time of every run, the best and the median, the time pytest reports
for itself, and the number of tests; a run whose tests fail stops the benchmark.

    venv/bin/python bench/unit_suite.py [--repeat 5]

The machine's load is printed with the figures: on a shared two-core machine a run can take
a second longer than the best one.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Every marker of pyproject.toml is a tier besides the unit tier (tests/tiers.py: tier_markers).
_OPTIONS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
MARKERS = " and ".join(f"not {marker.split(':', 1)[0]}" for marker in _OPTIONS["markers"])
PATHS = ["tests/unit", "tests/policy"]
COMMAND = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", MARKERS, *PATHS]
"""The unit tier exactly as the Makefile's ``unit`` target selects it."""
SUMMARY = re.compile(r"(\d+) passed.* in ([\d.]+)s")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once() -> tuple[float, float, float, int]:
    """One run: wall seconds, CPU seconds, pytest's own seconds, tests passed."""
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(COMMAND, cwd=ROOT, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    match = SUMMARY.search(last)
    if done.returncode != 0 or match is None:
        output = done.stdout[-3000:] + done.stderr[-2000:]
        sys.exit(f"the unit tier failed (exit {done.returncode}):\n{output}")
    return wall, cpu, float(match.group(2)), int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs to time (default 5)")
    args = parser.parse_args(argv)
    print("$", shlex.join(["python", *COMMAND[1:]]))
    walls, cpus, reported = [], [], []
    for i in range(args.repeat):
        wall, cpu, own, tests = run_once()
        walls.append(wall)
        cpus.append(cpu)
        reported.append(own)
        print(f"run {i + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU, pytest {own:.2f} s, {tests} passed")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print("\n| tests | best wall | median wall | best CPU | best pytest | load (1/5/15 min) |")
    print("|---|---|---|---|---|---|")
    best, median = min(walls), statistics.median(walls)
    print(f"| {tests} | {best:.2f} s | {median:.2f} s | {min(cpus):.2f} s | {min(reported):.2f} s | {load} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
