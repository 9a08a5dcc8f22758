"""The policy pack as the Pulumi CLI runs it: the rules wheel alone, in a fresh virtualenv.

Marked ``install``: it builds the ``hardened-k8s-rules`` wheel, creates a virtualenv with
``python -m venv`` and installs that wheel with the pins of ``policy/requirements.txt``
(pulumi, pulumi-policy, pydantic) from the package index (the versions of
``constraints.txt``), then starts ``policy/`` with that virtualenv's Python, as
``pulumi-analyzer-policy-python`` does, and asks it for its policies and a verdict over the
analyzer protocol.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hardened_k8s_rules.policy import RULES

from ..conftest import ROOT
from ..policy.analyzer import PACK, analyze, analyzer_stub, served_policies
from ..policy.stack import find, hardened_stack

pytestmark = pytest.mark.install


PROBE = """
import importlib.util, json
print(json.dumps({name: importlib.util.find_spec(name) is not None for name in
                  ("pulumi_kubernetes", "pulumi_docker", "kubernetes_validate", "hardened_k8s",
                   "hardened_k8s_rules", "pulumi_policy")}))
"""


@pytest.fixture(scope="module")
def pack_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding the rules wheel, the pack's pinned requirements and their dependencies."""
    tmp = tmp_path_factory.mktemp("pack")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp),
         str(ROOT / "rules")],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp.glob("hardened_k8s_rules-*.whl")
    lines = (PACK / "requirements.txt").read_text().splitlines()
    pins = [line.split("#")[0].strip() for line in lines if "==" in line.split("#")[0]]
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         str(wheel), *pins, "-c", str(ROOT / "constraints.txt")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    return venv


def _site_packages_mb(venv: Path) -> int:
    (site,) = (venv / "lib").glob("python3*/site-packages")
    return sum(f.stat().st_size for f in site.rglob("*") if f.is_file()) // 2**20


def test_the_pack_venv_holds_the_rules_and_no_kubernetes_or_docker_sdk(pack_venv: Path) -> None:
    listed = subprocess.run(
        [str(pack_venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    packages = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(listed.stdout)}
    assert {"pulumi", "pulumi-policy", "pydantic", "hardened-k8s-rules"} <= set(packages), packages
    for absent in ("hardened-k8s", "pulumi-kubernetes", "pulumi-docker", "kubernetes-validate", "jsonschema"):
        assert absent not in packages, sorted(packages)
    probe = subprocess.run(
        [str(pack_venv / "bin" / "python"), "-c", PROBE], capture_output=True, text=True, check=True
    )
    found = json.loads(probe.stdout)
    assert found == {
        "pulumi_kubernetes": False,
        "pulumi_docker": False,
        "kubernetes_validate": False,
        "hardened_k8s": False,
        "hardened_k8s_rules": True,
        "pulumi_policy": True,
    }, found
    # 96 MB (pip and setuptools 24 of them); installing the library brought 167 MB, of which
    # pulumi-kubernetes alone was 64 MB (policy/README.md).
    assert _site_packages_mb(pack_venv) < 120


@pytest.fixture(scope="module")
def analyzer(pack_venv: Path) -> Iterator[Any]:
    with analyzer_stub(pack_venv / "bin" / "python") as stub:
        yield stub


def test_the_rules_wheel_alone_serves_every_policy(analyzer: Any) -> None:
    assert list(served_policies(analyzer).items()) == [(rule.id, rule.severity) for rule in RULES]
    deployment = find(hardened_stack(), "Deployment")
    assert analyze(analyzer, deployment) == []
    deployment["spec"]["template"]["spec"]["hostPID"] = True
    ((policy, level, message),) = analyze(analyzer, deployment)
    assert (policy, level) == ("PSS-002", "mandatory")
    assert "spec.template.spec.hostPID: is true" in message
