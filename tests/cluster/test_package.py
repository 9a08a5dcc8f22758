"""A Pulumi YAML program using the component package, previewed by the real CLI and engine.

The CLI runs the program with ``pulumi-language-yaml``, asks ``pulumi-resource-hardened-k8s``
(the library's plugin, on ``PATH`` from the virtualenv) for the schema, and has it construct
the components, whose Kubernetes objects go to the real Kubernetes provider. A preview
reaches no cluster: the kubeconfig named does not exist, and the provider previews without
one. Binaries come from ``scripts/toolchain.sh``; without them the tier skips locally and
fails under CI, like the rest of the cluster tier.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ..tiers import unavailable
from .local import toolchain_dir
from .pulumi_cli import pulumi_env

pytestmark = pytest.mark.cluster

IMAGE = "quay.io/ecosystem-appeng/hello@sha256:" + "1" * 64
PROGRAM = f"""\
name: hello-yaml
runtime: yaml
description: Two hardened services and their namespace from the hardened-k8s component package.
resources:
  namespace:
    type: hardened-k8s:index:SecureNamespace
    properties:
      namespace: hello-yaml
  web:
    type: hardened-k8s:index:HardenedService
    properties:
      namespace: ${{namespace.namespaceName}}
      image: {IMAGE}
      port: 8080
      autoscaling:
        minReplicas: 2
        maxReplicas: 4
      resources:
        limits:
          memory: 512Mi
      egressTo:
        - selector: ${{api.selector}}
          port: 8000
  api:
    type: hardened-k8s:index:HardenedService
    properties:
      namespace: ${{namespace.namespaceName}}
      image: {IMAGE}
      port: 8000
      ingressFrom:
        - selector:
            app.kubernetes.io/name: web
            app.kubernetes.io/instance: web
          port: 8080
outputs:
  dns: ${{web.dnsName}}
"""


@pytest.fixture(scope="module")
def preview(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    binaries = ("pulumi", "pulumi-resource-kubernetes", "pulumi-language-yaml")
    missing = [b for b in binaries if not (toolchain_dir() / "bin" / b).is_file()]
    if missing:
        unavailable("cluster", "missing " + ", ".join(missing) + "; run scripts/toolchain.sh")
    plugin = Path(sys.executable).parent / "pulumi-resource-hardened-k8s"
    assert plugin.is_file(), f"{plugin} is missing; install the library (make venv)"
    work = tmp_path_factory.mktemp("yaml-program")
    env = pulumi_env(work / "pulumi", kubeconfig=work / "no-cluster.yaml").env
    (work / "Pulumi.yaml").write_text(PROGRAM)
    pulumi = str(toolchain_dir() / "bin" / "pulumi")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [pulumi, *args, "--stack", "dev", "--non-interactive"],
            cwd=work, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip

    created = cli("stack", "init")
    assert created.returncode == 0, created.stderr
    result = cli("preview", "--json")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    previewed: dict[str, Any] = json.loads(result.stdout)
    return previewed


def _inputs(preview: dict[str, Any], urn_tail: str) -> dict[str, Any]:
    (step,) = [s for s in preview["steps"] if s["urn"].endswith(urn_tail)]
    inputs: dict[str, Any] = step["newState"]["inputs"]
    return inputs


def test_the_components_and_their_objects_are_previewed(preview: dict[str, Any]) -> None:
    types = sorted(s["urn"].split("::")[2] for s in preview["steps"])
    assert types.count("hardened-k8s:index:HardenedService") == 2
    assert "hardened-k8s:index:SecureNamespace" in types
    assert "hardened-k8s:index:HardenedService$kubernetes:autoscaling/v2:HorizontalPodAutoscaler" in types
    assert {s["op"] for s in preview["steps"]} == {"create"}
    assert preview["changeSummary"] == {"create": len(preview["steps"])}


def test_the_args_of_the_yaml_program_reach_the_hardened_objects(preview: dict[str, Any]) -> None:
    deployment = _inputs(preview, "HardenedService$kubernetes:apps/v1:Deployment::web-deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["metadata"]["namespace"] == "hello-yaml"
    assert container["image"] == IMAGE
    assert {"name": "PORT", "value": "8080"} in container["env"]
    assert container["resources"]["limits"] == {
        "cpu": "500m",
        "ephemeral-storage": "256Mi",
        "memory": "512Mi",
    }
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    assert "replicas" not in deployment["spec"], "an HPA owns the replica count"
    hpa = _inputs(preview, "HorizontalPodAutoscaler::web-hpa")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)


def test_peers_are_wired_through_outputs(preview: dict[str, Any]) -> None:
    web = _inputs(preview, "NetworkPolicy::web-networkpolicy")
    (egress,) = web["spec"]["egress"]
    assert egress["ports"] == [{"port": 8000, "protocol": "TCP"}]
    # ${api.selector}: the api component's output, resolved before the policy is declared.
    assert egress["to"] == [
        {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/instance": "api", "app.kubernetes.io/name": "api"}
            }
        }
    ]
    api = _inputs(preview, "NetworkPolicy::api-networkpolicy")
    (ingress,) = api["spec"]["ingress"]
    assert ingress["from"] == [
        {
            "podSelector": {
                "matchLabels": {"app.kubernetes.io/instance": "web", "app.kubernetes.io/name": "web"}
            }
        }
    ]
