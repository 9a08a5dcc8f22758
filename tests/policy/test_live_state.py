"""Stack policies on live state: the outputs the engine really hands a CrossGuard stack policy.

``fixtures/live-outputs-dev.json`` is the dev stack's Kubernetes resources (Secrets left out)
as ``pulumi up`` on the cluster tier's control plane recorded them, with the ``__``-prefixed
keys removed as the engine removes them before calling a stack policy (``SkipInternalKeys``).
They carry what the API server defaulted (``spec.replicas: 1`` on HPA-managed Deployments,
``progressDeadlineSeconds``, ``status`` ...) and ``metadata.managedFields``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

from hardened_k8s_rules.policy import RULES
from hardened_k8s_rules.policy.objects import declares

from .test_policy_pack import _load

FIXTURE = Path(__file__).parent / "fixtures" / "live-outputs-dev.json"


@pytest.fixture(scope="module")
def crossguard() -> ModuleType:
    return _load("crossguard")


def _live() -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = json.loads(FIXTURE.read_text())
    return resources


def _run(policy: StackValidationPolicy, resources: list[dict[str, Any]]) -> list[str]:
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    bag = [
        PolicyResource(
            r["type"], unknown_checking_proxy(r["outputs"]), r["urn"], r["name"], opts, None, None, [], {}
        )
        for r in resources
    ]
    found: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(message)

    policy.validate(StackValidationArgs(bag, None), report)
    return found


def _deployments(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources if r["type"] == "kubernetes:apps/v1:Deployment"]


def test_fixture_is_live_state() -> None:
    deployments = _deployments(_live())
    assert deployments
    for deployment in deployments:
        outputs = deployment["outputs"]
        # The API server defaulted replicas although the program declared none ...
        assert outputs["spec"]["replicas"] == 1, deployment["urn"]
        assert "status" in outputs
        # ... and managedFields say that no manager declared it.
        managers = outputs["metadata"]["managedFields"]
        assert {m["operation"] for m in managers} >= {"Apply"}, managers
        assert not any(k.startswith("__") for k in outputs), deployment["urn"]


def test_every_stack_policy_holds_on_live_state(crossguard: ModuleType) -> None:
    resources = _live()
    for policy in crossguard.build_policies():
        if isinstance(policy, StackValidationPolicy):
            assert _run(policy, resources) == [], policy.name


def _hard_026(crossguard: ModuleType) -> StackValidationPolicy:
    [policy] = [p for p in crossguard.build_policies() if p.name == "HARD-026"]
    assert isinstance(policy, StackValidationPolicy)
    return policy


def test_replicas_an_apply_declares_is_still_a_violation(crossguard: ModuleType) -> None:
    resources = copy.deepcopy(_live())
    deployment = _deployments(resources)[0]
    for entry in deployment["outputs"]["metadata"]["managedFields"]:
        if entry["operation"] == "Apply":
            entry["fieldsV1"]["f:spec"]["f:replicas"] = {}
    [message] = _run(_hard_026(crossguard), resources)
    assert message.startswith("spec.replicas: is set while HorizontalPodAutoscaler/"), message


def test_replicas_the_hpa_scaled_through_the_scale_subresource_is_not(crossguard: ModuleType) -> None:
    resources = copy.deepcopy(_live())
    for deployment in _deployments(resources):
        deployment["outputs"]["spec"]["replicas"] = 2
        deployment["outputs"]["metadata"]["managedFields"].append(
            {
                "apiVersion": "apps/v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}}},
                "manager": "kube-controller-manager",
                "operation": "Update",
                "subresource": "scale",
            }
        )
    assert _run(_hard_026(crossguard), resources) == []


def test_declared_objects_are_judged_by_presence() -> None:
    rule = next(r for r in RULES if r.id == "HARD-026")
    declared = {"kind": "Deployment", "spec": {"replicas": 2}}
    assert declares(declared, "spec", "replicas")
    assert not declares({"kind": "Deployment", "spec": {}}, "spec", "replicas")
    assert rule.severity == "mandatory"
