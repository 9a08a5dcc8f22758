"""bench/load.py: targets only on loopback, bounded runs, and honest accounting.

The generator runs in this process against a small in-memory store API on a loopback port of
the test's own event loop: products with stock that never goes below 0 (409 naming the
product otherwise), so the accounting of accepted deltas can be checked against it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import load

# -- targets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://127.9.9.9:1/", "http://localhost:8000", "http://[::1]:8000"]
)
def test_loopback_targets_are_accepted(url: str) -> None:
    assert load.check_target(url) == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "allow", "message"),
    [
        ("http://10.244.1.7:8000", False, "pod network; pass --allow-pod-network"),
        ("http://10.96.0.15:8000", False, "Service network; pass --allow-pod-network"),
        ("http://10.97.0.1:8000", True, "neither loopback nor in the pod network"),
        ("http://10.245.0.1:8000", True, "neither loopback nor in the pod network"),
        ("http://192.168.1.10:8000", True, "neither loopback nor in the pod network"),
        ("http://8.8.8.8", False, "neither loopback"),
        ("http://store-inventory:8000", True, "is a name"),
        ("ftp://127.0.0.1/", False, r"not an http\(s\) URL"),
    ],
)
def test_other_targets_are_refused(url: str, allow: bool, message: str) -> None:
    with pytest.raises(load.TargetRefusedError, match=message):
        load.check_target(url, allow_pod_network=allow)


def test_pod_network_needs_the_flag() -> None:
    assert load.check_target("http://10.244.3.4:8000", allow_pod_network=True) == "http://10.244.3.4:8000"


def test_service_network_needs_the_flag() -> None:
    assert load.check_target("http://10.96.12.9:8000/", allow_pod_network=True) == "http://10.96.12.9:8000"


def test_command_line_refuses_a_remote_target(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load.main(["--store-url", "http://93.184.216.34"])
    assert exit_info.value.code == 2
    assert "neither loopback" in capsys.readouterr().err


# -- arguments ---------------------------------------------------------------------------------


def test_mix_and_deltas_parse() -> None:
    assert load.parse_mix("get=3, adjust=1") == {"get": 3, "adjust": 1}
    assert load.parse_deltas("-4..3") == (-4, 3)
    with pytest.raises(ValueError, match="unknown operation 'delete'"):
        load.parse_mix("delete=1")
    with pytest.raises(ValueError, match="add up to more than 0"):
        load.parse_mix("get=0")
    with pytest.raises(ValueError, match=r"LOW\.\.HIGH"):
        load.parse_deltas("3")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"requests": 0}, "--requests"),
        ({"concurrency": 0}, "--concurrency"),
        ({"deadline": 0}, "--deadline"),
        ({"deadline": 10_000}, "--deadline"),
        ({"deltas": (3, -3)}, "--deltas"),
        ({"mcp_url": "http://127.0.0.1:8080/mcp"}, "bearer token"),
        ({"rate": 0}, "--rate"),
        ({"rate": -5.0}, "--rate"),
        ({"rate": 1e9}, "--rate"),
    ],
)
def test_config_bounds(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load.LoadConfig(store_urls=("http://127.0.0.1:1",), **overrides)


def test_percentiles() -> None:
    ms = load.percentiles([i / 1000 for i in range(1, 101)])
    assert ms["p50"] == pytest.approx(50.5) and ms["p99"] == pytest.approx(99.01)
    assert load.percentiles([0.002]) == {"p50": 2.0, "p95": 2.0, "p99": 2.0}


# -- runs against an in-memory store API -------------------------------------------------------


@dataclass
class MemoryStore:
    """The store API's product routes, in memory; ``delay`` seconds before every answer."""

    delay: float = 0.0
    port: int = 0
    stock: dict[int, int] = field(default_factory=dict)
    requests: int = 0

    def answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        parts = path.split("?")[0].strip("/").split("/")
        if method == "POST" and parts == ["products"]:
            pid = len(self.stock) + 1
            self.stock[pid] = body["quantity"]
            return 201, {"id": pid, "quantity": body["quantity"]}
        if method == "GET" and parts == ["products"]:
            return 200, [{"id": p, "quantity": q} for p, q in list(self.stock.items())[:10]]
        pid = int(parts[1])
        if pid not in self.stock:
            return 404, {"detail": "product not found"}
        if method == "POST":
            if self.stock[pid] + body["delta"] < 0:
                return 409, {"detail": f"not enough stock of product {pid} for delta {body['delta']}"}
            self.stock[pid] += body["delta"]
        return 200, {"id": pid, "quantity": self.stock[pid]}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
                method, path, _ = head[0].split(" ")
                length = next(
                    (int(h.split(":")[1]) for h in head if h.lower().startswith("content-length")), 0
                )
                body = json.loads(await reader.readexactly(length)) if length else {}
                self.requests += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
                status, answer = self.answer(method, path, body)
                data = json.dumps(answer).encode()
                head_out = (
                    f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(data)}"
                )
                writer.write(head_out.encode() + b"\r\n\r\n" + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the server closed with an answer pending (deadline)
        finally:
            writer.close()


@asynccontextmanager
async def memory_store(delay: float = 0.0) -> AsyncIterator[MemoryStore]:
    store = MemoryStore(delay)
    server = await asyncio.start_server(store.handle, "127.0.0.1", 0)
    store.port = server.sockets[0].getsockname()[1]
    async with server:
        yield store


def run_against_memory(delay: float = 0.0, **overrides: Any) -> tuple[Any, MemoryStore]:
    async def scenario() -> tuple[Any, MemoryStore]:
        async with memory_store(delay) as store:
            config = load.LoadConfig(store_urls=(f"http://127.0.0.1:{store.port}",), **overrides)
            return await load.run_load(config), store

    result: tuple[Any, MemoryStore] = asyncio.run(scenario())
    return result


def test_sends_exactly_the_requests_asked_with_the_mix() -> None:
    report, store = run_against_memory(requests=300, concurrency=6, products=5, seed=1)
    summary = report.summary()
    assert summary["completed"] == 300 and not report.errors, summary
    assert store.requests == 300 + 5, "the timed requests plus the five shared products"
    assert set(summary["by_operation"]) == {"get", "list", "create", "adjust"}
    assert summary["throughput_per_s"] > 0 and summary["latency_ms"]["p99"] >= summary["latency_ms"]["p50"]


def test_accepted_deltas_add_up_and_refusals_name_the_product() -> None:
    report, store = run_against_memory(
        requests=400, concurrency=8, mix={"adjust": 1}, products=1, initial_stock=10, deltas=(-4, 3), seed=2
    )
    (pid,) = report.products
    assert report.refusals, "a draining mix from 10 units must be refused at some point"
    assert all(status == 409 and f"product {p}" in detail for p, status, detail in report.refusals)
    assert store.stock[pid] == 10 + report.accepted_deltas[pid] >= 0
    assert report.summary()["refused"] == len(report.refusals)
    assert not report.errors


def test_stops_at_the_deadline_and_counts_what_it_did_not_do() -> None:
    report, _ = run_against_memory(delay=0.05, requests=1_000, concurrency=4, deadline=0.5, products=1)
    summary = report.summary()
    assert report.wall_seconds < 1.5, f"ran {report.wall_seconds:.2f}s past a 0.5s deadline"
    assert summary["completed"] < 1_000
    assert summary["completed"] + report.not_sent + report.cancelled == 1_000, summary
    assert report.errors["not sent (deadline)"] == report.not_sent > 0


def test_http_errors_are_counted_by_kind() -> None:
    async def scenario() -> Any:
        async with memory_store() as store:
            config = load.LoadConfig(store_urls=(f"http://127.0.0.1:{store.port}",), requests=20, products=1)
            original = store.answer

            def flaky(method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
                if method == "GET" and store.requests % 2:
                    return 503, {"detail": "database unavailable"}
                return original(method, path, body)

            store.answer = flaky  # type: ignore[method-assign]
            return await load.run_load(config)

    report = asyncio.run(scenario())
    assert set(report.errors) == {"http 503"}, report.errors


# -- open loop: a rate ---------------------------------------------------------------------------


def test_arrivals_are_a_seeded_poisson_schedule() -> None:
    offsets = load.arrivals(5_000, 200.0, random.Random(7))
    assert offsets == load.arrivals(5_000, 200.0, random.Random(7)), "the seed fixes the schedule"
    assert offsets[0] == 0.0 and offsets == sorted(offsets)
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    # Mean 1/rate; exponential gaps, so some are far shorter and some far longer than the mean.
    assert sum(gaps) / len(gaps) == pytest.approx(1 / 200, rel=0.05)
    assert min(gaps) < 0.1 / 200 and max(gaps) > 5 / 200


def test_a_rate_spreads_the_requests_over_the_schedule() -> None:
    report, store = run_against_memory(requests=40, concurrency=4, products=2, seed=3, rate=400.0)
    summary = report.summary()
    assert summary["completed"] == 40 and not report.errors, summary
    assert store.requests == 40 + 2
    schedule = summary["schedule"]
    assert schedule["rate_per_s"] == 400.0 and schedule["started"] == 40, schedule
    # No request starts before its place: the run lasts at least until the last one's.
    last = load.arrivals(40, 400.0, random.Random("3-arrivals"))[-1]
    assert report.wall_seconds >= last, (report.wall_seconds, last)
    closed, _ = run_against_memory(requests=40, concurrency=4, products=2, seed=3)
    ops = {op: figures["count"] for op, figures in summary["by_operation"].items()}
    assert ops == {op: figures["count"] for op, figures in closed.summary()["by_operation"].items()}, (
        "the same seed sends the same mix with or without a rate"
    )
    assert "schedule" not in closed.summary()


def test_a_rate_counts_what_the_deadline_left_unsent() -> None:
    report, _ = run_against_memory(requests=200, concurrency=8, products=1, seed=4, rate=20.0, deadline=0.5)
    summary = report.summary()
    assert summary["completed"] + report.not_sent + report.cancelled == 200, summary
    assert report.not_sent > 0 and report.errors["not sent (deadline)"] == report.not_sent
