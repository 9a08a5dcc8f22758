"""The read-only identity of pull-request previews (``deploy/rbac/preview-reader.yaml``).

Checked against what the dev stack actually declares: every kind it renders is readable,
nothing is writable, no Secret is readable, and the manifests are valid for the stack's
Kubernetes version.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import yaml

from hardened_k8s.schema import validate_objects

from ..conftest import ROOT, YAML_LOADER, Rendered

MANIFEST = ROOT / "deploy" / "rbac" / "preview-reader.yaml"
READ = {"get", "list", "watch"}


@functools.cache
def objects() -> list[dict[str, Any]]:
    """The manifest's documents, parsed once (tests only read them)."""
    return [d for d in yaml.load_all(MANIFEST.read_text(), Loader=YAML_LOADER) if d]


def rules(kind: str) -> list[dict[str, Any]]:
    return [r for o in objects() if o["kind"] == kind for r in o["rules"]]


def plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + ("es" if lower.endswith("s") else "s")


def readable(group: str, resource: str, name: str | None, kind: str) -> set[str]:
    verbs: set[str] = set()
    for rule in rules(kind):
        named = not rule.get("resourceNames") or name in rule["resourceNames"]
        if group in rule["apiGroups"] and resource in rule["resources"] and named:
            verbs |= set(rule["verbs"])
    return verbs


def test_manifests_are_valid_for_the_dev_kubernetes_version() -> None:
    assert validate_objects(objects(), "1.31") == []


def test_nothing_is_writable_and_no_secret_is_readable() -> None:
    for kind in ("Role", "ClusterRole"):
        for rule in rules(kind):
            assert set(rule["verbs"]) <= READ, rule
            assert "*" not in rule["resources"] + rule["apiGroups"] + rule["verbs"], rule
            assert "secrets" not in rule["resources"], rule


def test_every_object_the_dev_stack_declares_is_readable(rendered: Callable[[str], Rendered]) -> None:
    dev = rendered("dev")
    (namespace,) = dev.all("Namespace")
    ns = namespace["metadata"]["name"]
    roles = [o for o in objects() if o["kind"] == "Role"]
    assert [r["metadata"]["namespace"] for r in roles] == [ns], "the Role is not in the dev namespace"
    assert "get" in readable("", "namespaces", ns, "ClusterRole")
    for obj in dev.objects:
        manifest = obj.manifest
        kind = manifest["kind"]
        if kind in ("Namespace", "Secret"):
            continue
        group = manifest["apiVersion"].rpartition("/")[0]
        verbs = readable(group, plural(kind), manifest["metadata"]["name"], "Role")
        assert verbs == READ, f"{kind}/{manifest['metadata']['name']}: the preview identity can {verbs}"


def test_bindings_give_the_roles_to_the_preview_account_only() -> None:
    bindings = [o for o in objects() if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert len(bindings) == 2
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "pulumi-preview", "namespace": "pulumi-preview"}
        ], binding
        target = {(o["kind"], o["metadata"]["name"]) for o in objects()}
        assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) in target, binding
