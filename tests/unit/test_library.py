"""The component library as other stacks get it: a wheel, and an example project using it."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import hardened_k8s
from hardened_k8s.render import main

from ..conftest import ROOT

EXAMPLE = ROOT / "examples" / "minimal-service"


def test_wheel_carries_every_module_types_and_version(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(ROOT / "components")],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("hardened_k8s-*.whl")
    assert wheel.name.startswith(f"hardened_k8s-{hardened_k8s.__version__}-py3-none-any")
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = ROOT / "components" / "src"
    expected = {str(p.relative_to(sources)) for p in sources.rglob("*.py")} | {"hardened_k8s/py.typed"}
    assert expected <= names, sorted(expected - names)
    meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
    meta = Parser().parsestr(zipfile.ZipFile(wheel).read(meta_name).decode())
    assert meta["Version"] == hardened_k8s.__version__
    requires = " ".join(meta.get_all("Requires-Dist") or [])
    for dependency in ("pulumi", "pulumi-kubernetes", "pulumi-docker", "pydantic"):
        assert dependency in requires, dependency


def test_version_is_semantic_and_in_the_changelog() -> None:
    version = hardened_k8s.__version__
    assert len(version.split(".")) == 3 and all(part.isdigit() for part in version.split("."))
    assert f"## {version}" in (ROOT / "components" / "CHANGELOG.md").read_text()


def test_example_installs_the_library_as_a_package() -> None:
    assert "sys.path" not in (EXAMPLE / "__main__.py").read_text()
    report = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-build-isolation",
         "--quiet", "--report", "-", "-r", "requirements.txt"],
        cwd=EXAMPLE, check=True, capture_output=True, text=True,
    )  # fmt: skip
    installs = {i["metadata"]["name"]: i["metadata"]["version"] for i in json.loads(report.stdout)["install"]}
    assert installs.get("hardened-k8s") == hardened_k8s.__version__, installs


def test_example_project_renders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "build"
    assert main(["--stack", "dev", "--project-dir", str(EXAMPLE), "--out", str(out)]) == 0
    files = sorted(p.name for p in (out / "dev").iterdir())
    assert "deployment-hello.yaml" in files and "namespace-hello-dev.yaml" in files
    assert "dns: hello.hello-dev.svc.cluster.local" in capsys.readouterr().out
