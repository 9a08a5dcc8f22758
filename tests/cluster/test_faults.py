"""Faults at the real node's start: each stops it with the reason and the fix, and leaves no
process and nothing on the machine.

These tests change the machine (a bridge, a port), so they run before the session's cluster
starts (:func:`tests.cluster.conftest.pytest_collection_modifyitems` puts them first).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from . import host
from .local import ClusterError, LocalCluster, missing_tools

pytestmark = [pytest.mark.cluster]


@pytest.fixture
def bare_machine() -> None:
    """The machine as a node needs it: root, the tools, nothing left by an earlier node."""
    from ..tiers import unavailable

    missing = missing_tools() + host.missing_commands()
    if missing or os.geteuid() != 0:
        unavailable("cluster", f"the real node needs root and {', '.join(missing) or 'nothing more'}")
    if host.node_lock_held():
        pytest.fail("a real node runs on this machine: these tests change the machine", pytrace=False)
    host.clean()
    assert host.preflight() == []


def _processes_under(directory: Path) -> list[str]:
    """Live processes whose command line names ``directory`` (a stray component)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(directory) in cmdline:
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def test_what_a_node_left_behind_stops_the_start_until_it_is_cleaned(bare_machine: None) -> None:
    subprocess.run(["ip", "link", "add", host.BRIDGE, "type", "bridge"], check=True)
    directory = Path(tempfile.mkdtemp(prefix="hk8s-fault-"))
    try:
        cluster = LocalCluster(directory)
        with pytest.raises(ClusterError) as refused:
            # The machine check comes before anything uses the harness.
            cluster.start(harness=object())  # type: ignore[arg-type]
        message = str(refused.value)
        assert f"the bridge {host.BRIDGE} exists" in message, message
        assert "make down" in message and "python -m tests.cluster clean" in message, message
        assert cluster.pids == {} and _processes_under(directory) == []
        assert not host.node_lock_held(), "a refused start holds the node lock"
    finally:
        removed = host.clean()
        shutil.rmtree(directory, ignore_errors=True)
    assert f"bridge {host.BRIDGE}" in removed
    assert host.preflight() == []


def test_a_component_that_dies_stops_the_start_and_leaves_no_process(
    bare_machine: None, harness: Any
) -> None:
    # kubelet's port on the node's address, taken before the node starts: kubelet exits.
    directory = Path(tempfile.mkdtemp(prefix="hk8s-fault-"))
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    cluster = LocalCluster(directory)
    original = host.create_bridge

    def bridge_then_take_the_port() -> None:
        original()
        taken.bind((host.NODE_IP, 10250))
        taken.listen()

    host.create_bridge = bridge_then_take_the_port
    try:
        with pytest.raises(ClusterError) as refused:
            cluster.start(harness, timeout=90)
    finally:
        host.create_bridge = original
        taken.close()
        shutil.rmtree(directory, ignore_errors=True)
    message = str(refused.value)
    assert "kubelet" in message and "10250" in message, message[-2000:]
    assert cluster.pids == {} and _processes_under(directory) == [], _processes_under(directory)
    assert host.preflight() == [], "the failed start left something on the machine"
    assert not host.node_lock_held()
