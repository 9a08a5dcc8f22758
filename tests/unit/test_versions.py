"""Every advertised ``kubernetesVersion`` renders objects that pass that version's schema and
the policy: the range the config accepts is the range that works."""

from __future__ import annotations

import pytest

from hardened_k8s.autoscaling import UNHEALTHY_POD_EVICTION_POLICY_SINCE
from hardened_k8s.config import SUPPORTED_KUBERNETES_VERSIONS
from hardened_k8s.render import CheckSettings, check, manifests

from ..conftest import run_stack, stack_file_config

# dev at every version; prod (production rules, topology spread) at both ends of the range.
CASES = [("dev", v) for v in SUPPORTED_KUBERNETES_VERSIONS] + [
    ("prod", SUPPORTED_KUBERNETES_VERSIONS[0]),
    ("prod", SUPPORTED_KUBERNETES_VERSIONS[-1]),
]


@pytest.mark.parametrize(("stack", "version"), CASES)
def test_every_supported_version_passes_schema_and_policy(stack: str, version: str) -> None:
    config = stack_file_config(stack)
    config["kubernetesVersion"] = version
    objects = manifests(run_stack(stack, config))
    production = bool(config.get("production"))
    checks = check(objects, CheckSettings(kubernetes_version=version, production=production))
    assert not checks.schema_errors, [str(e) for e in checks.schema_errors]
    assert not checks.report.failed, checks.text()
    # The PDB's unhealthyPodEvictionPolicy: refused by 1.25, dropped by 1.26 (alpha, gate off).
    minor = tuple(int(p) for p in version.split("."))
    expected = "AlwaysAllow" if minor >= UNHEALTHY_POD_EVICTION_POLICY_SINCE else None
    pdbs = [o.manifest for o in objects if o.manifest["kind"] == "PodDisruptionBudget"]
    assert pdbs
    assert {p["spec"].get("unhealthyPodEvictionPolicy") for p in pdbs} == {expected}
