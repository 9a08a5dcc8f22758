"""The component library as other stacks get it: a wheel (examples: ``test_examples.py``)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import hardened_k8s

from ..conftest import ROOT


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
