"""The GitHub workflows: linted by the real actionlint, and their job graph checked."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))


def _load(name: str) -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as the boolean true.
    if True in data:
        data["on"] = data.pop(True)
    return data


def _uses(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if "uses" in s]


def test_actionlint() -> None:
    binary = shutil.which("actionlint")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("actionlint is not installed (pip install -r requirements-dev.txt)")
        pytest.skip("actionlint is not installed; pip install -r requirements-dev.txt")
    assert [f.name for f in FILES] == ["deploy.yml", "pr.yml"]
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
    assert "make lint" in runs["lint"] and "make test" in runs["test"]
    assert "make render" in runs["render-diff"] and "diff -ru" in runs["render-diff"]
    assert "GITHUB_STEP_SUMMARY" in runs["render-diff"]
    assert any(s["uses"].startswith("actions/upload-artifact@") for s in _uses(jobs["render-diff"]))
    base = [s for s in _uses(jobs["render-diff"]) if s.get("with", {}).get("path") == "base"]
    assert base, "render-diff does not check out the base branch into base/"

    preview = jobs["preview"]
    assert set(preview["needs"]) == {"lint", "test", "render-diff"}
    assert preview["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    [pulumi] = [s for s in _uses(preview) if s["uses"].startswith("pulumi/actions@v6")]
    assert pulumi["if"] == "env.PULUMI_ACCESS_TOKEN != ''"
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    text = (WORKFLOWS / "pr.yml").read_text()
    assert "docker/login-action" not in text and "command: up" not in text, "pr.yml must not push"


def test_deploy_workflow_graph() -> None:
    deploy = _load("deploy.yml")
    assert deploy["on"] == {"push": {"branches": ["main"]}}
    assert deploy["concurrency"]["cancel-in-progress"] is False
    jobs = deploy["jobs"]
    assert set(jobs) == {"dev", "prod"}
    assert jobs["prod"]["needs"] == "dev"
    assert jobs["prod"]["environment"] == "production"
    for stack, job in jobs.items():
        assert job["concurrency"]["group"] == f"pulumi-stack-{stack}"
        [pulumi] = [s for s in _uses(job) if s["uses"].startswith("pulumi/actions@v6")]
        assert pulumi["with"]["command"] == "up"
        assert pulumi["with"]["stack-name"] == stack
        assert pulumi["with"]["policyPacks"] == "policy"
        assert pulumi["with"]["policyPackConfigs"] == f"policy-config.{stack}.json"
