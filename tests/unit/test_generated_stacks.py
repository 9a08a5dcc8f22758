"""Generated stack configurations (tests/stack_strategies.py) against the render's own checks.

Every configuration the generator draws is one the API server accepts; the library must
render it green (schema of its ``kubernetesVersion`` and every mandatory rule). Every value
the generator marks as refused must be refused, naming its key, without pydantic's wording.
The cluster tier (tests/cluster/test_dry_run.py) submits the same configurations to a real
API server.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hardened_k8s.config import ConfigError
from hardened_k8s.mock_engine import run_program
from hardened_k8s.render import check, manifests

from ..conftest import ROOT, engine_config, stack_file_config
from ..stack_strategies import HARDENING_CHOICES, check_settings_of, refused_values, stack_configs

EXAMPLES = int(os.environ.get("STACK_EXAMPLES", "10"))
"""Configurations per run in the unit tier (the generator's seed changes from run to run)."""
# No shrinking: a render takes a fraction of a second and a stack has hundreds of choices, so
# shrinking a failure takes minutes; the failing configuration is printed whole instead.
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def render_checks(config: dict[str, Any]) -> tuple[list[dict[str, Any]], Any]:
    values, secret_keys = engine_config(config)
    run = run_program(ROOT, "dev", config=values, secret_keys=secret_keys)
    objects = manifests(run)
    return [o.manifest for o in objects], check(objects, check_settings_of(config))


@SETTINGS
@given(config=stack_configs())
def test_generated_configurations_render_green(config: dict[str, Any]) -> None:
    try:
        objects, checks = render_checks(config)
    except ConfigError as exc:
        pytest.fail(f"the render refused a configuration the API server accepts:\n{exc}")
    assert not checks.schema_errors, [str(e) for e in checks.schema_errors]
    assert not checks.report.failed, checks.text()
    assert objects


def _set(config: dict[str, Any], key: str, value: str) -> str:
    """Put ``value`` at ``key`` (``expose.host`` goes to the first service); the full key path."""
    first = next(iter(config["services"]))
    if key == "namespace":
        config["namespace"] = value
        return key
    if key == "database.storage":
        config["database"] = {"image": {"ref": "quay.io/a/b@sha256:" + "0" * 64}, "storage": value}
        return key
    service = config["services"][first]
    node = service
    parts = key.split(".")
    if parts[0] == "expose":
        service["expose"] = {"host": "a.example.com", "tlsSecretName": "tls"}
    if parts[0] == "probes":
        service["probes"] = {"readinessPath": "/ready", "livenessPath": "/health"}
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return f"services.{first}.{key}"


@settings(max_examples=20, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(refused=refused_values(), stack=st.sampled_from(["dev", "prod"]))
def test_refused_values_name_their_key(refused: tuple[str, str], stack: str) -> None:
    config = stack_file_config(stack)
    config.pop("database", None)
    for service in config["services"].values():
        service["egressTo"] = [t for t in service.get("egressTo", []) if t in config["services"]]
    key, value = refused
    path = _set(config, key, value)
    values, secret_keys = engine_config(config)
    with pytest.raises(ConfigError) as caught:
        run_program(ROOT, stack, config=values, secret_keys=secret_keys)
    messages = [m for p, m in caught.value.problems if p == path]
    assert messages, (path, caught.value.problems)
    for message in messages:
        assert "Input should" not in message and "pattern" not in message, message


@pytest.mark.parametrize(
    ("key", "value"), [(k, v) for k, values in sorted(HARDENING_CHOICES.items()) for v in values]
)
def test_hardening_choices_are_refused_with_their_key(key: str, value: str) -> None:
    """Values the API server takes and the library refuses on purpose (docs/input-checks.md)."""
    config = stack_file_config("dev")
    path = _set(config, key, value)
    values, secret_keys = engine_config(config)
    with pytest.raises(ConfigError) as caught:
        run_program(ROOT, "dev", config=values, secret_keys=secret_keys)
    assert [m for p, m in caught.value.problems if p == path], (path, caught.value.problems)
