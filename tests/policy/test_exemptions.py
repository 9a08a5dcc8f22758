"""The policyExemptions model: strict, reasoned, and applied by the engine."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hardened_k8s_rules.policy import EXEMPTION_LIST, Exemption, evaluate, format_report

from .stack import find, hardened_stack


def _entry(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "rule": "HARD-001",
        "resource": "Deployment/store-api",
        "reason": "The vendor image writes to /app at start; fixed in the next release.",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def _error(raw: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        Exemption.model_validate(raw)
    return str(info.value)


def test_valid_entry() -> None:
    ex = Exemption.model_validate(_entry(namespace="store"))
    assert (ex.rule, ex.resource, ex.namespace) == ("HARD-001", "Deployment/store-api", "store")


def test_missing_reason_names_key_and_fix() -> None:
    message = _error(_entry(reason=None))
    assert "reason" in message and "say why" in message


@pytest.mark.parametrize("reason", ["", "   "])
def test_empty_reason_names_key_and_fix(reason: str) -> None:
    message = _error(_entry(reason=reason))
    assert "reason: is missing or empty" in message and "say why" in message


def test_unknown_rule_names_key_and_choices() -> None:
    message = _error(_entry(rule="HARD-999"))
    assert "rule: 'HARD-999' is not a known rule id" in message
    assert "PSS-001" in message


def test_bad_resource_reference() -> None:
    message = _error(_entry(resource="store-api"))
    assert "resource: 'store-api' is not '<Kind>/<name>'" in message


def test_unknown_key_is_refused() -> None:
    message = _error(_entry(expires="2027-01-01"))
    assert "expires" in message and "Extra inputs are not permitted" in message


def test_list_error_locates_entry() -> None:
    with pytest.raises(ValidationError) as info:
        EXEMPTION_LIST.validate_python([_entry(), _entry(reason="")])
    assert info.value.errors()[0]["loc"] == (1, "reason")


def _broken_stack() -> list[dict[str, Any]]:
    objs = hardened_stack()
    api = find(objs, "Deployment", "store-api")
    api["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    return objs


def test_exemption_waives_mandatory_finding_and_keeps_reason() -> None:
    plain = evaluate(_broken_stack(), production=False)
    assert plain.failed and [v.rule_id for v in plain.violations] == ["HARD-001"]
    exemption = Exemption.model_validate(_entry(namespace="store"))
    report = evaluate(_broken_stack(), production=False, exemptions=[exemption])
    assert not report.failed
    assert [e.violation.rule_id for e in report.exempted] == ["HARD-001"]
    assert report.exempted[0].reason == exemption.reason
    text = format_report(report)
    assert "EXEMPTED (1)" in text and exemption.reason in text and "policy passed" in text


def test_exemption_for_other_namespace_or_resource_does_not_apply() -> None:
    for entry in (_entry(namespace="other"), _entry(resource="Deployment/other")):
        report = evaluate(_broken_stack(), production=False, exemptions=[Exemption.model_validate(entry)])
        assert report.failed
        assert len(report.unused_exemptions) == 1
        assert "UNUSED EXEMPTIONS (1)" in format_report(report)


def test_report_is_deterministic() -> None:
    objs = _broken_stack()
    find(objs, "Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/warn"] = "baseline"
    first = format_report(evaluate(objs, production=True))
    second = format_report(evaluate(list(reversed(objs)), production=True))
    assert first == second
    assert first.splitlines()[0] == "MANDATORY (2)"
    assert first.splitlines()[-1].startswith("policy FAILED (production): 2 mandatory")


@pytest.mark.parametrize(
    ("rule", "breaks"),
    [
        (
            "HARD-013",
            lambda objs: find(objs, "Deployment", "store-api")["spec"]["template"]["spec"]["containers"][
                0
            ].update({"imagePullPolicy": "IfNotPresent"}),
        ),
        (
            "HARD-040",
            lambda objs: find(objs, "Deployment", "store-api")["spec"]["template"]["spec"].pop("affinity"),
        ),
    ],
)
def test_pull_policy_and_anti_affinity_exemptions_name_their_entry(rule: str, breaks: Any) -> None:
    """The new rules fail production like any mandatory rule, and the exemption that waives one is
    named by its place in policyExemptions, next to its reason."""
    objs = hardened_stack()
    breaks(objs)
    assert [v.rule_id for v in evaluate(objs, production=True).violations] == [rule]
    entries = [
        Exemption.model_validate(_entry(resource="Deployment/other")),
        Exemption.model_validate(_entry(rule=rule, reason="Tracked in the platform backlog.")),
    ]
    report = evaluate(objs, production=True, exemptions=entries)
    assert not report.failed
    assert [(e.violation.rule_id, e.entry) for e in report.exempted] == [(rule, 1)]
    assert "reason (policyExemptions[1]): Tracked in the platform backlog." in format_report(report)
