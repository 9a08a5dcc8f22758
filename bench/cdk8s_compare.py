"""The offline render against ``cdk8s synth`` of the same hardened objects, timed side by side.

For each size N the same synthetic production stack (:mod:`render_scale`: N autoscaled
services in a call chain, no database) is produced twice, each by its tool's real command in
a fresh process:

* ``python -m hardened_k8s.render --stack bench``: the repository's ``__main__.py`` on
  Pulumi's mock engine, OpenAPI schema validation and every policy rule included;
* ``cdk8s synth`` of ``bench/cdk8s/main.js`` (cdk8s-plus 31), which builds the Namespace,
  default deny and DNS egress, and per service the ServiceAccount, Deployment, Service,
  HorizontalPodAutoscaler, PodDisruptionBudget and NetworkPolicy with the render's security
  contexts, probes, limits and spread, from a JSON spec of the same stack.

One untimed run of each comes first (warm file-system caches, outputs to compare): the bench
checks that both tools wrote the same set of objects (kind and name) and runs the render's
schema validation and policy rules over cdk8s' objects, so the two really are the same
hardened objects. Timed runs then alternate (render, synth, render, synth, ...) so both see
the same machine load; the run with the least wall time of each counts, and its CPU time
(user + system, children included) is reported too. The library is byte-compiled first, as
pip does when it installs the wheel; neither tool gets any other cache.

``bench/cdk8s/node_modules`` is not in git: it is installed with ``npm ci`` from the
committed ``package-lock.json`` when missing or stale. Writes ``build/bench/cdk8s-compare.json``.

    venv/bin/python bench/cdk8s_compare.py [--sizes 1 10 50 100] [--repeat 5] [--label NAME]
                                           [--checkout DIR]
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from render_scale import REF, ROOT, STACK, Run, best, make_project, synthetic_stack, time_render, timed

from hardened_k8s.schema import validate_objects
from hardened_k8s_rules.policy import evaluate

APP = Path(__file__).resolve().parent / "cdk8s"
CDK8S = APP / "node_modules" / ".bin" / "cdk8s"
TARGET_RATIO = 3.0
PARITY_FAILURES = ("only_render", "only_cdk8s", "cdk8s_schema_errors", "cdk8s_mandatory")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def install_app() -> None:
    """``npm ci`` in ``bench/cdk8s`` unless ``node_modules`` already holds this lock file's tree."""
    digest = hashlib.sha256((APP / "package-lock.json").read_bytes()).hexdigest()[:16]
    stamp = APP / "node_modules" / f".installed-{digest}"
    if stamp.exists():
        return
    print(f"npm ci in {APP.relative_to(ROOT)} ...", file=sys.stderr)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=APP, check=True)
    stamp.touch()


def cdk8s_spec(n: int) -> dict[str, Any]:
    """What ``main.js`` builds, read from the very stack file the render gets.

    Everything the stack leaves to the library's defaults (resources, probes, user, labels'
    version and component) is written out in ``main.js`` with the same values.
    """
    config: dict[str, Any] = synthetic_stack(n, database=False)["config"]  # type: ignore[assignment]
    services = config[f"{STACK}:services"]
    return {
        "namespace": config[f"{STACK}:namespace"],
        "instance": config[f"{STACK}:namespace"],
        "partOf": "app",
        "services": [
            {
                "name": name,
                "port": spec["port"],
                "image": spec["image"]["ref"],
                "version": "0.1.0",
                "component": "server",
                "minReplicas": spec["autoscaling"]["minReplicas"],
                "maxReplicas": spec["autoscaling"]["maxReplicas"],
                "ingressFrom": spec["ingressFrom"],
                "egressTo": spec["egressTo"],
            }
            for name, spec in services.items()
        ],
    }


def time_synth(spec_file: Path, out: Path) -> Run:
    """``cdk8s synth`` of ``main.js`` for ``spec_file`` into ``out``, timed (upgrade check off)."""
    env = {**os.environ, "BENCH_SPEC": str(spec_file)}
    return timed([str(CDK8S), "synth", "--no-check-upgrade", "--output", str(out)], cwd=APP, env=env)


def read_objects(directory: Path) -> list[dict[str, Any]]:
    """Every YAML document in ``directory``'s files, in file-name order."""
    objects = []
    for path in sorted(directory.iterdir()):
        objects += [doc for doc in yaml.load_all(path.read_text(), Loader=_LOADER) if doc]
    return objects


def compare(rendered: list[dict[str, Any]], synthesized: list[dict[str, Any]]) -> dict[str, Any]:
    """Same objects? Object names by kind, and cdk8s' objects under the render's own checks."""

    def names(objects: list[dict[str, Any]]) -> set[str]:
        return {f"{o['kind']}/{o['metadata']['name']}" for o in objects}

    report = evaluate(synthesized, production=True, exemptions=())
    return {
        "only_render": sorted(names(rendered) - names(synthesized)),
        "only_cdk8s": sorted(names(synthesized) - names(rendered)),
        "cdk8s_schema_errors": [str(e) for e in validate_objects(synthesized, "1.31")],
        "cdk8s_mandatory": sorted({f"{v.rule_id} {v.resource}" for v in report.mandatory}),
        "cdk8s_advisory": sorted({v.rule_id for v in report.advisory}),
    }


def measure(n: int, repeat: int, work: Path, checkout: Path | None) -> dict[str, Any]:
    project = work / f"project-{n}"
    project.mkdir()
    make_project(project, n, database=False, checkout=checkout or ROOT)
    library = checkout / "components" / "src" if checkout else None
    spec_file = work / f"spec-{n}.json"
    spec_file.write_text(json.dumps(cdk8s_spec(n)))
    render_out, synth_out = work / f"render-{n}", work / f"cdk8s-{n}"
    # One untimed run of each first: file-system caches warm, outputs to compare.
    time_render(project, render_out, library=library)
    time_synth(spec_file, synth_out)
    rendered = read_objects(render_out / STACK)
    synthesized = read_objects(synth_out)
    renders: list[Run] = []
    synths: list[Run] = []
    for _ in range(repeat):
        renders.append(time_render(project, render_out, library=library))
        synths.append(time_synth(spec_file, synth_out))
    r, s = best(renders), best(synths)
    return {
        "services": n,
        "objects": {"render": len(rendered), "cdk8s": len(synthesized)},
        "render": {"best": vars(r), "walls": [x.wall for x in renders], "median_wall": _median(renders)},
        "cdk8s": {"best": vars(s), "walls": [x.wall for x in synths], "median_wall": _median(synths)},
        "ratio_wall": r.wall / s.wall,
        "ratio_cpu": r.cpu / s.cpu,
        "parity": compare(rendered, synthesized),
    }


def _median(runs: Sequence[Run]) -> float:
    return statistics.median(x.wall for x in runs)


def marginal(rows: list[dict[str, Any]], tool: str) -> list[float]:
    """Milliseconds each added service costs between consecutive sizes (best wall times)."""
    out = []
    for a, b in itertools.pairwise(rows):
        added = b["services"] - a["services"]
        out.append(1000 * (b[tool]["best"]["wall"] - a[tool]["best"]["wall"]) / added)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| services | objects | render wall (s) | render CPU (s) | cdk8s wall (s) | cdk8s CPU (s) "
        "| wall ratio | CPU ratio | render ms per added service | cdk8s ms per added service |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    per_render = ["", *(f"{x:.0f}" for x in marginal(rows, "render"))]
    per_cdk8s = ["", *(f"{x:.0f}" for x in marginal(rows, "cdk8s"))]
    for row, pr, pc in zip(rows, per_render, per_cdk8s, strict=True):
        r, c = row["render"]["best"], row["cdk8s"]["best"]
        cells = [
            str(row["services"]),
            str(row["objects"]["render"]),
            f"{r['wall']:.2f}",
            f"{r['cpu']:.2f}",
            f"{c['wall']:.2f}",
            f"{c['cpu']:.2f}",
            f"{row['ratio_wall']:.2f}",
            f"{row['ratio_cpu']:.2f}",
            pr,
            pc,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    def out(*command: str, cwd: Path | None = None) -> str:
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)
        return done.stdout.strip() if done.returncode == 0 else "unknown"

    lock = json.loads((APP / "package-lock.json").read_text())["packages"]
    return {
        "python": platform.python_version(),
        "node": out("node", "--version"),
        "cdk8s": lock["node_modules/cdk8s"]["version"],
        "cdk8s-plus-31": lock["node_modules/cdk8s-plus-31"]["version"],
        "cdk8s-cli": lock["node_modules/cdk8s-cli"]["version"],
        "git": out("git", "describe", "--always", "--dirty", cwd=ROOT),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each tool per size (default 5)")
    parser.add_argument("--label", default="", help="suffix of the JSON file, e.g. a branch name")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench", help="JSON directory")
    parser.add_argument(
        "--checkout",
        type=Path,
        help="render with the library and __main__.py of this directory (e.g. `git archive <commit> "
        "components/src __main__.py | tar -x -C DIR`) instead of this repository's; the parity "
        "checks still use the installed library",
    )
    args = parser.parse_args()
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("node and npm are needed for the cdk8s side (Node 20 or later)")
    install_app()
    # Byte-compile the library as pip does when it installs the wheel (an editable install
    # leaves that to the first import, which PYTHONDONTWRITEBYTECODE turns off).
    compileall.compile_dir((args.checkout or ROOT) / "components" / "src", quiet=1)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cdk8s-compare-") as tmp:
        rows = [measure(n, args.repeat, Path(tmp), args.checkout) for n in args.sizes]
    result = {
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "image_ref": REF,
        "cpus": os.cpu_count(),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "repeat": args.repeat,
        "checkout": str(args.checkout) if args.checkout else "this repository",
        "versions": versions(),
        "target_ratio": TARGET_RATIO,
        "sizes": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"cdk8s-compare{'-' + args.label if args.label else ''}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(table(rows))
    print(f"\nbest of {args.repeat} alternating runs each; load average {load_before[0]:.1f} before")
    for row in rows:
        p = row["parity"]
        problems = [key for key in PARITY_FAILURES if p[key]]
        status = "same objects, cdk8s' pass the schema and every mandatory rule" if not problems else "DIFFER"
        print(f"N={row['services']}: {status}" + (f" ({', '.join(problems)})" if problems else ""))
        if p["cdk8s_advisory"]:
            print(f"  cdk8s objects' advisory findings: {', '.join(p['cdk8s_advisory'])}")
    print(f"wrote {path}")
    if any(row["parity"][key] for row in rows for key in PARITY_FAILURES):
        raise SystemExit("the two tools did not produce the same hardened objects; see above")


if __name__ == "__main__":
    main()
