"""The CrossGuard pack runs the same rules through pulumi-policy's own types and protocol."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from hardened_k8s_rules.policy import RULES, RULES_BY_ID, Exemption
from hardened_k8s_rules.profiles import PROFILES

from .analyzer import PACK, analyze, analyzer_stub, served_policies
from .stack import Obj, find, hardened_stack, openshift_stack


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, PACK / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def crossguard() -> ModuleType:
    return _load("crossguard")


@pytest.fixture(scope="module")
def policies(crossguard: ModuleType) -> dict[str, Any]:
    return {p.name: p for p in crossguard.build_policies()}


def _type_token(obj: Obj) -> str:
    group, _, version = obj["apiVersion"].rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"


def _urn(obj: Obj) -> str:
    return f"urn:pulumi:dev::store-inventory::{_type_token(obj)}::{obj['metadata']['name']}"


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _props(obj: Obj, *, strip_type: bool = True) -> Any:
    props = {k: v for k, v in obj.items() if not (strip_type and k in ("apiVersion", "kind"))}
    return unknown_checking_proxy(json.loads(json.dumps(props)))


def _validate_resource(
    policy: ResourceValidationPolicy, obj: Obj, config: dict[str, Any] | None = None
) -> list[str]:
    found: list[str] = []
    args = ResourceValidationArgs(
        _type_token(obj), _props(obj), _urn(obj), obj["metadata"]["name"], _opts(), None, config
    )

    def report(message: str, urn: str | None = None) -> None:
        found.append(message)

    policy.validate(args, report)
    return found


def _validate_stack(
    policy: StackValidationPolicy, objs: list[Obj], config: dict[str, Any] | None = None
) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    resources = [
        PolicyResource(_type_token(o), _props(o), _urn(o), o["metadata"]["name"], _opts(), None, None, [], {})
        for o in objs
    ]

    def report(message: str, urn: str | None = None) -> None:
        found.append((message, urn))

    policy.validate(StackValidationArgs(resources, config), report)
    return found


def test_one_policy_per_rule_with_severity_as_enforcement(policies: dict[str, Any]) -> None:
    assert list(policies) == [r.id for r in RULES]
    for rule in RULES:
        policy = policies[rule.id]
        expected = EnforcementLevel.MANDATORY if rule.severity == "mandatory" else EnforcementLevel.ADVISORY
        assert policy.enforcement_level == expected, rule.id
        assert isinstance(
            policy, ResourceValidationPolicy if hasattr(rule, "kinds") else StackValidationPolicy
        )


def test_hardened_stack_passes_every_policy(policies: dict[str, Any]) -> None:
    objs = hardened_stack()
    production = {"production": True}
    for rule in RULES:
        policy = policies[rule.id]
        config = production if rule.production_only else None
        if isinstance(policy, ResourceValidationPolicy):
            for obj in objs:
                assert _validate_resource(policy, obj, config) == [], f"{rule.id} on {_urn(obj)}"
        else:
            assert _validate_stack(policy, objs, config) == [], rule.id


def test_resource_policy_reports_field_path(policies: dict[str, Any]) -> None:
    deployment = find(hardened_stack(), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    [message] = _validate_resource(policies["PSS-003"], deployment)
    assert message.startswith("spec.template.spec.containers[api].securityContext.privileged: is true")
    assert "Fix: " in message


def test_resource_policy_honours_exemption_config(policies: dict[str, Any]) -> None:
    deployment = find(hardened_stack(), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    config = {"exemptions": [{"resource": "Deployment/store-api", "reason": "Needs a device."}]}
    assert _validate_resource(policies["PSS-003"], deployment, config) == []
    with pytest.raises(ValueError, match="reason"):
        _validate_resource(policies["PSS-003"], deployment, {"exemptions": [{"resource": "Deployment/x"}]})


def test_stack_policy_reports_urn_of_named_object(policies: dict[str, Any]) -> None:
    objs = hardened_stack()
    objs.remove(find(objs, "NetworkPolicy", "default-deny"))
    [(message, urn)] = _validate_stack(policies["HARD-019"], objs)
    assert "no default-deny NetworkPolicy" in message
    assert urn == _urn(find(objs, "Namespace"))


def test_production_policies_need_production_config(policies: dict[str, Any]) -> None:
    objs = hardened_stack()
    find(objs, "HorizontalPodAutoscaler")["spec"]["minReplicas"] = 1
    assert _validate_stack(policies["HARD-032"], objs) == []
    assert len(_validate_stack(policies["HARD-032"], objs, {"production": True})) == 1


def test_unknown_values_raise_only_where_read(policies: dict[str, Any]) -> None:
    deployment = find(hardened_stack(), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = UNKNOWN_STRING_VALUE
    assert _validate_resource(policies["PSS-014"], deployment) == []
    with pytest.raises(UnknownValueError):
        _validate_resource(policies["HARD-011"], deployment)


def _stack_project(tmp_path: Path, production: str) -> Path:
    """A project whose stack file holds values as `pulumi config set` writes them (strings)."""
    (tmp_path / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    (tmp_path / "Pulumi.prod.yaml").write_text(
        "config:\n"
        f"  shop:production: {production}\n"
        '  shop:kubernetesVersion: "1.31"\n'
        "  shop:policyExemptions:\n"
        "    - {rule: HARD-001, resource: StatefulSet/db, namespace: shop, reason: Socket dir.}\n"
    )
    return tmp_path


def test_profile_policies_follow_the_pack_config(policies: dict[str, Any], crossguard: ModuleType) -> None:
    config = crossguard.pack_config([], production=False, security_profile="openshift-restricted-v2")
    profiled = {rule_id for rule_id, entry in config.items() if "securityProfile" in entry}
    assert profiled == {r.id for r in RULES if r.profiles != frozenset(PROFILES)} == {"HARD-005", "HARD-039"}
    assert crossguard.pack_config([], production=False) == {}
    unset = find(openshift_stack(), "Deployment")
    fixed = find(hardened_stack(), "Deployment")
    # The default profile wants fixed ids; OpenShift's refuses them.
    assert _validate_resource(policies["HARD-005"], unset)
    assert _validate_resource(policies["HARD-005"], unset, config["HARD-005"]) == []
    assert _validate_resource(policies["HARD-039"], fixed) == []
    assert _validate_resource(policies["HARD-039"], fixed, config["HARD-039"])
    assert _validate_resource(policies["HARD-039"], unset, config["HARD-039"]) == []


@pytest.mark.parametrize(("written", "production"), [('"true"', True), ("true", True), ('"false"', False)])
def test_pack_config_from_stack_file(
    crossguard: ModuleType, tmp_path: Path, written: str, production: bool
) -> None:
    pack_config = _load("pack_config")
    project = _stack_project(tmp_path, written)
    config = pack_config.config_for_stack(project, "prod")
    assert config["HARD-001"] == {
        "exemptions": [{"resource": "StatefulSet/db", "namespace": "shop", "reason": "Socket dir."}]
    }
    on = {k for k, v in config.items() if v.get("production")}
    assert on == ({r.id for r in RULES if r.production_only} if production else set()), written
    # The render reads the same keys the same way.
    from hardened_k8s.render import check_settings

    assert check_settings(project, "prod").production is production
    # The generated entries satisfy the policy's own config schema and the model.
    schema = crossguard._config_schema(RULES_BY_ID["HARD-001"]).properties["exemptions"]
    assert set(schema["items"]["required"]) <= set(config["HARD-001"]["exemptions"][0])
    Exemption.model_validate({**config["HARD-001"]["exemptions"][0], "rule": "HARD-001"})


def test_pack_config_refuses_a_bad_stack_file(
    crossguard: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack_config = _load("pack_config")
    project = _stack_project(tmp_path, '"maybe"')
    assert pack_config.main([str(project / "Pulumi.prod.yaml")]) == 2
    assert "production: " in capsys.readouterr().err
    assert pack_config.main([str(project / "Pulumi.staging.yaml")]) == 2
    err = capsys.readouterr().err
    assert "--stack: 'staging' has no stack file" in err and "use one of: prod" in err


@pytest.fixture(scope="module")
def analyzer() -> Iterator[Any]:
    with analyzer_stub(sys.executable) as stub:
        yield stub


@pytest.mark.tools
def test_pack_serves_the_analyzer_protocol(analyzer: Any) -> None:
    assert list(served_policies(analyzer).items()) == [(r.id, r.severity) for r in RULES]
    deployment = find(hardened_stack(), "Deployment")
    assert analyze(analyzer, deployment) == []
    deployment["spec"]["template"]["spec"]["hostNetwork"] = True
    ((policy, level, message),) = analyze(analyzer, deployment)
    assert (policy, level) == ("PSS-002", "mandatory")
    assert "spec.template.spec.hostNetwork: is true" in message
