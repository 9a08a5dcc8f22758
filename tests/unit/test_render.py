"""The offline render command: files, summary, exit codes, repeatability."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from hardened_k8s.config import ConfigError
from hardened_k8s.mock_engine import RecordingMocks, RecordingMonitor
from hardened_k8s.policy import format_report
from hardened_k8s.render import check, check_settings, main

from ..conftest import ROOT, Rendered, run_stack, stack_file_config


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


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_stacks_pass_schema_and_every_rule(stack_name: str, rendered: Callable[[str], Rendered]) -> None:
    stack = rendered(stack_name)
    checks = check(stack.objects, check_settings(ROOT, stack_name))
    assert checks.schema_errors == (), [str(e) for e in checks.schema_errors]
    assert checks.report.violations == (), format_report(checks.report)
    assert checks.report.production is (stack_name == "prod")


def opt_out_api(project: Path, exemption: str = "") -> None:
    stack_file = project / "Pulumi.dev.yaml"
    text = stack_file.read_text().replace(
        "      component: api\n", "      component: api\n      optOuts: {writableRootFilesystem: true}\n"
    )
    stack_file.write_text(text + exemption)


def test_mandatory_violation_fails_the_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = project_copy(tmp_path)
    opt_out_api(project)
    assert main(["--stack", "dev", "--project-dir", str(project), "--out", str(tmp_path / "out")]) == 1
    printed = capsys.readouterr().out
    assert "HARD-001" in printed and "Deployment/store-inventory" in printed
    assert (tmp_path / "out" / "dev" / "deployment-store-inventory.yaml").is_file()  # kept for review


def test_exemption_with_reason_is_reported_and_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_copy(tmp_path)
    reason = "writes its cache under /app until the cache dir is configurable"
    opt_out_api(
        project,
        "  store-inventory:policyExemptions:\n"
        f"    - {{rule: HARD-001, resource: Deployment/store-inventory, reason: {reason}}}\n",
    )
    assert main(["--stack", "dev", "--project-dir", str(project), "--out", str(tmp_path / "out")]) == 0
    assert reason in capsys.readouterr().out


def test_exemption_without_reason_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = stack_file_config("dev")
    config["policyExemptions"] = [{"rule": "HARD-001", "resource": "Deployment/store-inventory"}]
    monitor = RecordingMonitor(RecordingMocks())
    with pytest.raises(ConfigError) as caught:
        run_stack("dev", config, monitor=monitor)
    assert "policyExemptions[0].reason: " in str(caught.value)
    assert monitor.registrations == []
    project = project_copy(tmp_path)
    (project / "Pulumi.dev.yaml").write_text(
        (project / "Pulumi.dev.yaml").read_text()
        + "  store-inventory:policyExemptions:\n"
        + "    - {rule: HARD-001, resource: Deployment/store-inventory}\n"
    )
    assert main(["--stack", "dev", "--project-dir", str(project), "--out", str(tmp_path / "out")]) == 2
    assert "policyExemptions[0].reason" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
