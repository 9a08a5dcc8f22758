"""Load figures of the stack run from its real images (the image tier's engine), on loopback.

Builds the three images with the image tier's harness, starts PostgreSQL, three store API
replicas and the MCP server (``tests/image/stack.py``), and drives them with the bounded
load generator (``bench/load.py``):

* ``mcp list`` / ``mcp get``: N tool calls (default 500) in one MCP session, one at a time
  (the SDK client, streamable HTTP, bearer token), MCP server -> store API -> PostgreSQL;
* ``reads, 1 replica``: ``GET /products/{id}`` on one API replica, 8 in flight;
* ``mix, 3 replicas``: the default mix (reads, creates, adjustments) over the three replicas.

Every scenario is warmed up with a short run first (not reported). Prints a Markdown table
and writes the JSON reports to ``build/bench/image-stack-<label>.json``.

Run as root after ``scripts/ci-image-deps.sh``::

    venv/bin/python bench/image_stack.py [--calls 500] [--reads 10000] [--services-from REV]

``--services-from REV`` builds the services from another commit's ``services/`` (``git
archive``), to measure before and after a change on the same machine in one sitting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import load  # noqa: E402 - a sibling script

from tests.image.engine import Harness, git_revision  # noqa: E402 - the repository's root is on the path now
from tests.image.stack import Stack, build_stack, run_stack  # noqa: E402

OUT = ROOT / "build" / "bench"


def scenarios(stack: Stack, calls: int, reads: int) -> list[tuple[str, load.LoadConfig]]:
    urls = tuple(stack.api_urls)

    def mcp(tool: str) -> load.LoadConfig:
        return load.LoadConfig(
            store_urls=urls[:1],
            mcp_url=stack.mcp_url,
            mcp_token=stack.token,
            requests=calls,
            concurrency=1,
            mix={tool: 1},
            products=10,
        )

    return [
        ("mcp list", mcp("list")),
        ("mcp get", mcp("get")),
        (
            "reads, 1 replica",
            load.LoadConfig(store_urls=urls[:1], requests=reads, concurrency=8, mix={"get": 1}, deadline=300),
        ),
        ("mix, 3 replicas", load.LoadConfig(store_urls=urls, requests=reads, concurrency=16, deadline=300)),
    ]


def container_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each role's containers (``api`` sums the replicas)."""
    used: dict[str, float] = {}
    for name, container in stack.containers.items():
        stats = container.stats(stream=False, one_shot=True)
        role = name.split("-")[0]
        used[role] = used.get(role, 0.0) + stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
    return used


def warm(config: load.LoadConfig) -> load.LoadConfig:
    fields: dict[str, Any] = {**config.__dict__, "requests": min(200, config.requests)}
    return load.LoadConfig(**fields)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--calls", type=int, default=500, help="MCP tool calls per MCP scenario (default 500)"
    )
    parser.add_argument(
        "--reads", type=int, default=10_000, help="requests per store API scenario (default 10000)"
    )
    parser.add_argument("--services-from", metavar="REV", help="build services/ as of this git revision")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hk8s-services-") as tmp:
        services_dir = None
        revision = git_revision()
        if args.services_from:
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.services_from, "services"],
                check=True,
                capture_output=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            services_dir = Path(tmp) / "services"
            revision = args.services_from
        with Harness() as harness:
            images = build_stack(harness, revision, services_dir)
            with run_stack(harness, images, replicas=3, mcp=True) as stack:
                rows = []
                for label, config in scenarios(stack, args.calls, args.reads):
                    asyncio.run(load.run_load(warm(config)))
                    before = container_cpu(stack)
                    summary = asyncio.run(load.run_load(config)).summary()
                    after = container_cpu(stack)
                    # CPU per completed request in each role's containers: what a replica would
                    # serve per core if it had one to itself (the machine is shared).
                    summary["container_cpu_ms_per_request"] = {
                        role: round((after[role] - before[role]) * 1000 / max(summary["completed"], 1), 3)
                        for role in after
                    }
                    name = label.replace(" ", "-").replace(",", "")
                    (OUT / f"image-stack-{name}.json").write_text(json.dumps(summary, indent=2))
                    rows.append((label, summary))
                    print(f"{label}: {json.dumps(summary)}", file=sys.stderr, flush=True)
    print(f"services from {revision}")
    print(
        "| scenario | requests | concurrency | throughput /s | p50 ms | p95 ms | p99 ms | errors "
        "| CPU ms per request (containers; generator) | load average |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---|")
    for label, s in rows:
        ms = s["latency_ms"]
        errors = ", ".join(f"{k}: {v}" for k, v in s["errors"].items()) or "0"
        cpu = ", ".join(f"{role} {ms_}" for role, ms_ in s["container_cpu_ms_per_request"].items())
        generator = round(s["generator_cpu_seconds"] * 1000 / max(s["completed"], 1), 3)
        print(
            f"| {label} | {s['completed']} | {s['concurrency']} | {s['throughput_per_s']} | {ms['p50']} | "
            f"{ms['p95']} | {ms['p99']} | {errors} | {cpu}; generator {generator} | {s['loadavg']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
