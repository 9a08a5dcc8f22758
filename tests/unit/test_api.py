"""The public API: what ``import hardened_k8s`` exposes, the Args and what they accept."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
import typing
from typing import Any, cast, is_typeddict

import pulumi
import pytest

import hardened_k8s
from hardened_k8s import (
    ArgsError,
    ConfigError,
    HardenedService,
    HardenedServiceArgs,
    PostgreSQL,
    PostgreSQLArgs,
    SecureNamespace,
    SecureNamespaceArgs,
    SecurityProfile,
    ServiceSpec,
    StackConfig,
    service_spec_args,
)
from hardened_k8s.mock_engine import ProgramRun, RecordingMocks, RecordingMonitor, run_mocked
from hardened_k8s.network import Peer
from hardened_k8s.render import manifests
from hardened_k8s.stack_args import database_args, service_args
from hardened_k8s_rules.profiles import PROFILES

from ..conftest import mocked
from .args_docs import field_docs

REF = "quay.io/ecosystem-appeng/app@sha256:" + "a" * 64
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def objects(run: ProgramRun) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o.manifest["kind"], o.manifest["metadata"]["name"]): o.manifest for o in manifests(run)}


# --- The package root ---------------------------------------------------------------------


def test_every_public_name_resolves_and_is_listed_once() -> None:
    assert hardened_k8s.__all__ == sorted(set(hardened_k8s.__all__))
    for name in hardened_k8s.__all__:
        value = getattr(hardened_k8s, name)
        assert value.__module__.startswith("hardened_k8s."), name
    tree = ast.parse(inspect.getsource(hardened_k8s))
    checked = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    typed = {
        alias.name
        for node in ast.walk(checked[0])
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert typed == set(hardened_k8s.__all__), "the TYPE_CHECKING imports and __all__ differ"


def test_components_and_their_args_are_public() -> None:
    for component in ("SecureNamespace", "HardenedService", "PostgreSQL", "ServiceImage", "ServiceSystem"):
        cls = getattr(hardened_k8s, component)
        assert issubclass(cls, pulumi.ComponentResource), component
        args = typing.get_type_hints(cls.__init__)["args"]
        assert args is getattr(hardened_k8s, f"{component}Args"), component


def _imported_modules(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return set(out.stdout.split())


@pytest.mark.tools
def test_the_root_and_the_config_models_do_not_load_the_kubernetes_or_docker_sdk() -> None:
    loaded = _imported_modules(
        "import hardened_k8s\n"
        "hardened_k8s.StackConfig.model_validate({'namespace': 'shop', 'services': {}})\n"
        "hardened_k8s.ServiceSpec.model_validate({'image': {'ref': 'r@sha256:' + 'a' * 64}, 'port': 80})"
    )
    assert "hardened_k8s.config" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("pulumi_kubernetes", "pulumi_docker")}
    system = _imported_modules("import hardened_k8s\nhardened_k8s.ServiceSystem")
    assert "hardened_k8s.workload" in system
    # ServiceImage imports pulumi-docker when it builds: a stack of pinned images never loads it.
    assert "hardened_k8s.image" in system and "pulumi_docker" not in system


# --- Docstrings ---------------------------------------------------------------------------


PUBLIC_CLASSES = [
    getattr(hardened_k8s, name)
    for name in hardened_k8s.__all__
    if inspect.isclass(getattr(hardened_k8s, name))
]


@pytest.mark.parametrize("cls", PUBLIC_CLASSES, ids=lambda c: c.__name__)
def test_every_public_class_has_a_docstring(cls: type) -> None:
    assert cls.__doc__ and cls.__doc__.strip() and cls.__doc__ != type(cls).__doc__, cls.__name__


ARGS = [cls for cls in PUBLIC_CLASSES if is_typeddict(cls)]


@pytest.mark.parametrize("cls", ARGS, ids=lambda c: c.__name__)
def test_every_args_field_is_documented_with_its_default(cls: type) -> None:
    docs = field_docs(cls)
    assert set(docs) == set(cls.__annotations__), f"{cls.__name__}: fields read from the source differ"
    for field, doc in docs.items():
        assert doc, f"{cls.__name__}.{field} has no docstring"
        optional = field in cls.__optional_keys__  # type: ignore[attr-defined]
        says = "Default" if optional else "Required"
        assert says in doc, f"{cls.__name__}.{field}: the docstring does not say {says!r}: {doc!r}"


# --- Args alone agree with the stack file --------------------------------------------------


def test_a_service_from_args_alone_equals_the_same_service_from_a_stack_file() -> None:
    """Defaults of the Args are the stack file's: nothing but the required fields and the names."""
    config = StackConfig.model_validate(
        {"namespace": "ns", "services": {"app": {"image": {"ref": REF}, "port": 8000}}}
    )
    from_stack = mocked(
        lambda: HardenedService("app", service_args(config, "app", namespace="ns", image=REF))
    )
    from_args = mocked(
        lambda: HardenedService(
            "app", HardenedServiceArgs(namespace="ns", image=REF, port=8000, instance="ns")
        )
    )
    assert objects(from_args) == objects(from_stack)
    assert set(objects(from_args)) == {
        ("ServiceAccount", "app"), ("Deployment", "app"), ("Service", "app"), ("NetworkPolicy", "app"),
    }  # fmt: skip


def test_a_database_from_args_alone_equals_the_same_database_from_a_stack_file() -> None:
    config = StackConfig.model_validate({"namespace": "ns", "services": {}, "database": {"image": REF}})
    password = pulumi.Output.secret("pw")
    from_stack = mocked(
        lambda: PostgreSQL("db", database_args(config, namespace="ns", image=REF, password=password))
    )
    from_args = mocked(
        lambda: PostgreSQL("db", PostgreSQLArgs(namespace="ns", image=REF, password=password, instance="ns"))
    )
    assert objects(from_args) == objects(from_stack)
    assert ("StatefulSet", "postgresql") in objects(from_args)


def test_a_service_spec_of_a_program_s_own_config_needs_its_peers_and_its_token() -> None:
    spec = ServiceSpec.model_validate(
        {"image": {"ref": REF}, "port": 3000, "egressTo": ["intelligence"], "bearerAuth": True}
    )
    with pytest.raises(ConfigError) as caught:
        service_spec_args(spec, name="api", namespace="ns", image=REF, instance="ns", part_of="pair")
    assert caught.value.problems == [
        ("api.egressTo", "'intelligence' is not a known peer (known: none)"),
        ("api.bearerAuth", "is set, but no auth_token was given; pass the bearer token"),
    ]
    peer = Peer("intelligence", {"app.kubernetes.io/name": "intelligence"}, 8000)
    args = service_spec_args(
        spec, name="api", namespace="ns", image=REF, instance="ns", part_of="pair",
        peers={"intelligence": peer}, auth_token="token",
    )  # fmt: skip
    assert args["env"] == {"INTELLIGENCE_URL": "http://intelligence:8000"}
    assert args["egress_to"] == [{"selector": {"app.kubernetes.io/name": "intelligence"}, "port": 8000}]
    assert args["auth_token"] == "token"


# --- Inputs -------------------------------------------------------------------------------


def test_outputs_are_accepted_where_the_args_take_inputs() -> None:
    def program() -> None:
        namespace = SecureNamespace("ns", SecureNamespaceArgs(namespace="team-a"))
        HardenedService(
            "api",
            HardenedServiceArgs(
                namespace=namespace.namespace_name,
                image=pulumi.Output.from_input(REF),
                port=8000,
                env={"GREETING": pulumi.Output.from_input("hello")},
                resources={"limits": {"memory": pulumi.Output.from_input("512Mi")}},
                probes={"readiness_path": pulumi.Output.from_input("/ready/deep")},
                autoscaling={"cpu_utilization": pulumi.Output.from_input(55)},
            ),
        )

    run = mocked(program)
    deployment = objects(run)[("Deployment", "api")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["metadata"]["namespace"] == "team-a"
    assert container["image"] == REF
    assert {"name": "GREETING", "value": "hello"} in container["env"]
    assert container["resources"]["limits"] == {
        "cpu": "500m",
        "ephemeral-storage": "256Mi",
        "memory": "512Mi",
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready/deep"
    hpa = objects(run)[("HorizontalPodAutoscaler", "api")]
    targets = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["spec"]["metrics"]}
    assert {name: t["averageUtilization"] for name, t in targets.items()} == {"cpu": 55, "memory": 80}


def test_numbers_sent_as_doubles_by_the_component_package_stay_integers() -> None:
    """The package hands ``port: 8080`` of a YAML program over as ``8080.0``."""
    given = {"namespace": "ns", "image": REF, "port": 8080.0, "probes": {"startup_allowance_seconds": 60.0}}
    run = mocked(lambda: HardenedService("api", cast(HardenedServiceArgs, given)))
    container = objects(run)[("Deployment", "api")]["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "PORT", "value": "8080"} in container["env"]
    assert container["startupProbe"]["failureThreshold"] == 12


def test_a_secret_input_stays_secret() -> None:
    run = mocked(
        lambda: HardenedService(
            "api",
            HardenedServiceArgs(
                namespace="ns", image=REF, port=8000, env={"HINT": pulumi.Output.secret("s3")}
            ),
        )
    )
    (reg,) = [r for r in run.registrations if r.type == "kubernetes:apps/v1:Deployment"]
    assert SECRET_SIG in repr(reg.inputs["spec"]), "a secret env value lost its secrecy"
    assert "s3" not in repr(objects(run)[("Deployment", "api")])


def test_an_output_is_not_checked_before_it_resolves() -> None:
    """A limit below its request passes when it is an Output; the API server judges it later."""
    run = mocked(
        lambda: HardenedService(
            "api",
            HardenedServiceArgs(
                namespace="ns",
                image=REF,
                port=8000,
                resources={"limits": {"cpu": pulumi.Output.from_input("10m")}},
            ),
        )
    )
    container = objects(run)[("Deployment", "api")]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["cpu"] == "10m"


# --- Errors -------------------------------------------------------------------------------


def _args_error(build: typing.Callable[[], object]) -> tuple[ArgsError, RecordingMonitor]:
    monitor = RecordingMonitor(RecordingMocks())
    with pytest.raises(ArgsError) as caught:
        run_mocked(build, monitor=monitor)
    return caught.value, monitor


def test_bad_service_args_are_all_reported_before_anything_is_registered() -> None:
    error, monitor = _args_error(
        lambda: HardenedService(
            "api",
            HardenedServiceArgs(
                namespace="ns",
                image=REF,
                port=70000,
                app_name="Api_1",
                replicas=2,
                autoscaling={"min_replicas": 5, "max_replicas": 3},
                run_as_user=1000,
                writable_paths=["tmp"],
                resources={"requests": {"memory": "1Gi"}},
                env={"PORT": "1", "bad-name": "x"},
            ),
        )
    )
    text = str(error)
    owner = "HardenedService 'api' args"
    for path, words in [
        ("port", "less than or equal to 65535"),
        ("app_name", "not a DNS-1035 label"),
        ("replicas", "either replicas or autoscaling"),
        ("autoscaling", "minReplicas (5) is greater than maxReplicas (3)"),
        ("run_as_user", "greater than or equal to 10000"),
        ("writable_paths", "must be an absolute path"),
        ("resources", "limits.memory (256Mi) is below requests.memory (1Gi)"),
        ("env.PORT", "is set by the component from port"),
        ("env.bad-name", "not an environment variable name"),
    ]:
        assert any(p.startswith(f"{owner}.{path}") and words in m for p, m in error.problems), (path, text)
    assert not any(r.type.startswith("kubernetes:") for r in monitor.registrations), "objects were registered"


def test_bad_database_and_namespace_args_name_the_field() -> None:
    error, _ = _args_error(
        lambda: PostgreSQL(
            "db",
            PostgreSQLArgs(
                namespace="kube-system", image=REF, password="pw", app_name="d" * 53, run_as_user=999
            ),
        )
    )
    paths = [path for path, _ in error.problems]
    assert paths == [
        "PostgreSQL 'db' args.namespace",
        "PostgreSQL 'db' args.app_name",
        "PostgreSQL 'db' args.run_as_user",
    ], error.problems
    error, _ = _args_error(
        lambda: SecureNamespace("ns", SecureNamespaceArgs(namespace="ns", kubernetes_version="1.9"))
    )
    assert [path for path, _ in error.problems] == ["SecureNamespace 'ns' args.kubernetes_version"]


# --- Security profile ---------------------------------------------------------------------


def test_the_security_profile_enum_holds_the_profiles_of_the_stack_file() -> None:
    assert [profile.value for profile in SecurityProfile] == list(PROFILES)


def test_the_openshift_profile_in_args_leaves_the_ids_to_the_platform() -> None:
    openshift = SecurityProfile.OPENSHIFT_RESTRICTED_V2

    def program() -> None:
        SecureNamespace("ns", SecureNamespaceArgs(namespace="ns", security_profile=openshift))
        HardenedService(
            "api", HardenedServiceArgs(namespace="ns", image=REF, port=8000, security_profile=openshift)
        )
        PostgreSQL("db", PostgreSQLArgs(namespace="ns", image=REF, password="pw", security_profile=openshift))

    rendered = objects(mocked(program))
    for workload in (("Deployment", "api"), ("StatefulSet", "postgresql")):
        pod = rendered[workload]["spec"]["template"]["spec"]
        assert not {"runAsUser", "runAsGroup", "fsGroup"} & set(pod["securityContext"]), workload
        assert pod["securityContext"]["runAsNonRoot"] is True, workload
        assert "runAsUser" not in pod["containers"][0]["securityContext"], workload
    labels = rendered[("Namespace", "ns")]["metadata"]["labels"]
    assert labels["security.openshift.io/scc.podSecurityLabelSync"] == "false"
    (egress,) = rendered[("NetworkPolicy", "allow-dns")]["spec"]["egress"]
    assert egress["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "openshift-dns"
    }
    error, _ = _args_error(
        lambda: SecureNamespace(
            "ns", cast(SecureNamespaceArgs, {"namespace": "ns", "security_profile": "openshift"})
        )
    )
    assert [path for path, _ in error.problems] == ["SecureNamespace 'ns' args.security_profile"]


# --- Type tokens --------------------------------------------------------------------------


class AliasRecorder(RecordingMonitor):
    """The mock monitor, also keeping the alias specs each component registers with."""

    def __init__(self) -> None:
        super().__init__(RecordingMocks())
        self.aliases: dict[str, list[str]] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        if request.type.startswith("hardened-k8s:"):
            self.aliases[request.type] = [alias.spec.type for alias in request.aliases]
        return super().RegisterResource(request)


def test_components_keep_the_urns_of_their_former_type_tokens() -> None:
    """A stack deployed before 0.2.0 holds ``hardened-k8s:workload:HardenedService`` ...; the
    alias of that token is what keeps its objects (children included) from being replaced."""
    recorder = AliasRecorder()

    def program() -> None:
        SecureNamespace("ns", SecureNamespaceArgs(namespace="team-a"))
        HardenedService("api", HardenedServiceArgs(namespace="team-a", image=REF, port=8000))
        PostgreSQL("db", PostgreSQLArgs(namespace="team-a", image=REF, password="pw"))

    run_mocked(program, monitor=recorder)
    assert recorder.aliases == {
        "hardened-k8s:index:SecureNamespace": ["hardened-k8s:namespace:SecureNamespace"],
        "hardened-k8s:index:HardenedService": ["hardened-k8s:workload:HardenedService"],
        "hardened-k8s:index:PostgreSQL": ["hardened-k8s:database:PostgreSQL"],
    }
