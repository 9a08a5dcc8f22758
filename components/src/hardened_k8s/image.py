"""ServiceImage: build a multi-stage Containerfile, push it, and hand back ``repo@sha256:``."""

from __future__ import annotations

import os

import pulumi
import pulumi_docker as docker

from .build import BuildSpec


def registry_server(repository: str) -> str:
    """The registry host of a repository: ``quay.io/org/app`` -> ``quay.io``."""
    return repository.split("/", 1)[0]


class ServiceImage(pulumi.ComponentResource):
    """One image built from a :class:`~hardened_k8s.build.BuildSpec` and pushed by digest.

    ``pulumi preview`` neither builds nor pushes (``build_on_preview`` is off, so previews
    in pull requests have no registry side effects); ``pulumi up`` builds with BuildKit,
    pushes the primary ``sha-<revision>`` tag and then the version tag. ``ref`` is
    ``repo@sha256:<digest>`` as reported by the registry, so a Deployment that runs it
    changes if and only if the pushed image changed. Nothing pushed is ever deleted: ``docker.Image``
    leaves the registry alone on destroy (pulumi-docker 5), and the version tag's
    ``RegistryImage`` keeps its manifest (``keep_remotely``) when it is replaced by a new
    digest or destroyed, so every ``sha-<revision>`` image stays pullable. Credentials are used only when
    ``registry_password`` is given; it must be a Pulumi secret and is never exported.
    """

    ref: pulumi.Output[str]
    """``repository@sha256:<digest>`` of the pushed image."""
    spec: BuildSpec
    """What was built (for summaries); plain data, no secrets."""

    def __init__(
        self,
        name: str,
        spec: BuildSpec,
        *,
        registry_username: pulumi.Input[str] | None = None,
        registry_password: pulumi.Output[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("hardened-k8s:image:ServiceImage", name, None, opts)
        self.spec = spec
        registry = None
        auth = None
        if registry_password is not None:
            secret: pulumi.Output[str] = pulumi.Output[str].secret(registry_password)
            server = registry_server(spec.repository)
            registry = docker.RegistryArgs(server=server, username=registry_username, password=secret)
            auth = docker.RegistryImageAuthConfigArgs(
                address=server, username=registry_username or "", password=secret
            )
        image = docker.Image(
            f"{name}-image",
            image_name=spec.primary_ref,
            build=docker.DockerBuildArgs(
                context=spec.context,
                dockerfile=os.path.join(spec.context, spec.containerfile),
                target=spec.target,
                platform=spec.platform,
                args=dict(spec.build_args),
                cache_from=docker.CacheFromArgs(images=list(spec.cache_from)) if spec.cache_from else None,
                builder_version=docker.BuilderVersion.BUILDER_BUILD_KIT,
            ),
            build_on_preview=False,
            registry=registry,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.ref = image.repo_digest
        for tag in spec.tags[1:]:
            target = f"{spec.repository}:{tag}"
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
                # is also the `sha-<revision>` image older ReplicaSets and rollbacks pull.
                triggers={"digest": image.repo_digest},
                keep_remotely=True,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[tagged]),
            )
        self.register_outputs({"ref": self.ref})
