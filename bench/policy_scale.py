"""Policy time of synthetic stacks with 10, 50, 100 and 200 services: does it grow linearly?

Each size is rendered once (``python -m hardened_k8s.render`` in a fresh process, on the
same generated project as ``bench/render_scale.py``: N services in a call chain plus
PostgreSQL, a production stack), the written objects are read back, and then only
:func:`hardened_k8s_rules.policy.evaluate` is timed over them in this process, best of
``--repeat``, split into the object rules and the stack-wide rules. Times are the process's
CPU time (``time.process_time``), so other work on the machine does not count. Prints a
markdown table; the last column is the time per service, flat when the policy grows linearly.

    venv/bin/python bench/policy_scale.py [--sizes 10 50 100 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from render_scale import make_project

from hardened_k8s_rules.policy import RULES, ObjectRule, Rule, StackRule, evaluate

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def rendered_objects(n: int) -> list[dict[str, Any]]:
    """The objects the offline render writes for the synthetic stack of ``n`` services."""
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        make_project(project, n)
        subprocess.run(
            [sys.executable, "-m", "hardened_k8s.render", "--stack", "bench", "--project-dir", str(project)],
            check=True,
            capture_output=True,
        )
        files = sorted((project / "build" / "bench").iterdir())
        return [yaml.load(path.read_text(), Loader=_LOADER) for path in files]


def best_time(objs: Sequence[dict[str, Any]], rules: Sequence[Rule], repeat: int) -> float:
    """Fewest CPU seconds one ``evaluate`` of ``rules`` over ``objs`` took in ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        report = evaluate(objs, production=True, rules=rules)
        times.append(time.process_time() - start)
        if report.failed:
            raise SystemExit(f"the synthetic stack fails the policy:\n{report}")
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100, 200])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    object_rules = [r for r in RULES if isinstance(r, ObjectRule)]
    stack_rules = [r for r in RULES if isinstance(r, StackRule)]
    print("| services | objects | policy (ms) | object rules (ms) | stack rules (ms) | per service (ms) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        objs = rendered_objects(n)
        total = best_time(objs, RULES, args.repeat)
        per_object = best_time(objs, object_rules, args.repeat)
        per_stack = best_time(objs, stack_rules, args.repeat)
        cells = [n, len(objs), f"{1000 * total:.1f}", f"{1000 * per_object:.1f}", f"{1000 * per_stack:.1f}"]
        print("| " + " | ".join(str(c) for c in [*cells, f"{1000 * total / n:.2f}"]) + " |", flush=True)


if __name__ == "__main__":
    main()
