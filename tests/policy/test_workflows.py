"""The GitHub workflows: linted by the real actionlint, and their job graph checked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardened_k8s.mock_engine import stack_names
from hardened_k8s.stack_config import read_stack_settings

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
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
    assert set(preview["needs"]) == {"stacks", "lint", "test", "render-diff"}
    assert preview["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    [pulumi] = [s for s in _uses(preview) if s["uses"].startswith("pulumi/actions@v6")]
    assert pulumi["if"] == "env.PULUMI_ACCESS_TOKEN != ''"
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert "stacks" in preview["needs"]
    assert preview["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.all) }}"
    assert discovered_stacks(runs["stacks"]) == stack_names(ROOT)
    assert 'STACKS="' not in runs["render-diff"], "render-diff must render every stack"
    text = (WORKFLOWS / "pr.yml").read_text()
    assert "docker/login-action" not in text and "command: up" not in text, "pr.yml must not push"


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


def test_stack_lists_split_by_production() -> None:
    def listed(*args: str) -> list[str]:
        out = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "stacks.py"), "--project-dir", str(ROOT), *args],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        return list(json.loads(out.stdout))

    production = [s for s in stack_names(ROOT) if read_stack_settings(ROOT, s).production]
    assert listed() == stack_names(ROOT)
    assert listed("--production", "true") == production
    assert sorted(listed("--production", "false") + production) == stack_names(ROOT)
