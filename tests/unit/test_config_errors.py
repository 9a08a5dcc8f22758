"""Bad stack config stops the real program before any resource is registered.

Each case edits one value of the dev stack file, runs ``__main__.py`` on the mock engine and
expects one error naming the key path and the fix, with nothing registered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from hardened_k8s.config import ConfigError, StackConfig
from hardened_k8s.mock_engine import RecordingMocks, RecordingMonitor, run_mocked, run_program
from hardened_k8s.stack_config import SECRET_KEYS, load_stack_config

from ..conftest import PROJECT, ROOT, engine_config, run_stack, stack_file_config

API = "services.store-inventory"
MCP = "services.mcp-store-inventory"

Edit = Callable[[dict[str, Any]], object]


def api(cfg: dict[str, Any]) -> dict[str, Any]:
    return cfg["services"]["store-inventory"]  # type: ignore[no-any-return]


def set_path(*path: str, value: Any) -> Edit:
    def edit(cfg: dict[str, Any]) -> None:
        node = cfg
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def rename_service(old: str, new: str) -> Edit:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["services"][new] = cfg["services"].pop(old)

    return edit


def drop(key: str) -> Edit:
    def edit(cfg: dict[str, Any]) -> None:
        del cfg[key]

    return edit


S = "services"
SI = "store-inventory"
DB = "store-inventory-postgresql"
REF = "quay.io/ecosystem-appeng/other@sha256:" + hashlib.sha256(b"other").hexdigest()
CASES: list[tuple[str, Edit, str, str]] = [
    ("misspelt top-level key", lambda c: c.update(registy="quay.io/x"), "registy", 'did you mean "registry"'),
    (
        "misspelt service key",
        lambda c: api(c).update(egresTo=["store-inventory-postgresql"]),
        f"{API}.egresTo",
        'did you mean "egressTo"',
    ),
    (
        "min above max",
        set_path(S, SI, "autoscaling", "minReplicas", value=5),
        f"{API}.autoscaling",
        "minReplicas (5) is greater than maxReplicas (2)",
    ),
    (
        "replicas below one",
        lambda c: (api(c).pop("autoscaling"), api(c).update(replicas=0)),
        f"{API}.replicas",
        "greater than or equal to 1",
    ),
    (
        "replicas and autoscaling together",
        lambda c: api(c).update(replicas=2),
        API,
        "either replicas or autoscaling",
    ),
    (
        "quantity with a wrong unit",
        set_path(S, SI, "resources", "requests", "memory", value="512mb"),
        f"{API}.resources.requests.memory",
        '"512mb" is not a Kubernetes quantity; write "512Mi" or "512M"',
    ),
    (
        "negative quantity",
        set_path(S, SI, "resources", "limits", "cpu", value="-1"),
        f"{API}.resources.limits.cpu",
        '"-1" is negative',
    ),
    (
        "quantity that is not a number",
        set_path(S, SI, "resources", "requests", "ephemeralStorage", value="abc"),
        f"{API}.resources.requests.ephemeralStorage",
        '"abc" is not a Kubernetes quantity',
    ),
    (
        "limit below request",
        set_path(S, SI, "resources", "limits", "memory", value="64Mi"),
        f"{API}.resources",
        "limits.memory (64Mi) is below requests.memory (128Mi)",
    ),
    ("port too high", set_path(S, SI, "port", value=70000), f"{API}.port", "less than or equal to 65535"),
    ("port zero", set_path(S, SI, "port", value=0), f"{API}.port", "greater than or equal to 1"),
    (
        "probe path without slash",
        set_path(S, SI, "probes", "readinessPath", value="ready"),
        f"{API}.probes.readinessPath",
        'must start with "/", e.g. "/ready"',
    ),
    (
        "service name not a DNS-1035 label",
        rename_service("mcp-store-inventory", "MCP_server"),
        "services.MCP_server",
        "not a DNS-1035 label",
    ),
    (
        "ingressFrom names an unknown service",
        set_path(S, SI, "ingressFrom", value=["mcp-store-inventory", "web"]),
        f"{API}.ingressFrom",
        "'web' is not a service of this stack",
    ),
    (
        "egressTo names an unknown service",
        set_path(S, "mcp-store-inventory", "egressTo", value=["store-inventory", "billing"]),
        f"{MCP}.egressTo",
        "'billing' is not a service or database of this stack",
    ),
    (
        "a called service on the DNS port",
        set_path(S, SI, "port", value=53),
        f"{API}.port",
        "is 53, a DNS port, and services.mcp-store-inventory.egressTo names 'store-inventory'",
    ),
    (
        "a called service on OpenShift's DNS port, as pulumi config set writes it",
        set_path(S, SI, "port", value="5353"),
        f"{API}.port",
        "is 5353, a DNS port",
    ),
    (
        "egressTo without the matching ingressFrom",
        set_path(S, SI, "ingressFrom", value=[]),
        f"{API}.ingressFrom",
        "does not list 'mcp-store-inventory'",
    ),
    (
        "CPU utilisation above 100",
        set_path(S, SI, "autoscaling", "cpuUtilization", value=150),
        f"{API}.autoscaling.cpuUtilization",
        "less than or equal to 100",
    ),
    (
        "memory utilisation below 1",
        set_path(S, SI, "autoscaling", "memoryUtilization", value=0),
        f"{API}.autoscaling.memoryUtilization",
        "greater than or equal to 1",
    ),
    (
        "missing build context directory",
        set_path(S, SI, "image", "build", "context", value="services/no-such-dir"),
        f"{API}.image.build.context",
        "directory 'services/no-such-dir' does not exist",
    ),
    (
        "database image without a digest in production",
        lambda c: (
            c.update(production=True),
            c["database"].update(image="quay.io/ecosystem-appeng/postgres:16"),
        ),
        "database.image.ref",
        "has no digest",
    ),
    (
        "writable paths whose volume names collide",
        set_path(S, SI, "writablePaths", value=["/tmp", "/var/run", "/var-run"]),
        f"{API}.writablePaths",
        "'/var-run' and '/var/run' both give the volume name 'var-run'",
    ),
    (
        "writable path giving an invalid volume name",
        set_path(S, SI, "writablePaths", value=["/var/lib/my.app"]),
        f"{API}.writablePaths",
        "gives the volume name 'var-lib-my.app', which Kubernetes refuses",
    ),
    (
        "label value Kubernetes refuses",
        set_path(S, SI, "component", value="API Server"),
        f"{API}.component",
        "'API Server' is not a Kubernetes label value",
    ),
    (
        "version that is not an image tag",
        set_path(S, SI, "version", value="1.0.0+build.5"),
        f"{API}.version",
        "'1.0.0+build.5' is not both an image tag and a label value",
    ),
    (
        "unsupported kubernetesVersion",
        lambda c: c.update(kubernetesVersion="1.99"),
        "kubernetesVersion",
        '"1.99" is not a Kubernetes version this library supports',
    ),
    *[
        (
            f"reserved namespace {ns}",
            lambda c, ns=ns: c.update(namespace=ns),
            "namespace",
            f"{ns!r} is reserved for the cluster itself",
        )
        for ns in ("kube-system", "kube-public", "kube-node-lease", "default")
    ],
    (
        "env colliding with the injected DATABASE_URL_FILE",
        set_path(S, SI, "env", value={"DATABASE_URL_FILE": "/elsewhere"}),
        f"{API}.env.DATABASE_URL_FILE",
        "is set by the library (the file of the Secret store-inventory-postgresql-url",
    ),
    (
        "DATABASE_URL as a plain variable",
        set_path(S, SI, "env", value={"DATABASE_URL": "postgresql://elsewhere/db"}),
        f"{API}.env.DATABASE_URL",
        "is a secret the library mounts as a file",
    ),
    (
        "AUTH_TOKEN as a plain variable",
        set_path(S, "mcp-store-inventory", "env", value={"AUTH_TOKEN": "hand-written"}),
        "services.mcp-store-inventory.env.AUTH_TOKEN",
        "is a secret the library mounts as a file (the file of the Secret mcp-store-inventory-auth",
    ),
    (
        "service UID below 10000",
        set_path(S, SI, "runAsUser", value=1000),
        f"{API}.runAsUser",
        "10000",
    ),
    (
        "database UID below 10000",
        lambda c: c["database"].update(runAsUser=999),
        "database.runAsUser",
        "10000",
    ),
    *[
        (
            f"env colliding with the injected {key}",
            set_path(S, service, "env", value={key: "hand-written"}),
            f"services.{service}.env.{key}",
            f"is set by the library ({why}",
        )
        for service, key, why in (
            (SI, "PORT", "from services.store-inventory.port"),
            ("mcp-store-inventory", "PORT", "from services.mcp-store-inventory.port"),
            ("mcp-store-inventory", "STORE_INVENTORY_URL", "the URL of 'store-inventory'"),
            ("mcp-store-inventory", "AUTH_TOKEN_FILE", "the file of the Secret mcp-store-inventory-auth"),
            ("mcp-store-inventory", "ALLOWED_HOSTS", "the exposed host"),
        )
    ],
    (
        "TLS secret named like the library's auth Secret",
        set_path(S, "mcp-store-inventory", "expose", "tlsSecretName", value="mcp-store-inventory-auth"),
        f"{MCP}.expose.tlsSecretName",
        "is the Secret the library writes for services.mcp-store-inventory.bearerAuth, not a certificate",
    ),
    (
        "TLS secret named like the database credentials",
        set_path(S, "mcp-store-inventory", "expose", "tlsSecretName", value=f"{DB}-credentials"),
        f"{MCP}.expose.tlsSecretName",
        "is the Secret the library writes for database.name",
    ),
    (
        "service named like the namespace's DNS policy",
        lambda c: c["services"].update({"allow-dns": {"image": {"ref": REF}, "port": 9000, "replicas": 1}}),
        "services.allow-dns",
        "its NetworkPolicy would be named 'allow-dns', the name of the NetworkPolicy of namespace",
    ),
    (
        "service named like the database's headless Service",
        lambda c: c["services"].update(
            {f"{DB}-headless": {"image": {"ref": REF}, "port": 9000, "replicas": 1}}
        ),
        "database.name",
        f"its Service would be named '{DB}-headless', the name of the Service of services.{DB}-headless",
    ),
    (
        "database named like a service",
        set_path("database", "name", value=SI),
        "database.name",
        f"its Service would be named '{SI}', the name of the Service of services.{SI}",
    ),
    (
        "database sslmode libpq does not know",
        set_path("database", "sslmode", value="on"),
        "database.sslmode",
        'is "on"; use one of: disable, allow, prefer, require, verify-ca or verify-full',
    ),
    (
        "database name too long for a StatefulSet",
        set_path("database", "name", value="d" * 53),
        "database.name",
        "a StatefulSet name may have at most 52",
    ),
    (
        "single replica in production",
        lambda c: (c.update(production=True), set_path(S, SI, "autoscaling", "minReplicas", value=1)(c)),
        API,
        "at least 2",
    ),
    (
        "short image revision",
        lambda c: c.update(imageRevision="0123456"),
        "imageRevision",
        "git rev-parse HEAD",
    ),
]


@pytest.mark.parametrize(("edit", "path", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_config_names_key_and_registers_nothing(edit: Edit, path: str, fragment: str) -> None:
    config = stack_file_config("dev")
    edit(config)
    monitor = RecordingMonitor(RecordingMocks())
    with pytest.raises(ConfigError) as caught:
        run_stack("dev", config, monitor=monitor)
    message = str(caught.value)
    assert f"{path}: " in message, f"key path {path!r} missing from:\n{message}"
    assert fragment in message, f"{fragment!r} missing from:\n{message}"
    assert monitor.registrations == [], [r.name for r in monitor.registrations]


def run_as_engine(
    config: dict[str, Any], secrets: dict[str, str] | None = None, monitor: RecordingMonitor | None = None
) -> None:
    """Run the dev program with exactly these values and secrets, as the engine hands them over."""
    values, secret_keys = engine_config(config, secrets, assume_secrets=())
    run_program(ROOT, "dev", config=values, secret_keys=secret_keys, monitor=monitor)


def loaded(stack: str, values: dict[str, str], secret_keys: list[str]) -> StackConfig:
    """What the program's first statement, ``load_stack_config``, makes of the handed-over config.

    The rest of the program is ``ServiceSystem(config, secrets, revision)``: the same model
    declares the same objects, so comparing models compares the stacks without running them.
    """
    models: list[StackConfig] = []
    run = run_mocked(
        lambda: models.append(load_stack_config(ROOT)[0]),
        project=PROJECT, stack=stack, config=values, secret_keys=secret_keys,
    )  # fmt: skip
    assert run.registrations == []
    (model,) = models
    return model


def test_plain_text_secret_is_refused() -> None:
    config = stack_file_config("dev")
    config["databasePassword"] = "hunter2-in-plain-text"
    monitor = RecordingMonitor(RecordingMocks())
    with pytest.raises(ConfigError) as caught:
        run_as_engine(config, monitor=monitor)
    assert "databasePassword: is set in plain text" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert monitor.registrations == []


def test_missing_secret_says_how_to_set_it() -> None:
    config = stack_file_config("dev")
    config.pop("databasePassword", None)
    monitor = RecordingMonitor(RecordingMocks())
    with pytest.raises(ConfigError) as caught:
        run_as_engine(config, monitor=monitor)
    assert (
        "databasePassword: required secret is missing; run `pulumi config set --secret databasePassword"
        in str(caught.value)
    )
    assert monitor.registrations == []


def test_registry_password_without_username_is_refused() -> None:
    config = stack_file_config("dev")
    config.pop("registryUsername", None)
    secrets = {key: f"{key}-value" for key in SECRET_KEYS}
    monitor = RecordingMonitor(RecordingMocks())
    with pytest.raises(ConfigError) as caught:
        run_as_engine(config, secrets, monitor=monitor)
    assert "registryUsername: is not set, but registryPassword is" in str(caught.value)
    assert "registryPassword-value" not in str(caught.value)
    assert monitor.registrations == []
    config["registryUsername"] = "robot"
    assert loaded("dev", *engine_config(config, secrets, assume_secrets=())).registry_username == "robot"


def test_reference_problems_come_with_type_errors() -> None:
    config = stack_file_config("dev")
    set_path(S, SI, "port", value="eighty")(config)
    set_path(S, SI, "ingressFrom", value=["mcp-store-inventory", "web"])(config)
    with pytest.raises(ConfigError) as caught:
        run_stack("dev", config)
    paths = dict(caught.value.problems)
    assert f"{API}.port" in paths, caught.value
    assert "'web' is not a service of this stack" in paths.get(f"{API}.ingressFrom", ""), caught.value


def cli_strings(value: Any) -> Any:
    """Every scalar as `pulumi config set` writes it: ``true``, ``3`` and ``1.31`` are strings."""
    if isinstance(value, dict):
        return {k: cli_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [cli_strings(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if value is None else str(value)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_values_as_pulumi_config_set_writes_them_mean_the_same(stack: str) -> None:
    typed = stack_file_config(stack)
    written = cli_strings(typed)
    assert written["production"] in ("true", "false")
    assert written != typed
    assert loaded(stack, *engine_config(written)) == loaded(stack, *engine_config(typed))


def test_production_as_a_string_means_production() -> None:
    config = stack_file_config("dev")
    config["production"] = "true"
    set_path(S, SI, "autoscaling", "minReplicas", value="1")(config)
    with pytest.raises(ConfigError) as caught:
        run_stack("dev", cli_strings(config))
    assert f"{API}: runs 1 replica in production" in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    config = stack_file_config("dev")
    set_path(S, SI, "port", value=0)(config)
    set_path(S, "mcp-store-inventory", "probes", "livenessPath", value="health")(config)
    with pytest.raises(ConfigError) as caught:
        run_stack("dev", config)
    paths = [path for path, _ in caught.value.problems]
    assert f"{API}.port" in paths and f"{MCP}.probes.livenessPath" in paths, paths


def test_config_from_the_engine_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The language host may pass config as PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS."""
    values, secret_keys = engine_config(stack_file_config("dev"))
    from_the_runtime = loaded("dev", values, secret_keys)
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(values))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(secret_keys))
    assert loaded("dev", {}, []) == from_the_runtime
    assert from_the_runtime.namespace == "store-inventory-dev"
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", "[]")
    with pytest.raises(ConfigError, match="databasePassword: is set in plain text"):
        run_program(ROOT, "dev", config={}, secret_keys=[])
