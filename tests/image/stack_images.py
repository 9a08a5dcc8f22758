"""The three images of the stack, built and pushed with the image tier's harness.

Both services and the PostgreSQL image (``database/``) are built from the same
:func:`hardened_k8s.build.build_spec` the Pulumi image component uses, against the local
registry and Debian base of :mod:`tests.image.engine`, and pushed; the result is the
``repo@sha256:<digest>`` each one is deployed by, as the registry serves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hardened_k8s.build import BuildSpec, build_spec

from .engine import BASE_IMAGE, REGISTRY, REPO_ROOT, SERVICES, Harness, registry_digest

DATABASE_CONTEXT = REPO_ROOT / "database"
DATABASE_IMAGE = "postgresql"


@dataclass(frozen=True)
class Image:
    """One image of the stack: what was built and the digest reference it is deployed by."""

    name: str
    spec: BuildSpec
    ref: str
    """``repository@sha256:<digest>`` as the local registry serves it."""
    build_seconds: float


def stack_builds(revision: str, services_dir: Path | None = None) -> dict[str, BuildSpec]:
    """Build specs of the stack's images, keyed by image (service or database) name; the
    services' contexts from ``services_dir`` (default: this checkout's ``services/``)."""
    contexts: dict[str, Path] = {
        s.image: (services_dir / s.directory if services_dir else s.context) for s in SERVICES
    }
    contexts[DATABASE_IMAGE] = DATABASE_CONTEXT
    return {
        name: build_spec(
            name,
            context=context,
            registry=REGISTRY,
            version="0.1.0",
            revision=revision,
            base_image=BASE_IMAGE,
            source=f"https://quay.io/repository/ecosystem-appeng/{name}",
        )
        for name, context in contexts.items()
    }


def build_stack_images(harness: Harness, revision: str) -> dict[str, Image]:
    """Build and push every image; the registry's digest for each."""
    images: dict[str, Image] = {}
    for name, spec in stack_builds(revision).items():
        result = harness.build(spec)
        harness.push(spec)
        digest = registry_digest(spec.primary_ref)
        images[name] = Image(name, spec, f"{spec.repository}@{digest}", result.seconds)
    return images
