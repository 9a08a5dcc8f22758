"""Each committed stack previewed, deployed, changed and destroyed for real.

One module-scoped deployment per stack; the tests run in file order against it: preview
with the policy pack, ``up``, what the API server then holds, a no-op preview on live state,
a one-field change rolled out, a mandatory violation refused, and ``destroy``.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pulumi import automation as auto

from hardened_k8s.mock_engine import run_program, stack_names
from hardened_k8s.render import manifests
from hardened_k8s.stack_config import RENDER_ASSUMES_SECRETS
from hardened_k8s_rules.policy import RULES

from .kube import Kube, subset
from .local import LocalCluster
from .pulumi_cli import POLICY_PACK, ROOT, ProjectStack, PulumiEnv

pytestmark = pytest.mark.cluster

STACKS = tuple(stack_names(ROOT))
"""Every committed stack: one per ``Pulumi.<stack>.yaml``."""
TIMINGS = ROOT / "build" / "cluster-timings.json"
"""Where the tier records how long each CLI operation took (the figures of docs/cluster.md)."""


@dataclass
class Deployed:
    """One stack of the project on the local cluster, and what the tests learnt of it."""

    project: ProjectStack
    password: str
    refs: dict[str, str]
    rendered: list[dict[str, Any]]
    kube: Kube
    timings: dict[str, float] = field(default_factory=dict)
    up_result: auto.UpResult | None = None

    @property
    def stack(self) -> auto.Stack:
        return self.project.stack

    @property
    def namespace(self) -> str:
        return str(self.project.config("namespace"))

    def timed(self, label: str, started: float) -> None:
        self.timings[label] = round(time.monotonic() - started, 1)

    def preview(self, **kwargs: Any) -> tuple[auto.PreviewResult, list[auto.EngineEvent]]:
        """``pulumi preview --policy-pack policy --policy-pack-config <from the stack file>``."""
        events: list[auto.EngineEvent] = []
        result = self.stack.preview(
            policy_packs=[str(POLICY_PACK)],
            policy_pack_configs=[str(self.project.policy_config())],
            on_event=events.append,
            **kwargs,
        )
        return result, events

    def live(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        meta = obj["metadata"]
        return self.kube.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))

    def rendered_of(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.rendered if o["kind"] == kind]


def _identity(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def _planned(events: list[auto.EngineEvent]) -> dict[tuple[str, str, str], str]:
    """Kubernetes objects a preview plans, by (kind, namespace, name), with their step op."""
    planned: dict[tuple[str, str, str], str] = {}
    for event in events:
        pre = event.resource_pre_event
        if pre is None or not pre.metadata.type.startswith("kubernetes:"):
            continue
        if (
            pre.metadata.type.startswith("kubernetes:pulumi")
            or pre.metadata.type == "pulumi:providers:kubernetes"
        ):
            continue
        state = pre.metadata.new or pre.metadata.old
        inputs = (state.inputs if state else None) or {}
        meta = inputs.get("metadata") or {}
        kind = pre.metadata.type.rsplit(":", 1)[1]
        planned[(kind, meta.get("namespace", ""), meta.get("name", ""))] = str(pre.metadata.op.value)
    return planned


@pytest.fixture(scope="module", params=STACKS)
def deployed(
    request: pytest.FixtureRequest,
    cluster: LocalCluster,
    pulumi: PulumiEnv,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    stack: str = request.param
    started = time.monotonic()
    project = ProjectStack(pulumi, stack, tmp_path_factory.mktemp(f"project-{stack}"))
    values = {key: secrets.token_urlsafe(18) for key in RENDER_ASSUMES_SECRETS}
    refs = project.use_local_cluster(values)
    password = values["databasePassword"]
    rendered = [
        o.manifest for o in manifests(run_program(ROOT, stack, assume_secrets=RENDER_ASSUMES_SECRETS))
    ]
    state = Deployed(project, password, refs, rendered, Kube(cluster))
    state.timed("stack init + config", started)
    yield state
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    timings[stack] = state.timings
    TIMINGS.parent.mkdir(exist_ok=True)
    TIMINGS.write_text(json.dumps(timings, indent=2) + "\n")


def test_preview_passes_policy_and_plans_what_render_writes(deployed: Deployed) -> None:
    started = time.monotonic()
    result, events = deployed.preview()
    deployed.timed("preview", started)
    planned = _planned(events)
    expected = {_identity(o) for o in deployed.rendered}
    assert set(planned) == expected, (
        f"{deployed.project.name}: preview plans {sorted(set(planned) - expected)} beyond the render "
        f"and misses {sorted(expected - set(planned))}"
    )
    assert set(planned.values()) == {"create"}, planned
    assert result.change_summary.get(auto.OpType.CREATE, 0) >= len(expected)


def test_up_creates_every_rendered_object(deployed: Deployed) -> None:
    started = time.monotonic()
    deployed.up_result = deployed.stack.up(
        policy_packs=[str(POLICY_PACK)], policy_pack_configs=[str(deployed.project.policy_config())]
    )
    deployed.timed("up", started)
    missing = [_identity(o) for o in deployed.rendered if deployed.live(o) is None]
    assert not missing, f"{deployed.project.name}: not in the cluster after up: {missing}"


def test_namespace_enforces_restricted_and_admitted_every_pod(deployed: Deployed) -> None:
    ns = deployed.kube.get("v1", "Namespace", deployed.namespace)
    assert ns is not None
    labels = ns["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels.get(f"pod-security.kubernetes.io/{mode}") == "restricted", labels
    pods = deployed.kube.list("v1", "Pod", deployed.namespace)
    workloads = deployed.rendered_of("Deployment") + deployed.rendered_of("StatefulSet")
    assert pods, f"{deployed.namespace}: no pods were admitted"
    owners = {p["metadata"]["labels"].get("app.kubernetes.io/name") for p in pods}
    assert {w["metadata"]["name"] for w in workloads} <= owners, owners
    # A pod refused by Pod Security Admission leaves a FailedCreate event on its owner.
    events = deployed.kube.list("v1", "Event", deployed.namespace)
    refused = [e["message"] for e in events if e.get("reason") == "FailedCreate"]
    assert not refused, refused


def test_each_workload_has_its_replicas_available(deployed: Deployed) -> None:
    for obj in deployed.rendered_of("Deployment"):
        live = deployed.live(obj)
        assert live is not None
        name = obj["metadata"]["name"]
        [container] = live["spec"]["template"]["spec"]["containers"]
        assert container["image"] == deployed.refs[name], f"Deployment/{name} runs {container['image']}"
        status = live.get("status", {})
        assert status.get("availableReplicas", 0) >= max(1, live["spec"].get("replicas", 1)), (
            f"Deployment/{obj['metadata']['name']}: {status}"
        )
    for obj in deployed.rendered_of("StatefulSet"):
        live = deployed.live(obj)
        assert live is not None
        assert live.get("status", {}).get("readyReplicas", 0) == live["spec"]["replicas"], live.get("status")


@pytest.mark.parametrize("kind", ["HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"])
def test_policy_objects_hold_what_was_rendered(deployed: Deployed, kind: str) -> None:
    objects = deployed.rendered_of(kind)
    assert objects, f"{deployed.project.name}: nothing of kind {kind} rendered"
    for obj in objects:
        live = deployed.live(obj)
        assert live is not None, _identity(obj)
        problems = subset(obj["spec"], live["spec"], f"{kind}/{obj['metadata']['name']}.spec")
        assert not problems, "\n".join(problems)


def test_password_in_the_secret_and_only_ciphertext_in_state(deployed: Deployed) -> None:
    secrets_live = deployed.kube.list("v1", "Secret", deployed.namespace)
    values = [base64.b64decode(v).decode() for s in secrets_live for v in (s.get("data") or {}).values()]
    assert any(deployed.password in v for v in values), "the database password reached no Secret"
    # Plain, or base64 as in a Secret's data (at any of the three alignments).
    secret = deployed.password.encode()
    aligned = (base64.b64encode(pad + secret).decode()[4:-4] for pad in (b"", b"x", b"xy"))
    forms = [deployed.password, *aligned]
    exported = deployed.project.cli("stack", "export")
    assert not [f for f in forms if f in exported], "pulumi stack export holds the password"
    assert '"ciphertext"' in exported
    outputs = deployed.project.cli("stack", "output", "--json")
    assert not [f for f in forms if f in outputs], "a stack output holds the password"
    assert deployed.up_result is not None
    assert not [f for f in forms if f in deployed.up_result.stdout], "the up log shows the password"


def test_second_preview_on_live_state_changes_nothing(deployed: Deployed) -> None:
    # The policy pack now sees outputs (API-server defaults, replicas the HPA set).
    result, events = deployed.preview(expect_no_changes=True)
    changed = {k: op for k, op in _planned(events).items() if op != "same"}
    assert not changed, f"{deployed.project.name}: perpetual diff on {changed}"
    assert set(result.change_summary) <= {auto.OpType.SAME}, result.change_summary


def test_memory_limit_change_is_one_rolling_update(deployed: Deployed) -> None:
    service = next(iter(deployed.project.config("services")))
    key = f"services.{service}.resources.limits.memory"
    deployed.project.set(key, "300Mi", path=True)
    result, events = deployed.preview()
    changed = {k: op for k, op in _planned(events).items() if op != "same"}
    assert changed == {("Deployment", deployed.namespace, service): "update"}, changed
    assert result.change_summary.get(auto.OpType.UPDATE) == 1, result.change_summary
    before = deployed.kube.get("apps/v1", "Deployment", service, deployed.namespace)
    assert before is not None
    started = time.monotonic()
    deployed.stack.up(
        policy_packs=[str(POLICY_PACK)], policy_pack_configs=[str(deployed.project.policy_config())]
    )
    deployed.timed("up (one change)", started)
    after = deployed.kube.get("apps/v1", "Deployment", service, deployed.namespace)
    assert after is not None
    assert after["spec"]["strategy"]["type"] == "RollingUpdate"
    # The HPA may also have scaled it meanwhile (through the scale subresource).
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    assert after["status"]["observedGeneration"] == after["metadata"]["generation"]
    limits = after["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["memory"] == "300Mi", limits
    replica_sets = [
        rs
        for rs in deployed.kube.list("apps/v1", "ReplicaSet", deployed.namespace)
        if any(o["name"] == service for o in rs["metadata"].get("ownerReferences", []))
    ]
    assert len(replica_sets) == 2, [rs["metadata"]["name"] for rs in replica_sets]
    # The old ReplicaSet was scaled down to zero as the new one became available.
    assert sorted(rs["spec"]["replicas"] for rs in replica_sets) == [0, after["spec"]["replicas"]]
    status = after["status"]
    assert status.get("updatedReplicas") == status.get("replicas") == status.get("availableReplicas"), status


UNHARDENED = """
# Appended by the cluster tier: a workload declared without the library's hardening.
k8s.apps.v1.Deployment(
    "unhardened",
    metadata={"name": "unhardened", "namespace": system.namespace_name},
    spec={
        "selector": {"matchLabels": {"app": "unhardened"}},
        "template": {
            "metadata": {"labels": {"app": "unhardened"}},
            "spec": {"containers": [{"name": "app", "image": "quay.io/ecosystem-appeng/unhardened:latest"}]},
        },
    },
    opts=pulumi.ResourceOptions(provider=provider),
)
"""


def test_mandatory_violation_stops_the_preview(deployed: Deployed) -> None:
    # Config cannot weaken a pod without a named exemption (a config error before any
    # resource is registered); the pack is what stops a program that declares one.
    program = deployed.project.workdir / "__main__.py"
    original = program.read_text()
    program.write_text(original + UNHARDENED)
    try:
        with pytest.raises(auto.CommandError) as raised:
            deployed.preview()
    finally:
        program.write_text(original)
    text = str(raised.value)
    assert "mandatory" in text.lower(), text[-3000:]
    violated = {rule.id for rule in RULES if rule.severity == "mandatory" and rule.id in text}
    assert {"PSS-014", "HARD-001"} <= violated, text[-3000:]
    assert deployed.kube.get("apps/v1", "Deployment", "unhardened", deployed.namespace) is None


def test_destroy(deployed: Deployed) -> None:
    production = str(deployed.project.config("production")).lower() == "true"
    started = time.monotonic()
    if not production:
        deployed.stack.destroy()
        deployed.timed("destroy", started)
        left = [
            _identity(o)
            for o in deployed.rendered
            if o["kind"] != "Namespace" and deployed.live(o) is not None
        ]
        assert not left, f"still in the cluster after destroy: {left}"
        ns = deployed.kube.get("v1", "Namespace", deployed.namespace)
        assert ns is None or ns["status"].get("phase") == "Terminating", ns
        return
    with pytest.raises(auto.CommandError) as raised:
        deployed.stack.destroy()
    deployed.timed("destroy (refused: protected)", started)
    text = str(raised.value)
    assert "protect" in text, text[-3000:]
    database = deployed.project.config("database")
    statefulset = deployed.kube.get("apps/v1", "StatefulSet", database["name"], deployed.namespace)
    assert statefulset is not None, "a plain destroy removed the protected database"
