"""ServiceImage: build a multi-stage Containerfile, push it, and hand back ``repo@sha256:``.

No ``from __future__ import annotations`` here: the component-provider analyzer reads the
annotations of :class:`ServiceImageArgs` and of the component's outputs as objects.
"""

import os
from collections.abc import Mapping, Sequence
from typing import Required, TypedDict

import pulumi

from .arguments import ArgsCheck
from .build import DEFAULT_PLATFORM, DEFAULT_TARGET, BuildSpec
from .config import BuildStage, ImageRepository, ImageTag, Platform
from .provenance import uncommitted_paths
from .tokens import type_token, with_former_type


def _uncommitted(context: str) -> list[str]:
    """Uncommitted paths under the build context; none outside a git checkout. Only an ``up``
    asks git (a preview, and so the mock engine, starts no process)."""
    if pulumi.runtime.is_dry_run():
        return []
    return uncommitted_paths(context) or []


def registry_server(repository: str) -> str:
    """The registry host of a repository: ``quay.io/org/app`` -> ``quay.io``."""
    return repository.split("/", 1)[0]


class ServiceImageArgs(TypedDict, total=False):
    """The inputs of :class:`ServiceImage`. :func:`service_image_args` makes them from a
    :class:`~hardened_k8s.build.BuildSpec` (tags ``sha-<revision>`` and the version, OCI labels,
    inline cache)."""

    context: Required[str]
    """Build context directory. Required."""
    repository: Required[str]
    """Repository pushed to, ``<registry>/<name>``. Required."""
    tags: Required[Sequence[str]]
    """Tags pushed, the first (immutable, e.g. ``sha-<revision>``) before the others. Required."""
    containerfile: str
    """Containerfile path inside the context. Default: ``Containerfile``."""
    target: pulumi.Input[str]
    """Stage to build. Default: ``runtime``."""
    platform: pulumi.Input[str]
    """Platform to build for. Default: ``linux/amd64``."""
    build_args: Mapping[str, pulumi.Input[str]]
    """Build arguments. Default: none."""
    cache_from: Sequence[str]
    """Images whose layers seed the build. Default: none."""
    registry_username: pulumi.Input[str]
    """Registry login for the push. Default: the build machine's docker login."""
    registry_password: pulumi.Input[str]
    (
        "Registry password or token, made a Pulumi secret; used only with it. Default: the build machine's "
        "docker login."
    )


def service_image_args(
    spec: BuildSpec,
    *,
    registry_username: pulumi.Input[str] | None = None,
    registry_password: pulumi.Input[str] | None = None,
) -> ServiceImageArgs:
    """The :class:`ServiceImageArgs` that build and push exactly ``spec``."""
    args = ServiceImageArgs(
        context=spec.context,
        repository=spec.repository,
        tags=list(spec.tags),
        containerfile=spec.containerfile,
        target=spec.target,
        platform=spec.platform,
        build_args=dict(spec.build_args),
        cache_from=list(spec.cache_from),
    )
    if registry_username is not None:
        args["registry_username"] = registry_username
    if registry_password is not None:
        args["registry_password"] = registry_password
    return args


class ServiceImage(pulumi.ComponentResource):
    """One image built from a multi-stage Containerfile and pushed, handed back by digest.

    ``pulumi preview`` neither builds nor pushes (``build_on_preview`` is off, so previews
    in pull requests have no registry side effects); ``pulumi up`` builds with BuildKit,
    pushes the first tag and then each other tag. ``ref`` is ``repo@sha256:<digest>`` as
    reported by the registry, so a Deployment that runs it changes if and only if the pushed
    image changed. Nothing pushed is ever deleted: ``docker.Image`` leaves the registry alone
    on destroy (pulumi-docker 5), and each further tag's ``RegistryImage`` keeps its manifest
    (``keep_remotely``) when it is replaced by a new digest or destroyed, so every image
    pushed under the first tag stays pullable. Credentials are used only when
    ``registry_password`` is given; it is made a Pulumi secret and never exported.

    ``pulumi up`` refuses to build when the build context holds uncommitted changes (git
    reports modified, staged, deleted or untracked paths under it): the first tag names a
    commit, and an image pushed under it must be that commit's bytes. A preview builds
    nothing and does not ask.
    """

    ref: pulumi.Output[str]
    """``repository@sha256:<digest>`` of the pushed image."""

    def __init__(self, name: str, args: ServiceImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Imported here: pulumi-docker takes 0.1 s to import, which a stack that only pins images
        # (and the offline render of one) should not pay.
        import pulumi_docker as docker

        super().__init__(
            type_token("ServiceImage"), name, None, with_former_type(opts, "hardened-k8s:image:ServiceImage")
        )
        repository = args["repository"]
        tags = list(args["tags"])
        check = ArgsCheck("ServiceImage", name)
        check.fields(ServiceImageArgs, args)
        if not tags:
            check.add("tags", "is empty; give the tags to push, the immutable one first")
        check.value("repository", repository, ImageRepository)
        for i, tag in enumerate(tags):
            check.value(f"tags[{i}]", tag, ImageTag)
        for key, annotation in (("platform", Platform), ("target", BuildStage)):
            if key in args:
                check.value(key, args[key], annotation)  # type: ignore[literal-required]
        context = args["context"]
        dirty = _uncommitted(context)
        if dirty and tags:
            check.add(
                "context",
                f"{context!r} has uncommitted changes ({', '.join(dirty[:3])}"
                f"{', ...' if len(dirty) > 3 else ''}): the image would be pushed as "
                f"{repository}:{tags[0]} without being that commit; commit or stash them, or deploy "
                "an image CI built (image.ref)",
            )
        check.done()
        registry = None
        auth = None
        username = args.get("registry_username")
        password = args.get("registry_password")
        if password is not None:
            secret: pulumi.Output[str] = pulumi.Output[str].secret(password)
            server = registry_server(repository)
            registry = docker.RegistryArgs(server=server, username=username, password=secret)
            auth = docker.RegistryImageAuthConfigArgs(
                address=server, username=username or "", password=secret
            )
        cache_from = list(args.get("cache_from") or [])
        image = docker.Image(
            f"{name}-image",
            image_name=f"{repository}:{tags[0]}",
            build=docker.DockerBuildArgs(
                context=context,
                dockerfile=os.path.join(context, args.get("containerfile", "Containerfile")),
                target=args.get("target", DEFAULT_TARGET),
                platform=args.get("platform", DEFAULT_PLATFORM),
                args=dict(args.get("build_args") or {}),
                cache_from=docker.CacheFromArgs(images=cache_from) if cache_from else None,
                builder_version=docker.BuilderVersion.BUILDER_BUILD_KIT,
            ),
            build_on_preview=False,
            registry=registry,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.ref = image.repo_digest
        for tag in tags[1:]:
            target = f"{repository}:{tag}"
            tagged = docker.Tag(
                f"{name}-tag-{tag}",
                source_image=image.repo_digest,
                target_image=target,
                tag_triggers=[image.repo_digest],
                opts=pulumi.ResourceOptions(parent=self),
            )
            docker.RegistryImage(
                f"{name}-push-{tag}",
                name=tagged.target_image,
                auth_config=auth,
                # Re-push the moving tag whenever the digest behind it changes. Replacing (or
                # destroying) this resource must not delete the manifest it pushed: that digest
                # is also the first tag's image, which older ReplicaSets and rollbacks pull.
                triggers={"digest": image.repo_digest},
                keep_remotely=True,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[tagged]),
            )
        self.register_outputs({"ref": self.ref})
