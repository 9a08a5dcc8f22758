"""Traffic from inside pods on the real node: connections and DNS queries from a pod's own
network namespace, as NetworkPolicy sees them (the pod's IP on the pod network).

The node's CNI plugins put each pod sandbox in a network namespace (``ip netns``: ``cni-…``);
the probes run this machine's Python inside it with ``ip netns exec``, so they need nothing
from the pod's image. Every target is an address on the pod or Service network the cluster
created, and every probe is bounded by a timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .host import NODE_IP

_CONNECT = r"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
targets = json.loads(sys.argv[1])
timeout = float(sys.argv[2])
def probe(target):
    host, port = target
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return "connected"
    except ConnectionRefusedError:
        return "refused"
    except socket.timeout:
        return "timed out"
    except OSError as exc:
        return type(exc).__name__ + ": " + str(exc)
with ThreadPoolExecutor(len(targets) or 1) as pool:
    print(json.dumps(list(pool.map(probe, targets))))
"""

_DNS = r"""
import json, random, socket, struct, sys
server, name, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
ident = random.randrange(65536)
question = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
packet = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", 1, 1)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.settimeout(timeout)
    s.sendto(packet, (server, 53))
    try:
        data = s.recv(4096)
    except OSError as exc:
        print(json.dumps({"error": type(exc).__name__}))
        raise SystemExit
rcode = data[3] & 0x0F
answers = struct.unpack("!H", data[6:8])[0]
# The first A record's address, after the echoed question.
offset, ips = 12 + len(question) + 4, []
for _ in range(answers):
    while data[offset] and data[offset] < 0xC0:
        offset += data[offset] + 1
    offset += 2 if data[offset] >= 0xC0 else 1
    kind, _cls, _ttl, length = struct.unpack("!HHIH", data[offset:offset + 10])
    offset += 10
    if kind == 1:
        ips.append(socket.inet_ntoa(data[offset:offset + length]))
    offset += length
print(json.dumps({"rcode": rcode, "ips": ips}))
"""


@dataclass(frozen=True)
class PodNet:
    """One pod's network namespace on the node."""

    pod: str
    ip: str
    netns: str

    def run(self, code: str, *args: str, timeout: float = 30) -> str:
        result = subprocess.run(
            ["ip", "netns", "exec", self.netns, sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return result.stdout

    def connect(self, targets: list[tuple[str, int]], timeout: float = 2.0) -> list[str]:
        """Try a TCP connection to each ``(address, port)`` at once; each one's outcome."""
        result: list[str] = json.loads(self.run(_CONNECT, json.dumps(targets), str(timeout)))
        return result

    def resolve(self, server: str, name: str, timeout: float = 2.0) -> dict[str, object]:
        """One DNS query for ``name``'s A record sent to ``server`` port 53 over UDP."""
        result: dict[str, object] = json.loads(self.run(_DNS, server, name, str(timeout)))
        return result


def netns_by_ip() -> dict[str, str]:
    """Every pod network namespace on the node, by the pod IP inside it."""
    found: dict[str, str] = {}
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        name = line.split()[0]
        if not name.startswith("cni-"):
            continue
        out = subprocess.run(
            ["ip", "-n", name, "-j", "addr", "show"], capture_output=True, text=True, check=False
        ).stdout
        for link in json.loads(out or "[]"):
            for addr in link.get("addr_info", []):
                if addr.get("family") == "inet" and addr["local"] != "127.0.0.1":
                    found[addr["local"]] = name
    return found


def pod_net(pod: dict[str, object]) -> PodNet:
    """The network namespace of a running pod (a live Pod object from the API server)."""
    status = pod["status"]
    assert isinstance(status, dict)
    ip = str(status["podIP"])
    assert ip != NODE_IP, "a host-network pod has no namespace of its own"
    netns = netns_by_ip().get(ip)
    meta = pod["metadata"]
    assert isinstance(meta, dict)
    assert netns is not None, f"no network namespace holds {meta['name']}'s IP {ip}"
    return PodNet(str(meta["name"]), ip, netns)


_STREAM = r"""
import json, sys, time, urllib.request, urllib.error
url, seconds, stop, interval = sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4])
import os
outcomes = {}
deadline = time.monotonic() + seconds
while time.monotonic() < deadline and not os.path.exists(stop):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            key = str(r.status)
    except urllib.error.HTTPError as exc:
        key = str(exc.code)
    except OSError as exc:
        key = type(exc).__name__ + ": " + str(getattr(exc, "reason", exc))
    outcomes[key] = outcomes.get(key, 0) + 1
    time.sleep(interval)
print(json.dumps(outcomes))
"""


class RequestStream:
    """A bounded stream of GET requests from inside a pod (sequential, a new connection and a
    5 s timeout each, ``interval`` seconds apart), until :meth:`finish` or ``seconds`` pass;
    counts each outcome (status or error)."""

    def __init__(self, net: PodNet, url: str, seconds: float, stop_file: str, interval: float = 0.02) -> None:
        self.stop_file = stop_file
        args = [url, str(seconds), stop_file, str(interval)]
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", net.netns, sys.executable, "-c", _STREAM, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self) -> dict[str, int]:
        with open(self.stop_file, "w"):
            pass
        out, err = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, err
        result: dict[str, int] = json.loads(out)
        return result


LOAD = Path(__file__).resolve().parents[2] / "bench" / "load.py"


def load_argv(
    netns: str,
    store_url: str,
    *,
    requests: int,
    concurrency: int,
    deadline: float,
    products: int | None = None,
) -> list[str]:
    """``bench/load.py`` against ``store_url`` (a pod or Service address) from inside ``netns``."""
    argv = [
        "ip", "netns", "exec", netns, sys.executable, str(LOAD),
        "--store-url", store_url, "--allow-pod-network",
        "--requests", str(requests), "--concurrency", str(concurrency), "--deadline", str(deadline),
    ]  # fmt: skip
    return argv + (["--products", str(products)] if products is not None else [])


def run_load(
    netns: str,
    store_url: str,
    *,
    requests: int,
    concurrency: int,
    deadline: float,
    seed: int = 0,
    rate: float | None = None,
    products: int | None = None,
) -> dict[str, Any]:
    """One run of ``bench/load.py`` from inside ``netns``, closed loop, or open loop at ``rate``
    requests/s; its JSON summary (exit 1, errors or a stock that does not add up, is the
    summary's to say)."""
    argv = load_argv(
        netns, store_url, requests=requests, concurrency=concurrency, deadline=deadline, products=products
    )
    argv += ["--seed", str(seed), *(["--rate", str(rate)] if rate else [])]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=deadline + 60, check=False)
    try:
        if result.returncode not in (0, 1):
            raise ValueError
        summary: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"bench/load.py exited {result.returncode}: {result.stderr[-2000:]}") from None
    return summary
