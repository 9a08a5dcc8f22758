"""The library as another team installs it: the wheel, without extras, in a fresh virtualenv.

Marked ``install``: it builds the wheel and that of the ``hardened-k8s-rules`` it requires
(not on a package index), creates a virtualenv with ``python -m venv`` and installs both with
pip, other dependencies from the package index (the versions of ``constraints.txt``); about
half a minute with pip's cache warm.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hardened_k8s

from ..conftest import ROOT

pytestmark = pytest.mark.install

CHECK = textwrap.dedent(
    """
    import importlib.util, json, sys
    import hardened_k8s
    from hardened_k8s import (
        HardenedService, HardenedServiceArgs, PostgreSQLArgs, SecureNamespace, SecureNamespaceArgs,
        ServiceImageArgs, SslMode, StackConfig,
    )
    from hardened_k8s.mock_engine import run_mocked
    from hardened_k8s_rules.policy.rules import RULES
    assert RULES
    assert importlib.util.find_spec("hardened_k8s.policy") is None  # 0.1's path, dropped in 0.2.0

    ref = "quay.io/org/app@sha256:" + "a" * 64
    args = HardenedServiceArgs(namespace="shop", image=ref, port=8000, autoscaling={"max_replicas": 4})
    database = PostgreSQLArgs(namespace="shop", image=ref, password="pw", sslmode=SslMode.VERIFY_FULL)
    image = ServiceImageArgs(context=".", repository="quay.io/org/app", tags=["sha-0000000"])
    services = {"api": {"image": {"ref": ref}, "port": 80}}
    StackConfig.model_validate({"namespace": "shop", "kubernetesVersion": "1.33", "services": services})

    def program():
        namespace = SecureNamespace("shop", SecureNamespaceArgs(namespace="shop"))
        HardenedService("api", {**args, "namespace": namespace.namespace_name})

    run = run_mocked(program)
    try:
        import hardened_k8s.render
        render = "imported"
    except ModuleNotFoundError as error:
        render = str(error)
    print(json.dumps({
        "version": hardened_k8s.__version__,
        "kinds": sorted({r.type for r in run.registrations}),
        "kubernetes_validate": importlib.util.find_spec("kubernetes_validate") is not None,
        "render": render,
    }))
    """
)


def test_a_plain_install_deploys_and_leaves_the_render_to_its_extra(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(ROOT / "components"), str(ROOT / "rules")],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("hardened_k8s-*.whl")
    (rules_wheel,) = tmp_path.glob("hardened_k8s_rules-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         str(wheel), str(rules_wheel), "-c", str(ROOT / "constraints.txt")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True
    )
    packages = {line.split("==")[0].lower().replace("_", "-") for line in listed.stdout.split()}
    assert {
        "pulumi",
        "pulumi-kubernetes",
        "pulumi-docker",
        "pydantic",
        "hardened-k8s",
        "hardened-k8s-rules",
    } <= packages
    assert "kubernetes-validate" not in packages and "jsonschema" not in packages, sorted(packages)
    assert (venv / "bin" / "pulumi-resource-hardened-k8s").is_file()

    result = subprocess.run([str(python), "-c", CHECK], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["version"] == hardened_k8s.__version__
    assert "hardened-k8s:index:HardenedService" in report["kinds"]
    assert "kubernetes:apps/v1:Deployment" in report["kinds"]
    assert report["kubernetes_validate"] is False
    # The first of the extra's packages the schema check imports is the one named.
    assert re.fullmatch(
        r"hardened_k8s\.schema needs the 'render' extra of hardened-k8s "
        r"\((jsonschema|kubernetes_validate) is not installed\); "
        r"install it with: pip install 'hardened-k8s\[render\]'",
        report["render"],
    ), report["render"]
