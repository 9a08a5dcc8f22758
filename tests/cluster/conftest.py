"""Fixtures of the cluster tier: a real control plane, a real node, and the real Pulumi CLI.

Tests marked ``cluster`` run ``pulumi preview``, ``up`` and ``destroy`` of the committed
stacks against :class:`~tests.cluster.local.LocalCluster`: the dev stack on the real node
(kubelet, containerd, kube-proxy, kube-router, CoreDNS, Traefik) with the images the image
harness built, the prod stack on KWOK nodes in two zones. They need root, the binaries of
``scripts/toolchain.sh`` and the Debian packages of ``scripts/ci-node-deps.sh``; without
them the tier is skipped locally and fails under CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..image.stack_images import Image, build_stack_images
from ..tiers import unavailable
from . import host
from .local import ClusterError, IngressStatus, LocalCluster, missing_tools, temporary_cluster
from .pulumi_cli import PulumiEnv, pulumi_env


@pytest.fixture(scope="session")
def stack_images(harness: Any) -> dict[str, Image]:
    """The stack's three images, built and pushed to the local registry, by digest."""
    from ..image.engine import git_revision

    return build_stack_images(harness, git_revision())


@pytest.fixture(scope="session")
def cluster(harness: Any) -> Iterator[LocalCluster]:
    missing = missing_tools() + host.missing_commands()
    if missing:
        unavailable(
            "cluster",
            "missing " + ", ".join(missing) + "; run scripts/toolchain.sh and scripts/ci-node-deps.sh",
        )
    if os.geteuid() != 0:
        unavailable("cluster", "the real node (kubelet, containerd, iptables) needs root")
    local = temporary_cluster()
    try:
        local.start(harness)
    except ClusterError as exc:
        pytest.fail(f"local cluster did not start: {exc}", pytrace=False)
    try:
        with IngressStatus(local):
            yield local
    finally:
        local.stop()
        shutil.rmtree(local.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def pulumi(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> PulumiEnv:
    """A Pulumi home and file backend of this session, pointed at the local cluster."""
    home: Path = tmp_path_factory.mktemp("pulumi")
    return pulumi_env(home, kubeconfig=cluster.kubeconfig)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Real-node tests (``@real_node``) run on the stack the real node carries only; for the
    others they are deselected, not skipped. The fault tests run first of the session."""
    from .test_stacks import REAL_NODE_STACK

    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (
            getattr(getattr(item, "function", None), "real_node", False)
            and callspec is not None
            and callspec.params.get("deployed", REAL_NODE_STACK) != REAL_NODE_STACK
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    # The fault tests change the machine and need it without a node: before any cluster starts.
    first = [i for i in kept if i.path.name == "test_faults.py"]
    items[:] = first + [i for i in kept if i.path.name != "test_faults.py"]
