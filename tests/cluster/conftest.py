"""Fixtures of the cluster tier: a real control plane and the real Pulumi CLI and providers.

Tests marked ``cluster`` run ``pulumi preview``, ``up`` and ``destroy`` of the committed
stacks against :class:`~tests.cluster.local.LocalCluster`. They need the binaries of
``scripts/toolchain.sh``; without them the tier is skipped locally and fails under CI.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..tiers import unavailable
from .local import ClusterError, IngressStatus, LocalCluster, missing_tools, temporary_cluster
from .pulumi_cli import PulumiEnv, pulumi_env


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    missing = missing_tools()
    if missing:
        unavailable("cluster", "missing " + ", ".join(missing) + "; run scripts/toolchain.sh")
    local = temporary_cluster()
    try:
        local.start()
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
