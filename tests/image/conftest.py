"""Fixtures of the real-build tier: one engine, registry and base image per session.

Tests marked ``image`` build both services with a real Docker engine. Without the host tools
they are skipped, except under CI (``CI`` set), where a missing tool is a failure: run
``scripts/ci-image-deps.sh`` first.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hardened_k8s.build import BuildSpec

from .engine import SERVICES, BuildResult, Harness, Service, git_revision
from .engine import service_spec as make_spec


@dataclass(frozen=True)
class Built:
    """One service built and pushed to the local registry."""

    service: Service
    spec: BuildSpec
    result: BuildResult
    pushed: dict[str, str]

    @property
    def ref(self) -> str:
        """The primary ``repository:tag`` pushed."""
        return self.spec.primary_ref

    @property
    def image(self) -> str:
        """The image id the build produced (immune to later re-tagging)."""
        return self.result.image_id


@pytest.fixture(scope="session")
def revision() -> str:
    return git_revision()


@pytest.fixture(scope="session")
def built_images(harness: Harness, revision: str) -> dict[str, Built]:
    images: dict[str, Built] = {}
    for service in SERVICES:
        spec = make_spec(service, revision=revision)
        result = harness.build(spec)
        images[service.directory] = Built(service, spec, result, harness.push(spec))
    return images


@pytest.fixture(params=[s.directory for s in SERVICES])
def built(request: pytest.FixtureRequest, built_images: dict[str, Built]) -> Built:
    return built_images[request.param]
