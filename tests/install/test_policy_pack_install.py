"""The policy pack as the Pulumi CLI runs it: the rules wheel alone, in a fresh virtualenv.

Marked ``install``: it builds the ``hardened-k8s-rules`` wheel, creates a virtualenv with
``python -m venv`` and installs that wheel with the pins of ``policy/requirements.txt``
(pulumi, pulumi-policy, pydantic) from the package index (the versions of
``constraints.txt``), then starts ``policy/`` with that virtualenv's Python, as
``pulumi-analyzer-policy-python`` does, and asks it for its policies over the analyzer protocol.
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

pytestmark = pytest.mark.install

PACK = ROOT / "policy"

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
    """The pack started by the venv's Python in its directory, reached over its gRPC protocol."""
    import grpc  # type: ignore[import-untyped,unused-ignore]
    from pulumi.runtime.proto import analyzer_pb2_grpc

    proc = subprocess.Popen(
        [str(pack_venv / "bin" / "python"), "-u", "__main__.py"],
        cwd=PACK, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().decode().strip()
        if not port.isdigit():
            proc.kill()
            pytest.fail(f"policy pack did not start: {proc.communicate()[1].decode()[-2000:]}")
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_rules_wheel_alone_serves_every_policy(analyzer: Any) -> None:
    from google.protobuf import empty_pb2, json_format  # type: ignore[import-untyped,unused-ignore]
    from pulumi.runtime.proto import analyzer_pb2

    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=10)
    assert info.name == "hardened-k8s"
    assert [p.name for p in info.policies] == [rule.id for rule in RULES]
    mandatory = {p.name for p in info.policies if p.enforcementLevel == analyzer_pb2.MANDATORY}
    assert mandatory == {rule.id for rule in RULES if rule.severity == "mandatory"}

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug", "namespace": "shop"},
           "spec": {"hostPID": True, "containers": [{"name": "c", "image": "busybox"}]}}  # fmt: skip
    request = analyzer_pb2.AnalyzeRequest(
        type="kubernetes:core/v1:Pod", urn="urn:pulumi:dev::shop::kubernetes:core/v1:Pod::debug", name="debug"
    )
    json_format.ParseDict(pod, request.properties)
    response = analyzer.Analyze(request, timeout=10)
    found = {d.policyName: d.message for d in response.diagnostics}
    assert "hostPID" in found.get("PSS-002", ""), found
