"""A bounded load generator for the store API and, optionally, the MCP server.

Bounded three ways: a fixed number of requests, a fixed concurrency, and a deadline after
which whatever is still in flight is cancelled and counted. It always stops by itself.

Closed loop by default: each of the concurrent workers sends its next request as soon as the
last one is answered, so the run goes as fast as the system answers (saturation). With
``--rate R`` it is open loop: requests start at a mean rate of R per second, with exponential
gaps between them as independent clients make them (the schedule is fixed by ``--seed``), and
``--concurrency`` only caps how many are in flight. A request that cannot start on time
because that many are still in flight starts late, and the report says how late.

The mix is what the stack serves: reads of one product and of a page of products, creates of
new products, and stock adjustments on a shared set of products made before the timed run.
Requests go round-robin over every ``--store-url`` given, so several API replicas behind one
PostgreSQL can be driven at once. With ``--mcp-url`` the same kind of mix goes through the
MCP server instead, with the real ``mcp`` SDK client over streamable HTTP and a bearer token,
one session per concurrent worker; without ``--store-url`` the shared products are made (and
read back) with the MCP tools as well.

Reported: throughput, latency p50/p95/p99 (overall and per operation), errors by kind. A
409 refusal of a stock adjustment is the API doing its job, not an error: it is counted as
``refused`` and kept with its detail, as are the accepted deltas per product. After the timed
run each shared product is read back, and the report says whether its final stock equals the
initial stock plus the accepted deltas (the command exits 1 if not, as on any error).

Traffic goes only to loopback: any other address is refused, except one in the local
cluster's pod network (10.244.0.0/16) or Service network (10.96.0.0/16, whose ClusterIPs
kube-proxy sends on to pods) when ``--allow-pod-network`` is given. A URL's host name other
than ``localhost`` is never looked up: it is refused unless ``--connect-to
HOST:PORT:ADDR:PORT2`` (curl's option of that name) sends its connections to ADDR:PORT2, an
address that must pass the same rule. The name is then what the server sees: the ``Host``
header, and for https the TLS server name (SNI) and the name the certificate must carry. That
is how an Ingress is reached: its controller on loopback, its host name in the URL, its
certificate verified against ``--ca-file`` (the CA that signed it; otherwise the system's).
Certificates are always verified.

Examples::

    venv/bin/python bench/load.py --store-url http://127.0.0.1:8000 --requests 5000 --concurrency 16
    venv/bin/python bench/load.py --store-url http://127.0.0.1:8000 --rate 100 --requests 3000 \
        --concurrency 32 --deadline 60
    venv/bin/python bench/load.py --store-url http://127.0.0.1:8001 --store-url http://127.0.0.1:8002 \\
        --mix adjust=1 --products 1 --initial-stock 50 --requests 2000 --concurrency 32
    venv/bin/python bench/load.py --mcp-url http://127.0.0.1:8080/mcp --token-file TOKEN \\
        --store-url http://127.0.0.1:8000 --mix get=1 --requests 500 --concurrency 1
    # The MCP server through an Ingress controller listening on 127.0.0.1:8443 (no --store-url:
    # the shared products are made with the create_product tool too)
    venv/bin/python bench/load.py --mcp-url https://mcp.dev.store-inventory.example.com/mcp \\
        --connect-to mcp.dev.store-inventory.example.com:443:127.0.0.1:8443 --ca-file ca.crt \\
        --token-file TOKEN --requests 1000 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import itertools
import json
import os
import random
import re
import ssl
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpcore2
import httpx2

POD_NETWORK = ipaddress.ip_network("10.244.0.0/16")
"""The pod network a real node's CNI hands out; reachable only with ``--allow-pod-network``."""
SERVICE_NETWORK = ipaddress.ip_network("10.96.0.0/16")
"""The local cluster's Service ClusterIPs (kube-proxy forwards them to pods in
:data:`POD_NETWORK`); reachable only with ``--allow-pod-network``."""

OPERATIONS = ("get", "list", "create", "adjust")
DEFAULT_MIX = {"get": 70, "list": 10, "create": 5, "adjust": 15}
"""Weights of the default mix: mostly reads, some writes, adjustments on shared products."""

MAX_REQUESTS = 1_000_000
MAX_CONCURRENCY = 1_000
MAX_DEADLINE = 3_600.0
MAX_RATE = 100_000.0


class TargetRefusedError(ValueError):
    """A URL outside loopback (or the pod network, when allowed)."""


DEFAULT_PORTS = {"http": 80, "https": 443}


def check_target(url: str, *, allow_pod_network: bool = False) -> str:
    """``url`` without a trailing slash if it points at loopback, else :class:`TargetRefusedError`.

    Loopback is 127.0.0.0/8, ::1 and the name ``localhost``; with ``allow_pod_network`` also
    addresses in 10.244.0.0/16 (pods) and 10.96.0.0/16 (Services). Other names are refused:
    their address is not under our control.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefusedError(f"{url!r}: not an http(s) URL with a host")
    host = parts.hostname
    if host == "localhost":
        return url.rstrip("/")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise TargetRefusedError(
            f"{url!r}: host {host!r} is a name; give a loopback address (127.0.0.1, ::1) "
            "or, with --allow-pod-network, a pod IP in 10.244.0.0/16"
        ) from None
    if address.is_loopback:
        return url.rstrip("/")
    if address in POD_NETWORK or address in SERVICE_NETWORK:
        if allow_pod_network:
            return url.rstrip("/")
        network = "pod" if address in POD_NETWORK else "Service"
        raise TargetRefusedError(
            f"{url!r}: {address} is in the local cluster's {network} network; "
            "pass --allow-pod-network to load it"
        )
    raise TargetRefusedError(
        f"{url!r}: {address} is neither loopback nor in the pod network {POD_NETWORK} "
        f"or the Service network {SERVICE_NETWORK}"
    )


_CONNECT_TO = re.compile(
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(?P<port>[0-9]{1,5}):"
    r"(?P<address>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<address_port>[0-9]{1,5})"
)


@dataclass(frozen=True)
class ConnectTo:
    """``HOST:PORT:ADDR:PORT2`` (curl's ``--connect-to``): connections for ``HOST:PORT`` go to
    ``ADDR:PORT2``; the request still names ``HOST`` (``Host`` header, TLS server name)."""

    host: str
    port: int
    address: str
    """As written in a URL: an IPv6 address in brackets."""
    address_port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}:{self.address}:{self.address_port}"


def parse_connect_to(text: str, *, allow_pod_network: bool = False) -> ConnectTo:
    """``HOST:PORT:ADDR:PORT2``; ADDR must pass :func:`check_target` (loopback, or with
    ``allow_pod_network`` the pod network), else :class:`TargetRefusedError`."""
    match = _CONNECT_TO.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            "--connect-to: expected HOST:PORT:ADDR:PORT2 "
            f"(e.g. mcp.example.com:443:127.0.0.1:8443), got {text!r}"
        )
    port, address_port = int(match["port"]), int(match["address_port"])
    for value in (port, address_port):
        if not 1 <= value <= 65_535:
            raise ValueError(f"--connect-to {text!r}: port {value} is not in 1..65535")
    try:
        check_target(f"http://{match['address']}:{address_port}", allow_pod_network=allow_pod_network)
    except TargetRefusedError as exc:
        raise TargetRefusedError(f"--connect-to {text!r}: {exc}") from None
    return ConnectTo(match["host"].lower(), port, match["address"], address_port)


@dataclass(frozen=True)
class Target:
    """Where the requests for one URL go.

    ``dial_url`` is the URL connected to (the URL itself, or with its host and port replaced by
    a :class:`ConnectTo`'s address); ``host_header`` and ``server_name``, set only when mapped,
    are what the request carries instead: the ``Host`` header and the TLS server name (SNI),
    which is also the name the server's certificate is verified against.
    """

    url: str
    dial_url: str
    host_header: str | None = None
    server_name: str | None = None

    @property
    def https(self) -> bool:
        return self.url.startswith("https://")


def resolve_target(
    url: str, connect_to: Sequence[ConnectTo] = (), *, allow_pod_network: bool = False
) -> Target:
    """``url`` as a :class:`Target`: mapped by the first ``connect_to`` entry for its host and
    port, else checked by :func:`check_target` (a name without a mapping is refused)."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise TargetRefusedError(f"{url!r}: not an http(s) URL with a host")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise TargetRefusedError(f"{url!r}: not a valid port") from None
    host = parts.hostname.lower()
    mapped = next((m for m in connect_to if (m.host, m.port) == (host, port)), None)
    if mapped is None:
        if host != "localhost" and not _is_address(host):
            raise TargetRefusedError(
                f"{url!r}: host {host!r} is a name and is not looked up; map it to a loopback address "
                f"with --connect-to {host}:{port}:ADDR:PORT, or give the address in the URL"
            )
        return Target(check_target(url, allow_pod_network=allow_pod_network), url.rstrip("/"))
    # The mapped address was checked when the mapping was parsed; checked again here, as the
    # mapping may have been built by other code.
    dial_base = check_target(
        f"{parts.scheme}://{mapped.address}:{mapped.address_port}", allow_pod_network=allow_pod_network
    )
    rest = url[len(f"{parts.scheme}://{parts.netloc}") :]
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    return Target(url.rstrip("/"), (dial_base + rest).rstrip("/"), host_header, host)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying TLS client context: trusting ``ca_file`` only, or the system's CAs.

    Certificate and host name checks are the defaults of :func:`ssl.create_default_context`
    and are never turned off; a missing or unreadable CA file is a :class:`ValueError`."""
    if ca_file is None:
        return ssl.create_default_context()
    path = Path(ca_file)
    if not path.is_file():
        raise ValueError(f"--ca-file {ca_file}: no such file")
    try:
        return ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"--ca-file {ca_file}: not a readable PEM CA certificate ({exc})") from None


def parse_mix(text: str) -> dict[str, int]:
    """``get=70,list=10,...`` as weights; unknown operations and non-positive totals refused."""
    mix: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = item.partition("=")
        if name not in OPERATIONS:
            raise ValueError(f"--mix: unknown operation {name!r}; choose from {', '.join(OPERATIONS)}")
        try:
            mix[name] = int(weight)
        except ValueError:
            raise ValueError(f"--mix: weight of {name!r} must be an integer, got {weight!r}") from None
        if mix[name] < 0:
            raise ValueError(f"--mix: weight of {name!r} must be >= 0")
    if sum(mix.values()) <= 0:
        raise ValueError("--mix: the weights must add up to more than 0")
    return mix


def parse_deltas(text: str) -> tuple[int, int]:
    """``-3..3`` as ``(-3, 3)``."""
    low, sep, high = text.partition("..")
    try:
        if not sep:
            raise ValueError
        return int(low), int(high)
    except ValueError:
        raise ValueError(f"--deltas: expected LOW..HIGH (e.g. -3..3), got {text!r}") from None


@dataclass(frozen=True)
class LoadConfig:
    """One bounded run. Defaults: 1,000 requests, 8 at a time, 60 s, :data:`DEFAULT_MIX`."""

    store_urls: tuple[str, ...]
    """Store API base URLs; may be empty with ``mcp_url``: the shared products are then made
    and read back with the MCP server's tools."""
    requests: int = 1_000
    concurrency: int = 8
    deadline: float = 60.0
    """Seconds for the timed run; requests still in flight then are cancelled."""
    mix: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MIX))
    products: int = 20
    """Size of the shared product set reads and adjustments pick from."""
    initial_stock: int = 1_000
    deltas: tuple[int, int] = (-3, 3)
    """Adjustments pick a delta uniformly from this inclusive range, never 0. A range reaching
    further below 0 than above drains stock, so refusals (409) are certain in a long run."""
    request_timeout: float = 10.0
    seed: int | None = None
    mcp_url: str | None = None
    mcp_token: str | None = None
    mcp_host: str | None = None
    """``Host`` header for the MCP server (its DNS-rebinding check), if not the URL's."""
    connect_to: tuple[ConnectTo, ...] = ()
    """Where the connections for a URL's host and port go instead (``--connect-to``)."""
    ca_file: str | None = None
    """The CA certificate(s) https targets are verified against; else the system's."""
    allow_pod_network: bool = False
    rate: float | None = None
    """Mean requests started per second (open loop, :func:`arrivals`); ``None``: closed loop."""

    def __post_init__(self) -> None:
        if not self.store_urls and not self.mcp_url:
            raise ValueError("at least one store API URL is needed (--store-url), or --mcp-url")
        if not 1 <= self.requests <= MAX_REQUESTS:
            raise ValueError(f"--requests must be 1..{MAX_REQUESTS}, got {self.requests}")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"--concurrency must be 1..{MAX_CONCURRENCY}, got {self.concurrency}")
        if not 0 < self.deadline <= MAX_DEADLINE:
            raise ValueError(f"--deadline must be in (0, {MAX_DEADLINE:.0f}] seconds, got {self.deadline}")
        if self.products < 1:
            raise ValueError(f"--products must be >= 1, got {self.products}")
        low, high = self.deltas
        if low > high or low == high == 0:
            raise ValueError(f"--deltas must be LOW..HIGH with LOW <= HIGH and not only 0, got {low}..{high}")
        if self.mcp_url and not self.mcp_token:
            raise ValueError("--mcp-url needs a bearer token (--token-file or MCP_TOKEN)")
        if self.rate is not None and not 0 < self.rate <= MAX_RATE:
            raise ValueError(f"--rate must be in (0, {MAX_RATE:.0f}] requests/s, got {self.rate}")
        # Every URL is checked here, so code that builds a config is held to the same rule.
        targets = self.targets()
        if self.mcp_host and targets[-1].host_header and self.mcp_url:
            raise ValueError("--mcp-host: a --connect-to URL is sent with its own host name as Host")
        if self.ca_file is not None:
            if not any(t.https for t in targets):
                raise ValueError("--ca-file is for https URLs; none is given")
            tls_context(self.ca_file)

    def targets(self) -> list[Target]:
        """The store API targets, then the MCP server's if any."""
        urls = [*self.store_urls, *([self.mcp_url] if self.mcp_url else [])]
        return [resolve_target(u, self.connect_to, allow_pod_network=self.allow_pod_network) for u in urls]


@dataclass
class Sample:
    operation: str
    seconds: float
    outcome: str
    """``ok``, ``refused`` (409 on an adjustment) or an error kind (``http 503``, ``timeout``...)."""


@dataclass
class Report:
    """What one run measured; :meth:`summary` is the JSON the command prints."""

    config: LoadConfig
    samples: list[Sample] = field(default_factory=list)
    wall_seconds: float = 0.0
    generator_cpu_seconds: float = 0.0
    """CPU time this process spent in the timed run: on a shared machine the generator competes
    with what it measures."""
    not_sent: int = 0
    """Requests not started before the deadline."""
    cancelled: int = 0
    """Requests in flight at the deadline."""
    products: list[int] = field(default_factory=list)
    accepted_deltas: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    """Sum of the deltas the API accepted (2xx), per product id."""
    refusals: list[tuple[int, int, str]] = field(default_factory=list)
    """``(product id, status, detail)`` of every refused adjustment."""
    lags: list[float] = field(default_factory=list)
    """With a rate: seconds each request started after its place in the schedule."""
    final_stock: dict[int, int] = field(default_factory=dict)
    """Each shared product's quantity read back after the timed run, the way the run went
    (store API, or the MCP server's ``get_product`` without a store URL)."""
    stock_error: str | None = None
    """Why the final stock could not be read back, if it could not."""

    def stock(self) -> dict[str, Any]:
        """Initial, accepted deltas and final stock per shared product; ``consistent`` when every
        final quantity is the initial plus the accepted deltas and none is below 0 (``None``
        if it could not be read). A request cancelled at the deadline, or failed without an
        answer, may have changed a quantity without being counted."""
        initial = self.config.initial_stock
        products = {
            str(pid): {
                "accepted_delta": self.accepted_deltas.get(pid, 0),
                "final": self.final_stock.get(pid),
            }
            for pid in self.products
        }
        consistent = (
            None
            if self.stock_error or len(self.final_stock) < len(self.products)
            else all(
                self.final_stock[pid] == initial + self.accepted_deltas.get(pid, 0)
                and self.final_stock[pid] >= 0
                for pid in self.products
            )
        )
        return {
            "initial": initial,
            "products": products,
            "consistent": consistent,
            "read_error": self.stock_error,
        }

    @property
    def errors(self) -> Counter[str]:
        kinds = Counter(s.outcome for s in self.samples if s.outcome not in ("ok", "refused"))
        if self.not_sent:
            kinds["not sent (deadline)"] = self.not_sent
        if self.cancelled:
            kinds["cancelled (deadline)"] = self.cancelled
        return kinds

    def summary(self) -> dict[str, Any]:
        done = [s for s in self.samples if s.outcome in ("ok", "refused")]
        by_op: dict[str, Any] = {}
        for op in OPERATIONS:
            times = [s.seconds for s in done if s.operation == op]
            if times:
                by_op[op] = {"count": len(times), **percentiles(times)}
        summary: dict[str, Any] = {
            "target": "mcp" if self.config.mcp_url else "store-api",
            "urls": [self.config.mcp_url] if self.config.mcp_url else list(self.config.store_urls),
            "requests": self.config.requests,
            "concurrency": self.config.concurrency,
            "completed": len(done),
            "refused": sum(1 for s in done if s.outcome == "refused"),
            "errors": dict(self.errors),
            "wall_seconds": round(self.wall_seconds, 3),
            "generator_cpu_seconds": round(self.generator_cpu_seconds, 3),
            "throughput_per_s": round(len(done) / self.wall_seconds, 1) if self.wall_seconds else 0.0,
            "latency_ms": percentiles([s.seconds for s in done]),
            "by_operation": by_op,
            "stock": self.stock(),
            "refusals": [{"product_id": p, "status": st, "detail": d} for p, st, d in self.refusals],
            "loadavg": loadavg(),
        }
        if self.config.rate:
            summary["schedule"] = self.schedule()
        if self.config.connect_to:
            summary["connect_to"] = [str(m) for m in self.config.connect_to]
        return summary

    def schedule(self) -> dict[str, Any]:
        """How well an open-loop run kept to its rate: the rate asked for, how late requests
        started (p99 and worst) and how many started more than 100 ms late."""
        return {
            "rate_per_s": self.config.rate,
            "started": len(self.lags),
            "lag_ms": {
                "p99": percentiles(self.lags).get("p99", 0.0),
                "max": round(max(self.lags, default=0.0) * 1000, 2),
            },
            "late_100ms": sum(1 for lag in self.lags if lag > 0.1),
        }


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds (inclusive method: exact for small samples)."""
    if not seconds:
        return {}
    if len(seconds) == 1:
        only = round(seconds[0] * 1000, 2)
        return {"p50": only, "p95": only, "p99": only}
    q = statistics.quantiles(seconds, n=100, method="inclusive")
    return {"p50": round(q[49] * 1000, 2), "p95": round(q[94] * 1000, 2), "p99": round(q[98] * 1000, 2)}


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"


class RefusedError(Exception):
    """The API refused an adjustment with 409; ``detail`` is its message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class FailedError(Exception):
    """Any other failure; ``kind`` is how the report counts it."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


Call = Callable[[str, dict[str, Any]], Awaitable[Any]]
"""One operation against the system: ``(operation, arguments) -> the product(s) answered``."""


def _connect_kind(exc: BaseException) -> str:
    """``connect``, or ``tls: certificate verify failed`` when the server's certificate was
    not trusted or not for the name: a different failure with a different fix."""
    text = str(exc)
    return "tls: certificate verify failed" if "CERTIFICATE_VERIFY_FAILED" in text else "connect"


def _describe(exc: BaseException) -> str:
    """An exception as one line; an exception group (the MCP SDK's task groups) by its members."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    if isinstance(exc, FailedError):
        return exc.kind
    return f"{type(exc).__name__}: {exc}"


def _detail(content: bytes) -> str:
    try:
        body = json.loads(content)
    except ValueError:
        return content.decode(errors="replace")
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)


class StoreAPI:
    """The store API over HTTP, one connection pool per replica URL, replicas round-robin.

    Sent with ``httpcore2`` (the transport under ``httpx2``) rather than ``httpx2`` itself:
    measured against a loopback server that answers in ~30 us, a request cost 670 us of this
    process's CPU through ``httpx2`` and 350 us through ``httpcore2``. On a shared 2-core machine
    the generator's CPU is taken from the system it measures.
    """

    def __init__(
        self,
        targets: Sequence[Target],
        timeout: float,
        concurrency: int,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._pools = [
            (
                target,
                httpcore2.AsyncConnectionPool(
                    ssl_context=ssl_context,
                    max_connections=concurrency,
                    max_keepalive_connections=concurrency,
                ),
            )
            for target in targets
        ]
        self._next = itertools.cycle(self._pools)
        self._timeouts = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}

    async def aclose(self) -> None:
        for _, pool in self._pools:
            await pool.aclose()

    async def call(self, operation: str, args: dict[str, Any]) -> Any:
        target, pool = next(self._next)
        body: bytes | None = None
        if operation == "get":
            method, path = "GET", f"/products/{args['product_id']}"
        elif operation == "list":
            method, path = "GET", f"/products?limit={int(args['limit'])}&offset=0"
        elif operation == "create":
            method, path, body = "POST", "/products", json.dumps(args).encode()
        else:
            method, path = "POST", f"/products/{args['product_id']}/stock"
            body = json.dumps({"delta": args["delta"]}).encode()
        headers = [(b"Content-Type", b"application/json")] if body is not None else []
        extensions: dict[str, Any] = {"timeout": self._timeouts}
        if target.host_header:
            headers.append((b"Host", target.host_header.encode()))
        if target.server_name:
            extensions["sni_hostname"] = target.server_name
        try:
            response = await pool.request(
                method, target.dial_url + path, headers=headers, content=body, extensions=extensions
            )
        except httpcore2.TimeoutException:
            raise FailedError("timeout") from None
        except httpcore2.ConnectError as exc:
            raise FailedError(_connect_kind(exc)) from None
        except (httpcore2.NetworkError, httpcore2.ProtocolError) as exc:
            raise FailedError(type(exc).__name__) from None
        if response.status == 409 and operation == "adjust":
            raise RefusedError(409, _detail(response.content))
        if response.status >= 400:
            raise FailedError(f"http {response.status}")
        return json.loads(response.content)


class MCPTools:
    """The MCP server's tools through the real SDK client, one session per worker."""

    TOOLS: ClassVar[dict[str, str]] = {
        "get": "get_product",
        "list": "list_products",
        "create": "create_product",
        "adjust": "adjust_stock",
    }

    def __init__(
        self,
        target: Target,
        token: str,
        host: str | None,
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._target = target
        host = target.host_header or host
        self._headers = {"Authorization": f"Bearer {token}"} | ({"Host": host} if host else {})
        self._timeout = timeout
        # One context for every session: loading CAs into a new one costs tens of milliseconds.
        self._ssl_context = ssl_context

    def http_client(self, failed: list[int] | None = None) -> httpx2.AsyncClient:
        """The HTTP client of one session: the token, the target's ``Host`` and TLS server
        name, certificates verified (against ``--ca-file`` when given). The status of every
        answer of 400 or more is appended to ``failed``: the SDK reports an HTTP error as
        "Server returned an error response" without its status."""
        server_name = self._target.server_name

        async def sni(request: httpx2.Request) -> None:
            request.extensions["sni_hostname"] = server_name

        async def record(response: httpx2.Response) -> None:
            if failed is not None and response.status_code >= 400:
                failed.append(response.status_code)

        return httpx2.AsyncClient(
            headers=self._headers,
            timeout=httpx2.Timeout(self._timeout),
            trust_env=False,
            verify=self._ssl_context if self._ssl_context is not None else True,
            event_hooks={"request": [sni] if server_name else [], "response": [record]},
        )

    async def session(self, work: Callable[[Call], Awaitable[None]]) -> None:
        """Open one session and run ``work`` with a call function bound to it; a session that
        fails on an HTTP error status is a :class:`FailedError` of kind ``http <status>``."""
        from mcp import Client, MCPError
        from mcp.client.streamable_http import streamable_http_client

        failed: list[int] = []
        try:
            async with (
                self.http_client(failed) as http,
                Client(streamable_http_client(self._target.dial_url, http_client=http)) as client,
            ):
                await client.list_tools()  # the handshake is not part of any timed call

                async def call(operation: str, args: dict[str, Any]) -> Any:
                    failed.clear()  # one call at a time in a session: what follows is this call's
                    try:
                        result = await client.call_tool(self.TOOLS[operation], args)
                    except httpx2.TimeoutException:
                        raise FailedError("timeout") from None
                    except httpx2.ConnectError as exc:
                        raise FailedError(_connect_kind(exc)) from None
                    except httpx2.HTTPError as exc:
                        raise FailedError(type(exc).__name__) from None
                    except MCPError as exc:
                        raise FailedError(f"http {failed[-1]}" if failed else f"mcp error: {exc}") from None
                    text = " ".join(getattr(c, "text", "") for c in result.content)
                    if result.is_error:
                        if operation == "adjust" and "409" in text:
                            raise RefusedError(409, text)
                        raise FailedError("tool error")
                    structured = result.structured_content
                    if isinstance(structured, dict) and set(structured) == {"result"}:
                        return structured["result"]  # a list, wrapped by the SDK
                    return structured

                await work(call)
        except FailedError:
            raise
        except Exception as exc:
            if failed:
                raise FailedError(f"http {failed[-1]}") from exc
            raise


def _arguments(
    operation: str, rng: random.Random, products: Sequence[int], deltas: tuple[int, int]
) -> dict[str, Any]:
    if operation == "get":
        return {"product_id": rng.choice(products)}
    if operation == "list":
        return {"limit": 10}
    if operation == "create":
        sku = f"load-{uuid.uuid4().hex[:16]}"
        return {"sku": sku, "name": "Load test product", "price_cents": rng.randint(1, 10_000), "quantity": 5}
    delta = rng.choice([d for d in range(deltas[0], deltas[1] + 1) if d != 0])
    return {"product_id": rng.choice(products), "delta": delta}


def arrivals(count: int, rate: float, rng: random.Random) -> list[float]:
    """Start offsets in seconds of ``count`` requests at a mean ``rate`` per second: the first
    at 0, then exponential gaps (a Poisson process: independent clients, not a metronome, so
    some 100 ms windows get more requests than others, as a CPU quota's periods do)."""
    offsets, now = [], 0.0
    for _ in range(count):
        offsets.append(now)
        now += rng.expovariate(rate)
    return offsets


async def create_products(call: Call, count: int, stock: int) -> list[int]:
    """The shared product set, made before the timed run (store API, or the MCP server's tools)."""
    ids: list[int] = []
    run_id = uuid.uuid4().hex[:8]
    for i in range(count):
        body = {"sku": f"shared-{run_id}-{i}", "name": f"Shared {i}", "price_cents": 100, "quantity": stock}
        product = await call("create", body)
        ids.append(int(product["id"]))
    return ids


async def read_stock(call: Call, product_ids: Sequence[int]) -> dict[int, int]:
    """Each product's quantity, one ``get`` at a time."""
    return {pid: int((await call("get", {"product_id": pid}))["quantity"]) for pid in product_ids}


class SetupError(RuntimeError):
    """The shared products could not be made: nothing was timed."""


async def run_load(config: LoadConfig) -> Report:
    """Set up the shared products, then send ``config.requests`` requests; never past the deadline."""
    report = Report(config)
    rng = random.Random(config.seed)
    targets = config.targets()
    ssl_context = tls_context(config.ca_file) if any(t.https for t in targets) else None
    store_targets = targets[: len(config.store_urls)]
    api = StoreAPI(store_targets, config.request_timeout, config.concurrency, ssl_context)
    mcp = (
        MCPTools(targets[-1], config.mcp_token or "", config.mcp_host, config.request_timeout, ssl_context)
        if config.mcp_url
        else None
    )

    async def untimed(work: Callable[[Call], Awaitable[None]]) -> None:
        """Work outside the timed run, through the store API if one is given, else the MCP server."""
        if store_targets:
            await work(api.call)
        else:
            assert mcp is not None
            await mcp.session(work)

    async def setup(call: Call) -> None:
        report.products = await create_products(call, config.products, config.initial_stock)

    async def read_back(call: Call) -> None:
        report.final_stock = await read_stock(call, report.products)

    try:
        try:
            await untimed(setup)
        except Exception as exc:  # whatever it was, nothing can be timed without the products
            raise SetupError(f"the shared products could not be made: {_describe(exc)}") from exc
        ops = [op for op in OPERATIONS if config.mix.get(op)]
        weights = [config.mix[op] for op in ops]
        plan = rng.choices(ops, weights=weights, k=config.requests)
        # Its own generator: the same seed gives the same plan with or without a rate.
        schedule = (
            arrivals(config.requests, config.rate, random.Random(f"{config.seed}-arrivals"))
            if config.rate
            else None
        )
        queue = iter(enumerate(plan))

        async def one(call: Call, operation: str) -> None:
            args = _arguments(operation, rng, report.products, config.deltas)
            started = time.perf_counter()
            outcome = "ok"
            try:
                await call(operation, args)
                if operation == "adjust":
                    report.accepted_deltas[args["product_id"]] += args["delta"]
            except RefusedError as exc:
                outcome = "refused"
                report.refusals.append((args["product_id"], exc.status, exc.detail))
            except FailedError as exc:
                outcome = exc.kind
            except asyncio.CancelledError:
                report.cancelled += 1  # in flight at the deadline
                raise
            report.samples.append(Sample(operation, time.perf_counter() - started, outcome))

        async def worker(call: Call) -> None:
            for index, operation in queue:  # shared iterator: each request is taken exactly once
                if schedule is not None:
                    delay = started + schedule[index] - time.perf_counter()
                    try:
                        await asyncio.sleep(max(0.0, delay))
                    except asyncio.CancelledError:
                        report.not_sent += 1  # its start was still to come at the deadline
                        raise
                    # Late when every worker was busy, or this process got no CPU in time.
                    report.lags.append(max(0.0, time.perf_counter() - started - schedule[index]))
                await one(call, operation)

        async def guarded(session: Awaitable[None]) -> None:
            # A session that cannot open (or breaks) is an error of the report, not a crash.
            try:
                await session
            except FailedError as exc:
                report.samples.append(Sample("session", 0.0, f"mcp session: {exc.kind}"))
            except (OSError, httpx2.HTTPError) as exc:
                report.samples.append(Sample("session", 0.0, f"mcp session: {type(exc).__name__}"))

        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            async with asyncio.timeout(config.deadline), asyncio.TaskGroup() as group:
                for _ in range(config.concurrency):
                    if mcp is not None:
                        group.create_task(guarded(mcp.session(worker)))
                    else:
                        group.create_task(worker(api.call))
        except TimeoutError:
            pass  # the deadline: what was cancelled or never sent is counted
        report.wall_seconds = time.perf_counter() - started
        report.generator_cpu_seconds = time.process_time() - cpu_started
        report.not_sent += sum(1 for _ in queue)
        try:
            await untimed(read_back)
        except Exception as exc:  # reported: the run itself is measured already
            report.stock_error = _describe(exc)
    finally:
        await api.aclose()
    return report


async def stock_of(store_url: str, product_ids: Sequence[int], timeout: float = 10.0) -> dict[int, int]:
    """Current quantity of each product, read back from one store API replica (a loopback URL)
    the way a run reads its stock back (:func:`read_stock`)."""
    api = StoreAPI([resolve_target(store_url)], timeout, 1)
    try:
        return await read_stock(api.call, product_ids)
    finally:
        await api.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Bounded load on the store API (and optionally the MCP server); JSON report on stdout.",
        # No abbreviations: ``--token SECRET`` would otherwise be taken for ``--token-file``.
        allow_abbrev=False,
    )
    parser.add_argument(
        "--store-url",
        action="append",
        default=[],
        help="store API base URL (repeatable); required unless --mcp-url is given",
    )
    parser.add_argument("--mcp-url", help="MCP endpoint (…/mcp): send the mix as tool calls instead")
    parser.add_argument("--token-file", help="file with the MCP bearer token (else $MCP_TOKEN)")
    parser.add_argument("--mcp-host", help="Host header for the MCP server, if not the URL's")
    parser.add_argument(
        "--connect-to",
        action="append",
        default=[],
        metavar="HOST:PORT:ADDR:PORT2",
        help="connect to ADDR:PORT2 (loopback, or the pod network if allowed) for URLs of HOST:PORT, "
        "which stays the Host header and TLS server name (repeatable)",
    )
    parser.add_argument("--ca-file", help="verify https servers against this PEM CA (default: the system's)")
    parser.add_argument("--requests", type=int, default=1_000, help="requests to send (default 1000)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds for the run (default 60)")
    parser.add_argument(
        "--rate",
        type=float,
        help="open loop: start requests at this mean rate per second (exponential gaps); "
        "default: closed loop, each worker as fast as answers come",
    )
    parser.add_argument("--mix", default="", help="weights, e.g. get=70,list=10,create=5,adjust=15 (default)")
    parser.add_argument("--products", type=int, default=20, help="shared products (default 20)")
    parser.add_argument("--initial-stock", type=int, default=1_000, help="their stock (default 1000)")
    parser.add_argument(
        "--deltas", default="-3..3", help="adjustment range LOW..HIGH, 0 skipped (default -3..3)"
    )
    parser.add_argument("--seed", type=int, help="seed of the mix and the arguments")
    parser.add_argument(
        "--allow-pod-network",
        action="store_true",
        help="accept pod IPs in 10.244.0.0/16 and Service IPs in 10.96.0.0/16 (the local cluster's)",
    )
    args = parser.parse_args(argv)
    try:
        allow = args.allow_pod_network
        connect_to = tuple(parse_connect_to(m, allow_pod_network=allow) for m in args.connect_to)
        token = None
        if args.mcp_url:
            token = (
                Path(args.token_file).read_text().strip() if args.token_file else os.environ.get("MCP_TOKEN")
            )
        config = LoadConfig(
            store_urls=tuple(args.store_url),
            requests=args.requests,
            concurrency=args.concurrency,
            deadline=args.deadline,
            mix=parse_mix(args.mix) if args.mix else dict(DEFAULT_MIX),
            products=args.products,
            initial_stock=args.initial_stock,
            deltas=parse_deltas(args.deltas),
            seed=args.seed,
            mcp_url=args.mcp_url,
            mcp_token=token,
            mcp_host=args.mcp_host,
            connect_to=connect_to,
            ca_file=args.ca_file,
            allow_pod_network=allow,
            rate=args.rate,
        )
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    try:
        report = asyncio.run(run_load(config))
    except SetupError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 1
    summary = report.summary()
    print(json.dumps(summary, indent=2))
    return 1 if report.errors or summary["stock"]["consistent"] is False else 0


if __name__ == "__main__":
    sys.exit(main())
