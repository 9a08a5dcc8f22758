"""What the library guarantees on its own, checked so that removing the guarantee fails a test.

* Secrets: the inputs here are plain ``Output``s, so the SDK's marking of secret config cannot
  hide a missing ``Output.secret`` in the library. The image component's marking of the
  registry token is the only one (removing it fails the test); for PostgreSQL, the Kubernetes
  provider's Secret type marks ``stringData`` itself, so that test checks the outcome.
* Digests: workloads run the digest the registry reported for *their* image, or the pin the
  stack file gives; each image here has its own digest, so a test cannot pass on one
  placeholder shared by every image.
* Names and injected variables: the config checks' model of what the components declare
  (:func:`~hardened_k8s.validation.object_names`, :func:`~hardened_k8s.validation.injected_env`)
  agrees with what the program renders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from hardened_k8s import PostgreSQL, PostgreSQLArgs, ServiceImage, StackConfig, build_spec, service_image_args
from hardened_k8s.mock_engine import ProgramRun, placeholder_digest
from hardened_k8s.stack_config import SECRET_KEYS
from hardened_k8s.validation import injected_env, object_names

from ..conftest import PINNED, STACKS, Rendered, mocked, stack_file_config

SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def test_postgres_marks_a_plain_password_secret() -> None:
    args = PostgreSQLArgs(
        namespace="ns",
        image=PINNED,
        password=pulumi.Output.from_input("plain-pw"),
        app_name="db",
        database="shop",
        user="shop",
    )
    run = mocked(lambda: PostgreSQL("pg", args))
    secrets = {r.name: r for r in run.registrations if r.type == "kubernetes:core/v1:Secret"}
    assert set(secrets) == {"pg-credentials", "pg-url"}
    for name, reg in secrets.items():
        data = reg.inputs["stringData"]
        leaked = [k for k, v in data.items() if isinstance(v, str) and "plain-pw" in v]
        assert leaked == [], f"{name}: {leaked} hold the password as a plain input"
        assert SECRET_SIG in repr(data), f"{name}: no secret value in {data}"


def test_image_marks_a_plain_registry_password_secret() -> None:
    spec = build_spec(
        "app", context="services/store-api", registry="quay.io/ecosystem-appeng", version="1.0.0",
        revision="0123456789abcdef0123456789abcdef01234567",
    )  # fmt: skip
    args = service_image_args(
        spec, registry_username="robot", registry_password=pulumi.Output.from_input("plain-token")
    )
    run = mocked(lambda: ServiceImage("img", args))
    for reg in run.registrations:
        for key in ("registry", "authConfig"):
            value = reg.inputs.get(key)
            if value is None:
                continue
            assert SECRET_SIG in repr(value), f"{reg.name}.{key}: the token is not a secret: {value}"
            assert "plain-token" not in repr({k: v for k, v in value.items() if k != "value"}), reg.name


def _stack_model(stack: str) -> StackConfig:
    config = {k: v for k, v in stack_file_config(stack).items() if k not in SECRET_KEYS}
    return StackConfig.model_validate(config)


def _containers(stack: Rendered) -> dict[str, dict[str, Any]]:
    return {
        w["metadata"]["name"]: w["spec"]["template"]["spec"]["containers"][0] for w in stack.pod_workloads()
    }


@pytest.mark.parametrize("stack_name", STACKS)
def test_built_images_run_their_own_reported_digest(
    stack_name: str, rendered: Callable[[str], Rendered]
) -> None:
    stack = rendered(stack_name)
    images = [r for r in stack.run.registrations if r.type == "docker:index/image:Image"]
    assert images, f"{stack_name}: builds no image"
    running = {c["image"] for c in _containers(stack).values()}
    for image in images:
        repository = str(image.inputs["imageName"]).rsplit(":", 1)[0]
        assert f"{repository}@{placeholder_digest(repository)}" in running, repository
    assert len({placeholder_digest(str(r.inputs["imageName"]).rsplit(":", 1)[0]) for r in images}) == len(
        images
    )


def test_a_pinned_image_runs_exactly_its_pin(deployed_dev: ProgramRun) -> None:
    containers = _containers(Rendered(deployed_dev))
    assert containers["mcp-store-inventory"]["image"] == PINNED
    assert not any(r.name.endswith("mcp-store-inventory-image-image") for r in deployed_dev.registrations)
    # The other images still build, each running the digest its push reported.
    built = [r for r in deployed_dev.registrations if r.type == "docker:index/image:Image"]
    assert len(built) == 2 and all(
        c["image"] != PINNED for s, c in containers.items() if s != "mcp-store-inventory"
    )


@pytest.mark.parametrize("stack_name", STACKS)
def test_declared_object_names_are_rendered(stack_name: str, rendered: Callable[[str], Rendered]) -> None:
    stack = rendered(stack_name)
    have = {(o.manifest["kind"], o.manifest["metadata"]["name"]) for o in stack.objects}
    declared = {(kind, name) for kind, name, _ in object_names(_stack_model(stack_name))}
    assert declared - have == set(), f"{stack_name}: the config checks expect objects that are not rendered"
    assert have - declared == set(), f"{stack_name}: rendered objects the name-collision checks do not know"


@pytest.mark.parametrize("stack_name", STACKS)
def test_injected_env_is_injected(stack_name: str, rendered: Callable[[str], Rendered]) -> None:
    config = _stack_model(stack_name)
    containers = _containers(rendered(stack_name))
    for service in config.services:
        names = {e["name"] for e in containers[service].get("env", [])}
        expected = set(injected_env(config, service))
        assert expected <= names, f"{service}: {expected - names} declared injected but not set"
        unknown = names - expected - set(config.services[service].env)
        assert unknown == set(), f"{service}: injects {unknown}, which an env entry could shadow unnoticed"
