"""Build once, promote by digest: every stack deploys the digests one build job published.

``scripts/images.py`` is what ``deploy.yml`` runs: ``publish`` builds each repository once per
commit, ``pin`` rewrites each stack's ``image.build`` into ``image.ref`` with ``pulumi config``.
These tests apply the commands ``pin`` gives to the committed stack files and run the real
program for every stack on the mock engine.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardened_k8s.config import ConfigError

from ..conftest import ROOT, STACKS, YAML_LOADER, Rendered, run_stack, script, stack_file_config

REVISION = "0123456789abcdef0123456789abcdef01234567"


images = script("images")


def published() -> dict[str, str]:
    """What the build job's ``publish`` writes: one registry digest per repository (each its own)."""
    builds = images.project_builds(ROOT, REVISION)
    return {repo: f"{repo}@sha256:{hashlib.sha256(f'pushed {repo}'.encode()).hexdigest()}" for repo in builds}


def apply_config_commands(config: dict[str, Any], commands: list[list[str]]) -> dict[str, Any]:
    """The stack config after ``pulumi config rm/set --path`` (values as the CLI writes them)."""
    for command in commands:
        assert command[:2] == ["pulumi", "config"] and "--path" in command, command
        verb, key = command[2], command[command.index("--path") + 1]
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        if verb == "rm":
            del node[leaf]
        else:
            assert verb == "set", command
            node[leaf] = command[-1]
    return config


def promoted(stack: str, refs: dict[str, str]) -> Rendered:
    config = stack_file_config(stack)
    model = images.stack_model(ROOT, stack)
    commands = images.pin_commands(stack, model, refs, REVISION)
    assert all(f"--stack {stack} " in " ".join(c) for c in commands), commands
    return Rendered(run_stack(stack, apply_config_commands(config, commands)))


def test_one_build_per_repository_across_stacks() -> None:
    builds = images.project_builds(ROOT, REVISION)
    assert sorted(builds) == [
        "quay.io/ecosystem-appeng/mcp-store-inventory",
        "quay.io/ecosystem-appeng/store-inventory",
        "quay.io/ecosystem-appeng/store-inventory-postgresql",
    ]
    for repo, spec in builds.items():
        assert spec.primary_ref == f"{repo}:sha-{REVISION}", spec
        for stack in STACKS:
            per_stack = images.stack_builds(images.stack_model(ROOT, stack), REVISION)
            assert [s for s in per_stack.values() if s.repository == repo] == [spec], (stack, repo)


def test_every_stack_deploys_exactly_the_published_digests_and_builds_nothing() -> None:
    refs = published()
    running: dict[str, set[str]] = {}
    for stack in STACKS:
        rendered = promoted(stack, refs)
        docker = [r.name for r in rendered.run.registrations if r.type.startswith("docker:")]
        assert docker == [], f"{stack} builds or pushes again: {docker}"
        running[stack] = {
            c["image"] for w in rendered.pod_workloads() for c in w["spec"]["template"]["spec"]["containers"]
        }
        assert running[stack] == set(refs.values()), f"{stack} runs {running[stack]}"
    assert running["prod"] == running["dev"], "prod does not run what dev ran"


def test_prod_without_a_published_image_is_refused() -> None:
    refs = published()
    refs.pop("quay.io/ecosystem-appeng/store-inventory")
    with pytest.raises(ConfigError, match=r"services\.store-inventory\.image: .* was not published"):
        images.pin_commands("prod", images.stack_model(ROOT, "prod"), refs, REVISION)


def test_a_repository_built_two_ways_is_refused(tmp_path: Path) -> None:
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    for sub in ("services/store-api", "services/mcp-server", "database"):
        (tmp_path / sub).mkdir(parents=True)
        (tmp_path / sub / "Containerfile").write_text("FROM scratch\n")
    prod = tmp_path / "Pulumi.prod.yaml"
    document = yaml.load(prod.read_text(), Loader=YAML_LOADER)
    document["config"]["store-inventory:services"]["store-inventory"]["image"]["build"]["target"] = "builder"
    prod.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match=r"builds quay\.io/ecosystem-appeng/store-inventory differently"):
        images.project_builds(tmp_path, REVISION)


def test_pin_dry_run_prints_the_cli_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refs = published()
    out = tmp_path / "images.json"
    out.write_text(json.dumps(refs))
    code = images.main(["--project-dir", str(ROOT), "--revision", REVISION, "pin", "--stack", "prod",
                        "--images", str(out), "--dry-run"])  # fmt: skip
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    ref = refs["quay.io/ecosystem-appeng/store-inventory"]
    assert "pulumi config rm --stack prod --path services.store-inventory.image.build" in lines
    assert f"pulumi config set --stack prod --path services.store-inventory.image.ref {ref}" in lines
