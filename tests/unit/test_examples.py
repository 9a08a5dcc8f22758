"""The example projects under ``examples/``: each installs the library as a package and renders
policy-clean, and each shows what its seed asked for in the objects it declares.

Every stack of every example is rendered once (``hardened_k8s.render``, the offline render
users run: program on the mock engine, strict schema validation, every policy rule); the
assertions read the files it wrote.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import hardened_k8s
from hardened_k8s.mock_engine import stack_names
from hardened_k8s.render import main

from ..conftest import ROOT, YAML_LOADER

EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(p.parent.name for p in EXAMPLES_DIR.glob("*/Pulumi.yaml"))
STACKS = [(example, stack) for example in EXAMPLES for stack in stack_names(EXAMPLES_DIR / example)]
REGISTRY = "quay.io/ecosystem-appeng"


@dataclass
class Render:
    """What ``python -m hardened_k8s.render`` printed and wrote for one example stack."""

    example: str
    stack: str
    status: int
    output: str
    objects: list[dict[str, Any]]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for obj in self.objects:
            if obj["kind"] == kind and obj["metadata"]["name"] == name:
                return obj
        have = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in self.objects)
        raise AssertionError(f"{self.example}/{self.stack}: no {kind}/{name} (have {have})")

    def container(self, deployment: str) -> dict[str, Any]:
        (container,) = self.get("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
        result: dict[str, Any] = container
        return result


class Renders:
    """Each example stack rendered once per test session, on first use."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.done: dict[tuple[str, str], Render] = {}

    def __call__(self, example: str, stack: str) -> Render:
        key = (example, stack)
        if key not in self.done:
            out = self.out / example
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                status = main(
                    ["--stack", stack, "--project-dir", str(EXAMPLES_DIR / example), "--out", str(out)]
                )
            files = sorted((out / stack).glob("*.yaml")) if status == 0 else []
            objects = [yaml.load(f.read_text(), Loader=YAML_LOADER) for f in files]
            self.done[key] = Render(example, stack, status, printed.getvalue(), objects)
        return self.done[key]


@pytest.fixture(scope="session")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Renders]:
    yield Renders(tmp_path_factory.mktemp("examples"))


# -- every example ----------------------------------------------------------------------------------
def test_every_seed_service_has_an_example() -> None:
    assert {"customer-success-mcp", "wheel-build", "publishing-api", "node-python-pair"} <= set(EXAMPLES)


@pytest.mark.parametrize(("example", "stack"), STACKS, ids=[f"{e}-{s}" for e, s in STACKS])
def test_renders_schema_valid_and_policy_clean(renders: Renders, example: str, stack: str) -> None:
    render = renders(example, stack)
    assert render.status == 0, render.output
    assert "every object is valid" in render.output, render.output
    assert "policy passed" in render.output and "0 mandatory" in render.output, render.output
    assert any(o["kind"] == "Deployment" for o in render.objects), render.output


@pytest.mark.tools
def test_every_example_installs_the_library_as_a_package() -> None:
    """Each requirements.txt names the library's and the rules' source trees, and pip resolves
    them to hardened-k8s and the hardened-k8s-rules it requires.

    One pip run for all of them (pip takes ``-r`` paths relative to the working directory, and
    every example sits two levels below the repository root).
    """
    argv = []
    for example in EXAMPLES:
        project = EXAMPLES_DIR / example
        assert "sys.path" not in (project / "__main__.py").read_text(), example
        lines = [line.strip() for line in (project / "requirements.txt").read_text().splitlines()]
        assert {"../../components", "-e ../../components"} & set(lines), f"{example}: no ../../components"
        assert {"../../rules", "-e ../../rules"} & set(lines), f"{example}: no ../../rules"
        argv += ["-r", f"../{example}/requirements.txt"]
    report = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-build-isolation",
         "--quiet", "--report", "-", *argv],
        cwd=EXAMPLES_DIR / EXAMPLES[0], check=True, capture_output=True, text=True,
    )  # fmt: skip
    installs = {i["metadata"]["name"]: i["metadata"]["version"] for i in json.loads(report.stdout)["install"]}
    assert installs.get("hardened-k8s") == hardened_k8s.__version__, installs
    assert installs.get("hardened-k8s-rules") == hardened_k8s.__version__, installs


@pytest.mark.parametrize("example", EXAMPLES)
def test_program_is_a_few_dozen_lines(example: str) -> None:
    lines = (EXAMPLES_DIR / example / "__main__.py").read_text().splitlines()
    assert len(lines) <= 100, f"{example}/__main__.py has {len(lines)} lines"


# -- what each seed asked for -------------------------------------------------------------------------
def test_customer_success_mcp_builds_its_image_with_the_seeds_limits(renders: Renders) -> None:
    render = renders("customer-success-mcp", "dev")
    assert render.status == 0, render.output
    container = render.container("customer-success-mcp")
    assert container["image"].startswith(f"{REGISTRY}/customer-success-mcp@sha256:"), container["image"]
    assert (
        "containerfile: service/Containerfile" in render.output and "target:        runtime" in render.output
    )
    resources = container["resources"]
    assert (resources["limits"]["cpu"], resources["limits"]["memory"]) == ("2", "2Gi")
    assert (resources["requests"]["cpu"], resources["requests"]["memory"]) == ("500m", "512Mi")
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"


def test_publishing_api_runs_with_its_production_numbers(renders: Renders) -> None:
    render = renders("publishing-api", "prod")
    assert render.status == 0, render.output
    assert "policy passed (production)" in render.output, render.output
    hpa = render.get("HorizontalPodAutoscaler", "publishing-api")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]}
    assert targets == {"cpu": 70, "memory": 80}
    deployment = render.get("Deployment", "publishing-api")["spec"]
    assert "replicas" not in deployment, "the HPA owns the replica count"
    assert deployment["template"]["spec"]["topologySpreadConstraints"], "production spreads pods"
    container = render.container("publishing-api")
    resources = container["resources"]
    assert (resources["requests"]["cpu"], resources["requests"]["memory"]) == ("500m", "512Mi")
    assert (resources["limits"]["cpu"], resources["limits"]["memory"]) == ("2", "2Gi")
    probes = {p: container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert probes == {"livenessProbe": "/health", "readinessProbe": "/ready", "startupProbe": "/health"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60, "60 s for a slow start"
    assert render.get("PodDisruptionBudget", "publishing-api")["spec"]["maxUnavailable"] == 1
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DEBUG"] == "false" and env["LOG_LEVEL"] == "INFO"


def test_wheel_build_deploys_the_image_it_builds(renders: Renders) -> None:
    render = renders("wheel-build", "dev")
    assert render.status == 0, render.output
    container = render.container("textstats")
    assert container["image"].startswith(f"{REGISTRY}/textstats@sha256:"), container["image"]
    assert "containerfile: service/Containerfile" in render.output


def test_node_python_pair_read_only_and_wired_by_name(renders: Renders) -> None:
    render = renders("node-python-pair", "dev")
    assert render.status == 0, render.output
    for name, port in (("pair-api", 3000), ("intelligence", 8000)):
        container = render.container(name)
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["image"].startswith(f"{REGISTRY}/{name}@sha256:"), container["image"]
        assert container["ports"][0]["containerPort"] == port
    env = {e["name"]: e.get("value") for e in render.container("pair-api")["env"]}
    assert env["INTELLIGENCE_URL"] == "http://intelligence:8000"
    # intelligence admits pair-api alone, on its port; pair-api reaches intelligence on it.
    ingress = render.get("NetworkPolicy", "intelligence")["spec"]["ingress"]
    assert [
        [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in r["from"]] for r in ingress
    ] == [["pair-api"]]
    assert ingress[0]["ports"] == [{"port": 8000, "protocol": "TCP"}]
    egress = render.get("NetworkPolicy", "pair-api")["spec"]["egress"]
    assert any(
        p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "intelligence"
        for rule in egress
        for p in rule.get("to", [])
    ), egress
    assert render.get("Ingress", "pair-api")["spec"]["rules"][0]["host"] == "pair.dev.example.com"
