"""The hardening rules as Pulumi CrossGuard policies: one policy per rule, same functions.

Object rules become ``ResourceValidationPolicy`` on Kubernetes resource types, stack rules
``StackValidationPolicy`` over every Kubernetes resource of the stack. The enforcement level
is the rule's severity. Exemptions, the production switch and the security profile come from
the policy pack's config (``--policy-pack-config``), one key per rule id; see README.md.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, cast

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from hardened_k8s_rules.policy import RULES, Exemption, ObjectRule, Rule, StackIndex, StackRule
from hardened_k8s_rules.policy.objects import K8sObject, kind_of, name_of, namespace_of
from hardened_k8s_rules.profiles import DEFAULT_PROFILE, PROFILES, SecurityProfile

PACK_NAME = "hardened-k8s"

_EXEMPTIONS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": "Resources this rule is waived for, each with the reason.",
    "items": {
        "type": "object",
        "properties": {
            "resource": {"type": "string", "description": "<Kind>/<name>, e.g. Deployment/store-api"},
            "namespace": {"type": "string", "description": "Namespace; any when omitted"},
            "reason": {"type": "string", "minLength": 1, "description": "Why; shown in reports"},
        },
        "required": ["resource", "reason"],
        "additionalProperties": False,
    },
}
_PRODUCTION_SCHEMA: dict[str, Any] = {
    "type": "boolean",
    "default": False,
    "description": "Run this production-only rule (set true in the production stack's config).",
}
_PROFILE_SCHEMA: dict[str, Any] = {
    "type": "string",
    "enum": list(PROFILES),
    "default": DEFAULT_PROFILE,
    "description": "The stack's securityProfile; this rule runs only for some profiles.",
}


def object_from_resource(resource_type: str, props: Mapping[str, Any], name: str) -> K8sObject | None:
    """The Kubernetes object a ``kubernetes:<group>/<version>:<Kind>`` resource declares.

    ``apiVersion``/``kind`` come from the type token when the property bag lacks them, and
    ``metadata.name`` from the resource name when it is auto-named. The properties are
    layered, not copied, so values unknown during preview raise only when a rule reads them.
    Returns ``None`` for other types (providers, YAML/Helm components).
    """
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
        return None
    group, _, version = parts[1].partition("/")
    api_version = version if group == "core" else f"{group}/{version}"
    # ChainMap only reads through its layers; the casts satisfy its MutableMapping signature.
    metadata = props.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    if not metadata.get("name"):
        metadata = ChainMap({"name": name}, cast(MutableMapping[str, Any], metadata))
    return ChainMap(
        {"metadata": metadata},
        cast(MutableMapping[str, Any], props),
        {"apiVersion": api_version, "kind": parts[2]},
    )


def _exemptions(rule: Rule, config: Mapping[str, Any]) -> list[Exemption]:
    """The rule's exemptions from its policy config, validated by the stack config's model."""
    return [Exemption.model_validate({**entry, "rule": rule.id}) for entry in config.get("exemptions") or []]


def _exempted(exemptions: Sequence[Exemption], rule: Rule, obj: K8sObject) -> bool:
    return any(e.matches(rule.id, kind_of(obj), name_of(obj), namespace_of(obj)) for e in exemptions)


def _enabled(rule: Rule, config: Mapping[str, Any]) -> bool:
    if rule.production_only and config.get("production") is not True:
        return False
    return config.get("securityProfile", DEFAULT_PROFILE) in rule.profiles


def _object_policy(rule: ObjectRule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        config = args.get_config()
        if not _enabled(rule, config):
            return
        obj = object_from_resource(args.resource_type, args.props, args.name)
        if obj is None or kind_of(obj) not in rule.kinds:
            return
        if _exempted(_exemptions(rule, config), rule, obj):
            return
        for problem in rule.check(obj):
            report_violation(f"{problem}\nFix: {rule.fix}", None)

    return ResourceValidationPolicy(validate=validate, **_policy_fields(rule))


def _stack_policy(rule: StackRule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        config = args.get_config()
        if not _enabled(rule, config):
            return
        objs: list[K8sObject] = []
        urns: dict[int, str] = {}
        for resource in args.resources:
            obj = object_from_resource(resource.resource_type, resource.props, resource.name)
            if obj is not None:
                objs.append(obj)
                urns[id(obj)] = resource.urn
        exemptions = _exemptions(rule, config)
        # Each stack policy is its own call from the engine: one index per policy, built
        # once, keeps the rule linear in the number of resources.
        for obj, problem in rule.check(StackIndex(objs)):
            if not _exempted(exemptions, rule, obj):
                report_violation(f"{problem}\nFix: {rule.fix}", urns.get(id(obj)))

    return StackValidationPolicy(validate=validate, **_policy_fields(rule))


def _policy_fields(rule: Rule) -> dict[str, Any]:
    """What a policy says about itself, the same for object and stack rules."""
    return {
        "name": rule.id,
        "description": f"{rule.title}. {rule.message}",
        "enforcement_level": _level(rule),
        "config_schema": _config_schema(rule),
        "remediation_steps": rule.fix,
    }


def _level(rule: Rule) -> EnforcementLevel:
    return EnforcementLevel.MANDATORY if rule.severity == "mandatory" else EnforcementLevel.ADVISORY


def _config_schema(rule: Rule) -> PolicyConfigSchema:
    properties = {"exemptions": _EXEMPTIONS_SCHEMA}
    if rule.production_only:
        properties["production"] = _PRODUCTION_SCHEMA
    if rule.profiles != frozenset(PROFILES):
        properties["securityProfile"] = _PROFILE_SCHEMA
    return PolicyConfigSchema(properties=properties)


def build_policies() -> list[Policy]:
    """One CrossGuard policy per registered rule, in id order."""
    policies: list[Policy] = []
    for rule in RULES:
        if isinstance(rule, ObjectRule):
            policies.append(_object_policy(rule))
        elif isinstance(rule, StackRule):
            policies.append(_stack_policy(rule))
        else:
            raise TypeError(f"{rule.id}: unknown rule type {type(rule).__name__}")
    return policies


def pack_config(
    exemptions: Sequence[Exemption],
    *,
    production: bool,
    security_profile: SecurityProfile = DEFAULT_PROFILE,
) -> dict[str, dict[str, Any]]:
    """Policy pack config (``--policy-pack-config`` JSON) for a stack's exemptions.

    Keys are rule ids; each exemption goes under its rule, production-only rules get
    ``production`` switched on for production stacks, and the rules of some security
    profiles only get the stack's ``securityProfile`` when it is not the default.
    """
    config: dict[str, dict[str, Any]] = {}
    for rule in RULES:
        if rule.production_only and production:
            config.setdefault(rule.id, {})["production"] = True
        if rule.profiles != frozenset(PROFILES) and security_profile != DEFAULT_PROFILE:
            config.setdefault(rule.id, {})["securityProfile"] = security_profile
    for exemption in exemptions:
        entry = exemption.model_dump(by_alias=True, exclude_none=True, exclude={"rule"})
        config.setdefault(exemption.rule, {}).setdefault("exemptions", []).append(entry)
    return config
