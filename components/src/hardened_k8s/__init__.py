"""Hardened container images and Kubernetes workloads as Pulumi components.

Everything public is importable from here::

    from hardened_k8s import HardenedService, HardenedServiceArgs, SecureNamespace, SecureNamespaceArgs

Each name is imported from its module on first use (PEP 562), so ``import hardened_k8s``,
and loading the configuration models through it, does not pull in the Kubernetes or Docker
SDK; type checkers see every name through the ``TYPE_CHECKING`` imports below.
"""

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_EXPORTS: dict[str, str] = {
    # Components and their Args.
    "SecureNamespace": "namespace",
    "SecureNamespaceArgs": "namespace",
    "HardenedService": "workload",
    "HardenedServiceArgs": "workload",
    "PostgreSQL": "postgres",
    "PostgreSQLArgs": "postgres",
    "ServiceImage": "image",
    "ServiceImageArgs": "image",
    "service_image_args": "image",
    "ServiceSystem": "system",
    "ServiceSystemArgs": "system",
    # Input types shared by the Args.
    "AutoscalingArgs": "inputs",
    "ExposeArgs": "inputs",
    "PeerArgs": "inputs",
    "ProbesArgs": "inputs",
    "ResourceAmountsArgs": "inputs",
    "ResourcesArgs": "inputs",
    "SecretFileArgs": "inputs",
    "SecurityOptOutsArgs": "inputs",
    "SecurityProfile": "inputs",
    "SslMode": "inputs",
    "ArgsError": "arguments",
    # The stack file's front door.
    "StackConfig": "config",
    "ServiceSpec": "config",
    "DatabaseSpec": "config",
    "ConfigError": "config",
    "StackSecrets": "stack_config",
    "load_stack_config": "stack_config",
    "source_revision": "stack_config",
    "parse_stack_config": "validation",
    "service_spec_args": "stack_args",
    "image_ref": "stack_args",
    "image_build_spec": "stack_args",
    "validate_model": "validation",
    # Image builds as plain data.
    "BuildSpec": "build",
    "build_spec": "build",
}

__all__ = [
    "ArgsError",
    "AutoscalingArgs",
    "BuildSpec",
    "ConfigError",
    "DatabaseSpec",
    "ExposeArgs",
    "HardenedService",
    "HardenedServiceArgs",
    "PeerArgs",
    "PostgreSQL",
    "PostgreSQLArgs",
    "ProbesArgs",
    "ResourceAmountsArgs",
    "ResourcesArgs",
    "SecretFileArgs",
    "SecureNamespace",
    "SecureNamespaceArgs",
    "SecurityOptOutsArgs",
    "SecurityProfile",
    "ServiceImage",
    "ServiceImageArgs",
    "ServiceSpec",
    "ServiceSystem",
    "ServiceSystemArgs",
    "SslMode",
    "StackConfig",
    "StackSecrets",
    "build_spec",
    "image_build_spec",
    "image_ref",
    "load_stack_config",
    "parse_stack_config",
    "service_image_args",
    "service_spec_args",
    "source_revision",
    "validate_model",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
    from .arguments import ArgsError
    from .build import BuildSpec, build_spec
    from .config import ConfigError, DatabaseSpec, ServiceSpec, StackConfig
    from .image import ServiceImage, ServiceImageArgs, service_image_args
    from .inputs import (
        AutoscalingArgs,
        ExposeArgs,
        PeerArgs,
        ProbesArgs,
        ResourceAmountsArgs,
        ResourcesArgs,
        SecretFileArgs,
        SecurityOptOutsArgs,
        SecurityProfile,
        SslMode,
    )
    from .namespace import SecureNamespace, SecureNamespaceArgs
    from .postgres import PostgreSQL, PostgreSQLArgs
    from .stack_args import image_build_spec, image_ref, service_spec_args
    from .stack_config import StackSecrets, load_stack_config, source_revision
    from .system import ServiceSystem, ServiceSystemArgs
    from .validation import parse_stack_config, validate_model
    from .workload import HardenedService, HardenedServiceArgs
