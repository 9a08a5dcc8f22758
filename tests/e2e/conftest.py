"""Fixtures of the e2e tier: images built and pushed, then the dev stack played by podman.

Tests marked ``e2e`` need dockerd, docker-registry and debootstrap (the image tier's
harness builds the images) and podman, catatonit, iproute2 and psql (to run the stack):
``scripts/ci-e2e-deps.sh`` installs them all. Without them, or without root (network
namespaces), the tier is skipped locally and fails under CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hardened_k8s.render import manifests

from ..image.engine import Harness, git_revision
from ..image.engine import missing_tools as missing_image_tools
from ..tiers import unavailable
from .images import Image, build_stack_images
from .podman import Cluster
from .podman import missing_tools as missing_podman_tools
from .stack import API, DB, RunningStack, Secrets, e2e_config, render


@pytest.fixture(scope="session")
def stack_images() -> Iterator[dict[str, Image]]:
    missing = missing_image_tools() + missing_podman_tools()
    if missing:
        unavailable("e2e", "missing " + ", ".join(missing) + "; scripts/ci-e2e-deps.sh installs them")
    if os.geteuid() != 0:
        unavailable("e2e", "network namespaces, dockerd and podman's bridge need root")
    with Harness() as harness:
        images = build_stack_images(harness, git_revision())
        yield images


@pytest.fixture(scope="module")
def stack(stack_images: dict[str, Image]) -> Iterator[RunningStack]:
    """The dev stack running: 3 API replicas, the MCP server, PostgreSQL, all Ready."""
    generated = Secrets()
    run = render(e2e_config({name: image.ref for name, image in stack_images.items()}), generated)
    with Cluster() as cluster:
        for image in stack_images.values():
            cluster.pull(image.ref)
        running = RunningStack(cluster, run, manifests(run), generated)
        running.play()
        try:
            running.wait_all_ready(timeout=300)
        except AssertionError as exc:
            logs = "\n".join(
                f"--- {w.container(p)}\n{cluster.logs(w.container(p))[-1500:]}"
                for w in running.workloads.values()
                for p in w.pods
            )
            api = running.workloads[API]
            lookup = f"import socket; print(socket.getaddrinfo('{DB}', 5432)[0][4])"
            dns = cluster.exec(api.container(api.pods[0]), "python", "-c", lookup, timeout=20)
            raise AssertionError(f"{exc}\n{logs}\n--- {DB} from {API}: {dns}") from None
        yield running
