"""The dev stack rendered with the locally built images and a generated password, then run.

:func:`render` runs the real ``__main__.py`` on the mock engine (as ``python -m
hardened_k8s.render`` does) with the dev stack's config, changed only where a local run must
differ: every image is ``image.ref`` to the digest the local registry serves. The
secrets ``databasePassword`` and ``authToken`` are generated per run and handed to the
program as secret config, as ``pulumi`` would after decrypting them.

The rendered files keep secrets redacted (``<secret>``). The Secret objects handed to
podman are the one exception, made explicitly by :func:`secret_manifest` from the program's
own registration: the SDK marks each secret value, and only the values this run generated
are there. They go to podman's secret store over stdin, never to a file, ``build/`` or a log.
"""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import yaml
from pulumi.runtime import rpc

from hardened_k8s.mock_engine import ProgramRun, Registration, run_program, stack_config
from hardened_k8s.render import RenderedObject

from .podman import Cluster, ProbeResult, probe, selects, statefulset_pods, wait_for

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "store-inventory"
STACK = "dev"
API = "store-inventory"
MCP = "mcp-store-inventory"
DB = "store-inventory-postgresql"
RACE_REPLICAS = 3
"""API containers started at once against an empty database (migrations must run once).

podman 4.3's kube play publishes every containerPort on the host (here: the test's netns),
so a Deployment's second replica cannot bind; the race runs the API image directly instead.
"""


@dataclass(frozen=True)
class Secrets:
    """Values generated for one run; never written anywhere but podman's secret store."""

    database_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    auth_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def __repr__(self) -> str:  # keep them out of pytest's reports
        return "Secrets(<generated>)"


def e2e_config(image_refs: Mapping[str, str]) -> dict[str, Any]:
    """The dev stack's config (short keys) with every image a local digest."""
    data = yaml.safe_load((ROOT / f"Pulumi.{STACK}.yaml").read_text())
    config = {key.split(":", 1)[1]: copy.deepcopy(value) for key, value in data["config"].items()}
    config = {k: v for k, v in config.items() if not (isinstance(v, dict) and set(v) == {"secure"})}
    config["database"]["image"] = {"ref": image_refs["postgresql"]}
    for name, service in config["services"].items():
        service["image"] = {"ref": image_refs[name]}
    return config


def render(config: Mapping[str, Any], generated: Secrets) -> ProgramRun:
    """Run the real program for the dev stack with ``config`` and the generated secrets."""
    values, secret_keys = stack_config(PROJECT, {"config": {f"{PROJECT}:{k}": v for k, v in config.items()}})
    for key, value in (
        ("databasePassword", generated.database_password),
        ("authToken", generated.auth_token),
    ):
        values[f"{PROJECT}:{key}"] = value
        secret_keys.append(f"{PROJECT}:{key}")
    return run_program(ROOT, STACK, config=values, secret_keys=secret_keys)


def _reveal(value: Any) -> Any:
    """Inputs with the SDK's secret markers removed, keeping the values under them."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _reveal(value.get("value"))
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def secret_manifest(obj: RenderedObject) -> dict[str, Any]:
    """A rendered Secret with its real values (for podman only; never written to build/)."""
    assert obj.manifest["kind"] == "Secret"
    revealed = _reveal(obj.registration.inputs)
    manifest = copy.deepcopy(obj.manifest)
    manifest["stringData"] = {k: str(v) for k, v in revealed["stringData"].items()}
    return manifest


@dataclass
class Workload:
    """A Deployment or StatefulSet as run: its manifest, pods and the containers' spec."""

    manifest: dict[str, Any]
    pods: list[str]

    @property
    def name(self) -> str:
        name: str = self.manifest["metadata"]["name"]
        return name

    @property
    def pod_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.manifest["spec"]["template"]["spec"]
        return spec

    @property
    def container_spec(self) -> dict[str, Any]:
        container: dict[str, Any] = self.pod_spec["containers"][0]
        return container

    def container(self, pod: str) -> str:
        """podman's name of the (single) container of ``pod``."""
        return f"{pod}-{self.container_spec['name']}"

    @property
    def ports(self) -> dict[str, int]:
        return {p["name"]: int(p["containerPort"]) for p in self.container_spec.get("ports", [])}


@dataclass
class RunningStack:
    """The stack played into a :class:`Cluster`."""

    cluster: Cluster
    run: ProgramRun
    objects: list[RenderedObject]
    generated: Secrets
    workloads: dict[str, Workload] = field(default_factory=dict)
    played_at: float = 0.0
    ready_seconds: float = 0.0

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o.manifest for o in self.objects if o.manifest["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for manifest in self.of_kind(kind):
            if manifest["metadata"]["name"] == name:
                return manifest
        raise KeyError(f"no {kind}/{name} rendered")

    def registration(self, kind: str, name: str) -> Registration:
        for obj in self.objects:
            if obj.manifest["kind"] == kind and obj.manifest["metadata"]["name"] == name:
                return obj.registration
        raise KeyError(f"no {kind}/{name} rendered")

    def _aliases(self, labels: Mapping[str, str]) -> list[str]:
        return sorted(s["metadata"]["name"] for s in self.of_kind("Service") if selects(s, labels))

    # -- lifecycle ---------------------------------------------------------------------------
    def play(self) -> None:
        """Secrets, then the StatefulSet's claim and pod, then every Deployment."""
        self.played_at = time.monotonic()
        for obj in self.objects:
            if obj.manifest["kind"] == "Secret":
                self.cluster.create_secret(secret_manifest(obj))
        for sts in self.of_kind("StatefulSet"):
            labels = sts["spec"]["template"]["metadata"]["labels"]
            self.cluster.play(statefulset_pods(sts), aliases=self._aliases(labels))
            self.workloads[sts["metadata"]["name"]] = Workload(sts, [f"{sts['metadata']['name']}-0"])
        for dep in self.of_kind("Deployment"):
            labels = dep["spec"]["template"]["metadata"]["labels"]
            self.cluster.play([dep], aliases=self._aliases(labels))
            replicas = int(dep["spec"].get("replicas") or 1)
            name = dep["metadata"]["name"]
            self.workloads[name] = Workload(dep, [f"{name}-pod-{i}" for i in range(replicas)])

    def ip(self, pod: str) -> str:
        return self.cluster.pod_ip(pod)

    def run_probe(self, workload: str, pod: str, kind: str) -> ProbeResult:
        """Run the rendered ``kind`` (readinessProbe, livenessProbe, startupProbe) once."""
        w = self.workloads[workload]
        return probe(self.cluster, w.container(pod), self.ip(pod), w.container_spec[kind], w.ports)

    def ready(self, workload: str, pod: str) -> bool:
        return self.run_probe(workload, pod, "readinessProbe").ok

    def wait_all_ready(self, timeout: float = 300) -> float:
        """Poll every pod's readiness probe; seconds from kube play until all passed."""
        pending = {(w, p) for w, wl in self.workloads.items() for p in wl.pods}
        last: dict[tuple[str, str], ProbeResult] = {}

        def check() -> bool:
            for item in sorted(pending):
                last[item] = self.run_probe(*item, "readinessProbe")
                if last[item].ok:
                    pending.discard(item)
            return not pending

        try:
            wait_for("pods ready", check, timeout, interval=0.25)
        except AssertionError as exc:
            details = "; ".join(
                f"{pod}: {last[(w, pod)].detail}" for w, pod in sorted(pending) if (w, pod) in last
            )
            raise AssertionError(f"{exc}; not ready: {details}") from None
        self.ready_seconds = time.monotonic() - self.played_at
        return self.ready_seconds

    # -- clients -----------------------------------------------------------------------------
    def base_url(self, workload: str, index: int = 0) -> str:
        w = self.workloads[workload]
        return f"http://{self.ip(w.pods[index])}:{w.ports['http']}"

    @property
    def mcp_host(self) -> str:
        """The public host name the MCP server is exposed under (what the ingress forwards)."""
        host: str = self.run_spec_expose()["host"]
        return host

    def run_spec_expose(self) -> dict[str, Any]:
        ingress = self.get("Ingress", MCP)
        return {"host": ingress["spec"]["rules"][0]["host"]}

    def mcp(self, calls: Sequence[tuple[str, dict[str, Any]]], *, token: str | None = None) -> list[Any]:
        """Call MCP tools in one client session (the real SDK), inside the netns."""
        url = self.base_url(MCP) + "/mcp"
        bearer = self.generated.auth_token if token is None else token
        host = self.mcp_host
        return self.cluster.call(lambda: asyncio.run(_mcp_calls(url, bearer, host, calls)), timeout=300)

    def psql(self, sql: str) -> str:
        """Run ``sql`` on PostgreSQL directly (psql over TCP from the netns); its output."""
        config = self.run_config_database()
        return self.cluster.ns_run(
            [
                "psql", "--no-psqlrc", "--tuples-only", "--no-align", "--set", "ON_ERROR_STOP=1",
                "--host", self.ip(self.workloads[DB].pods[0]), "--port", "5432",
                "--username", config["user"], "--dbname", config["database"], "--command", sql,
            ],
            env={"PGPASSWORD": self.generated.database_password, "PGCONNECT_TIMEOUT": "5"},
        ).strip()  # fmt: skip

    def run_config_database(self) -> dict[str, str]:
        env = {e["name"]: e.get("value") for e in self.workloads[DB].container_spec["env"]}
        return {"user": str(env["POSTGRES_USER"]), "database": str(env["POSTGRES_DB"])}


async def _mcp_calls(
    url: str, token: str, host: str, calls: Sequence[tuple[str, dict[str, Any]]]
) -> list[Any]:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    results: list[Any] = []
    headers = {"Authorization": f"Bearer {token}", "Host": host}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        # The SDK validates a result against the tool's output schema and lists the tools
        # to learn it, after the call, unless they were listed already. Listing them first
        # keeps each call one request (a server shutting down refuses new ones).
        await client.list_tools()
        for tool, args in calls:
            result = await client.call_tool(tool, args)
            if result.is_error:
                text = " ".join(getattr(c, "text", "") for c in result.content)
                raise AssertionError(f"tool {tool} failed: {text}")
            results.append(tool_value(result))
    return results


def tool_value(result: Any) -> Any:
    """A tool result's value: the structured content, or the JSON text of its content."""
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        return structured.get("result", structured) if isinstance(structured, dict) else structured
    texts = [getattr(c, "text", "") for c in result.content]
    if len(texts) == 1:
        return json.loads(texts[0])
    return [json.loads(t) for t in texts]


async def _mcp_session_timings(
    url: str, token: str, host: str, calls: Sequence[tuple[str, dict[str, Any]]]
) -> list[float]:
    """Seconds each tool call took, all in one client session (the real SDK)."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    timings: list[float] = []
    headers = {"Authorization": f"Bearer {token}", "Host": host}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        await client.list_tools()  # as in _mcp_calls: every timed call is one request
        for tool, args in calls:
            started = time.perf_counter()
            result = await client.call_tool(tool, args)
            timings.append(time.perf_counter() - started)
            if result.is_error:
                raise AssertionError(f"tool {tool} failed")
    return timings
