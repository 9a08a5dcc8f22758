"""The images the example projects build, and how their Deployments run them.

An example's program decides what it builds (context, Containerfile, target, build args) and
how its Deployment runs the image (port, UID, probes, writable paths, environment). Running
the program on the mock engine, as the offline render does, gives exactly those; the real-build
tier then builds each image with the engine harness and runs it the way its pod would: as the
pod's UID, read-only root with memory filesystems at the writable paths, every capability
dropped, no privilege escalation.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import yaml

from hardened_k8s.build import BuildSpec
from hardened_k8s.mock_engine import placeholder_digest, run_program
from hardened_k8s.render import manifests

from .engine import BASE_IMAGE, REGISTRY, REPO_ROOT

EXAMPLES_DIR = REPO_ROOT / "examples"
STACK = "dev"
IMAGE_TYPE = "docker:index/image:Image"


def _has_build(value: Any) -> bool:
    if isinstance(value, dict):
        return "build" in value or any(_has_build(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_build(v) for v in value)
    return False


def building_examples() -> list[str]:
    """Examples whose dev stack builds at least one image (``image.build`` somewhere)."""
    found = []
    for stack_file in sorted(EXAMPLES_DIR.glob(f"*/Pulumi.{STACK}.yaml")):
        if _has_build(yaml.safe_load(stack_file.read_text()).get("config", {})):
            found.append(stack_file.parent.name)
    return found


@dataclass(frozen=True)
class ExampleImage:
    """One image an example builds, pointed at the local registry and base, and its pod spec."""

    example: str
    name: str
    spec: BuildSpec
    deployment: dict[str, Any]

    @property
    def pod(self) -> dict[str, Any]:
        pod: dict[str, Any] = self.deployment["spec"]["template"]["spec"]
        return pod

    @property
    def container(self) -> dict[str, Any]:
        (container,) = self.pod["containers"]
        result: dict[str, Any] = container
        return result

    @property
    def run_as_user(self) -> int:
        uid: int = self.pod["securityContext"]["runAsUser"]
        return uid

    @property
    def port(self) -> int:
        port: int = self.container["ports"][0]["containerPort"]
        return port

    @property
    def writable_paths(self) -> list[str]:
        """Mount paths of the pod's ``emptyDir`` volumes: all a read-only root may write to."""
        scratch = {v["name"] for v in self.pod.get("volumes", []) if "emptyDir" in v}
        return [m["mountPath"] for m in self.container.get("volumeMounts", []) if m["name"] in scratch]

    @property
    def env(self) -> dict[str, str]:
        """The container's plain environment (no ``valueFrom``)."""
        return {e["name"]: e["value"] for e in self.container.get("env", []) if "value" in e}

    def probe_path(self, probe: str) -> str:
        path: str = self.container[probe]["httpGet"]["path"]
        return path

    @cached_property
    def peer_urls(self) -> dict[str, str]:
        """Variables holding ``http://<service>:<port>`` of another Deployment: the peers it calls."""
        return {k: v for k, v in self.env.items() if re.fullmatch(r"http://[a-z0-9-]+:\d+", v)}


def example_images(example: str, stack: str = STACK) -> list[ExampleImage]:
    """Every image ``examples/<example>`` builds in ``stack``, with the Deployment that runs it."""
    project = EXAMPLES_DIR / example
    run = run_program(project, stack)
    deployments = [o.manifest for o in manifests(run) if o.manifest["kind"] == "Deployment"]
    images = []
    for reg in run.registrations:
        if reg.type != IMAGE_TYPE:
            continue
        repository, tag = str(reg.inputs["imageName"]).rsplit(":", 1)
        ref = f"{repository}@{placeholder_digest(repository)}"
        running = [d for d in deployments if d["spec"]["template"]["spec"]["containers"][0]["image"] == ref]
        assert len(running) == 1, f"{example}: {len(running)} Deployments run {ref}, expected one"
        deployment = running[0]
        build = reg.inputs["build"]
        name = repository.rsplit("/", 1)[1]
        spec = BuildSpec(
            context=str(project / build["context"]),
            containerfile=posixpath.relpath(build["dockerfile"], build["context"]),
            target=build["target"],
            platform=build["platform"],
            repository=f"{REGISTRY}/{name}",
            tags=(tag,),
            build_args={**build["args"], "BASE_IMAGE": BASE_IMAGE},
        )
        images.append(ExampleImage(example, name, spec, deployment))
    assert images, f"{example}: the {stack} stack builds no image"
    return images
