"""The offline render command: files, summary, exit codes, repeatability."""

from __future__ import annotations

import gc
import shutil
import stat
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from hardened_k8s.config import ConfigError
from hardened_k8s.mock_engine import RecordingMocks, RecordingMonitor, paused_gc, run_mocked
from hardened_k8s.render import check, check_settings, main
from hardened_k8s_rules.policy import format_report

from ..conftest import PINNED, ROOT, STACKS, YAML_LOADER, Rendered, StackRender, run_stack, stack_file_config

StackRenders = Callable[[str], StackRender]


def project_copy(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for path in [ROOT / "Pulumi.yaml", ROOT / "__main__.py", *ROOT.glob("Pulumi.*.yaml")]:
        shutil.copy(path, project / path.name)
    for directory in ("services", "database"):
        if (ROOT / directory).is_dir():
            (project / directory).symlink_to(ROOT / directory)
    return project


def one_service_project(tmp_path: Path, stack: str, service: str, *, production: bool) -> Path:
    """The project's program with a stack of one pinned service and nothing else.

    For the command's own behaviour (exit codes, reports, files), which does not depend on
    the size of the stack: a third of the committed dev stack's resources to run.
    """
    project = tmp_path / "small"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, project / name)
    (project / f"Pulumi.{stack}.yaml").write_text(
        "config:\n"
        "  store-inventory:namespace: shop\n"
        f"  store-inventory:production: {str(production).lower()}\n"
        "  store-inventory:services:\n"
        "    web:\n"
        f"{textwrap.indent(service, '      ')}"
    )
    return project


def render(project: Path, out: Path, stack: str = "dev") -> int:
    return main(["--stack", stack, "--project-dir", str(project), "--out", str(out)])


def edit(project: Path, stack: str, old: str, new: str) -> None:
    stack_file = project / f"Pulumi.{stack}.yaml"
    text = stack_file.read_text()
    assert old in text, f"{old!r} not in {stack_file.name}"
    stack_file.write_text(text.replace(old, new, 1))


def earlier_render(stack_render: StackRenders, stack: str, out: Path) -> None:
    """``out/<stack>/`` as a successful render of the committed stack left it."""
    shutil.copytree(stack_render(stack).out / stack, out / stack)
    assert any((out / stack).iterdir())


def test_render_writes_every_object_and_prints_a_tree(stack_render: StackRenders) -> None:
    dev = stack_render("dev")
    assert not dev.checks.failed
    out, printed = dev.out, dev.printed
    files = sorted(p.name for p in (out / "dev").iterdir())
    assert (
        "deployment-store-inventory.yaml" in files and "statefulset-store-inventory-postgresql.yaml" in files
    )
    for path in (out / "dev").iterdir():
        manifest = yaml.load(path.read_text(), Loader=YAML_LOADER)
        assert path.name == f"{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
    assert f"Wrote {len(files)} Kubernetes objects" in printed
    assert "└─ hardened-k8s:index:ServiceSystem" in printed
    assert "quay.io/ecosystem-appeng/store-inventory:sha-" in printed  # image plan with tags
    assert "target:        runtime" in printed


def test_bad_config_exits_2_and_removes_an_earlier_render(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stack_render: StackRenders
) -> None:
    project = project_copy(tmp_path)
    out = tmp_path / "build"
    earlier_render(stack_render, "dev", out)
    edit(project, "dev", "port: 8000", "port: 80000")
    assert render(project, out) == 2
    err = capsys.readouterr().err
    assert "services.store-inventory.port: " in err
    assert not (out / "dev").exists()


def test_files_have_ordinary_permissions(stack_render: StackRenders) -> None:
    # The session's render ran with umask 022.
    out = stack_render("dev").out / "dev"
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o644}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'kubernetesVersion: "1.31"',
            'kubernetesVersion: "1.99"',
            'kubernetesVersion: "1.99" is not a Kubernetes version this library supports',
        ),
        (
            "      component: api\n      version: 0.1.0\n",
            "      component: api\n      version: 1.0.0+build.5\n",
            "services.store-inventory.version: '1.0.0+build.5' is not both an image tag",
        ),
        ("  store-inventory:services:\n", "  store-inventory:services: [\n", "Pulumi.dev.yaml:"),
    ],
    ids=["unsupported kubernetesVersion", "version not an image tag", "YAML syntax error"],
)
def test_bad_input_exits_2_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, expected: str
) -> None:
    project = project_copy(tmp_path)
    edit(project, "dev", old, new)
    assert render(project, tmp_path / "build") == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err, err
    assert not (tmp_path / "build").exists()


def test_yaml_syntax_error_names_file_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_copy(tmp_path)
    (project / "Pulumi.dev.yaml").write_text("config:\n  store-inventory:namespace: [unclosed\n")
    assert render(project, tmp_path / "build") == 2
    assert "Pulumi.dev.yaml:3:1: YAML syntax error: " in capsys.readouterr().err


def test_unknown_stack_lists_the_stacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert render(ROOT, tmp_path / "build", stack="staging") == 2
    err = capsys.readouterr().err
    assert f"--stack: 'staging' has no stack file Pulumi.staging.yaml in {ROOT}; use one of: " in err
    assert all(name in err for name in STACKS), err
    assert render(ROOT, tmp_path / "build", stack="../escape") == 2
    assert "is not a stack name" in capsys.readouterr().err


def test_render_is_byte_for_byte_repeatable(tmp_path: Path, stack_render: StackRenders) -> None:
    first, second = stack_render("prod").out, tmp_path / "b"
    assert main(["--stack", "prod", "--out", str(second), "--project-dir", str(ROOT)]) == 0
    names = sorted(p.name for p in (first / "prod").iterdir())
    assert names == sorted(p.name for p in (second / "prod").iterdir())
    for name in names:
        assert (first / "prod" / name).read_bytes() == (second / "prod" / name).read_bytes(), name


@pytest.mark.parametrize("stack_name", STACKS)
def test_stacks_pass_schema_and_every_rule(stack_name: str, stack_render: StackRenders) -> None:
    # The checks the session's render ran, as `make render` runs them.
    checks = stack_render(stack_name).checks
    assert checks.schema_errors == (), [str(e) for e in checks.schema_errors]
    assert checks.report.violations == (), format_report(checks.report)
    assert checks.report.production is check_settings(ROOT, stack_name).production
    assert checks.report.production is (stack_file_config(stack_name).get("production") in (True, "true"))


def test_namespace_wide_peer_on_the_database_fails_the_render(rendered: Callable[[str], Rendered]) -> None:
    stack = rendered("dev")
    policy = stack.get("NetworkPolicy", "store-inventory-postgresql")
    policy["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {}}]
    try:
        checks = check(stack.objects, check_settings(ROOT, "dev"))
    finally:
        stack.objects[:] = Rendered(stack.run).objects  # leave the session's copy as it was
    assert checks.failed
    assert [(v.rule_id, v.resource) for v in checks.report.mandatory] == [
        ("HARD-021", "NetworkPolicy/store-inventory-dev/store-inventory-postgresql")
    ]


def opt_out_api(project: Path, exemption: str = "") -> None:
    stack_file = project / "Pulumi.dev.yaml"
    text = stack_file.read_text().replace(
        "      component: api\n", "      component: api\n      optOuts: {writableRootFilesystem: true}\n"
    )
    stack_file.write_text(text + exemption)


def test_opt_out_names_the_exemption_it_needs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = project_copy(tmp_path)
    opt_out_api(project)
    assert render(project, tmp_path / "out") == 2
    assert (
        "services.store-inventory.optOuts.writableRootFilesystem: breaks rule HARD-001 and no exemption "
        "says why; add to policyExemptions: {rule: HARD-001, resource: Deployment/store-inventory, reason: "
    ) in capsys.readouterr().err


def test_mandatory_violation_fails_the_render_and_removes_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stack_render: StackRenders
) -> None:
    # A tag passes the config outside production; the policy wants a digest in every stack.
    tagged = "quay.io/ecosystem-appeng/web:1.0"
    project = one_service_project(
        tmp_path, "prod", f"image: {{ref: {tagged}}}\nport: 8080\nreplicas: 2\n", production=False
    )
    out = tmp_path / "out"
    earlier_render(stack_render, "prod", out)
    assert render(project, out, "prod") == 1
    printed = capsys.readouterr().out
    assert "[HARD-011] Deployment/shop/web" in printed
    assert "Wrote nothing" in printed
    assert not (out / "prod").exists()


def test_exemption_with_reason_is_reported_and_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = "writes its cache under /app until the cache dir is configurable"
    project = one_service_project(
        tmp_path,
        "dev",
        f"image: {{ref: {PINNED}}}\nport: 8080\noptOuts: {{writableRootFilesystem: true}}\n",
        production=False,
    )
    with (project / "Pulumi.dev.yaml").open("a") as stack_file:
        stack_file.write(
            "  store-inventory:policyExemptions:\n"
            f"    - {{rule: HARD-001, resource: Deployment/web, reason: {reason}}}\n"
        )
    out = tmp_path / "out"
    assert main(["--stack", "dev", "--project-dir", str(project), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert reason in printed and "HARD-001" in printed
    (deployment,) = (out / "dev").glob("deployment-web.yaml")
    assert "readOnlyRootFilesystem: false" in deployment.read_text()


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


@pytest.fixture
def collector() -> Iterator[None]:
    """The cyclic collector on, as in a program outside the test session (whose unit tests
    run with it paused, tests/conftest.py)."""
    gc.enable()
    yield
    gc.disable()


@pytest.mark.usefixtures("collector")
def test_the_collector_is_paused_while_a_program_runs_and_restored_after() -> None:
    seen: list[bool] = []
    assert gc.isenabled()
    run_mocked(lambda: seen.append(gc.isenabled()))
    assert seen == [False]
    assert gc.isenabled()


@pytest.mark.usefixtures("collector")
def test_a_nested_pause_leaves_the_outer_one_in_force() -> None:
    with paused_gc():
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled(), "a pause turned on a collector its caller had turned off"
    finally:
        gc.enable()


@pytest.mark.usefixtures("collector")
def test_a_failed_render_restores_the_collector(tmp_path: Path) -> None:
    assert render(ROOT, tmp_path / "build", stack="staging") == 2
    assert gc.isenabled()
