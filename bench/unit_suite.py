"""Wall time of the unit tier, as ``make unit`` runs it, over several runs.

Each run is a fresh ``python -m pytest`` process (interpreter start, imports, collection and
exit included) with pytest's cache off, so no run profits from an earlier one's choices.
Prints the wall and CPU time of every run, the best and the median, the time pytest reports
for itself, and the number of tests; a run whose tests fail stops the benchmark.

    venv/bin/python bench/unit_suite.py [--repeat 5] [--against REV]

The machine's load is printed with the figures: on a shared two-core machine a run can take
a second longer than the best one, and the machine itself runs a third slower for minutes at
a time. ``--against REV`` therefore times the tier of commit ``REV`` (checked out into a
temporary git worktree, run with this virtualenv and REV's own library sources) in turns
with the working tree's, run for run, and reports the ratio of each pair: drift of the
machine's speed hits both sides of a pair alike.
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
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.tiers import tier_markers  # noqa: E402 - the repository's root is on the path now

MARKERS = " and ".join(f"not {marker}" for marker in tier_markers(ROOT))
PATHS = ["tests/unit", "tests/policy"]
COMMAND = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", MARKERS, *PATHS]
"""The unit tier exactly as the Makefile's ``unit`` target selects it."""
SUMMARY = re.compile(r"(\d+) passed.* in ([\d.]+)s")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(tree: Path = ROOT) -> tuple[float, float, float, int]:
    """One run in ``tree``: wall seconds, CPU seconds, pytest's own seconds, tests passed."""
    env = dict(os.environ)
    if tree != ROOT:
        # The virtualenv's editable installs point at this tree's sources: put the other
        # tree's first.
        sources = [str(tree / "components" / "src"), str(tree / "rules" / "src")]
        env["PYTHONPATH"] = os.pathsep.join([*sources, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(COMMAND, cwd=tree, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    match = SUMMARY.search(last)
    if done.returncode != 0 or match is None:
        output = done.stdout[-3000:] + done.stderr[-2000:]
        sys.exit(f"the unit tier failed (exit {done.returncode}):\n{output}")
    return wall, cpu, float(match.group(2)), int(match.group(1))


@contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A temporary detached git worktree of ``rev``, removed after."""
    with tempfile.TemporaryDirectory(prefix="unit-suite-") as scratch:
        tree = Path(scratch) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), rev], check=True
        )
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)


def compare(rev: str, repeat: int) -> int:
    """Time ``rev``'s tier and the working tree's in turns; print each pair and their ratios."""
    print(f"$ {shlex.join(['python', *COMMAND[1:]])}  (in turns: {rev}, then this tree)")
    pairs: list[tuple[float, float, float, float]] = []
    with worktree(rev) as tree:
        for i in range(repeat):
            theirs, _, their_own, their_tests = run_once(tree)
            ours, _, our_own, tests = run_once()
            pairs.append((theirs, ours, their_own, our_own))
            print(
                f"pair {i + 1}: {rev} {theirs:.2f} s wall ({their_tests} passed), "
                f"this tree {ours:.2f} s wall ({tests} passed): {ours / theirs:.2f}"
            )
    ratios = [ours / theirs for theirs, ours, _, _ in pairs]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print("\n| | best wall | median wall | median pytest |")
    print("|---|---|---|---|")
    for label, wall, own in ((rev, 0, 2), ("this tree", 1, 3)):
        walls = [p[wall] for p in pairs]
        print(
            f"| {label} | {min(walls):.2f} s | {statistics.median(walls):.2f} s "
            f"| {statistics.median(p[own] for p in pairs):.2f} s |"
        )
    print(
        f"\nratio of wall times, this tree to {rev}: median {statistics.median(ratios):.2f}, "
        f"range {min(ratios):.2f}–{max(ratios):.2f} over {repeat} pairs (load {load})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs (or pairs) to time (default 5)")
    parser.add_argument("--against", metavar="REV", help="time commit REV's tier in turns with this tree's")
    args = parser.parse_args(argv)
    if args.against:
        return compare(args.against, args.repeat)
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
