"""The offline render command: files, summary, exit codes, repeatability."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from hardened_k8s.render import main

from ..conftest import ROOT


def project_copy(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "__main__.py"):
        shutil.copy(ROOT / name, project / name)
    (project / "services").symlink_to(ROOT / "services")
    return project


def test_render_writes_every_object_and_prints_a_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "build"
    assert main(["--stack", "dev", "--out", str(out), "--project-dir", str(ROOT)]) == 0
    printed = capsys.readouterr().out
    files = sorted(p.name for p in (out / "dev").iterdir())
    assert (
        "deployment-store-inventory.yaml" in files and "statefulset-store-inventory-postgresql.yaml" in files
    )
    for path in (out / "dev").iterdir():
        manifest = yaml.safe_load(path.read_text())
        assert path.name == f"{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
    assert f"Wrote {len(files)} Kubernetes objects" in printed
    assert "└─ hardened-k8s:system:ServiceSystem" in printed
    assert "quay.io/ecosystem-appeng/store-inventory:sha-" in printed  # image plan with tags
    assert "target:        runtime" in printed


def test_bad_config_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = project_copy(tmp_path)
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("port: 8000", "port: 80000"))
    out = tmp_path / "build"
    assert main(["--stack", "dev", "--out", str(out), "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert "services.store-inventory.port: " in err
    assert not out.exists() or not any(out.iterdir())


def test_render_is_byte_for_byte_repeatable(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        assert main(["--stack", "prod", "--out", str(out), "--project-dir", str(ROOT)]) == 0
    names = sorted(p.name for p in (first / "prod").iterdir())
    assert names == sorted(p.name for p in (second / "prod").iterdir())
    for name in names:
        assert (first / "prod" / name).read_bytes() == (second / "prod" / name).read_bytes(), name
