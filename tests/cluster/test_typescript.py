"""The TypeScript example on the component package, run by the Node.js Automation API.

``examples/typescript-service`` declares a ``SecureNamespace`` and two ``HardenedService``\\ s
through the TypeScript SDK generated from the package's schema: ``scripts/typescript-sdk.sh``
asks ``pulumi-resource-hardened-k8s`` (the virtualenv's) for its schema with the toolchain's
``pulumi package get-schema``, generates the SDK with ``sdkgen-nodejs`` (pulumi's own Node.js
code generator, built by ``scripts/toolchain.sh``) and compiles it, so the SDK is never
committed and cannot drift. ``npm ci`` installs ``@pulumi/pulumi`` from the committed lock (npm's
cache outside the repository), and ``automation.js`` runs the program inline
(``LocalWorkspace.createOrSelectStack({stackName, projectName, program})``): the Node.js
language runtime is hosted in that process and the toolchain's CLI connects to it, as the
Python tier does with the Python SDK. The engine constructs the components in the package's
plugin, and their objects go to the real Kubernetes provider and the local cluster, on its
KWOK nodes (the image is a digest no registry serves).

The same program in Python (:func:`python_twin`) is rendered on the mock engine, and every
object the TypeScript program declares, plans and creates is compared with it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest

from hardened_k8s import HardenedService, SecureNamespace
from hardened_k8s.mock_engine import run_mocked
from hardened_k8s.render import manifests

from ..tiers import unavailable
from .kube import Kube, subset
from .local import LocalCluster, toolchain_dir
from .pulumi_cli import ROOT, PulumiEnv

pytestmark = pytest.mark.cluster

EXAMPLE = ROOT / "examples" / "typescript-service"
PROJECT = "typescript-service"
"""The project name ``automation.ts`` gives the inline program."""
STACK = "dev"
NAMESPACE = "typescript-service"
IMAGE = "quay.io/ecosystem-appeng/typescript-service@sha256:" + "2" * 64
"""Not the program's default image: the stack config reaches the program."""
PART_OF = "typescript-service"
TIMINGS = ROOT / "build" / "typescript-timings.json"
"""How long each step took (npm ci, the SDK, tsc, preview, up, destroy), in seconds."""

ObjectKey = tuple[str, str, str]


def npm_cache() -> Path:
    """npm's cache for the tier, beside the toolchain (``scripts/ci-typescript-deps.sh`` fills it)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "hardened-k8s" / "npm"


def python_twin(namespace: str, image: str) -> None:
    """``hardenedServices`` of ``examples/typescript-service/index.ts`` in Python, input for input."""
    secure = SecureNamespace(
        PART_OF, {"namespace": namespace, "labels": {"app.kubernetes.io/part-of": PART_OF}}
    )
    api = HardenedService(
        "api",
        {
            "namespace": secure.namespace_name,
            "image": image,
            "port": 8000,
            "part_of": PART_OF,
            "ingress_from": [
                {
                    "selector": {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web"},
                    "port": 8080,
                }
            ],
        },
    )
    HardenedService(
        "web",
        {
            "namespace": secure.namespace_name,
            "image": image,
            "port": 8080,
            "part_of": PART_OF,
            "autoscaling": {"min_replicas": 2, "max_replicas": 4},
            "resources": {"limits": {"memory": "512Mi"}},
            "egress_to": [{"selector": api.selector, "port": 8000}],
            "env": {"API_URL": pulumi.Output.concat("http://", api.dns_name, ":8000")},
        },
    )


def _identity(obj: dict[str, Any]) -> ObjectKey:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def _pruned(value: Any) -> Any:
    """``value`` without empty lists and maps, which the engine leaves out of a resource's
    inputs (and the API server out of the object): ``egress: []`` and no ``egress`` are one
    NetworkPolicy."""
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _kubernetes_inputs(resources: list[dict[str, Any]]) -> dict[ObjectKey, dict[str, Any]]:
    """The Kubernetes objects among a program's resources (``type`` and ``inputs`` of each), by
    kind, namespace and name."""
    objects = {}
    for resource in resources:
        if resource["type"].startswith("kubernetes:"):
            inputs = resource["inputs"]
            objects[_identity(inputs)] = _pruned(inputs)
    return objects


def _differences(typescript: dict[ObjectKey, dict[str, Any]], python: dict[ObjectKey, dict[str, Any]]) -> str:
    """What tells the TypeScript program's objects from the Python program's; empty when none."""
    lines = []
    if set(typescript) - set(python):
        lines.append(f"only from TypeScript: {sorted(set(typescript) - set(python))}")
    if set(python) - set(typescript):
        lines.append(f"only from Python: {sorted(set(python) - set(typescript))}")
    for key in sorted(set(python) & set(typescript)):
        if typescript[key] != python[key]:
            lines.append(
                f"{'/'.join(key)}:\n  TypeScript {json.dumps(typescript[key], sort_keys=True)}\n"
                f"  Python     {json.dumps(python[key], sort_keys=True)}"
            )
    return "\n".join(lines)


@dataclass
class NodeProgram:
    """The example's copy with its packages, the generated SDK and its compiled program."""

    directory: Path
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    def step(self, label: str, args: list[str], cwd: Path, timeout: float = 600) -> str:
        started = time.monotonic()
        result = subprocess.run(args, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout)
        self.timings[label] = round(time.monotonic() - started, 1)
        assert result.returncode == 0, (
            f"{label} failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-5000:]}"
        )
        return result.stdout

    def automation(self, command: str) -> dict[str, Any]:
        """``node bin/automation.js <command>`` for the test's stack; the JSON it printed."""
        config = ["--config", f"namespace={NAMESPACE}", "--config", f"image={IMAGE}"]
        out = self.step(
            command, ["node", "bin/automation.js", command, "--stack", STACK, *config], self.directory
        )
        result: dict[str, Any] = json.loads(out)
        return result


@pytest.fixture(scope="module")
def node_program(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProgram]:
    """The example copied out of the tree, ``npm ci`` from its lock, the SDK generated from the
    plugin's schema and installed, and ``tsc`` run on the program."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    missing += [b for b in ("pulumi", "sdkgen-nodejs") if not (toolchain_dir() / "bin" / b).is_file()]
    if missing:
        unavailable(
            "cluster",
            "missing " + ", ".join(missing) + "; run scripts/toolchain.sh and scripts/ci-typescript-deps.sh",
        )
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "pulumi-resource-hardened-k8s").is_file(), (
        f"{venv_bin}: install the library (make venv)"
    )
    directory = tmp_path_factory.mktemp("node") / PROJECT
    shutil.copytree(EXAMPLE, directory, ignore=shutil.ignore_patterns("node_modules", "bin", "sdks"))
    env = {**os.environ, "PATH": os.pathsep.join([str(venv_bin), os.environ.get("PATH", "")])}
    program = NodeProgram(directory, env)
    npm_ci = ["npm", "ci", "--cache", str(npm_cache()), "--prefer-offline", "--ignore-scripts"]
    program.step("npm ci", [*npm_ci, "--loglevel=error"], directory)
    program.step("SDK", ["bash", str(ROOT / "scripts" / "typescript-sdk.sh"), str(directory)], ROOT)
    program.step("tsc", [str(directory / "node_modules" / ".bin" / "tsc"), "-p", str(directory)], directory)
    yield program
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    timings.update(program.timings)
    TIMINGS.parent.mkdir(exist_ok=True)
    TIMINGS.write_text(json.dumps(timings, indent=2) + "\n")


@pytest.fixture(scope="module")
def python_objects() -> dict[ObjectKey, dict[str, Any]]:
    """The Kubernetes objects :func:`python_twin` declares on the mock engine, as rendered."""
    run = run_mocked(lambda: python_twin(NAMESPACE, IMAGE), project=PROJECT, stack=STACK)
    return {_identity(m.manifest): _pruned(m.manifest) for m in manifests(run)}


@dataclass
class Deployment:
    """The example's stack on the local cluster, and the client that reads its objects back."""

    program: NodeProgram
    kube: Kube
    destroyed: bool = False


@pytest.fixture(scope="module")
def deployment(node_program: NodeProgram, cluster: LocalCluster, pulumi: PulumiEnv) -> Iterator[Deployment]:
    """The tier's Pulumi home, file backend and kubeconfig for the Node.js process; the
    workloads go to the KWOK nodes. Destroyed at the end if a test has not done it, and the
    real node schedulable again, as the cluster started."""
    cluster.place(real=False)
    # The toolchain's CLI first on PATH, then the policy pack's and the virtualenv's plugins.
    env = {**os.environ, **pulumi.env}
    # The Node.js Automation API checks the CLI's version against its own minimum.
    env.pop("PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK", None)
    node_program.env = env
    state = Deployment(node_program, Kube(cluster))
    try:
        yield state
        if not state.destroyed:
            node_program.automation("destroy")
    finally:
        cluster.place(real=True)


def test_preview_plans_the_objects_of_the_python_program(
    deployment: Deployment, python_objects: dict[ObjectKey, dict[str, Any]]
) -> None:
    preview = deployment.program.automation("preview")
    types = [step["type"] for step in preview["steps"]]
    assert types.count("hardened-k8s:index:HardenedService") == 2, types
    assert types.count("hardened-k8s:index:SecureNamespace") == 1, types
    assert {step["op"] for step in preview["steps"]} == {"create"}
    planned = _kubernetes_inputs(preview["steps"])
    assert planned == python_objects, _differences(planned, python_objects)
    # Kubernetes objects, two components and the namespace, the stack: nothing else is planned.
    assert preview["changeSummary"] == {"create": len(python_objects) + 4}, preview["changeSummary"]


def test_up_creates_on_the_cluster_what_the_python_program_declares(
    deployment: Deployment, python_objects: dict[ObjectKey, dict[str, Any]]
) -> None:
    up = deployment.program.automation("up")
    assert up["summary"] == {"create": len(python_objects) + 4}, up["summary"]
    assert up["outputs"] == {
        "namespace": NAMESPACE,
        "webDns": f"web.{NAMESPACE}.svc.cluster.local",
        "apiDns": f"api.{NAMESPACE}.svc.cluster.local",
    }
    declared = _kubernetes_inputs(up["resources"])
    assert declared == python_objects, _differences(declared, python_objects)
    for key, expected in sorted(python_objects.items()):
        live = deployment.kube.get(expected["apiVersion"], expected["kind"], key[2], key[1] or None)
        assert live is not None, f"{'/'.join(key)}: not on the API server after up"
        problems = subset(expected, live)
        assert not problems, f"{'/'.join(key)} on the API server:\n" + "\n".join(problems)


def test_the_typescript_inputs_reach_the_live_objects(deployment: Deployment) -> None:
    kube = deployment.kube
    namespace = kube.get("v1", "Namespace", NAMESPACE)
    assert (
        namespace is not None
        and namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    )
    web = kube.get("apps/v1", "Deployment", "web", NAMESPACE)
    assert web is not None
    (container,) = web["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGE, "Deployment/web: the image of the stack config"
    assert {"name": "API_URL", "value": f"http://api.{NAMESPACE}.svc.cluster.local:8000"} in container["env"]
    assert container["resources"]["limits"]["memory"] == "512Mi"
    # up waited for the rollout (on KWOK pods); the HPA raises it to 2 on its own schedule.
    assert web["status"].get("availableReplicas", 0) >= 1, f"Deployment/web: {web['status']}"
    hpa = kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "web", NAMESPACE)
    assert hpa is not None and (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    policy = kube.get("networking.k8s.io/v1", "NetworkPolicy", "web", NAMESPACE)
    assert policy is not None
    (egress,) = policy["spec"]["egress"]
    # api's `selector` output, passed from TypeScript as an Output.
    assert egress["to"] == [
        {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/instance": "api", "app.kubernetes.io/name": "api"}
            }
        }
    ]


def test_destroy_removes_every_object(
    deployment: Deployment, python_objects: dict[ObjectKey, dict[str, Any]]
) -> None:
    destroyed = deployment.program.automation("destroy")
    deployment.destroyed = True
    assert destroyed["summary"] == {"delete": len(python_objects) + 4}, destroyed["summary"]
    left = []
    for key, expected in sorted(python_objects.items()):
        live = deployment.kube.get(expected["apiVersion"], expected["kind"], key[2], key[1] or None)
        if live is not None and not live["metadata"].get("deletionTimestamp"):
            left.append("/".join(key))
    assert not left, f"still on the API server after destroy: {left}"
