"""The component library and its rules as other stacks get them: wheels, versions in lockstep
(examples: ``test_examples.py``)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import zipfile
from email.message import Message
from email.parser import Parser
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest

import hardened_k8s
import hardened_k8s_rules

from ..conftest import ROOT


def _api_check() -> ModuleType:
    """``scripts/api_check.py``, a script rather than a module of a package."""
    spec = importlib.util.spec_from_file_location("api_check", ROOT / "scripts" / "api_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _wheel(project: str, into: Path) -> tuple[zipfile.ZipFile, Message]:
    """Build ``project``'s wheel: the wheel and its METADATA."""
    # The project's PEP 517 backend, called as `pip wheel --no-build-isolation` calls it, without
    # pip's own start-up (half the time). A fresh process: setuptools patches the interpreter.
    build = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"
    subprocess.run(
        [sys.executable, "-c", build, str(into)], cwd=ROOT / project, check=True, capture_output=True
    )
    (path,) = into.glob("*.whl")
    wheel = zipfile.ZipFile(path)
    meta_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    return wheel, Parser().parsestr(wheel.read(meta_name).decode())


def _sources(project: str, package: str) -> set[str]:
    sources = ROOT / project / "src"
    return {str(p.relative_to(sources)) for p in sources.rglob("*.py")} | {f"{package}/py.typed"}


@pytest.mark.tools
def test_wheel_carries_every_module_types_and_version(tmp_path: Path) -> None:
    wheel, meta = _wheel("components", tmp_path)
    names = set(wheel.namelist())
    expected = _sources("components", "hardened_k8s")
    assert expected <= names, sorted(expected - names)
    assert meta["Name"] == "hardened-k8s" and meta["Version"] == hardened_k8s.__version__
    requires = meta.get_all("Requires-Dist") or []
    core = sorted(re.split(r"[<>=!~; ]", r, maxsplit=1)[0] for r in requires if "extra ==" not in r)
    deploy = ["hardened-k8s-rules", "pulumi", "pulumi-docker", "pulumi-kubernetes", "pydantic"]
    assert core == deploy, requires
    assert f"hardened-k8s-rules=={hardened_k8s.__version__}" in requires
    render = sorted(re.split(r"[<>=!~; ]", r, maxsplit=1)[0] for r in requires if 'extra == "render"' in r)
    assert render == ["PyYAML", "kubernetes-validate"], requires
    assert meta.get_all("Provides-Extra") == ["render"]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = wheel.read(entry_points).decode()
    assert "pulumi-resource-hardened-k8s = hardened_k8s.provider:main" in scripts


@pytest.mark.tools
def test_rules_wheel_carries_the_rules_and_needs_only_pydantic(tmp_path: Path) -> None:
    wheel, meta = _wheel("rules", tmp_path)
    names = set(wheel.namelist())
    expected = _sources("rules", "hardened_k8s_rules")
    assert expected <= names, sorted(expected - names)
    assert not any(n.startswith("hardened_k8s/") for n in names), sorted(names)
    assert meta["Name"] == "hardened-k8s-rules" and meta["Version"] == hardened_k8s.__version__
    assert meta.get_all("Requires-Dist") == ["pydantic<3,>=2.6"]


def test_rules_are_versioned_in_lockstep_with_the_library() -> None:
    """One version for both: the library's ``__version__``, which the rules and the pin repeat."""
    version = hardened_k8s.__version__
    assert hardened_k8s_rules.__version__ == version
    assert metadata.version("hardened-k8s-rules") == metadata.version("hardened-k8s") == version
    assert f"hardened-k8s-rules=={version}" in (metadata.requires("hardened-k8s") or [])
    api_check = _api_check()
    assert api_check.lockstep_problems(api_check.current_version()) == []
    assert api_check.lockstep_problems((0, 0, 1)) == [
        f"rules/src/hardened_k8s_rules/__init__.py has version {version}; set it to 0.0.1, the version "
        "of hardened_k8s (they are released in lockstep)",
        'components/pyproject.toml does not require "hardened-k8s-rules==0.0.1"; pin it exactly',
    ]


@pytest.mark.tools
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
