"""End-to-end figures: kube play -> every pod Ready, and MCP tool-call latency.

Builds the three images with the image tier's harness, renders the dev stack with their
digests and generated secrets, plays it with podman in a private network namespace (the
e2e tier's code, ``tests/e2e``), then measures:

* seconds from the first ``podman kube play`` until every pod's rendered readiness probe
  passes (3 API replicas migrating an empty database, the MCP server, PostgreSQL initdb);
* p50/p95 of N (default 200) ``list_products`` calls through the real MCP SDK in one session
  (MCP server -> API -> PostgreSQL), a bounded loop.

Run as root after ``scripts/ci-e2e-deps.sh``: ``venv/bin/python bench/e2e.py [--calls N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardened_k8s.render import manifests
from tests.e2e.images import build_stack_images
from tests.e2e.podman import Cluster
from tests.e2e.stack import MCP, RunningStack, Secrets, _mcp_session_timings, e2e_config, render
from tests.image.engine import Harness, git_revision


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200, help="MCP tool calls to time (default 200)")
    args = parser.parse_args()
    calls = max(1, min(args.calls, 10_000))  # bounded
    with Harness() as harness:
        started = time.monotonic()
        images = build_stack_images(harness, git_revision())
        print(f"images built and pushed in {time.monotonic() - started:.0f}s", flush=True)
        generated = Secrets()
        run = render(e2e_config({name: image.ref for name, image in images.items()}), generated)
        with Cluster() as cluster:
            for image in images.values():
                cluster.pull(image.ref)
            stack = RunningStack(cluster, run, manifests(run), generated)
            stack.play()
            ready = stack.wait_all_ready(timeout=600)
            pods = sum(len(w.pods) for w in stack.workloads.values())
            stack.mcp([("create_product", {"sku": "bench-1", "name": "Bench", "price_cents": 1})])
            url = stack.base_url(MCP) + "/mcp"
            timings = cluster.call(
                lambda: asyncio.run(
                    _mcp_session_timings(
                        url, generated.auth_token, stack.mcp_host, [("list_products", {"limit": 10})] * calls
                    )
                ),
                timeout=1800,
            )
    q = statistics.quantiles(timings, n=100)
    print("| what | figure |")
    print("|---|---:|")
    print(f"| kube play -> all {pods} pods Ready | {ready:.1f} s |")
    print(f"| {calls} MCP tool calls, p50 | {q[49] * 1000:.1f} ms |")
    print(f"| {calls} MCP tool calls, p95 | {q[94] * 1000:.1f} ms |")
    print(f"| {calls} MCP tool calls, total | {sum(timings):.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
