"""Validate rendered objects against the Kubernetes OpenAPI schemas, strictly.

Uses the schemas shipped with ``kubernetes-validate`` in their ``-strict`` flavour, so an
unknown or misspelt field is an error, as it would be for ``kubectl apply
--validate=strict``. Each error names the object and the field path.

``kubernetes_validate.validate`` re-reads a 1 MB definitions file on every call and stops at
the first error; here the schema of each (version, kind) is loaded once through the same
package resources and every error of an object is reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .extras import missing_extra

try:
    import jsonschema
    import kubernetes_validate
    from kubernetes_validate import utils as kv_utils
    from packaging.version import Version
    from referencing import Registry, Resource
except ModuleNotFoundError as error:
    raise missing_extra(__name__, error) from None


@dataclass(frozen=True)
class SchemaError:
    """One schema violation of one object."""

    kind: str
    """Kind of the object."""
    name: str
    """``metadata.name`` of the object."""
    path: str
    """Dotted field path (``spec.template.spec.containers[0].bogus``); empty for the root."""
    message: str
    """What the schema refuses, as the validator says it."""

    def __str__(self) -> str:
        where = f"{self.kind}/{self.name}"
        return f"{where}: {self.path or '(root)'}: {self.message}"


@lru_cache(maxsize=1)
def _bundled_versions() -> tuple[str, ...]:
    # A directory listing of the package's resources, the same on every call.
    return tuple(kv_utils.all_versions())


def supported_versions() -> list[str]:
    """Kubernetes minor versions (``"1.31"``) the installed kubernetes-validate has schemas for."""
    return sorted({kv_utils.major_minor(v) for v in _bundled_versions()}, key=Version)


def _schema_version(kubernetes_version: str) -> str:
    """Newest bundled schema version not newer than ``kubernetes_version`` (``1.31`` / ``v1.31.2``)."""
    wanted = kubernetes_version.removeprefix("v")
    if not re.match(r"^\d+\.\d+(\.\d+)?$", wanted):
        raise ValueError(f"kubernetes version {kubernetes_version!r} is not like '1.31'")
    minor = Version(kv_utils.major_minor(wanted))
    available = [v for v in _bundled_versions() if Version(kv_utils.major_minor(v)) <= minor]
    supported = supported_versions()
    if not available or minor > Version(supported[-1]):
        raise ValueError(
            f"kubernetes version {kubernetes_version!r} is not supported by kubernetes-validate "
            f"{kubernetes_validate.__version__}; supported: {supported[0]} to {supported[-1]}"
        )
    return str(available[-1])


@lru_cache(maxsize=8)
def _registry(schema_dir: str) -> Registry[Any]:
    definitions = kv_utils.schema_contents(
        f"kubernetes-json-schema/{schema_dir}/_definitions.json", schema_dir
    )
    return Resource.from_contents(definitions) @ Registry()


@lru_cache(maxsize=128)
def _validator(schema_dir: str, kind: str, api_version: str) -> jsonschema.Draft202012Validator | None:
    # Same file naming as kubernetes_validate.validate: rbac.authorization.k8s.io/v1 -> rbac-v1.
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv_utils.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", schema_dir
        )
    except FileNotFoundError:
        return None
    registry = Resource.from_contents(schema) @ _registry(schema_dir)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_MEMO_LIMIT = 4096
_memo: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}


def _object_errors(
    validator: jsonschema.Draft202012Validator, schema_dir: str, obj: Mapping[str, Any]
) -> tuple[tuple[str, str], ...]:
    """(path, message) of each error of ``obj``, sorted by path; remembered per object.

    Validation is a pure function of the schema and the object, and the slowest part of a
    check: an object seen before (by its canonical JSON, a twentieth of the cost) is not
    validated again, as when one process renders several stacks that share objects. At most
    :data:`_MEMO_LIMIT` objects are remembered; then the memo starts afresh.
    """
    try:
        key = (schema_dir, json.dumps(obj, sort_keys=True, separators=(",", ":")))
    except (TypeError, ValueError):  # not plain JSON data: validated, not remembered
        key = None
    if key is not None and (known := _memo.get(key)) is not None:
        return known
    found = tuple(
        (_path(error.absolute_path), error.message)
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    )
    if key is not None:
        if len(_memo) >= _MEMO_LIMIT:
            _memo.clear()
        _memo[key] = found
    return found


def validate_objects(objs: Iterable[Mapping[str, Any]], kubernetes_version: str) -> list[SchemaError]:
    """Every strict-schema error of ``objs`` for ``kubernetes_version`` (``"1.31"``).

    An object whose kind/apiVersion has no schema in that version (a removed API such as
    ``autoscaling/v2beta2``, or a custom resource) is reported as an error too.
    Raises ``ValueError`` for a version kubernetes-validate has no schemas for.
    """
    schema_dir = f"v{_schema_version(kubernetes_version)}-local-strict"
    errors: list[SchemaError] = []
    for obj in objs:
        kind = str(obj.get("kind") or "")
        name = str((obj.get("metadata") or {}).get("name") or "")
        api_version = str(obj.get("apiVersion") or "")
        if not kind or not api_version:
            errors.append(SchemaError(kind or "?", name, "", "apiVersion and kind are required"))
            continue
        validator = _validator(schema_dir, kind, api_version)
        if validator is None:
            errors.append(
                SchemaError(
                    kind,
                    name,
                    "apiVersion",
                    f"no schema for {kind} {api_version} in Kubernetes {kubernetes_version}",
                )
            )
            continue
        errors.extend(
            SchemaError(kind, name, path, message)
            for path, message in _object_errors(validator, schema_dir, obj)
        )
    return errors
