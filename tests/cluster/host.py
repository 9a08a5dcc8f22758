"""The machine under the real node: what it must offer, what a node leaves on it, and the lock.

A real node changes the machine: a bridge, iptables chains and ipsets, cgroups, network
namespaces, mounts and a few sysctls. :func:`preflight` says what is missing or left behind
(with the fix) before anything starts; :func:`clean` removes what a node leaves, by name, and
puts the sysctls back. Only one real node runs on a machine at a time: :func:`hold_node`
takes a machine-wide lock, and :func:`clean` refuses while another process holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

BRIDGE = "hk8s0"
"""The CNI bridge of the pod network; its address is the node's IP."""
NODE_IP = "10.244.0.1"
POD_SUBNET = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/16"
NODE_LOCK = Path("/run/lock/hardened-k8s-node.lock")
"""Held by the process that runs the real node, for the node's whole life."""
SYSCTLS_SAVED = Path("/run/lock/hardened-k8s-sysctls.json")
"""The values of :data:`SYSCTLS` before the node first changed them (put back by :func:`clean`)."""
SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "net.ipv4.conf.all.route_localnet",
    "kernel.panic",
    "kernel.panic_on_oops",
    "vm.overcommit_memory",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
)
"""Sysctls the node's components set (kubelet's kernel defaults, kube-proxy, the bridge)."""
CHAIN_PREFIXES = ("KUBE-", "CNI-")
"""iptables chains of kubelet, kube-proxy, kube-router and the CNI plugins."""
IPSET_PATTERN = re.compile(r"^(KUBE-|kube-router)")
COMMANDS = {
    "containerd": "Debian package containerd",
    "runc": "Debian package runc",
    "conntrack": "Debian package conntrack (kube-proxy's iptables mode)",
    "ipset": "Debian package ipset (kube-router)",
    "iptables": "Debian package iptables",
    "ip": "Debian package iproute2",
    "catatonit": "Debian package catatonit (the sandbox image's /pause)",
}
CNI_DIR = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
FIX_LEFTOVERS = (
    "a local cluster still runs or was stopped without cleaning up; stop it with `make down`, "
    "or clean the machine with `python -m tests.cluster clean`"
)
CGROUP_ROOT = Path("/sys/fs/cgroup")


class NodeBusyError(RuntimeError):
    """Another process runs a real node on this machine."""


def _run(*argv: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


def missing_commands() -> list[str]:
    """What the real node needs from the machine and is not installed, with its package."""
    missing = [f"{name} ({package})" for name, package in COMMANDS.items() if shutil.which(name) is None]
    missing += [
        f"CNI plugin {p} (Debian package containernetworking-plugins)"
        for p in CNI_PLUGINS
        if not (CNI_DIR / p).is_file()
    ]
    return missing


def kernel_problems() -> list[str]:
    """Kernel features the node needs that this machine lacks, with what to do."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the real node runs as root (kubelet, containerd, iptables); run as root")
    if not Path("/proc/sys/net/bridge/bridge-nf-call-iptables").exists():
        problems.append(
            "bridged traffic cannot be filtered (no net.bridge.bridge-nf-call-iptables): "
            "load br_netfilter (`modprobe br_netfilter`) or use a kernel with it built in"
        )
    if not (CGROUP_ROOT / "memory").is_dir() and not (CGROUP_ROOT / "cgroup.controllers").exists():
        problems.append("no memory cgroup under /sys/fs/cgroup: kubelet cannot enforce limits")
    return problems


def _chains(table: str) -> tuple[list[str], list[str]]:
    """(chains of ours in ``table``, rules of built-in chains that jump to them)."""
    result = _run("iptables-save", "-t", table)
    if result.returncode != 0:
        return [], []
    chains, jumps = [], []
    for line in result.stdout.splitlines():
        if line.startswith(":") and line[1:].startswith(CHAIN_PREFIXES):
            chains.append(line[1:].split()[0])
        elif line.startswith("-A ") and not line.split()[1].startswith(CHAIN_PREFIXES):
            words = shlex.split(line)
            if "-j" in words and words[words.index("-j") + 1].startswith(CHAIN_PREFIXES):
                jumps.append(line)
    return chains, jumps


def _ipsets() -> list[str]:
    if shutil.which("ipset") is None:
        return []
    result = _run("ipset", "list", "-n")
    return [name for name in result.stdout.split() if IPSET_PATTERN.match(name)]


def _kubepods_cgroups() -> list[Path]:
    """Every ``kubepods`` cgroup, deepest first (rmdir order)."""
    found: list[Path] = []
    if not CGROUP_ROOT.is_dir():
        return found
    for controller in CGROUP_ROOT.iterdir():
        top = controller / "kubepods"
        if top.is_dir():
            found.extend(sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)))
            found.append(top)
    return found


def _netns() -> list[str]:
    result = _run("ip", "netns", "list")
    return [line.split()[0] for line in result.stdout.splitlines() if line.startswith("cni-")]


def leftovers() -> list[str]:
    """What a previous node left on this machine, one line each, with the fix."""
    found = []
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        found.append(f"the bridge {BRIDGE} exists")
    for table in ("filter", "nat", "mangle"):
        chains, _ = _chains(table)
        if chains:
            shown = ", ".join(sorted(chains)[:3]) + ("..." if len(chains) > 3 else "")
            found.append(f"iptables chains {shown} exist in the {table} table")
    if _ipsets():
        found.append(f"ipsets {', '.join(_ipsets()[:3])} exist")
    if _kubepods_cgroups():
        found.append("kubepods cgroups exist under /sys/fs/cgroup")
    if _netns():
        found.append(f"pod network namespaces {', '.join(_netns()[:3])} exist")
    return [f"{item}: {FIX_LEFTOVERS}" for item in found]


def preflight() -> list[str]:
    """Everything that stops a real node from starting here, each with its fix (empty: go)."""
    problems = kernel_problems()
    problems += [f"missing {m}" for m in missing_commands()]
    if not problems:
        problems += leftovers()
    return problems


@contextlib.contextmanager
def hold_node() -> Iterator[int]:
    """Hold :data:`NODE_LOCK` (non-blocking) for the node's life; the fd is kept open.

    The lock file records the holder's PID, so a refusal names it.
    """
    NODE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(NODE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = Path(NODE_LOCK).read_text().strip() or "unknown"
        os.close(fd)
        raise NodeBusyError(
            f"another local cluster runs a real node on this machine (PID {holder}, lock "
            f"{NODE_LOCK}); stop it with `make down` or wait for its test run to end"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    os.set_inheritable(fd, True)
    try:
        yield fd
    finally:
        os.close(fd)


def node_lock_held() -> bool:
    """Whether some live process holds :data:`NODE_LOCK` now."""
    if not NODE_LOCK.exists():
        return False
    fd = os.open(NODE_LOCK, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def save_sysctls() -> None:
    """Record :data:`SYSCTLS` as they are, unless a record from an unfinished run exists."""
    if SYSCTLS_SAVED.exists():
        return
    values = {}
    for name in SYSCTLS:
        path = Path("/proc/sys") / name.replace(".", "/")
        with contextlib.suppress(OSError):
            values[name] = path.read_text().strip()
    SYSCTLS_SAVED.write_text(json.dumps(values, indent=2))


def restore_sysctls() -> None:
    if not SYSCTLS_SAVED.exists():
        return
    for name, value in json.loads(SYSCTLS_SAVED.read_text()).items():
        path = Path("/proc/sys") / name.replace(".", "/")
        with contextlib.suppress(OSError):
            if path.read_text().strip() != value:
                path.write_text(value)
    SYSCTLS_SAVED.unlink()


def create_bridge() -> None:
    """The pod network's bridge with the node's address, before kubelet and the API server."""
    _run("ip", "link", "add", BRIDGE, "type", "bridge", check=True)
    _run("ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE, check=True)
    _run("ip", "link", "set", BRIDGE, "up", check=True)
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
    Path("/proc/sys/net/bridge/bridge-nf-call-iptables").write_text("1")


def _shims(directories: tuple[Path, ...]) -> list[int]:
    """containerd's shims for the node's pods: they leave containerd's process group and
    outlive it. Those of a containerd under ``directories``, or with none given, of any
    containerd but the system one (``/run/containerd``)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0].endswith(b"containerd-shim-runc-v2") or b"k8s.io" not in argv:
            continue
        address = argv[argv.index(b"-address") + 1].decode() if b"-address" in argv else ""
        ours = (
            any(address.startswith(str(d.resolve()) + "/") for d in directories)
            if directories
            else address.endswith("/containerd/containerd.sock")
            and not address.startswith("/run/containerd/")
        )
        if ours:
            found.append(int(proc.name))
    return found


def _kill_pod_processes() -> None:
    """SIGKILL whatever still runs in a pod cgroup (containers outlive a killed containerd)."""
    for _ in range(20):
        pids: set[int] = set()
        for cgroup in _kubepods_cgroups():
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in (cgroup / "cgroup.procs").read_text().split())
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def unmount_under(*roots: Path) -> None:
    """Unmount every mount point below ``roots``, deepest first."""
    prefixes = tuple(str(r.resolve()) + "/" for r in roots) + tuple(str(r.resolve()) for r in roots)
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point.startswith(prefixes):
            mounts.append(point)
    for point in sorted(set(mounts), key=len, reverse=True):
        _run("umount", "-l", point)


def clean(*directories: Path, owned: bool = False) -> list[str]:
    """Remove what a real node leaves: containerd's shims, pod processes, mounts under
    ``directories``, network namespaces, chains, ipsets, the bridge and cgroups; put the
    sysctls back.

    Refuses (:class:`NodeBusyError`) while a live process holds :data:`NODE_LOCK`, unless
    ``owned``: the caller stops the node in ``directories`` (whose shims inherited the lock).
    Returns what it removed, one line each.
    """
    if not owned and node_lock_held():
        raise NodeBusyError(
            f"a local cluster's real node is running (lock {NODE_LOCK} is held); stop it with "
            "`make down` instead of cleaning under it"
        )
    done: list[str] = []
    shims = _shims(directories)
    for pid in shims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if shims:
        done.append(f"{len(shims)} containerd shims")
    if _kubepods_cgroups():
        _kill_pod_processes()
    if directories:
        unmount_under(*directories)
    for ns in _netns():
        _run("ip", "netns", "delete", ns)
        done.append(f"network namespace {ns}")
    for table in ("filter", "nat", "mangle"):
        chains, jumps = _chains(table)
        for rule in jumps:
            _run("iptables", "-t", table, "-D", *shlex.split(rule)[1:])
        for chain in chains:
            _run("iptables", "-t", table, "-F", chain)
        for chain in chains:
            _run("iptables", "-t", table, "-X", chain)
        if chains:
            done.append(f"{len(chains)} iptables chains in {table}")
    sets = _ipsets()
    for name in sets:
        _run("ipset", "destroy", name)
    if sets:
        done.append(f"{len(sets)} ipsets")
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        _run("ip", "link", "delete", BRIDGE)
        done.append(f"bridge {BRIDGE}")
    cgroups = _kubepods_cgroups()
    for cgroup in cgroups:
        with contextlib.suppress(OSError):
            cgroup.rmdir()
    if cgroups:
        done.append(f"{len(cgroups)} kubepods cgroups")
    if SYSCTLS_SAVED.exists():
        restore_sysctls()
        done.append("sysctls restored")
    return done
