"""Bad stack config stops the real program before any resource is registered.

Each case edits one value of the dev stack file, runs ``__main__.py`` on the mock engine and
expects one error naming the key path and the fix, with nothing registered.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from hardened_k8s.config import ConfigError
from hardened_k8s.mock_engine import RecordingMocks, RecordingMonitor, run_program

from ..conftest import ROOT, engine_config, run_stack, stack_file_config

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
CASES: list[tuple[str, Edit, str, str]] = [
    ("misspelt top-level key", lambda c: c.update(registy="quay.io/x"), "registy", "did you mean 'registry'"),
    (
        "misspelt service key",
        lambda c: api(c).update(egresTo=["store-inventory-postgresql"]),
        f"{API}.egresTo",
        "did you mean 'egressTo'",
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
        "'512mb' is not a Kubernetes quantity",
    ),
    (
        "negative quantity",
        set_path(S, SI, "resources", "limits", "cpu", value="-1"),
        f"{API}.resources.limits.cpu",
        "'-1' is not a Kubernetes quantity",
    ),
    (
        "quantity that is not a number",
        set_path(S, SI, "resources", "requests", "ephemeralStorage", value="abc"),
        f"{API}.resources.requests.ephemeralStorage",
        "'abc' is not a Kubernetes quantity",
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
        "must start with '/'",
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
        "missing required secret",
        drop("databasePassword"),
        "databasePassword",
        "pulumi config set --secret databasePassword",
    ),
    (
        "database image without a digest in production",
        lambda c: (
            c.update(production=True),
            c["database"].update(image="quay.io/ecosystem-appeng/postgres:16"),
        ),
        "database.image",
        "has no digest",
    ),
    (
        "single replica in production",
        lambda c: (c.update(production=True), set_path(S, SI, "autoscaling", "minReplicas", value=1)(c)),
        API,
        "at least 2",
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


def test_plain_text_secret_is_refused() -> None:
    config = stack_file_config("dev")
    config["databasePassword"] = "hunter2-in-plain-text"
    monitor = RecordingMonitor(RecordingMocks())
    with pytest.raises(ConfigError) as caught:
        run_stack("dev", config, monitor=monitor)
    assert "databasePassword: is set in plain text" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert monitor.registrations == []


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
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(values))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(secret_keys))
    run = run_program(ROOT, "dev", config={}, secret_keys=[])
    assert run.outputs["namespace"] == "store-inventory-dev"
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", "[]")
    with pytest.raises(ConfigError, match="databasePassword: is set in plain text"):
        run_program(ROOT, "dev", config={}, secret_keys=[])
