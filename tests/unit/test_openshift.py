"""``securityProfile: openshift-restricted-v2``: the prod stack rendered by the real program.

The profile changes what a pod may set (ids, DNS, the namespace's labels), nothing that
differs between the stacks (replicas, resources, protection, names): the prod stack, whose
production rules are a superset of dev's, stands for both, and
:func:`test_default_profile_differs_only_where_the_profile_says` pins that the profile
changes nothing else. A program with its own config meets the profile through the same
Args (``tests/unit/test_api.py``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from hardened_k8s.render import check, check_settings
from hardened_k8s_rules.policy import format_report
from hardened_k8s_rules.profiles import OPENSHIFT

from ..conftest import ROOT, Rendered, run_stack, stack_file_config

ID_KEYS = ("runAsUser", "runAsGroup", "fsGroup")


STACK = "prod"


@pytest.fixture(scope="module")
def openshift() -> Rendered:
    """The prod stack rendered with the OpenShift profile."""
    config = stack_file_config(STACK)
    config["securityProfile"] = OPENSHIFT
    return Rendered(run_stack(STACK, config))


def _pods(stack: Rendered) -> list[tuple[str, dict[str, Any]]]:
    return [(w["metadata"]["name"], w["spec"]["template"]["spec"]) for w in stack.pod_workloads()]


def test_no_fixed_ids_and_still_non_root(openshift: Rendered) -> None:
    pods = _pods(openshift)
    assert len(pods) == 3
    for name, spec in pods:
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not set(ID_KEYS) & set(context), (name, context)
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert not {"runAsUser", "runAsGroup"} & set(sc), (name, sc)
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False


def test_dns_egress_goes_to_openshift_dns_on_5353(openshift: Rendered) -> None:
    egress = openshift.get("NetworkPolicy", "allow-dns")["spec"]["egress"]
    assert egress == [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openshift-dns"}},
                    "podSelector": {"matchLabels": {"dns.operator.openshift.io/daemonset-dns": "default"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 5353}, {"protocol": "TCP", "port": 5353}],
        }
    ]


def test_namespace_keeps_its_declared_psa_labels(openshift: Rendered) -> None:
    (namespace,) = openshift.all("Namespace")
    labels = namespace["metadata"]["labels"]
    assert labels["security.openshift.io/scc.podSecurityLabelSync"] == "false"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_passes_schema_and_every_rule_of_its_profile(openshift: Rendered) -> None:
    settings = replace(check_settings(ROOT, STACK), security_profile=OPENSHIFT)
    checks = check(openshift.objects, settings)
    assert checks.schema_errors == ()
    assert checks.report.violations == (), format_report(checks.report)
    # Checked against the default profile instead, the missing ids are what fails.
    default = check(openshift.objects, check_settings(ROOT, STACK))
    assert {v.rule_id for v in default.report.violations} == {"HARD-005"}


def test_default_profile_differs_only_where_the_profile_says(openshift: Rendered, rendered: Any) -> None:
    default = rendered(STACK)

    def by_name(objects: Rendered) -> dict[tuple[str, str], dict[str, Any]]:
        return {(o.manifest["kind"], o.manifest["metadata"]["name"]): o.manifest for o in objects.objects}

    ours, theirs = by_name(openshift), by_name(default)
    assert ours.keys() == theirs.keys()
    differing = {key for key in ours if ours[key] != theirs[key]}
    expected = {(w["kind"], w["metadata"]["name"]) for w in default.pod_workloads()}
    expected |= {
        ("Namespace", default.all("Namespace")[0]["metadata"]["name"]),
        ("NetworkPolicy", "allow-dns"),
    }
    assert differing == expected


def test_unknown_profile_names_the_key() -> None:
    config = stack_file_config("dev")
    config["securityProfile"] = "openshift"
    with pytest.raises(Exception) as info:
        run_stack("dev", config)
    assert "securityProfile" in str(info.value)
    assert "openshift-restricted-v2" in str(info.value)
