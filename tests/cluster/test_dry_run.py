"""The API server as the oracle of the input checks: nothing renders green that it refuses.

Every object of a corpus of configurations is submitted to the local control plane's real
kube-apiserver with a server-side dry run (``dryRun=All``, ``fieldValidation=Strict``), after
its namespace is created for real. The corpus: the committed stacks, the examples' stacks,
the dev stack at every supported ``kubernetesVersion`` the server's version allows, and
configurations drawn by the generator of tests/stack_strategies.py. A refusal of an object
whose render was green fails the test.

The other direction: every value the generator marks as refused by the library is put into
the smallest object that carries it, and the API server must refuse that object too.

Self-contained on purpose (its own small HTTP client on the kubeconfig the ``cluster``
fixture writes), so that it does not depend on the rest of the cluster package. Figures
(corpus size, generated configurations, wall time) go to build/dry-run/figures.json.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings

from hardened_k8s.config import SUPPORTED_KUBERNETES_VERSIONS, ConfigError
from hardened_k8s.mock_engine import ProgramRun, run_program, stack_config, stack_names
from hardened_k8s.render import CheckSettings, check, manifests
from hardened_k8s.stack_config import RENDER_ASSUMES_SECRETS

from ..stack_strategies import HARDENING_CHOICES, check_settings_of, refused_values, stack_configs

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
GENERATED = int(os.environ.get("DRY_RUN_EXAMPLES", "40"))
"""Generated configurations submitted per run."""
FIGURES = ROOT / "build" / "dry-run" / "figures.json"


class Api:
    """The Kubernetes REST API, as the current context of a kubeconfig reaches it."""

    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        context = next(c for c in config["contexts"] if c["name"] == config["current-context"])["context"]
        cluster = next(c for c in config["clusters"] if c["name"] == context["cluster"])["cluster"]
        user = next(u for u in config["users"] if u["name"] == context["user"])["user"]
        self.server = cluster["server"].rstrip("/")
        self.ssl = ssl.create_default_context(cafile=cluster.get("certificate-authority"))
        if "certificate-authority-data" in cluster:
            self.ssl.load_verify_locations(
                cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
            )
        self.headers = {"Content-Type": "application/json"}
        if user.get("token"):
            self.headers["Authorization"] = f"Bearer {user['token']}"
        if user.get("client-certificate"):
            self.ssl.load_cert_chain(user["client-certificate"], user["client-key"])
        self._kinds: dict[str, dict[str, tuple[str, bool]]] = {}

    def request(self, method: str, path: str, body: Any = None, **query: str) -> tuple[int, dict[str, Any]]:
        """``(HTTP status, decoded body)``; an error status is returned, not raised."""
        url = f"{self.server}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, method=method, data=data, headers=self.headers)
        try:
            with urllib.request.urlopen(request, context=self.ssl, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                return exc.code, json.loads(text)
            except ValueError:
                return exc.code, {"message": text.decode(errors="replace")}

    def collection(self, obj: dict[str, Any]) -> str:
        """The REST collection an object is created in (plural by discovery)."""
        api_version = obj["apiVersion"]
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if api_version not in self._kinds:
            status, listing = self.request("GET", base)
            assert status == 200, (base, listing)
            self._kinds[api_version] = {
                r["kind"]: (r["name"], r["namespaced"]) for r in listing["resources"] if "/" not in r["name"]
            }
        plural, namespaced = self._kinds[api_version][obj["kind"]]
        namespace = obj["metadata"].get("namespace")
        return f"{base}/namespaces/{namespace}/{plural}" if namespaced else f"{base}/{plural}"

    def minor_version(self) -> tuple[int, int]:
        status, version = self.request("GET", "/version")
        assert status == 200, version
        return int(version["major"]), int(version["minor"].rstrip("+"))


@dataclass
class DryRun:
    """What the API server said about a corpus."""

    configurations: int = 0
    objects: int = 0
    refused: list[str] = field(default_factory=list)
    not_green: list[str] = field(default_factory=list)

    def submit(self, api: Api, label: str, objects: list[dict[str, Any]]) -> None:
        """Create each Namespace for real, then dry-run every object (Namespaces included)."""
        self.configurations += 1
        for obj in objects:
            if obj["kind"] == "Namespace":
                status, body = api.request("POST", api.collection(obj), obj, fieldValidation="Strict")
                if status not in (201, 409):
                    self.refused.append(
                        f"{label}: Namespace/{obj['metadata']['name']}: {body.get('message')}"
                    )
        for obj in objects:
            self.objects += 1
            status, body = api.request(
                "POST", api.collection(obj), obj, dryRun="All", fieldValidation="Strict"
            )
            if status == 409 and obj["kind"] == "Namespace":
                continue  # created just above: the dry run of a second create says so
            if status >= 300:
                who = f"{obj['kind']}/{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
                self.refused.append(f"{label}: {who}: {body.get('message')}")


class NotGreenError(Exception):
    """A render that failed its schema or policy check; the message is the check's report."""


def green_objects(run: ProgramRun, settings_: CheckSettings) -> list[dict[str, Any]]:
    """The manifests of a run whose render is green (schema and policy); :class:`NotGreenError` if not."""
    objects = manifests(run)
    checks = check(objects, settings_)
    if checks.failed:
        raise NotGreenError(checks.text())
    # A patch (the database claim's size) changes an object a controller made; it is not one
    # to create on its own.
    return [o.manifest for o in objects if not o.registration.type.endswith("Patch")]


def project_stacks() -> list[tuple[str, Path, str]]:
    """``(label, project directory, stack)`` of the committed stacks and the examples' stacks."""
    found = [(f"stack {s}", ROOT, s) for s in stack_names(ROOT)]
    for project in sorted((ROOT / "examples").glob("*/Pulumi.yaml")):
        found += [
            (f"example {project.parent.name}/{s}", project.parent, s) for s in stack_names(project.parent)
        ]
    return found


def settings_of(project: Path, stack: str) -> CheckSettings:
    from hardened_k8s.render import check_settings

    return check_settings(project, stack)


def render_generated(config: dict[str, Any]) -> list[dict[str, Any]]:
    """A generated configuration rendered as the dev stack of the repository's program."""
    values, secret_keys = stack_config(
        "store-inventory",
        {"config": {f"store-inventory:{k}": v for k, v in config.items()}},
        assume_secrets=RENDER_ASSUMES_SECRETS,
    )
    run = run_program(ROOT, "dev", config=values, secret_keys=secret_keys)
    return green_objects(run, check_settings_of(config))


def generated_configurations(count: int, newest: str) -> list[dict[str, Any]]:
    """``count`` configurations from the generator, their ``kubernetesVersion`` at most ``newest``."""
    drawn: list[dict[str, Any]] = []

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(config=stack_configs())
    def draw(config: dict[str, Any]) -> None:
        if SUPPORTED_KUBERNETES_VERSIONS.index(
            config["kubernetesVersion"]
        ) > SUPPORTED_KUBERNETES_VERSIONS.index(newest):
            config["kubernetesVersion"] = newest
        drawn.append(config)

    draw()
    return drawn


def test_the_api_server_accepts_every_object_of_every_green_render(cluster: Any) -> None:
    api = Api(Path(cluster.kubeconfig))
    major, minor = api.minor_version()
    newest = f"{major}.{minor}"
    assert newest in SUPPORTED_KUBERNETES_VERSIONS, f"server {newest} is outside the supported range"
    started = time.monotonic()
    result = DryRun()

    for label, project, stack in project_stacks():
        run = run_program(project, stack, assume_secrets=RENDER_ASSUMES_SECRETS)
        try:
            objects = green_objects(run, settings_of(project, stack))
        except NotGreenError as exc:
            result.not_green.append(f"{label}: {exc}")
            continue
        result.submit(api, label, objects)

    # Every supported version the server can judge (its own and older), on the dev stack.
    for version in SUPPORTED_KUBERNETES_VERSIONS[: SUPPORTED_KUBERNETES_VERSIONS.index(newest) + 1]:
        values, secret_keys = stack_config(
            "store-inventory",
            {"config": {**yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]}},
            assume_secrets=RENDER_ASSUMES_SECRETS,
        )
        values["store-inventory:kubernetesVersion"] = version
        values["store-inventory:namespace"] = f"versions-{version.replace('.', '-')}"
        run = run_program(ROOT, "dev", config=values, secret_keys=secret_keys)
        try:
            objects = green_objects(run, CheckSettings(kubernetes_version=version))
        except NotGreenError as exc:
            result.not_green.append(f"dev at {version}: {exc}")
            continue
        result.submit(api, f"dev at {version}", objects)

    fixed = result.configurations
    generated = generated_configurations(GENERATED, newest)
    for i, config in enumerate(generated):
        try:
            objects = render_generated(config)
        except (ConfigError, NotGreenError) as exc:
            result.not_green.append(f"generated #{i} {json.dumps(config)}: {exc}")
            continue
        result.submit(api, f"generated #{i} {json.dumps(config)}", objects)

    elapsed = time.monotonic() - started
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(
        json.dumps(
            {
                "server": newest,
                "configurations": result.configurations,
                "fixed_configurations": fixed,
                "generated_configurations": len(generated),
                "objects": result.objects,
                "refused": len(result.refused),
                "not_green": len(result.not_green),
                "wall_seconds": round(elapsed, 1),
            },
            indent=2,
        )
        + "\n"
    )
    assert not result.refused, "\n".join(result.refused[:20])
    assert not result.not_green, "\n".join(result.not_green[:20])


# --- The other direction ---------------------------------------------------------------------


def carrier(key: str, value: str, namespace: str) -> dict[str, Any]:
    """The smallest object that carries ``value`` where ``key`` would put it."""
    meta = {"name": "probe", "namespace": namespace}
    if key == "namespace":
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": value}}
    if key == "expose.host":
        backend = {"service": {"name": "web", "port": {"number": 80}}}
        path = {"path": "/", "pathType": "Prefix", "backend": backend}
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": meta,
            "spec": {"tls": [{"hosts": [value]}], "rules": [{"host": value, "http": {"paths": [path]}}]},
        }
    if key == "expose.tlsSecretName":
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {**meta, "name": value}}
    if key == "expose.ingressClassName":
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": value},
            "spec": {"controller": "example.com/ingress"},
        }
    if key == "resources.requests.cpu":
        container = {"name": "c", "image": "quay.io/a/b:1", "resources": {"requests": {"cpu": value}}}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [container]}}
    if key == "probes.readinessPath":
        probe = {"httpGet": {"path": value, "port": 8080}}
        container = {"name": "c", "image": "quay.io/a/b:1", "readinessProbe": probe}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [container]}}
    if key == "database.storage":
        spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": value}}}
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}
    raise AssertionError(f"no carrier object for {key}")


REFUSED_EXAMPLES = int(os.environ.get("DRY_RUN_REFUSED", "60"))
"""Refused values drawn per run."""


def test_the_api_server_refuses_what_the_library_refuses(cluster: Any) -> None:
    api = Api(Path(cluster.kubeconfig))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "refusals"}}
    assert api.request("POST", api.collection(namespace), namespace)[0] in (201, 409)
    drawn: set[tuple[str, str]] = set()

    @settings(max_examples=REFUSED_EXAMPLES, deadline=None, database=None, phases=[Phase.generate])
    @given(refused=refused_values())
    def draw(refused: tuple[str, str]) -> None:
        drawn.add(refused)

    draw()
    accepted = []
    for key, value in sorted(drawn):
        obj = carrier(key, value, "refusals")
        status, _ = api.request("POST", api.collection(obj), obj, dryRun="All", fieldValidation="Strict")
        if status < 300:
            accepted.append(f"{key}={value!r}")
    assert not accepted, "the API server accepts what the library refuses: " + ", ".join(accepted)
    # The documented hardening choices are choices: the API server would take these values.
    refused = []
    for key, values in sorted(HARDENING_CHOICES.items()):
        for value in values:
            obj = carrier(key, value, "refusals")
            status, body = api.request(
                "POST", api.collection(obj), obj, dryRun="All", fieldValidation="Strict"
            )
            if status >= 300:
                refused.append(f"{key}={value!r}: {body.get('message')}")
    assert not refused, "not a hardening choice, the API server refuses it too: " + "; ".join(refused)
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    (FIGURES.parent / "refused.json").write_text(
        json.dumps(
            {"refused_values": len(drawn), "hardening_choices": sum(map(len, HARDENING_CHOICES.values()))}
        )
        + "\n"
    )
