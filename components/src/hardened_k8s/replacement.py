"""The fields whose change makes the Kubernetes provider replace an object (delete and create).

pulumi-kubernetes plans a replacement, not an update, when one of these fields of a declared
object changes: the API server refuses to change them in place. Replacing what holds data
(the database's StatefulSet and its claims, the namespace) loses it, or, with ``protect``,
fails ``pulumi up``. The components keep every one of these fields stable across routine
changes (version, labels, resources, image, storage); the unit tier renders each such
change and compares exactly these paths.

Paths are dotted, from the object's root; a path covers everything below it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ALWAYS: tuple[str, ...] = ("metadata.name", "metadata.namespace")
"""Every kind: an object is identified by its name and namespace."""

REPLACE_ON_CHANGE: Mapping[str, tuple[str, ...]] = {
    "StatefulSet": (
        "spec.selector",
        "spec.serviceName",
        "spec.podManagementPolicy",
        "spec.volumeClaimTemplates",
    ),
    "Deployment": ("spec.selector",),
    "DaemonSet": ("spec.selector",),
    "Job": ("spec.selector", "spec.template"),
    "PersistentVolumeClaim": (
        "spec.accessModes",
        "spec.storageClassName",
        "spec.volumeName",
        "spec.volumeMode",
        "spec.selector",
        "spec.dataSource",
    ),
    "Service": ("spec.clusterIP", "spec.clusterIPs"),
    "RoleBinding": ("roleRef",),
    "ClusterRoleBinding": ("roleRef",),
    # Without the provider's enableSecretMutable/enableConfigMapMutable, a change of the
    # content replaces the object; with them, only an immutable one is replaced.
    "Secret": ("data", "stringData", "type", "immutable"),
    "ConfigMap": ("data", "binaryData", "immutable"),
}
"""Replace-on-change paths by kind, besides :data:`ALWAYS` (pulumi-kubernetes 4.x)."""

MUTABLE_WITH_PROVIDER_FLAG: Mapping[str, tuple[str, ...]] = {
    "Secret": ("data", "stringData"),
    "ConfigMap": ("data", "binaryData"),
}
"""Paths that change in place once the provider sets ``enableSecretMutable`` (Secret) or
``enableConfigMapMutable`` (ConfigMap); the programs here set the former."""


def replacing_paths(kind: str, *, secret_mutable: bool = True) -> tuple[str, ...]:
    """The paths of ``kind`` whose change replaces the object.

    ``secret_mutable`` (default true, as the project's provider is configured) drops the
    content of Secrets from the list; ConfigMaps keep theirs (the flag is not set for them).
    """
    paths = ALWAYS + tuple(REPLACE_ON_CHANGE.get(kind, ()))
    if secret_mutable and kind == "Secret":
        paths = tuple(p for p in paths if p not in MUTABLE_WITH_PROVIDER_FLAG["Secret"])
    return paths


def value_at(manifest: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` of ``manifest``, ``None`` where any step is missing."""
    node: Any = manifest
    for step in path.split("."):
        if not isinstance(node, Mapping) or step not in node:
            return None
        node = node[step]
    return node


def replacing_changes(
    kind: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    ignored: tuple[str, ...] = (),
    secret_mutable: bool = True,
) -> list[str]:
    """The replace-on-change paths of ``kind`` that differ between two manifests of one object.

    ``ignored`` are the resource's ``ignore_changes`` paths (the engine keeps the old value
    there, so a change below them plans nothing). Empty means the change is an update.
    """
    changed = []
    for path in replacing_paths(kind, secret_mutable=secret_mutable):
        if any(path == i or path.startswith(i + ".") for i in ignored):
            continue
        if value_at(before, path) != value_at(after, path):
            changed.append(path)
    return changed
