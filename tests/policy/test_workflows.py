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


PIN_RE = re.compile(r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<ref>\S+)(?P<comment>.*)$")
SHA_PIN_RE = re.compile(r"^[0-9a-f]{40}$")
TAG_COMMENT_RE = re.compile(r"^\s+# v\d+\.\d+\.\d+$")


def pin_problems(name: str, text: str) -> list[str]:
    """Every ``uses:`` of a workflow not pinned to a full commit SHA with its release in a comment.

    A tag (``@v4.2.2``) or a branch can be moved to other code by whoever controls the action's
    repository; a commit cannot. The comment keeps the pin readable and updatable.
    """
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        if "uses:" not in line:
            continue
        match = PIN_RE.match(line)
        if match is None:
            problems.append(f"{name}:{number}: cannot read the action of {line.strip()!r}")
            continue
        if not SHA_PIN_RE.match(match["ref"]):
            problems.append(f"{name}:{number}: {match['action']}@{match['ref']} is not a 40-hex commit SHA")
        if not TAG_COMMENT_RE.match(match["comment"]):
            problems.append(
                f"{name}:{number}: {match['action']} has no '# vX.Y.Z' comment naming its release"
            )
    return problems


def test_actions_are_pinned_by_commit_sha() -> None:
    problems = [p for path in FILES for p in pin_problems(path.name, path.read_text())]
    assert problems == []
    assert sum(len(re.findall(r"uses:", path.read_text())) for path in FILES) > 10  # the check saw them


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("      - uses: actions/checkout@v4.2.2", "is not a 40-hex commit SHA"),
        ("      - uses: actions/checkout@main # v4.2.2", "is not a 40-hex commit SHA"),
        ("      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af68 # v4.2.2", "not a 40-hex"),
        ("      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683", "no '# vX.Y.Z' comment"),
        ("        uses: actions/cache/restore@v4", "is not a 40-hex commit SHA"),
    ],
)
def test_the_pin_check_refuses_tags_branches_and_bare_shas(line: str, problem: str) -> None:
    found = pin_problems("x.yml", f"jobs:\n  a:\n    steps:\n{line}\n")
    assert any(problem in p for p in found), found


def toolchain_pulumi_version() -> str:
    """``PULUMI_VERSION`` of scripts/toolchain.sh (the CLI the cluster tier builds and tests), no ``v``."""
    match = re.search(
        r'^PULUMI_VERSION="\$\{PULUMI_VERSION:-v([0-9.]+)\}"$',
        (ROOT / "scripts" / "toolchain.sh").read_text(),
        re.M,
    )
    assert match is not None, "scripts/toolchain.sh no longer pins PULUMI_VERSION as expected"
    return match[1]


def test_workflows_install_the_pulumi_cli_the_cluster_tier_tests() -> None:
    version = toolchain_pulumi_version()
    steps = [
        (path.name, step)
        for path in FILES
        for job in _load(path.name)["jobs"].values()
        for step in _uses(job)
        if step["uses"].startswith("pulumi/actions@")
    ]
    assert len(steps) == 5, steps  # the CLI and `up` of staging and production, the PR preview
    for name, step in steps:
        assert str(step.get("with", {}).get("pulumi-version")) == version, (name, step)


def test_pulumi_tokens_come_from_oidc_scoped_to_each_identity() -> None:
    """No long-lived Pulumi token: each job exchanges its OIDC token for its own team's token."""
    expected = {
        ("pr.yml", "preview"): "team:pulumi-preview",
        ("deploy.yml", "staging"): "team:pulumi-deploy-nonprod",
        ("deploy.yml", "production"): "team:pulumi-deploy-prod",
    }
    found = {}
    for path in FILES:
        text = path.read_text()
        assert "PULUMI_ACCESS_TOKEN" not in text, f"{path.name} still reads a Pulumi token secret"
        for name, job in _load(path.name)["jobs"].items():
            for step in _uses(job):
                if step["uses"].startswith("pulumi/auth-actions@"):
                    assert job["permissions"] == {"contents": "read", "id-token": "write"}, name
                    assert step["with"]["requested-token-type"] == "urn:pulumi:token-type:access_token:team"
                    found[(path.name, name)] = step["with"]["scope"]
    assert found == expected


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
    assert preview["env"]["PULUMI_ORG"] == "${{ vars.PULUMI_ORG }}"
    [pulumi] = [s for s in _uses(preview) if s["uses"].startswith("pulumi/actions@")]
    assert pulumi["if"] == "env.PULUMI_ORG != ''"
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert "stacks" in preview["needs"]
    assert preview["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.preview) }}"
    [only] = [s for s in jobs["stacks"]["steps"] if s.get("id") == "preview"]
    # The list comes from the base branch's commit; nothing of the pull request's tree runs.
    assert only["env"]["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    assert 'git show "$BASE_SHA:.github/preview-stacks.json"' in only["run"]
    assert "scripts/" not in only["run"] and "make" not in only["run"], "the PR's own code picks the stacks"
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
    assert set(jobs) == {"stacks", "toolchain", "build", "staging", "production"}
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
        if name in ("stacks", "toolchain", "build"):
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
        [pulumi] = [
            s for s in _uses(job) if s["uses"].startswith("pulumi/actions@") and "command" in s["with"]
        ]
        assert pulumi["with"]["command"] == "up"
        assert pulumi["with"]["stack-name"] == "${{ matrix.stack }}"
        assert pulumi["with"]["policyPacks"] == "policy"
        assert pulumi["with"]["policyPackConfigs"] == "policy-config.${{ matrix.stack }}.json"


def _cache_steps(name: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (job_name, step)
        for job_name, job in _load(name)["jobs"].items()
        for step in _uses(job)
        if step["uses"].startswith("actions/cache")
    ]


def test_the_toolchain_cache_is_written_from_main_and_read_by_pull_requests() -> None:
    """GitHub scopes a cache to the ref that saved it: one saved on main is readable by every pull
    request, one saved by a pull request only by that pull request. So main writes, PRs restore."""
    key = "toolchain-${{ runner.os }}-${{ hashFiles('scripts/toolchain.sh', 'scripts/toolchain.sum') }}"
    assert _load("deploy.yml")["on"] == {"push": {"branches": ["main"]}}
    [(job, write)] = _cache_steps("deploy.yml")
    assert job == "toolchain" and write["uses"].split("@")[0] == "actions/cache"  # restores and saves
    steps = _load("deploy.yml")["jobs"]["toolchain"]["steps"]
    assert any(s.get("run") == "make toolchain" for s in steps)
    assert "secrets." not in json.dumps(steps), "the toolchain job needs no secret"
    [(_, read)] = _cache_steps("pr.yml")
    assert read["uses"].split("@")[0] == "actions/cache/restore", "a pull request must not save the cache"
    assert read["with"]["key"] == write["with"]["key"] == key
    assert read["with"]["path"] == write["with"]["path"]


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


PREVIEW_LIST = ROOT / ".github" / "preview-stacks.json"


def test_the_preview_list_is_the_non_production_stacks(capsys: pytest.CaptureFixture[str]) -> None:
    """On this branch the committed list is exactly what stacks.py calls non-production, so the
    list the base branch hands a pull request never names a production stack."""
    stacks = script("stacks")
    assert stacks.main(["--project-dir", str(ROOT), "--production", "false"]) == 0
    assert json.loads(PREVIEW_LIST.read_text()) == json.loads(capsys.readouterr().out) == ["dev"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=x", *args],
        cwd=repo, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip


def _preview_step(workflow: str) -> str:
    [step] = [
        s
        for s in yaml.load(workflow, Loader=YAML_LOADER)["jobs"]["stacks"]["steps"]
        if s.get("id") == "preview"
    ]
    return str(step["run"])


@pytest.mark.tools
def test_a_pull_request_editing_the_stack_files_scripts_or_workflow_previews_only_dev(tmp_path: Path) -> None:
    """The base branch (a bare ``origin``) holds the committed files; the pull request edits every
    input that used to pick the stacks. The workflow's step, as the pull request's copy of pr.yml
    has it, still lists only dev, and the preview job still holds only the preview identity."""
    files = [
        ".github/preview-stacks.json",
        ".github/workflows/pr.yml",
        "Pulumi.prod.yaml",
        "scripts/stacks.py",
    ]
    base = tmp_path / "base"
    for name in files:
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, base / name)
    _git(base, "init", "-q")
    _git(base, "add", "-A")
    _git(base, "commit", "-q", "-m", "base")
    base_sha = _git(base, "rev-parse", "HEAD")
    origin = tmp_path / "origin.git"
    _git(tmp_path, "clone", "-q", "--bare", str(base), str(origin))
    pr = tmp_path / "pr"
    _git(tmp_path, "clone", "-q", str(origin), str(pr))

    # The pull request: prod claims not to be production, stacks.py and the list name prod, and
    # the workflow previews prod outright.
    prod = pr / "Pulumi.prod.yaml"
    prod.write_text(re.sub(r"production: *\S+", "production: false", prod.read_text()))
    (pr / "scripts" / "stacks.py").write_text('print(\'["dev", "prod"]\')\n')
    (pr / ".github" / "preview-stacks.json").write_text('["dev", "prod"]\n')
    workflow = pr / ".github" / "workflows" / "pr.yml"
    edited = yaml.load(workflow.read_text(), Loader=YAML_LOADER)
    edited["jobs"]["preview"]["strategy"]["matrix"]["stack"] = ["dev", "prod"]
    workflow.write_text(yaml.safe_dump(edited, sort_keys=False))
    _git(pr, "commit", "-q", "-am", "preview prod")
    assert "production: false" in _git(pr, "show", "HEAD:Pulumi.prod.yaml")

    output = tmp_path / "github-output"
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _preview_step(workflow.read_text())],
        cwd=pr, check=True, timeout=60,
        env={**os.environ, "GITHUB_OUTPUT": str(output), "BASE_SHA": base_sha},
    )  # fmt: skip
    assert output.read_text().splitlines() == ['preview=["dev"]']

    # The edited workflow can name prod, but the identity it gets is still the preview one: the
    # preview environment (whose OIDC subject the Pulumi organisation maps to pulumi-preview, a
    # team with no production stack) and PREVIEW_KUBECONFIG (deploy/rbac: the dev namespace only).
    job = edited["jobs"]["preview"]
    assert job["environment"] == "preview"
    [auth] = [s for s in _uses(job) if s["uses"].startswith("pulumi/auth-actions@")]
    assert auth["with"]["scope"] == "team:pulumi-preview"
    assert set(SECRET_RE.findall(json.dumps(job))) == {"PREVIEW_KUBECONFIG"}


@pytest.mark.tools
@pytest.mark.parametrize("listed", ['{"dev": true}', '["dev", "../prod"]', "not json"])
def test_a_base_list_that_is_not_stack_names_previews_nothing(tmp_path: Path, listed: str) -> None:
    base = tmp_path / "base"
    (base / ".github").mkdir(parents=True)
    (base / ".github" / "preview-stacks.json").write_text(listed)
    _git(base, "init", "-q")
    _git(base, "add", "-A")
    _git(base, "commit", "-q", "-m", "base")
    pr = tmp_path / "pr"
    _git(tmp_path, "clone", "-q", str(base), str(pr))
    output = tmp_path / "github-output"
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _preview_step((WORKFLOWS / "pr.yml").read_text())],
        cwd=pr, capture_output=True, text=True, timeout=60,
        env={**os.environ, "GITHUB_OUTPUT": str(output), "BASE_SHA": _git(base, "rev-parse", "HEAD")},
    )  # fmt: skip
    assert result.returncode != 0 and not output.exists(), result.stdout
