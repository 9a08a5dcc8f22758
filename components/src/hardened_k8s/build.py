"""What an image build is, as plain data shared by every builder.

The Pulumi image component (``hardened_k8s.image``) and the real-build test tier both build
from a :class:`BuildSpec` made by :func:`build_spec`, so the parameters a test exercises are
by construction the ones ``pulumi up`` passes to the Docker engine. This module imports
nothing from Pulumi or Docker and stays cheap to load.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PLATFORM = "linux/amd64"
"""Platform built when none is configured: the architecture of the target clusters."""

DEFAULT_TARGET = "runtime"
"""Containerfile stage built when none is configured: the final, compiler-free stage."""

_SHA_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class BuildSpec:
    """One image build: where it comes from, what it is called and how it is cached.

    ``containerfile`` is relative to ``context``. ``tags`` are pushed under ``repository``;
    the first one is the primary (immutable, git-SHA) tag.
    """

    context: str
    """Build context directory; the Containerfile and ``COPY`` sources are relative to it."""
    containerfile: str
    """Path of the Containerfile, relative to ``context``."""
    target: str
    """Stage to build (``runtime`` for the services)."""
    platform: str
    """Target platform, e.g. ``linux/amd64``."""
    repository: str
    """Image repository without a tag, e.g. ``quay.io/ecosystem-appeng/store-inventory``."""
    tags: tuple[str, ...]
    """Tags pushed under ``repository``; the first is the immutable ``sha-<rev>`` tag."""
    build_args: Mapping[str, str] = field(default_factory=dict)
    """``--build-arg`` values (``VERSION``, ``REVISION``, ``SOURCE`` and the service's own). Default none."""
    cache_from: tuple[str, ...] = ()
    """Images whose inline BuildKit cache the build reuses. Default none."""

    @property
    def primary_ref(self) -> str:
        """``repository:<first tag>``, the name the build is pushed under first."""
        return f"{self.repository}:{self.tags[0]}"

    @property
    def refs(self) -> tuple[str, ...]:
        """Every ``repository:tag`` the build is pushed under."""
        return tuple(f"{self.repository}:{tag}" for tag in self.tags)


def sha_tag(revision: str) -> str:
    """The immutable tag of a git revision: ``sha-`` and the full commit id.

    The full id, not a prefix: two commits can share 7 hex digits, and the tag is what
    promotion trusts to name one commit.
    """
    if not _SHA_RE.match(revision):
        raise ValueError(
            f"revision {revision!r} is not a full git commit SHA (40 hex digits, or 64 in a SHA-256 "
            "repository); pass the output of `git rev-parse HEAD`"
        )
    return f"sha-{revision}"


def build_spec(
    name: str,
    *,
    context: str | Path,
    registry: str,
    version: str,
    revision: str,
    containerfile: str = "Containerfile",
    target: str = DEFAULT_TARGET,
    platform: str = DEFAULT_PLATFORM,
    build_args: Mapping[str, str] | None = None,
    base_image: str | None = None,
    source: str = "",
    cache_from: tuple[str, ...] | None = None,
) -> BuildSpec:
    """Describe the build of image ``name`` pushed as ``<registry>/<name>``.

    Tags are ``sha-<full revision>`` then ``version``. Build args always carry the OCI label
    values ``VERSION``, ``REVISION`` and ``SOURCE``; ``BASE_IMAGE`` is passed only when
    ``base_image`` is given, otherwise the Containerfile's production default is used.
    ``BUILDKIT_INLINE_CACHE=1`` is set so every pushed image can seed later builds.
    ``cache_from`` defaults to none: a tag anyone with push access can move must not feed
    layers into a build. CI's publish step (``scripts/images.py``) adds, by digest, the
    ``version`` image it verified CI pushed from ``main``.
    """
    if not _TAG_RE.match(version):
        raise ValueError(f"version {version!r} is not a valid image tag")
    repository = f"{registry.rstrip('/')}/{name}"
    args: dict[str, str] = {
        "VERSION": version,
        "REVISION": revision,
        "SOURCE": source,
        "BUILDKIT_INLINE_CACHE": "1",
    }
    if base_image:
        args["BASE_IMAGE"] = base_image
    # Caller-supplied args win except over the label values, which must describe this build.
    merged = {**(build_args or {}), **args}
    return BuildSpec(
        context=str(context),
        containerfile=containerfile,
        target=target,
        platform=platform,
        repository=repository,
        tags=(sha_tag(revision), version),
        build_args=dict(sorted(merged.items())),
        cache_from=() if cache_from is None else cache_from,
    )


def docker_build_kwargs(spec: BuildSpec) -> dict[str, object]:
    """Keyword arguments for the ``docker`` package's ``APIClient.build`` doing ``spec``.

    These are the values ``hardened_k8s.image`` hands to ``docker.Image``: context,
    Containerfile (relative to the context), target stage, platform, build args, cache
    sources, and the primary ``repository:tag``. The real-build test tier and the image
    benchmark build from this mapping.
    """
    return {
        "path": spec.context,
        "dockerfile": spec.containerfile,
        "target": spec.target,
        "platform": spec.platform,
        "buildargs": dict(spec.build_args),
        "cache_from": list(spec.cache_from),
        "tag": spec.primary_ref,
    }
