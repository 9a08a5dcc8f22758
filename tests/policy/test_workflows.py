"""The GitHub workflows: linted by the real actionlint, and their job graph checked."""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardened_k8s.mock_engine import stack_names
from hardened_k8s.stack_config import read_stack_settings

from ..conftest import YAML_LOADER, script
from ..tiers import tier_markers

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))


@functools.cache
def _parsed(name: str) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.load((WORKFLOWS / name).read_text(), Loader=YAML_LOADER)
    # YAML 1.1 reads the bare key `on` as the boolean true.
    if True in data:
        data["on"] = data.pop(True)
    return data


def _load(name: str) -> dict[str, Any]:
    """A workflow file, parsed once per session; each caller gets its own copy to edit."""
    return copy.deepcopy(_parsed(name))


def _uses(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if "uses" in s]


@pytest.mark.tools
def test_actionlint() -> None:
    binary = shutil.which("actionlint")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("actionlint is not installed (pip install -r requirements-dev.txt)")
        pytest.skip("actionlint is not installed; pip install -r requirements-dev.txt")
    assert [f.name for f in FILES] == ["deploy.yml", "pr.yml", "release.yml"]
    result = subprocess.run(
        [binary, "-no-color", *map(str, FILES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actions_are_pinned_to_exact_versions() -> None:
    for path in FILES:
        for job_name, job in _load(path.name)["jobs"].items():
            for step in _uses(job):
                _, _, version = step["uses"].partition("@")
                assert version.count(".") == 2, f"{path.name}:{job_name}: {step['uses']} not pinned"


def test_pr_workflow_graph() -> None:
    pr = _load("pr.yml")
    assert set(pr["on"]) == {"pull_request"}
    jobs = pr["jobs"]
    assert {"lint", "test", "render-diff", "preview"} <= set(jobs)
    runs = {name: "\n".join(s.get("run", "") for s in job["steps"]) for name, job in jobs.items()}
    assert "make lint" in runs["lint"] and "bash scripts/ci-test.sh" in runs["test"]
    # The hosted runner is a non-root user with sudo: the script runs every tier, root-only ones via sudo.
    ci_test = (ROOT / "scripts" / "ci-test.sh").read_text()
    # Every tier runs: the first run leaves out every marked tier, and each marker has its own run.
    markers = set(tier_markers(ROOT))
    first, *others = re.findall(r'pytest .*-m ("[^"]*"|\S+)', ci_test)
    assert set(re.findall(r"not (\w+)", first)) == markers, first
    assert set(re.findall(r"\w+", " ".join(others))) - {"or"} == markers, others
    assert "sudo -n" in ci_test and "sudo bash scripts/ci-node-deps.sh" in runs["test"]
    assert "make render" in runs["render-diff"] and "diff -ru" in runs["render-diff"]
    assert "GITHUB_STEP_SUMMARY" in runs["render-diff"]
    assert any(s["uses"].startswith("actions/upload-artifact@") for s in _uses(jobs["render-diff"]))
    base = [s for s in _uses(jobs["render-diff"]) if s.get("with", {}).get("path") == "base"]
    assert base, "render-diff does not check out the base branch into base/"

    preview = jobs["preview"]
    assert set(preview["needs"]) == {"stacks", "lint", "test", "render-diff"}
    assert preview["environment"] == "preview"
    assert preview["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PREVIEW_PULUMI_ACCESS_TOKEN }}"
    [pulumi] = [s for s in _uses(preview) if s["uses"].startswith("pulumi/actions@v6")]
    assert pulumi["if"] == "env.PULUMI_ACCESS_TOKEN != ''"
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert "stacks" in preview["needs"]
    assert preview["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.preview) }}"
    [only] = [s for s in jobs["stacks"]["steps"] if s.get("id") == "preview"]
    assert "scripts/stacks.py --production false" in only["run"], "pull requests preview production"
    assert 'STACKS="' not in runs["render-diff"], "render-diff must render every stack"
    text = (WORKFLOWS / "pr.yml").read_text()
    assert "docker/login-action" not in text and "command: up" not in text, "pr.yml must not push"


@pytest.mark.tools
def test_pr_workflow_discovers_every_stack() -> None:
    [find] = [s for s in _load("pr.yml")["jobs"]["stacks"]["steps"] if s.get("id") == "find"]
    assert discovered_stacks(find["run"]) == stack_names(ROOT)


def discovered_stacks(script: str) -> list[str]:
    """Run the workflow's stack-discovery shell in the project, as the runner would."""
    output = ROOT / ".stacks-output"
    try:
        subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, check=True, timeout=30,
            env={**os.environ, "GITHUB_OUTPUT": str(output)},
        )  # fmt: skip
        (line,) = output.read_text().splitlines()
    finally:
        output.unlink(missing_ok=True)
    key, _, value = line.partition("=")
    assert key == "all", line
    return list(json.loads(value))


def test_deploy_workflow_graph() -> None:
    deploy = _load("deploy.yml")
    assert deploy["on"] == {"push": {"branches": ["main"]}}
    assert deploy["concurrency"]["cancel-in-progress"] is False
    jobs = deploy["jobs"]
    assert set(jobs) == {"stacks", "build", "staging", "production"}
    find = "\n".join(s.get("run", "") for s in jobs["stacks"]["steps"])
    assert "scripts/stacks.py --production false" in find and "scripts/stacks.py --production true" in find
    assert jobs["staging"]["needs"] == ["stacks", "build"]
    assert jobs["production"]["needs"] == ["stacks", "build", "staging"]
    assert jobs["production"]["environment"] == "production"
    # Build once: one job pushes, with the registry credentials; the deploy jobs only pin digests.
    runs = {name: "\n".join(s.get("run", "") for s in job["steps"]) for name, job in jobs.items()}
    pushers = [
        n for n, job in jobs.items() if any(s["uses"].startswith("docker/login-action@") for s in _uses(job))
    ]
    assert pushers == ["build"], pushers
    assert [n for n, r in runs.items() if "scripts/images.py" in r and " publish " in r] == ["build"]
    assert jobs["build"]["outputs"]["images"] == "${{ steps.publish.outputs.images }}"
    for name, job in jobs.items():
        if name in ("stacks", "build"):
            continue
        assert "REGISTRY_PASSWORD" not in json.dumps(job), f"{name} can push"
        [pin] = [s for s in job["steps"] if "scripts/images.py" in s.get("run", "")]
        assert pin["env"]["IMAGES"] == "${{ needs.build.outputs.images }}", name
        assert 'pin --stack "${{ matrix.stack }}"' in pin["run"], name
        steps = job["steps"]
        up = next(i for i, s in enumerate(steps) if s.get("with", {}).get("command") == "up")
        assert steps.index(pin) < up, f"{name}: pulumi up runs before the digests are pinned"
        assert job["strategy"]["matrix"]["stack"] == f"${{{{ fromJSON(needs.stacks.outputs.{name}) }}}}"
        assert job["concurrency"]["group"] == "pulumi-stack-${{ matrix.stack }}"
        [pulumi] = [s for s in _uses(job) if s["uses"].startswith("pulumi/actions@v6") and "with" in s]
        assert pulumi["with"]["command"] == "up"
        assert pulumi["with"]["stack-name"] == "${{ matrix.stack }}"
        assert pulumi["with"]["policyPacks"] == "policy"
        assert pulumi["with"]["policyPackConfigs"] == "policy-config.${{ matrix.stack }}.json"


def test_stack_lists_split_by_production(capsys: pytest.CaptureFixture[str]) -> None:
    stacks = script("stacks")

    def listed(*args: str) -> list[str]:
        assert stacks.main(["--project-dir", str(ROOT), *args]) == 0
        return list(json.loads(capsys.readouterr().out))

    production = [s for s in stack_names(ROOT) if read_stack_settings(ROOT, s).production]
    assert listed() == stack_names(ROOT)
    assert listed("--production", "true") == production
    assert sorted(listed("--production", "false") + production) == stack_names(ROOT)


SECRET_RE = re.compile(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)")
FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository"


def _triggers(workflow: dict[str, Any]) -> set[str]:
    on = workflow["on"]
    return {on} if isinstance(on, str) else set(on)


def pull_request_secret_problems(workflows: dict[str, dict[str, Any]]) -> list[str]:
    """Every way a job triggered by a pull request could read a production secret.

    Production secrets are the ones deploy.yml reads (its build, staging and production jobs);
    pull-request jobs may read only ``PREVIEW_*`` secrets (the ``preview`` environment), only in
    jobs that never run for a fork, and never all secrets at once.
    """
    deploy_secrets = set(SECRET_RE.findall(json.dumps(workflows["deploy.yml"])))
    problems: list[str] = []
    if not deploy_secrets:
        problems.append("deploy.yml reads no secret; the check would prove nothing")
    for file, workflow in workflows.items():
        triggers = _triggers(workflow)
        if "pull_request_target" in triggers:
            problems.append(
                f"{file}: pull_request_target runs pull-request code with the repository's secrets"
            )
        if "pull_request" not in triggers:
            continue
        if SECRET_RE.search(json.dumps(workflow.get("env", {}))):
            problems.append(f"{file}: workflow-level env reads a secret, so every job can")
        for name, job in workflow["jobs"].items():
            text = json.dumps(job)
            where = f"{file}:{name}"
            if (
                "secrets: inherit" in text
                or job.get("secrets") == "inherit"
                or re.search(r"secrets\s*\[", text)
            ):
                problems.append(f"{where}: hands over secrets wholesale")
            if "toJSON(secrets)" in text.replace(" ", ""):
                problems.append(f"{where}: reads every secret (toJSON(secrets))")
            used = set(SECRET_RE.findall(text)) - {"GITHUB_TOKEN"}
            if job.get("environment") not in (None, "preview"):
                problems.append(f"{where}: uses environment {job['environment']!r}")
            for secret in sorted(used & deploy_secrets):
                problems.append(f"{where}: reads {secret}, a secret of deploy.yml")
            for secret in sorted(used - deploy_secrets):
                if not secret.startswith("PREVIEW_"):
                    problems.append(f"{where}: reads {secret}, not a PREVIEW_ secret")
            if used and job.get("environment") != "preview":
                problems.append(f"{where}: reads secrets outside the preview environment")
            if used and FORK_GUARD not in str(job.get("if", "")):
                problems.append(f"{where}: reads secrets and also runs for forks")
    return problems


def test_no_pull_request_job_can_read_a_production_secret() -> None:
    workflows = {path.name: _load(path.name) for path in FILES}
    assert pull_request_secret_problems(workflows) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda wf: wf["jobs"]["preview"]["env"].update(KC="${{ secrets.KUBECONFIG }}"), "reads KUBECONFIG"),
        (lambda wf: wf["jobs"]["preview"].update({"if": "true"}), "also runs for forks"),
        (lambda wf: wf["jobs"]["preview"].update(environment="production"), "uses environment 'production'"),
        (
            lambda wf: wf["jobs"]["test"].update(env={"T": "${{ secrets.PREVIEW_KUBECONFIG }}"}),
            "outside the preview",
        ),
        (lambda wf: wf.update(env={"T": "${{ secrets.REGISTRY_PASSWORD }}"}), "workflow-level env"),
        (lambda wf: wf.update(on={"pull_request_target": None}), "pull_request_target"),
        (lambda wf: wf["jobs"]["lint"].update(env={"ALL": "${{ toJSON(secrets) }}"}), "every secret"),
    ],
)
def test_the_secret_check_catches_a_leak(change: Callable[[dict[str, Any]], object], problem: str) -> None:
    workflows = {path.name: _load(path.name) for path in FILES}
    change(workflows["pr.yml"])
    found = pull_request_secret_problems(workflows)
    assert any(problem in p for p in found), found


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job.get("steps", []))


def test_release_workflow_checks_then_publishes_with_trusted_publishing() -> None:
    """A version tag alone starts it; the checks run before anything is built or published,
    and PyPI gets an OIDC token, never a stored one."""
    release = _load("release.yml")
    assert release["on"] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    assert release["permissions"] == {"contents": "read"}
    jobs = release["jobs"]
    assert set(jobs) == {"build", "pypi", "github-release"}
    build = jobs["build"]
    checkout = _uses(build)[0]
    assert checkout["uses"].startswith("actions/checkout@") and checkout["with"]["fetch-depth"] == 0
    steps = _runs(build)
    order = [
        'scripts/release_check.py check --tag "$GITHUB_REF_NAME"',
        'scripts/release_check.py compat --tag "$GITHUB_REF_NAME"',
        "pip wheel --no-deps --wheel-dir dist/pypi ./rules ./components",
        'scripts/release_check.py package --tag "$GITHUB_REF_NAME"',
    ]
    assert [steps.find(s) for s in order] == sorted(steps.find(s) for s in order) and -1 not in [
        steps.find(s) for s in order
    ], steps
    pypi = jobs["pypi"]
    assert pypi["needs"] == "build" and pypi["environment"] == "pypi"
    assert pypi["permissions"] == {"id-token": "write"}
    publish = [s for s in _uses(pypi) if s["uses"].startswith("pypa/gh-action-pypi-publish@")]
    assert len(publish) == 1 and set(publish[0]["with"]) == {"packages-dir"}
    assert jobs["github-release"]["needs"] == ["build", "pypi"]
    assert jobs["github-release"]["permissions"] == {"contents": "write"}
    assert "secrets." not in json.dumps(release), "the release workflow needs no stored secret"
