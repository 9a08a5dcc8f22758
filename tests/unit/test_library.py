"""The component library as other stacks get it: a wheel (examples: ``test_examples.py``)."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import hardened_k8s

from ..conftest import ROOT


def test_wheel_carries_every_module_types_and_version(tmp_path: Path) -> None:
    # The project's PEP 517 backend, called as `pip wheel --no-build-isolation` calls it, without
    # pip's own start-up (half the time). A fresh process: setuptools patches the interpreter.
    build = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"
    subprocess.run(
        [sys.executable, "-c", build, str(tmp_path)], cwd=ROOT / "components", check=True, capture_output=True
    )
    (wheel,) = tmp_path.glob("hardened_k8s-*.whl")
    assert wheel.name.startswith(f"hardened_k8s-{hardened_k8s.__version__}-py3-none-any")
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = ROOT / "components" / "src"
    expected = {str(p.relative_to(sources)) for p in sources.rglob("*.py")} | {"hardened_k8s/py.typed"}
    assert expected <= names, sorted(expected - names)
    meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
    meta = Parser().parsestr(zipfile.ZipFile(wheel).read(meta_name).decode())
    assert meta["Version"] == hardened_k8s.__version__
    requires = meta.get_all("Requires-Dist") or []
    core = sorted(re.split(r"[<>=!~; ]", r, maxsplit=1)[0] for r in requires if "extra ==" not in r)
    assert core == ["pulumi", "pulumi-docker", "pulumi-kubernetes", "pydantic"], requires
    render = sorted(re.split(r"[<>=!~; ]", r, maxsplit=1)[0] for r in requires if 'extra == "render"' in r)
    assert render == ["PyYAML", "kubernetes-validate"], requires
    assert meta.get_all("Provides-Extra") == ["render"]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "pulumi-resource-hardened-k8s = hardened_k8s.provider:main" in scripts


def test_the_render_names_the_extra_it_needs() -> None:
    """Without the render extra, importing the render says which extra and how to install it."""
    blocked = "import sys; sys.modules['kubernetes_validate'] = None; import hardened_k8s.render"
    result = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "ModuleNotFoundError: hardened_k8s.schema needs the 'render' extra of hardened-k8s "
        "(kubernetes_validate is not installed); install it with: pip install 'hardened-k8s[render]'"
    ), result.stderr


def test_version_is_semantic_and_in_the_changelog() -> None:
    version = hardened_k8s.__version__
    assert len(version.split(".")) == 3 and all(part.isdigit() for part in version.split("."))
    assert f"## {version}" in (ROOT / "components" / "CHANGELOG.md").read_text()
