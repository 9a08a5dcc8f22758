"""Each component built on its own, inside the test, on the mock engine."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

import pulumi
import pytest

from hardened_k8s import (
    HardenedService,
    HardenedServiceArgs,
    PostgreSQL,
    PostgreSQLArgs,
    SecureNamespace,
    SecureNamespaceArgs,
    ServiceImage,
    SslMode,
    build_spec,
    service_image_args,
)
from hardened_k8s.mock_engine import ProgramRun, Registration
from hardened_k8s.quantities import parse_quantity
from hardened_k8s.render import manifests

from ..conftest import mocked

REF = "quay.io/ecosystem-appeng/app@sha256:" + "a" * 64
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


_RUNS: dict[str, ProgramRun] = {}


def _once(kind: str, args: dict[str, Any], program: Callable[[], object]) -> ProgramRun:
    """Run ``program`` once per module for the same component and Args (tests only read runs)."""
    key = f"{kind}:{args!r}"
    if key not in _RUNS:
        _RUNS[key] = mocked(program)
    return _RUNS[key]


def service(**args: Any) -> ProgramRun:
    """A HardenedService named ``app`` from Args: namespace, image and port, then ``args``."""
    given = cast(HardenedServiceArgs, {"namespace": "ns", "image": REF, "port": 8000, **args})
    return _once("service", args, lambda: HardenedService("app", given))


def objects(run: ProgramRun, kind: str) -> list[dict[str, Any]]:
    return [o.manifest for o in manifests(run) if o.manifest["kind"] == kind]


def one(run: ProgramRun, type_: str) -> Registration:
    (reg,) = [r for r in run.registrations if r.type == type_]
    return reg


def test_fixed_replicas_set_on_deployment_without_hpa() -> None:
    run = service(replicas=3)
    (deployment,) = objects(run, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert objects(run, "HorizontalPodAutoscaler") == []
    (pdb,) = objects(run, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1


def test_single_replica_has_no_pdb() -> None:
    run = service(replicas=1)
    assert objects(run, "PodDisruptionBudget") == []
    assert objects(run, "Deployment")[0]["spec"]["replicas"] == 1


def test_autoscaling_drops_replicas_and_targets_the_deployment() -> None:
    run = service(autoscaling={"min_replicas": 2, "max_replicas": 4, "cpu_utilization": 60})
    (deployment,) = objects(run, "Deployment")
    assert "replicas" not in deployment["spec"]
    (hpa,) = objects(run, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"] == "app"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    cpu = next(m for m in hpa["spec"]["metrics"] if m["resource"]["name"] == "cpu")
    assert cpu["resource"]["target"]["averageUtilization"] == 60


def test_defaults_are_hardened_and_opt_outs_are_explicit() -> None:
    default = objects(service(), "Deployment")[0]["spec"]["template"]["spec"]
    assert default["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert default["automountServiceAccountToken"] is False
    opted = service(opt_outs={"writable_root_filesystem": True, "service_account_token": True})
    pod = objects(opted, "Deployment")[0]["spec"]["template"]["spec"]
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is False
    assert pod["automountServiceAccountToken"] is True
    assert objects(opted, "ServiceAccount")[0]["automountServiceAccountToken"] is True


def test_writable_paths_become_memory_emptydirs() -> None:
    pod = objects(service(writable_paths=["/tmp", "/var/cache/app"]), "Deployment")[0]["spec"]["template"][
        "spec"
    ]
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts == {"/tmp": "tmp", "/var/cache/app": "var-cache-app"}
    assert {v["name"] for v in pod["volumes"]} == {"tmp", "var-cache-app"}


def test_pre_stop_falls_back_to_exec_before_kubernetes_1_30() -> None:
    pod = objects(service(kubernetes_version="1.29"), "Deployment")[0]["spec"]["template"]["spec"]
    assert pod["containers"][0]["lifecycle"]["preStop"] == {"exec": {"command": ["sleep", "5"]}}


def test_no_peers_means_no_ingress_or_egress_rules() -> None:
    (policy,) = objects(service(), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert not policy["spec"].get("ingress") and not policy["spec"].get("egress")


def test_children_are_named_after_and_parented_to_the_component() -> None:
    run = service(replicas=2)
    (component,) = [r for r in run.registrations if r.type == "hardened-k8s:index:HardenedService"]
    children = [r for r in run.registrations if r is not component]
    assert {r.type.split(":")[-1] for r in children} == {
        "ServiceAccount", "Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget",
    }  # fmt: skip
    for reg in children:
        assert reg.parent == component.urn and reg.name.startswith("app-"), reg.urn
    assert set(run.component_outputs[component.urn]) == {"serviceName", "dnsName", "image", "selector"}


def test_namespace_pins_the_given_version() -> None:
    run = mocked(
        lambda: SecureNamespace("ns", SecureNamespaceArgs(namespace="team-a", kubernetes_version="1.33"))
    )
    (namespace,) = objects(run, "Namespace")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.33"
    assert sorted(p["metadata"]["name"] for p in objects(run, "NetworkPolicy")) == [
        "allow-dns",
        "default-deny",
    ]


def postgres(**args: Any) -> ProgramRun:
    """A PostgreSQL named ``pg`` serving ``db``, database and owner ``shop``, then ``args``."""
    return _once(
        "postgres",
        args,
        lambda: PostgreSQL(
            "pg",
            cast(
                PostgreSQLArgs,
                {
                    "namespace": "ns",
                    "image": REF,
                    "password": pulumi.Output.secret("x"),
                    "app_name": "db",
                    "database": "shop",
                    "user": "shop",
                    **args,
                },
            ),
        ),
    )


@pytest.mark.parametrize("protect", [True, False])
def test_postgres_protection_follows_the_spec(protect: bool) -> None:
    run = postgres(protect=protect)
    for reg in run.registrations:
        if reg.type in ("kubernetes:apps/v1:StatefulSet",) or reg.name == "pg-credentials":
            assert (reg.protect, reg.retain_on_delete) == (protect, protect), reg.name
        elif reg.type.startswith("kubernetes:"):
            assert not reg.protect, reg.name


def test_postgres_without_clients_admits_nobody() -> None:
    (policy,) = objects(postgres(protect=False), "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert not policy["spec"].get("ingress")


def test_postgres_url_uses_service_name_and_is_secret() -> None:
    run = postgres(protect=False)
    url = next(r for r in run.registrations if r.name == "pg-url")
    assert SECRET_SIG in repr(url.inputs["stringData"])
    assert "postgresql://shop:x@db:5432/shop" in repr(url.inputs["stringData"])


@pytest.mark.parametrize(
    ("args", "suffix"),
    [
        ({}, "/shop'"),
        ({"sslmode": SslMode.PREFER}, "/shop?sslmode=prefer'"),
        (
            {"sslmode": SslMode.VERIFY_FULL, "tls_secret_name": "db-tls"},
            "/shop?sslmode=verify-full&sslrootcert=/etc/secrets/database-ca/ca.crt'",
        ),
    ],
)
def test_postgres_url_carries_the_configured_sslmode(args: dict[str, Any], suffix: str) -> None:
    run = postgres(**args)
    url = next(r for r in run.registrations if r.name == "pg-url")
    assert f"postgresql://shop:x@db:5432{suffix}" in repr(url.inputs["stringData"]), url.inputs


def test_image_component_builds_exactly_the_build_spec() -> None:
    spec = build_spec(
        "store-api",
        context="services/store-api",
        registry="quay.io/ecosystem-appeng",
        version="1.2.3",
        revision="0123456789abcdef0123456789abcdef01234567",
        build_args={"EXTRA": "1"},
    )
    run = mocked(
        lambda: ServiceImage(
            "img",
            service_image_args(
                spec, registry_username="robot", registry_password=pulumi.Output.secret("token")
            ),
        )
    )
    image = one(run, "docker:index/image:Image")
    build = image.inputs["build"]
    assert image.inputs["imageName"] == (
        "quay.io/ecosystem-appeng/store-api:sha-0123456789abcdef0123456789abcdef01234567"
    )
    assert build["context"] == spec.context
    assert build["dockerfile"] == "services/store-api/Containerfile"
    assert (build["target"], build["platform"]) == ("runtime", "linux/amd64")
    assert build["args"] == dict(spec.build_args)
    assert build["args"]["VERSION"] == "1.2.3" and build["args"]["EXTRA"] == "1"
    # No cache from a moving tag: only CI's publish adds a cache, by digest, after checking it.
    assert "cacheFrom" not in build, build
    assert image.inputs["buildOnPreview"] is False
    registry = image.inputs["registry"]
    # A map holding a secret travels as one secret value: server, user and password inside.
    assert registry["value"] == {"server": "quay.io", "username": "robot", "password": "token"}
    assert SECRET_SIG in registry.values()
    tag = one(run, "docker:index/tag:Tag")
    assert tag.inputs["targetImage"] == "quay.io/ecosystem-appeng/store-api:1.2.3"
    push = one(run, "docker:index/registryImage:RegistryImage")
    assert push.inputs["name"] == "quay.io/ecosystem-appeng/store-api:1.2.3"
    # A new digest replaces the push; the old manifest (also the old sha-<rev> image) must stay.
    assert push.inputs["keepRemotely"] is True, push.inputs
    assert "digest" in push.inputs["triggers"]
    assert "keepRemotely" not in image.inputs  # docker.Image never deletes from the registry
    assert SECRET_SIG in repr(push.inputs["authConfig"])


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("0.25", Decimal("0.25")),
        ("256Mi", Decimal(268435456)),
        ("1Gi", Decimal(1073741824)),
        ("1G", Decimal(1000000000)),
        ("1e3", Decimal(1000)),
        ("100k", Decimal(100000)),
    ],
)
def test_quantities_parse_to_their_amounts(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["512mb", "1GB", "-1", "abc", "", "1.2.3", "Mi"])
def test_invalid_quantities_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a Kubernetes quantity|is negative"):
        parse_quantity(text)
