"""Read a stack's Pulumi config into checked models, with secrets kept as Pulumi secrets.

This is the edge where the program meets configuration: it runs before any resource is
registered, so bad config stops ``pulumi preview``/``up`` (and the offline render) with
one :class:`~hardened_k8s.config.ConfigError` naming every bad key, and nothing half-deployed.
"""

from __future__ import annotations

import difflib
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from .config import ConfigError, StackConfig, StackSettings
from .validation import parse_stack_config, validate_model

SECRET_KEYS: dict[str, str] = {
    "databasePassword": "password of the database owner role (required with database)",
    "registryPassword": "registry token used to push images (optional; default: docker login)",
    "authToken": "bearer token clients present to services with bearerAuth (required with bearerAuth)",
}
"""Config keys that must be set with ``pulumi config set --secret``, and what they are."""

RENDER_ASSUMES_SECRETS: tuple[str, ...] = ("databasePassword", "authToken")
"""Secrets the offline render treats as set when the stack file does not hold them yet.

Stack files are committed without secrets (their ciphertext depends on the deployer's
secrets provider); the render never needs a secret's value, only that it is a secret.
"""


def secrets_used(stack_config: Mapping[str, Any]) -> set[str]:
    """The secrets of :data:`RENDER_ASSUMES_SECRETS` a stack file's ``config:`` map needs:
    ``databasePassword`` with a ``database`` key, ``authToken`` with ``bearerAuth: true``
    anywhere (keys of any project prefix; a project of its own shape is read the same way)."""
    used: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            if value.get("bearerAuth") is True:
                used.add("authToken")
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for key, value in stack_config.items():
        if str(key).split(":", 1)[-1] == "database" and value is not None:
            used.add("databasePassword")
        walk(value)
    return used


class StackConfigError(ConfigError, pulumi.RunError):
    """A :class:`~hardened_k8s.config.ConfigError` that Pulumi prints as a plain message,
    without a traceback."""


@dataclass(frozen=True)
class StackSecrets:
    """Secret config values, each a secret ``Output`` (never a plain string)."""

    database_password: pulumi.Output[str] | None = None
    """``databasePassword``; ``None`` when unset."""
    registry_password: pulumi.Output[str] | None = None
    """``registryPassword``; ``None`` when unset (the build machine's login is used)."""
    auth_token: pulumi.Output[str] | None = None
    """``authToken``; ``None`` when unset."""


def load_stack_config(root: Path, config: pulumi.Config | None = None) -> tuple[StackConfig, StackSecrets]:
    """Parse the current stack's config (project namespace) and its secrets.

    ``root`` is the project directory (build contexts are relative to it). Raises
    :class:`StackConfigError` listing every problem: bad or unknown keys, a required
    secret missing, or a secret key set in plain text.
    """
    config = config or pulumi.Config()
    prefix = f"{config.name}:"
    raw: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    # The engine hands secret keys over in the runtime's set or in the environment.
    secret_keys = set(runtime_config.get_config_secret_keys_env())

    def is_secret(full_key: str) -> bool:
        return runtime_config.is_config_secret(full_key) or full_key in secret_keys

    for full_key in _config_keys():
        if not full_key.startswith(prefix):
            problems += foreign_key_problems(full_key, config.name)
            continue
        key = full_key[len(prefix) :]
        if key in SECRET_KEYS:
            if not is_secret(full_key):
                problems.append(
                    (
                        key,
                        f"is set in plain text; remove it from the stack file and run "
                        f"`pulumi config set --secret {key} <value>`",
                    )
                )
            continue
        if is_secret(full_key):
            # Never hand a secret to the models: their error messages may quote values.
            problems.append(
                (key, "unknown secret key; remove it, or use one of: " + ", ".join(sorted(SECRET_KEYS)))
            )
            continue
        raw[key] = _decode(config.get(key))
    try:
        stack = parse_stack_config(raw, root=root)
    except ConfigError as exc:
        raise StackConfigError(problems + exc.problems) from None
    secrets = StackSecrets(
        database_password=config.get_secret("databasePassword"),
        registry_password=config.get_secret("registryPassword"),
        auth_token=config.get_secret("authToken"),
    )
    if stack.database is not None and secrets.database_password is None:
        problems.append(
            (
                "databasePassword",
                "required secret is missing; run `pulumi config set --secret databasePassword <value>`",
            )
        )
    if secrets.registry_password is not None and not stack.registry_username:
        problems.append(
            (
                "registryUsername",
                "is not set, but registryPassword is; a registry login needs both: run "
                "`pulumi config set registryUsername <user>`, or remove registryPassword to "
                "use the build machine's docker login",
            )
        )
    bearer = sorted(name for name, svc in stack.services.items() if svc.bearer_auth)
    if bearer and secrets.auth_token is None:
        problems.append(
            (
                "authToken",
                f"required secret is missing ({', '.join(bearer)} set bearerAuth); run "
                "`pulumi config set --secret authToken <value>`",
            )
        )
    if problems:
        raise StackConfigError(problems)
    return stack, secrets


PACKAGE_NAMESPACES = frozenset({"pulumi", "kubernetes", "docker"})
"""Config namespaces of the engine and of the providers the library uses (``kubernetes:context``)."""


def foreign_key_problems(full_key: str, project: str) -> list[tuple[str, str]]:
    """A key under another prefix that was meant for ``project``: one of the project's own
    keys under a prefix no provider of the library owns, or any key under a misspelt project
    name. Pulumi hands such a key to nobody, so the setting would be dropped silently."""
    namespace, _, key = full_key.partition(":")
    own = {field.alias or name for name, field in StackConfig.model_fields.items()} | set(SECRET_KEYS)
    misspelt = difflib.SequenceMatcher(None, namespace, project).ratio() >= 0.8
    if namespace in PACKAGE_NAMESPACES or not (misspelt or key in own):
        return []
    return [
        (
            full_key,
            f'is under the prefix "{namespace}:", which is not this project\'s ("{project}" in '
            f'Pulumi.yaml), so nothing reads it; did you mean "{project}:{key}"?',
        )
    ]


def read_stack_settings(project_dir: Path, stack: str) -> StackSettings:
    """``kubernetesVersion``, ``production`` and ``policyExemptions`` of a stack file.

    Read exactly as the program reads them: the values the engine would hand over (strings,
    as ``pulumi config set`` writes them), decoded the same way, checked by the fields
    :class:`~hardened_k8s.config.StackConfig` inherits from
    :class:`~hardened_k8s.config.StackSettings`. Used by the offline render and the policy
    pack's config, for any project (other keys are the program's business).
    """
    # The engine's hand-over is modelled by the mock engine; the program itself never needs it.
    from .mock_engine import load_stack_file, stack_config

    project, document = load_stack_file(project_dir, stack)
    values, secret_keys = stack_config(project, document)
    prefix = f"{project}:"
    keys = {field.alias or name for name, field in StackSettings.model_fields.items()}
    raw = {
        full[len(prefix) :]: _decode(value)
        for full, value in values.items()
        if full.startswith(prefix) and full not in secret_keys and full[len(prefix) :] in keys
    }
    return validate_model(StackSettings, raw)


def source_revision(root: Path, configured: str | None) -> str:
    """Commit the images are built from: ``imageRevision`` if set, else the checkout's HEAD.

    Outside a git checkout the all-zero revision is used and a warning is logged.
    """
    if configured:
        return configured
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pulumi.log.warn("not a git checkout and imageRevision is unset; tagging images sha-0000000")
        return "0" * 40


def _config_keys() -> list[str]:
    """Every config key of the running program, fully qualified (``project:key``).

    The SDK has no public enumeration; the engine hands config over either through the
    runtime's config map or the ``PULUMI_CONFIG`` environment, so both are read.
    """
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    return sorted(keys)


def _decode(value: str | None) -> Any:
    """Structured values arrive as JSON text; scalars stay strings for pydantic to coerce.

    Scalars are not JSON-decoded on purpose: ``"1.30"`` must stay a version string. Text
    that only starts like JSON (a kubeContext ``[dev] cluster``) stays text.
    """
    if value is not None and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
