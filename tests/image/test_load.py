"""Load on the real images: stock stays correct under contention through several API replicas.

Three store API containers on one PostgreSQL container (the stack of ``stack.py``), driven by
the load generator's own code (``bench/load.py``): many concurrent adjustments of one product,
draining on average so the stock hits the floor and refusals happen.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from .engine import REPO_ROOT, Harness
from .stack import Stack, build_stack, run_stack

# bench/ holds scripts, not a package: the load generator is imported as they import each other.
sys.path.insert(0, str(REPO_ROOT / "bench"))
import load

pytestmark = pytest.mark.image

REPLICAS = 3
INITIAL_STOCK = 40
ADJUSTMENTS = 1_500
CONCURRENCY = 24


@pytest.fixture(scope="module")
def stack(harness: Harness, revision: str) -> Iterator[Stack]:
    images = build_stack(harness, revision)
    with run_stack(harness, images, replicas=REPLICAS, mcp=False) as running:
        yield running


def test_contended_stock_equals_the_sum_of_accepted_deltas(stack: Stack) -> None:
    config = load.LoadConfig(
        store_urls=tuple(stack.api_urls),
        requests=ADJUSTMENTS,
        concurrency=CONCURRENCY,
        deadline=300,
        mix={"adjust": 1},
        products=1,
        initial_stock=INITIAL_STOCK,
        # Mean delta -4/7 per request: the stock drains and many adjustments are refused.
        deltas=(-4, 3),
        seed=20,
    )
    report: Any = asyncio.run(load.run_load(config))
    (product,) = report.products
    summary = report.summary()

    assert not report.errors, f"errors under contention: {summary}"
    assert summary["completed"] == ADJUSTMENTS, summary
    accepted = sum(1 for s in report.samples if s.outcome == "ok")
    assert accepted > 0 and report.refusals, f"expected both accepted and refused adjustments: {summary}"
    for pid, status, detail in report.refusals:
        assert status == 409, (pid, status, detail)
        assert f"product {pid}" in detail, f"a refusal does not name the product: {detail!r}"

    # Every replica reads the same final stock, and it is exactly the accepted deltas' sum.
    for url in stack.api_urls:
        final = asyncio.run(load.stock_of(url, [product]))[product]
        assert final == INITIAL_STOCK + report.accepted_deltas[product], (
            f"{url}: stock {final} != {INITIAL_STOCK} + accepted deltas {report.accepted_deltas[product]}"
        )
        assert final >= 0


def test_mixed_load_through_every_replica_has_no_errors(stack: Stack) -> None:
    config = load.LoadConfig(
        store_urls=tuple(stack.api_urls),
        requests=1_000,
        concurrency=16,
        deadline=120,
        products=10,
        seed=21,
    )
    report: Any = asyncio.run(load.run_load(config))
    summary = report.summary()
    assert not report.errors, summary
    assert summary["completed"] == 1_000, summary
    assert set(summary["by_operation"]) == {"get", "list", "create", "adjust"}, summary
    final = asyncio.run(load.stock_of(stack.api_urls[-1], report.products))
    for pid in report.products:
        accepted = report.accepted_deltas[pid]
        assert final[pid] == 1_000 + accepted, f"product {pid}: {final[pid]} != 1000 + {accepted}"
