"""Routine changes after the first deploy: nothing that holds data is replaced.

Each test renders the committed stack, then the same stack with one routine change, and
compares the fields the Kubernetes provider replaces an object on
(:mod:`hardened_k8s.replacement`), minus each resource's ``ignore_changes``. An empty
difference means ``pulumi preview`` plans updates only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hardened_k8s import PostgreSQL, PostgreSQLArgs, SslMode
from hardened_k8s.arguments import ArgsError
from hardened_k8s.mock_engine import ProgramRun, RecordingMocks, RecordingMonitor, run_mocked
from hardened_k8s.postgres import CA_PATH
from hardened_k8s.render import manifests
from hardened_k8s.replacement import replacing_changes, replacing_paths
from hardened_k8s.stack_config import StackConfigError

from ..conftest import DEPLOYED_SECRETS, PINNED, run_stack, stack_file_config

DB = "store-inventory-postgresql"
API = "store-inventory"

Objects = dict[tuple[str, str], tuple[dict[str, Any], list[str]]]


def objects(run: ProgramRun) -> Objects:
    """Each Kubernetes object by (kind and resource type, name): its inputs as registered
    (secret values in the clear, to see a rotation) and its ``ignore_changes``."""
    return {
        (f"{o.manifest['kind']}:{o.registration.type}", o.manifest["metadata"]["name"]): (
            o.registration.inputs,
            o.registration.ignore_changes,
        )
        for o in manifests(run)
    }


def replacements(before: Objects, after: Objects, *, secret_mutable: bool = True) -> dict[str, list[str]]:
    """What a preview from ``before`` to ``after`` would replace or delete, by object."""
    found: dict[str, list[str]] = {}
    for key, (old, _) in before.items():
        if key not in after:
            found[f"{key} deleted"] = ["(object)"]
            continue
        new, ignored = after[key]
        kind = key[0].split(":", 1)[0]
        changed = replacing_changes(kind, old, new, ignored=tuple(ignored), secret_mutable=secret_mutable)
        if changed:
            found[str(key)] = changed
    return found


def _version(c: dict[str, Any]) -> None:
    c["database"]["version"] = "16"
    c["services"][API]["version"] = "0.2.0"


def _part_of(c: dict[str, Any]) -> None:
    c["partOf"] = "shop"


def _resources(c: dict[str, Any]) -> None:
    c["database"]["resources"]["limits"]["memory"] = "4Gi"
    c["services"][API]["resources"]["limits"]["memory"] = "1Gi"


def _image(c: dict[str, Any]) -> None:
    c["database"]["image"] = {"ref": PINNED}
    c["services"][API]["image"] = {"ref": PINNED}


def _storage(c: dict[str, Any]) -> None:
    c["database"]["storage"] = "50Gi"


def _storage_class(c: dict[str, Any]) -> None:
    c["database"]["storageClassName"] = "fast-ssd"


ROUTINE: dict[str, Callable[[dict[str, Any]], None]] = {
    "version": _version,
    "partOf": _part_of,
    "resources": _resources,
    "image": _image,
    "storage": _storage,
    "storageClassName": _storage_class,
}


@pytest.fixture(scope="module")
def prod_before() -> Objects:
    return objects(run_stack("prod", stack_file_config("prod"), secrets=DEPLOYED_SECRETS))


@pytest.mark.parametrize("change", sorted(ROUTINE))
def test_a_routine_change_replaces_nothing(prod_before: Objects, change: str) -> None:
    config = stack_file_config("prod")
    ROUTINE[change](config)
    after = objects(run_stack("prod", config, secrets=DEPLOYED_SECRETS))
    assert replacements(prod_before, after) == {}, change


def test_the_comparison_sees_a_replacing_change(prod_before: Objects) -> None:
    """The check is not vacuous: moving the stack to another namespace replaces the
    StatefulSet, and the storage change would replace it too were the claim template not
    ignored."""
    config = stack_file_config("prod")
    config["namespace"] = "inventory-elsewhere"
    found = replacements(prod_before, objects(run_stack("prod", config, secrets=DEPLOYED_SECRETS)))
    assert "metadata.namespace" in found[f"('StatefulSet:kubernetes:apps/v1:StatefulSet', '{DB}')"]

    config = stack_file_config("prod")
    _storage(config)
    after = objects(run_stack("prod", config, secrets=DEPLOYED_SECRETS))
    unguarded: Objects = {key: (manifest, []) for key, (manifest, _) in after.items()}
    found = replacements(prod_before, unguarded)
    assert found == {f"('StatefulSet:kubernetes:apps/v1:StatefulSet', '{DB}')": ["spec.volumeClaimTemplates"]}


def test_claim_template_carries_only_the_selector_labels(prod_before: Objects) -> None:
    sts, ignored = prod_before[("StatefulSet:kubernetes:apps/v1:StatefulSet", DB)]
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["labels"] == sts["spec"]["selector"]["matchLabels"]
    assert ignored == ["spec.volumeClaimTemplates"]


def test_raising_storage_resizes_the_existing_claim_in_place() -> None:
    config = stack_file_config("prod")
    _storage(config)
    run = run_stack("prod", config, secrets=DEPLOYED_SECRETS)
    (patch,) = [o for o in manifests(run) if o.registration.type.endswith("PersistentVolumeClaimPatch")]
    assert patch.manifest["metadata"]["name"] == f"data-{DB}-0"
    assert patch.manifest["spec"] == {"resources": {"requests": {"storage": "50Gi"}}}
    # Force: the StatefulSet controller owns the field. No await: the claim is Bound, and the
    # provider's claim await under a WaitForFirstConsumer class waits for Pending until it times
    # out (seen on the cluster tier's real node).
    assert patch.manifest["metadata"]["annotations"] == {
        "pulumi.com/patchForce": "true",
        "pulumi.com/skipAwait": "true",
    }
    (sts,) = [r for r in run.registrations if r.type == "kubernetes:apps/v1:StatefulSet"]
    assert sts.urn in patch.registration.depends_on, "the claim exists only once the StatefulSet does"


def test_rotating_both_secrets_updates_the_secrets_in_place(prod_before: Objects) -> None:
    rotated = {key: value + "-rotated" for key, value in DEPLOYED_SECRETS.items()}
    run = run_stack("prod", stack_file_config("prod"), secrets=rotated)
    (provider,) = [r for r in run.registrations if r.type == "pulumi:providers:kubernetes"]
    assert provider.inputs["enableSecretMutable"] == "true"
    after = objects(run)
    assert replacements(prod_before, after) == {}
    # Without the provider flag the same rotation would replace all three Secrets, the
    # protected credentials among them (which fails `pulumi up` in prod).
    without_flag = replacements(prod_before, after, secret_mutable=False)
    assert sorted(key for key in without_flag if "Secret" in key) == [
        f"('Secret:kubernetes:core/v1:Secret', '{name}')"
        for name in sorted(["mcp-store-inventory-auth", f"{DB}-credentials", f"{DB}-url"])
    ]


def test_replacement_rules_name_the_provider_rules_for_statefulsets_and_secrets() -> None:
    sts = replacing_paths("StatefulSet")
    for path in (
        "spec.selector",
        "spec.serviceName",
        "spec.podManagementPolicy",
        "spec.volumeClaimTemplates",
    ):
        assert path in sts
    assert "stringData" not in replacing_paths("Secret")
    assert {"data", "stringData"} <= set(replacing_paths("Secret", secret_mutable=False))
    assert "immutable" in replacing_paths("Secret")


@pytest.mark.parametrize("mode", ["require", "verify-ca", "verify-full"])
def test_an_sslmode_the_database_cannot_serve_is_refused_with_the_reason_and_the_fix(mode: str) -> None:
    config = stack_file_config("prod")
    config["database"]["sslmode"] = mode
    with pytest.raises(StackConfigError) as caught:
        run_stack("prod", config, secrets=DEPLOYED_SECRETS)
    ((key, message),) = caught.value.problems
    assert key == "database.sslmode"
    assert "serves none" in message and "use prefer, allow or disable" in message

    monitor = RecordingMonitor(RecordingMocks())
    with pytest.raises(ArgsError) as refused:
        run_mocked(
            lambda: PostgreSQL(
                "db", PostgreSQLArgs(namespace="ns", image=PINNED, password="pw", sslmode=SslMode(mode))
            ),
            monitor=monitor,
        )
    assert [path for path, _ in refused.value.problems] == ["PostgreSQL 'db' args.sslmode"]
    assert not [r for r in monitor.registrations if r.is_kubernetes_object], "nothing is registered"


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_an_sslmode_without_tls_is_appended_to_the_url(mode: str) -> None:
    config = stack_file_config("dev")
    config["database"]["sslmode"] = mode
    run = run_stack("dev", config, secrets=DEPLOYED_SECRETS)
    (url,) = [r for r in run.kubernetes_objects() if r.name.endswith("-url")]
    assert f"?sslmode={mode}" in str(url.inputs["stringData"])


def test_verify_full_with_a_tls_secret_serves_tls_and_mounts_the_ca_into_the_clients() -> None:
    config = stack_file_config("prod")
    config["database"]["tlsSecretName"] = "postgresql-tls"
    config["database"]["sslmode"] = "verify-full"
    run = run_stack("prod", config, secrets=DEPLOYED_SECRETS)
    by_name = {(o.manifest["kind"], o.manifest["metadata"]["name"]): o for o in manifests(run)}
    sts = by_name[("StatefulSet", DB)].manifest["spec"]["template"]["spec"]
    (container,) = sts["containers"]
    assert {"name": "POSTGRES_TLS_DIR", "value": "/etc/secrets/tls"} in container["env"]
    (tls,) = [v for v in sts["volumes"] if v["name"] == "tls"]
    assert tls["secret"]["secretName"] == "postgresql-tls"
    assert [item["key"] for item in tls["secret"]["items"]] == ["tls.crt", "tls.key"]
    (url,) = [r for r in run.kubernetes_objects() if r.name.endswith("-url")]
    assert f"@{DB}:5432/store_db?sslmode=verify-full&sslrootcert={CA_PATH}" in str(url.inputs["stringData"])
    api = by_name[("Deployment", API)].manifest["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in api["containers"][0]["env"]}
    assert env["DATABASE_CA_FILE"] == CA_PATH, "the URL's sslrootcert is where the client finds the CA"
    (ca,) = [v for v in api["volumes"] if v.get("secret", {}).get("secretName") == "postgresql-tls"]
    assert [item["key"] for item in ca["secret"]["items"]] == ["ca.crt"], "only the CA, never the key"
    mcp = by_name[("Deployment", "mcp-store-inventory")].manifest["spec"]["template"]["spec"]
    assert not [v for v in mcp["volumes"] if v.get("secret", {}).get("secretName") == "postgresql-tls"]
