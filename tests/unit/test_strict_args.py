"""Every Args ``TypedDict`` is strict at runtime: an unknown field, at any depth, stops the
component with an ``ArgsError`` naming the field and the closest declared name, before
anything is registered."""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

import pytest

import hardened_k8s
from hardened_k8s import (
    ArgsError,
    HardenedService,
    PostgreSQL,
    SecureNamespace,
    ServiceImage,
    ServiceSystem,
)
from hardened_k8s.mock_engine import RecordingMocks, RecordingMonitor, run_mocked
from hardened_k8s.strict_args import snake_case, unknown_fields
from hardened_k8s.validation import parse_stack_config

from ..conftest import ROOT, stack_file_config

REF = "quay.io/ecosystem-appeng/app@sha256:" + "a" * 64
PEER = {"selector": {"app.kubernetes.io/name": "web"}, "port": 8080}
SERVICE = {"namespace": "ns", "image": REF, "port": 8080}
DATABASE = {"namespace": "ns", "image": REF, "password": "pw"}
IMAGE = {"context": "services/store-api", "repository": "quay.io/org/api", "tags": ["sha-0000000"]}


def service(**extra: Any) -> Callable[[], object]:
    return lambda: HardenedService("api", {**SERVICE, **extra})  # type: ignore[typeddict-item]


def database(**extra: Any) -> Callable[[], object]:
    return lambda: PostgreSQL("db", {**DATABASE, **extra})  # type: ignore[typeddict-item]


def system(**extra: Any) -> Callable[[], object]:
    config = parse_stack_config(stack_file_config("dev"), root=ROOT)
    return lambda: ServiceSystem("app", {"config": config, "revision": "0" * 40, **extra})  # type: ignore[typeddict-item]


# (Args type exercised, component, the bad field's path, what the message must say)
CASES: list[tuple[str, Callable[[], object], str, str]] = [
    ("HardenedServiceArgs", service(replica=2), "replica", 'did you mean "replicas"?'),
    ("HardenedServiceArgs", service(runAsUser=10001), "runAsUser", 'snake_case: write "run_as_user"'),
    (
        "ResourcesArgs",
        service(resources={"limit": {"cpu": "1"}}),
        "resources.limit",
        'did you mean "limits"?',
    ),
    (
        "ResourceAmountsArgs",
        service(resources={"limits": {"ephemeralStorage": "1Gi"}}),
        "resources.limits.ephemeralStorage",
        'write "ephemeral_storage"',
    ),
    ("ProbesArgs", service(probes={"readinessPath": "/r"}), "probes.readinessPath", 'write "readiness_path"'),
    (
        "AutoscalingArgs",
        service(autoscaling={"min_replicas": 2, "max_replica": 4}),
        "autoscaling.max_replica",
        'did you mean "max_replicas"?',
    ),
    (
        "PeerArgs",
        service(ingress_from=[{**PEER, "ports": 1}]),
        "ingress_from[0].ports",
        'did you mean "port"?',
    ),
    (
        "SecretFileArgs",
        service(secret_files={"TOKEN": {"secretName": "s", "key": "TOKEN"}}),
        "secret_files.TOKEN.secretName",
        'write "secret_name"',
    ),
    (
        "ExposeArgs",
        service(expose={"host": "a.example.com", "tls_secret_name": "t", "ingressClass": "nginx"}),
        "expose.ingressClass",
        'did you mean "ingress_class_name"?',
    ),
    (
        "SecurityOptOutsArgs",
        service(opt_outs={"writableRootFilesystem": True}),
        "opt_outs.writableRootFilesystem",
        'write "writable_root_filesystem"',
    ),
    (
        "SecureNamespaceArgs",
        lambda: SecureNamespace("ns", {"namespace": "ns", "kubernetesVersion": "1.31"}),  # type: ignore[typeddict-unknown-key]
        "kubernetesVersion",
        'write "kubernetes_version"',
    ),
    ("PostgreSQLArgs", database(storageClassName="fast"), "storageClassName", 'write "storage_class_name"'),
    ("PeerArgs", database(clients=[{"selector": {}, "prt": 1}]), "clients[0].prt", 'did you mean "port"?'),
    ("ResourcesArgs", database(resources={"request": {}}), "resources.request", 'did you mean "requests"?'),
    (
        "ServiceImageArgs",
        lambda: ServiceImage("img", {**IMAGE, "buildArgs": {}}),  # type: ignore[typeddict-item]
        "buildArgs",
        'write "build_args"',
    ),
    ("ServiceSystemArgs", system(secret=None), "secret", 'did you mean "secrets"?'),
]


@pytest.mark.parametrize(
    ("args_type", "build", "path", "words"), CASES, ids=[f"{c[0]}:{c[2]}" for c in CASES]
)
def test_unknown_field_is_refused_with_the_closest_name(
    args_type: str, build: Callable[[], object], path: str, words: str
) -> None:
    monitor = RecordingMonitor(RecordingMocks())
    with pytest.raises(ArgsError) as caught:
        run_mocked(build, monitor=monitor)
    found = [message for where, message in caught.value.problems if where.endswith(f" args.{path}")]
    assert found, caught.value.problems
    assert words in found[0], found[0]
    assert not any(r.type.startswith(("kubernetes:", "docker:")) for r in monitor.registrations)


def test_every_args_type_of_the_api_is_tested() -> None:
    public = {name for name in hardened_k8s.__all__ if typing.is_typeddict(getattr(hardened_k8s, name))}
    assert public == {case[0] for case in CASES}


def test_known_fields_pass_and_outputs_are_left_alone() -> None:
    from hardened_k8s.workload import HardenedServiceArgs

    given = {
        **SERVICE,
        "resources": {"limits": {"cpu": "1"}},
        "ingress_from": [PEER],
        "expose": {"host": "a.io", "tls_secret_name": "t"},
        "env": {"anyName": "x"},
    }
    assert unknown_fields(HardenedServiceArgs, given) == []


def test_snake_case() -> None:
    assert snake_case("minReplicas") == "min_replicas"
    assert snake_case("scaleDownStabilizationSeconds") == "scale_down_stabilization_seconds"
    assert snake_case("port") == "port"


def test_args_formats_are_checked_like_the_stack_file() -> None:
    monitor = RecordingMonitor(RecordingMocks())
    bad_secret = {"TOKEN": {"secret_name": "Token_Secret", "key": "TOKEN"}}
    with pytest.raises(ArgsError) as caught:
        run_mocked(
            service(image="quay.io/Org/App", secret_files=bad_secret, probes={"readiness_path": "/r x"}),
            monitor=monitor,
        )
    problems = dict(caught.value.problems)
    owner = "HardenedService 'api' args"
    assert "must be lower-case" in problems[f"{owner}.image"]
    assert "DNS-1123 subdomain" in problems[f"{owner}.secret_files.TOKEN.secret_name"]
    assert "contains a space" in problems[f"{owner}.probes.readiness_path"]
    with pytest.raises(ArgsError) as caught:
        run_mocked(database(user="App-User", storage="0", storage_class_name="SSD"))
    problems = dict(caught.value.problems)
    owner = "PostgreSQL 'db' args"
    assert "not a PostgreSQL name" in problems[f"{owner}.user"]
    assert "is zero" in problems[f"{owner}.storage"]
    assert "DNS-1123 subdomain" in problems[f"{owner}.storage_class_name"]
    with pytest.raises(ArgsError) as caught:
        run_mocked(lambda: ServiceImage("img", {**IMAGE, "platform": "linux/x86_64", "tags": ["-x"]}))  # type: ignore[typeddict-item]
    problems = dict(caught.value.problems)
    assert '"linux/amd64"' in problems["ServiceImage 'img' args.platform"]
    assert "not an image tag" in problems["ServiceImage 'img' args.tags[0]"]
