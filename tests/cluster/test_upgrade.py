"""An upgrade from an earlier commit of the library, on the real node.

The dev stack is deployed by the program and library of :data:`PREVIOUS` (taken from this
clone's history with ``git archive``), products are written to its database, then the same
stack is previewed and updated with this checkout's program and library: the plan holds
updates and new objects only (nothing that holds data is replaced or deleted: the
StatefulSet, its claim, the Namespace, the Secrets), the same objects are there afterwards,
and the rows written before are read back.

The earlier program runs in a Python process of its own whose import path starts with that
commit's ``components/src`` and ``rules/src`` (the CLI has no Python language host, so each
program is an inline Automation API program in the process that imports it). Both deploys run
the images built from this checkout: the test is about what the library declares.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from hardened_k8s.stack_config import RENDER_ASSUMES_SECRETS

from ..image.stack_images import Image
from ..waiting import wait_until as _wait
from .deploy import node_image_refs
from .kube import Kube
from .local import LocalCluster, toolchain_dir
from .pulumi_cli import POLICY_PACK, ROOT, ProjectStack, PulumiEnv, pulumi_env
from .test_stacks import REAL_NODE_STACK

pytestmark = pytest.mark.cluster

PREVIOUS = "178e930f91b754f09c97500c21a0c5af4d900f61"
"""The last commit of main before the day-two changes (claim template labels, Secrets updated
in place, the database's readiness command): the state a deployed stack upgrades from. An
ancestor of every later commit; a clone without it (shallow) fails this test, as it fails
``scripts/api_check.py``: fetch the whole history."""
PREVIOUS_PATHS = (
    "Pulumi.yaml",
    f"Pulumi.{REAL_NODE_STACK}.yaml",
    "__main__.py",
    "components/src",
    "rules/src",
    "services",
)
NAMESPACE = "store-inventory-upgrade"
"""A namespace of its own, so the test does not depend on the other dev deployment being gone."""
KEPT = ("Namespace", "StatefulSet", "Secret", "PersistentVolumeClaim")
"""What holds data or credentials: never replaced or deleted by the upgrade."""

_DRIVER = r"""
import runpy, sys
from pathlib import Path
workdir, stack, pulumi_dir, *paths = sys.argv[1:]
sys.path[:0] = paths
import hardened_k8s
assert hardened_k8s.__file__.startswith(paths[0]), hardened_k8s.__file__
from pulumi import automation as auto

def program():
    runpy.run_path(str(Path(workdir) / "__main__.py"), run_name="__main__")

workspace = auto.LocalWorkspace(
    work_dir=workdir, program=program, secrets_provider="passphrase",
    pulumi_command=auto.PulumiCommand(pulumi_dir, skip_version_check=True),
)
result = auto.Stack.select(stack, workspace).up()
print(dict(result.summary.resource_changes or {}))
"""


def export_commit(commit: str, dest: Path) -> Path:
    """The project's files at ``commit`` (``git archive``) under ``dest``."""
    have = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"], check=False)
    assert have.returncode == 0, (
        f"commit {commit} is not in this clone: fetch the whole history "
        "(git fetch --unshallow, or actions/checkout with fetch-depth: 0)"
    )
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, *PREVIOUS_PATHS],
        capture_output=True,
        check=True,
    ).stdout
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def _steps(events: list[Any]) -> dict[tuple[str, str], str]:
    """Each resource a preview plans, by (type's last part, name), with its step op: a
    replacement shows as ``replace``/``create-replacement``, a claim patch as
    ``PersistentVolumeClaimPatch``."""
    steps = {}
    for event in events:
        pre = event.resource_pre_event
        if pre is None or pre.metadata.type.startswith("pulumi:"):
            continue
        kind = pre.metadata.type.rsplit(":", 1)[1]
        steps[(kind, pre.metadata.urn.rsplit("::", 1)[1])] = str(pre.metadata.op.value)
    return steps


def _live(kube: Kube, kind: str, name: str) -> dict[str, Any] | None:
    api = {"Namespace": "v1", "StatefulSet": "apps/v1", "Secret": "v1", "PersistentVolumeClaim": "v1"}[kind]
    return kube.get(api, kind, name, None if kind == "Namespace" else NAMESPACE)


def _uids(kube: Kube, objects: list[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
    uids = {}
    for kind, name in objects:
        live = _live(kube, kind, name)
        uids[(kind, name)] = live["metadata"]["uid"] if live else None
    return uids


def _psql(kube: Kube, database: dict[str, Any], password: str, sql: str, *, check: bool = True) -> str:
    """A query from the node to the database pod, as the owner role."""
    pods = [
        p
        for p in kube.list("v1", "Pod", NAMESPACE)
        if p["metadata"]["labels"].get("app.kubernetes.io/name") == database["name"]
    ]
    assert pods, "no database pod"
    result = subprocess.run(
        [
            "psql", "--no-psqlrc", "--tuples-only", "--no-align", "--set", "ON_ERROR_STOP=1",
            "--host", pods[0]["status"]["podIP"], "--port", "5432",
            "--username", database["user"], "--dbname", database["database"], "--command", sql,
        ],
        env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"},
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    if check:
        assert result.returncode == 0, result.stderr
    return result.stdout.strip() if result.returncode == 0 else ""


@dataclass
class Upgrade:
    """The dev stack deployed by :data:`PREVIOUS`, and the project copy that deploys it now."""

    pulumi: PulumiEnv
    workdir: Path
    values: dict[str, str]
    project: ProjectStack


@pytest.fixture(scope="module")
def previous(
    cluster: LocalCluster, stack_images: dict[str, Image], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Upgrade]:
    """The dev stack deployed by :data:`PREVIOUS` in a backend of its own; destroyed after."""
    cluster.place(real=True)
    tmp = tmp_path_factory.mktemp("upgrade")
    pulumi = pulumi_env(tmp / "pulumi", kubeconfig=cluster.kubeconfig)
    tree = export_commit(PREVIOUS, tmp / "previous")
    workdir = tmp / "project"
    project = ProjectStack(pulumi, REAL_NODE_STACK, workdir, source=tree)
    values = {key: secrets.token_urlsafe(18) for key in RENDER_ASSUMES_SECRETS}
    project.use_local_cluster(values, node_image_refs(project, stack_images))
    project.set("namespace", NAMESPACE)
    state = Upgrade(pulumi, workdir, values, project)
    started = time.monotonic()
    try:
        result = subprocess.run(
            [
                sys.executable, "-c", _DRIVER, str(workdir), REAL_NODE_STACK, str(toolchain_dir()),
                str(tree / "components" / "src"), str(tree / "rules" / "src"),
            ],
            env={**os.environ, **pulumi.env},
            capture_output=True, text=True, check=False, timeout=1200,
        )  # fmt: skip
        assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
        print(f"up with {PREVIOUS[:12]}: {time.monotonic() - started:.0f}s {result.stdout.strip()[-200:]}")
        yield state
    finally:
        state.project.stack.destroy()


def test_upgrade_from_the_previous_commit_replaces_nothing_that_holds_data(
    cluster: LocalCluster,
    stack_images: dict[str, Image],
    previous: Upgrade,
) -> None:
    values = previous.values
    kube = Kube(cluster)
    database = previous.project.config("database")
    # The store API creates the table once it is ready on the database.
    _wait(
        "the products table (the store API migrated)",
        lambda: (
            _psql(kube, database, values["databasePassword"], "SELECT to_regclass('products')", check=False)
            == "products"
        ),
        180,
        interval=1,
    )
    sku = f"upgrade-{int(time.time() * 1000)}"
    _psql(
        kube,
        database,
        values["databasePassword"],
        f"INSERT INTO products (sku, name, price_cents, quantity) VALUES ('{sku}', 'Kept', 1, 11)",
    )
    services = previous.project.config("services")
    kept = [
        ("Namespace", NAMESPACE),
        ("StatefulSet", database["name"]),
        ("PersistentVolumeClaim", f"data-{database['name']}-0"),
        ("Secret", f"{database['name']}-credentials"),
        ("Secret", f"{database['name']}-url"),
        *[("Secret", f"{name}-auth") for name, s in services.items() if s.get("bearerAuth")],
    ]
    before = _uids(kube, kept)
    assert all(before.values()), before

    # The same stack, now with this checkout's program, stack file and library.
    current = ProjectStack(previous.pulumi, REAL_NODE_STACK, previous.workdir, existing=True)
    previous.project = current
    current.use_local_cluster(values, node_image_refs(current, stack_images))
    current.set("namespace", NAMESPACE)
    events: list[Any] = []
    preview = current.stack.preview(
        policy_packs=[str(POLICY_PACK)],
        policy_pack_configs=[str(current.policy_config())],
        on_event=events.append,
    )
    planned = _steps(events)
    changed = {key: op for key, op in planned.items() if op != "same"}
    assert set(changed.values()) <= {"update", "create"}, f"the upgrade replaces or deletes: {changed}"
    for (kind, name), op in planned.items():
        if kind in KEPT:
            assert op in ("same", "update"), f"{kind}/{name}: {op}"
    print(f"the upgrade's plan: {sorted(f'{op} {kind}/{name}' for (kind, name), op in changed.items())}")
    ops = {str(getattr(op, "value", op)) for op in preview.change_summary}
    assert ops <= {"same", "update", "create"}, preview.change_summary
    started = time.monotonic()
    up = current.stack.up(policy_packs=[str(POLICY_PACK)], policy_pack_configs=[str(current.policy_config())])
    print(
        f"up with this checkout: {time.monotonic() - started:.0f}s {dict(up.summary.resource_changes or {})}"
    )
    done = {str(getattr(op, "value", op)) for op in (up.summary.resource_changes or {})}
    assert done <= {"same", "update", "create"}, up.summary.resource_changes
    assert _uids(kube, kept) == before, "an object that holds data was replaced"
    statefulset = _live(kube, "StatefulSet", database["name"])
    assert statefulset is not None
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["exec"]["command"] == ["postgres-ready"], "not the current library's"
    started = time.monotonic()
    _wait(
        "the rows written before the upgrade, read back",
        lambda: (
            _psql(
                kube,
                database,
                values["databasePassword"],
                f"SELECT quantity FROM products WHERE sku = '{sku}'",
                check=False,
            )
            == "11"
        ),
        240,
        interval=1,
    )
    print(f"rows read back {time.monotonic() - started:.0f}s after up")
