"""Each committed stack previewed, deployed, changed and destroyed for real.

One module-scoped deployment per stack; the tests run in file order against it: preview
with the policy pack, ``up``, what the API server then holds, a no-op preview on live state,
a one-field change rolled out, a mandatory violation refused, and ``destroy``.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi import automation as auto

from hardened_k8s.mock_engine import run_program, stack_names
from hardened_k8s.quantities import parse_quantity
from hardened_k8s.render import manifests
from hardened_k8s.stack_config import RENDER_ASSUMES_SECRETS
from hardened_k8s_rules.policy import RULES

from ..image.stack_images import Image
from ..waiting import wait_until as _wait
from . import autoscale, ingress_load, matrix, node, variants
from .deploy import node_image_refs, tls_certificate, tls_secret
from .kube import Kube, subset
from .local import LocalCluster
from .mcp_client import Endpoint, RotatingTokenClient, call_tools
from .podnet import PodNet, RequestStream, pod_net, run_load
from .pulumi_cli import POLICY_PACK, ROOT, ProjectStack, PulumiEnv

pytestmark = pytest.mark.cluster

STACKS = tuple(stack_names(ROOT))
"""Every committed stack: one per ``Pulumi.<stack>.yaml``."""
REAL_NODE_STACK = "dev"
"""The stack deployed on the real node with the images the harness built; the others go to
KWOK nodes, whose zones the production spread rules need."""
TIMINGS = ROOT / "build" / "cluster-timings.json"
"""Where the tier records how long each CLI operation took (the figures of docs/cluster.md)."""
MATRIX = ROOT / "build" / "traffic-matrix.txt"
"""The observed traffic matrix of the real node, next to the model's verdict for each pair."""


@dataclass
class Deployed:
    """One stack of the project on the local cluster, and what the tests learnt of it."""

    project: ProjectStack
    password: str
    secrets: dict[str, str]
    refs: dict[str, str]
    rendered: list[dict[str, Any]]
    kube: Kube
    timings: dict[str, float] = field(default_factory=dict)
    up_result: auto.UpResult | None = None

    @property
    def stack(self) -> auto.Stack:
        return self.project.stack

    @property
    def namespace(self) -> str:
        return str(self.project.config("namespace"))

    def timed(self, label: str, started: float) -> None:
        self.timings[label] = round(time.monotonic() - started, 1)

    def preview(self, **kwargs: Any) -> tuple[auto.PreviewResult, list[auto.EngineEvent]]:
        """``pulumi preview --policy-pack policy --policy-pack-config <from the stack file>``."""
        events: list[auto.EngineEvent] = []
        result = self.stack.preview(
            policy_packs=[str(POLICY_PACK)],
            policy_pack_configs=[str(self.project.policy_config())],
            on_event=events.append,
            **kwargs,
        )
        return result, events

    def live(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        meta = obj["metadata"]
        return self.kube.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))

    def rendered_of(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.rendered if o["kind"] == kind]


def _identity(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def _planned(events: list[auto.EngineEvent]) -> dict[tuple[str, str, str], str]:
    """Kubernetes objects a preview plans, by (kind, namespace, name), with their step op."""
    planned: dict[tuple[str, str, str], str] = {}
    for event in events:
        pre = event.resource_pre_event
        if pre is None or not pre.metadata.type.startswith("kubernetes:"):
            continue
        if (
            pre.metadata.type.startswith("kubernetes:pulumi")
            or pre.metadata.type == "pulumi:providers:kubernetes"
        ):
            continue
        state = pre.metadata.new or pre.metadata.old
        inputs = (state.inputs if state else None) or {}
        meta = inputs.get("metadata") or {}
        # A patch (the database claim's size) renders as the kind it patches.
        kind = pre.metadata.type.rsplit(":", 1)[1].removesuffix("Patch")
        planned[(kind, meta.get("namespace", ""), meta.get("name", ""))] = str(pre.metadata.op.value)
    return planned


@pytest.fixture(scope="module", params=STACKS)
def deployed(
    request: pytest.FixtureRequest,
    cluster: LocalCluster,
    pulumi: PulumiEnv,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    stack: str = request.param
    started = time.monotonic()
    project = ProjectStack(pulumi, stack, tmp_path_factory.mktemp(f"project-{stack}"))
    values = {key: secrets.token_urlsafe(18) for key in RENDER_ASSUMES_SECRETS}
    real = stack == REAL_NODE_STACK
    cluster.place(real=real)
    images: dict[str, str] = {}
    if real:
        built: dict[str, Image] = request.getfixturevalue("stack_images")
        images = node_image_refs(project, built)
    refs = project.use_local_cluster(values, images)
    password = values["databasePassword"]
    rendered = [
        o.manifest for o in manifests(run_program(ROOT, stack, assume_secrets=RENDER_ASSUMES_SECRETS))
    ]
    state = Deployed(project, password, values, refs, rendered, Kube(cluster))
    state.timed("stack init + config", started)
    yield state
    timings = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    timings[stack] = state.timings
    TIMINGS.parent.mkdir(exist_ok=True)
    TIMINGS.write_text(json.dumps(timings, indent=2) + "\n")


def test_preview_passes_policy_and_plans_what_render_writes(deployed: Deployed) -> None:
    started = time.monotonic()
    result, events = deployed.preview()
    deployed.timed("preview", started)
    planned = _planned(events)
    expected = {_identity(o) for o in deployed.rendered}
    assert set(planned) == expected, (
        f"{deployed.project.name}: preview plans {sorted(set(planned) - expected)} beyond the render "
        f"and misses {sorted(expected - set(planned))}"
    )
    assert set(planned.values()) == {"create"}, planned
    assert result.change_summary.get(auto.OpType.CREATE, 0) >= len(expected)


def test_up_creates_every_rendered_object(deployed: Deployed) -> None:
    started = time.monotonic()
    deployed.up_result = deployed.stack.up(
        policy_packs=[str(POLICY_PACK)], policy_pack_configs=[str(deployed.project.policy_config())]
    )
    deployed.timed("up", started)
    missing = [_identity(o) for o in deployed.rendered if deployed.live(o) is None]
    assert not missing, f"{deployed.project.name}: not in the cluster after up: {missing}"


def test_namespace_enforces_restricted_and_admitted_every_pod(deployed: Deployed) -> None:
    ns = deployed.kube.get("v1", "Namespace", deployed.namespace)
    assert ns is not None
    labels = ns["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels.get(f"pod-security.kubernetes.io/{mode}") == "restricted", labels
    pods = deployed.kube.list("v1", "Pod", deployed.namespace)
    workloads = deployed.rendered_of("Deployment") + deployed.rendered_of("StatefulSet")
    assert pods, f"{deployed.namespace}: no pods were admitted"
    owners = {p["metadata"]["labels"].get("app.kubernetes.io/name") for p in pods}
    assert {w["metadata"]["name"] for w in workloads} <= owners, owners
    # A pod refused by Pod Security Admission leaves a FailedCreate event on its owner.
    events = deployed.kube.list("v1", "Event", deployed.namespace)
    refused = [e["message"] for e in events if e.get("reason") == "FailedCreate"]
    assert not refused, refused


def test_each_workload_has_its_replicas_available(deployed: Deployed) -> None:
    for obj in deployed.rendered_of("Deployment"):
        live = deployed.live(obj)
        assert live is not None
        name = obj["metadata"]["name"]
        [container] = live["spec"]["template"]["spec"]["containers"]
        assert container["image"] == deployed.refs[name], f"Deployment/{name} runs {container['image']}"
        status = live.get("status", {})
        assert status.get("availableReplicas", 0) >= max(1, live["spec"].get("replicas", 1)), (
            f"Deployment/{obj['metadata']['name']}: {status}"
        )
    for obj in deployed.rendered_of("StatefulSet"):
        live = deployed.live(obj)
        assert live is not None
        assert live.get("status", {}).get("readyReplicas", 0) == live["spec"]["replicas"], live.get("status")


# -- the real node (the dev stack only) ----------------------------------------------------------


def real_node(test: Any) -> Any:
    """A test of the stack on the real node: collected for :data:`REAL_NODE_STACK` only."""
    test.real_node = True
    return test


def _pods(deployed: Deployed, workload: str) -> list[dict[str, Any]]:
    return [
        p
        for p in deployed.kube.list("v1", "Pod", deployed.namespace)
        if p["metadata"]["labels"].get("app.kubernetes.io/name") == workload
        and not p["metadata"].get("deletionTimestamp")
    ]


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


@real_node
def test_kubelet_runs_every_pod_by_digest_under_its_probes(deployed: Deployed) -> None:
    workloads = deployed.rendered_of("Deployment") + deployed.rendered_of("StatefulSet")
    for workload in workloads:
        name = workload["metadata"]["name"]
        pods = _pods(deployed, name)
        assert pods, f"{name}: no pod"
        rendered = workload["spec"]["template"]["spec"]["containers"][0]
        for pod in pods:
            assert pod["spec"]["nodeName"] == node.NODE_NAME, pod["spec"].get("nodeName")
            assert _ready(pod), f"{pod['metadata']['name']}: {pod['status'].get('conditions')}"
            [status] = pod["status"]["containerStatuses"]
            # The image containerd pulled is the digest the stack pinned (through the mirror).
            assert status["imageID"].endswith(deployed.refs[name].rsplit("@", 1)[1]), status["imageID"]
            assert status["started"] and status["ready"], status
            [container] = pod["spec"]["containers"]
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                if probe in rendered:
                    assert subset(rendered[probe], container[probe], f"{name}.{probe}") == []
            # Ready within the startup budget kubelet enforced (failureThreshold x period).
            startup = container.get("startupProbe")
            if startup:
                budget = startup["failureThreshold"] * startup["periodSeconds"]
                started = _timestamp(status["state"]["running"]["startedAt"])
                ready = _timestamp(
                    next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")["lastTransitionTime"]
                )
                assert ready - started <= budget + 2, f"{name}: Ready {ready - started:.0f}s after start"


def _timestamp(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@real_node
def test_the_database_claim_is_bound_on_the_node(deployed: Deployed) -> None:
    claims = deployed.kube.list("v1", "PersistentVolumeClaim", deployed.namespace)
    assert claims, "no claim"
    for claim in claims:
        assert claim["status"]["phase"] == "Bound", claim["status"]
        volume = deployed.kube.get("v1", "PersistentVolume", claim["spec"]["volumeName"])
        assert volume is not None
        terms = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
        assert terms[0]["matchExpressions"][0]["values"] == [node.NODE_NAME]


@real_node
def test_pod_security_admission_refuses_an_unhardened_pod(deployed: Deployed) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "unhardened", "namespace": deployed.namespace},
        "spec": {"containers": [{"name": "app", "image": deployed.refs[next(iter(deployed.refs))]}]},
    }
    with pytest.raises(urllib.error.HTTPError) as refused:
        deployed.kube.cluster.api("POST", f"/api/v1/namespaces/{deployed.namespace}/pods", pod)
    body = json.loads(refused.value.read())
    assert refused.value.code == 403, body
    assert 'violates PodSecurity "restricted' in body["message"], body["message"]


def _container_processes(pod: dict[str, Any]) -> list[int]:
    """PIDs in the pod's containers (kubelet's cgroupfs layout: ``kubepods/[class/]pod<uid>/<id>``),
    the sandbox's pause process excluded."""
    uid = pod["metadata"]["uid"]
    container_ids = {s["containerID"].split("//", 1)[1] for s in pod["status"]["containerStatuses"]}
    pids: list[int] = []
    for directory in Path("/sys/fs/cgroup/pids/kubepods").rglob(f"pod{uid}/*"):
        if directory.name in container_ids:
            pids += [int(p) for p in (directory / "cgroup.procs").read_text().split()]
    return pids


@real_node
def test_containers_run_with_the_rendered_identity_and_no_secret_in_their_environment(
    deployed: Deployed,
) -> None:
    for workload in deployed.rendered_of("Deployment") + deployed.rendered_of("StatefulSet"):
        name = workload["metadata"]["name"]
        pod_sc = workload["spec"]["template"]["spec"]["securityContext"]
        [container] = workload["spec"]["template"]["spec"]["containers"]
        sc = {**pod_sc, **container.get("securityContext", {})}
        for pod in _pods(deployed, name):
            pids = _container_processes(pod)
            assert pids, f"{name}: no process found in the pod's cgroups"
            for pid in pids:
                status = Path(f"/proc/{pid}/status").read_text()
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                assert fields["Uid"].split() == [str(sc["runAsUser"])] * 4, f"{name}: Uid {fields['Uid']}"
                assert fields["Gid"].split() == [str(sc["runAsGroup"])] * 4, f"{name}: Gid {fields['Gid']}"
                for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
                    assert int(fields[cap].strip(), 16) == 0, f"{name}: {cap} {fields[cap].strip()}"
                assert fields["NoNewPrivs"].strip() == "1", f"{name}: privilege escalation possible"
                assert fields["Seccomp"].strip() == "2", f"{name}: no seccomp filter"
                environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
                for value in deployed.secrets.values():
                    assert value not in environ, f"{name}: a secret value is in the environment"


@real_node
def test_mcp_server_refuses_a_rebound_host_name(deployed: Deployed) -> None:
    """Reached directly (from the node) with another Host or Origin, the MCP server refuses."""
    [(name, service)] = [(n, s) for n, s in deployed.project.config("services").items() if "expose" in s]
    [pod] = _pods(deployed, name)[:1]
    url = f"http://{pod['status']['podIP']}:{service['port']}/mcp"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    headers = {
        "Authorization": f"Bearer {deployed.secrets['authToken']}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    for extra, refused in (
        ({"Host": "attacker.example"}, (403, 421)),
        ({"Host": service["expose"]["host"], "Origin": "https://attacker.example"}, (403,)),
    ):
        request = urllib.request.Request(url, data=body, headers={**headers, **extra}, method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code in refused, (extra, caught.value.code)


@pytest.fixture(scope="module")
def probe(deployed: Deployed) -> PodNet:
    """A pod in a namespace of its own, with no policy: any other tenant of the cluster."""
    cluster = deployed.kube.cluster
    for obj in matrix.probe_pod({"hardened-k8s.dev/test": "traffic"}, cluster.images["pause"]):
        if (
            deployed.kube.get(
                obj["apiVersion"], obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace")
            )
            is None
        ):
            cluster.apply(obj)
    pod = _wait(
        "the probe pod Ready",
        lambda: [p for p in deployed.kube.list("v1", "Pod", matrix.PROBE) if _ready(p)],
        120,
    )[0]
    return pod_net(pod)


def _sources(deployed: Deployed, probe: PodNet) -> dict[str, PodNet]:
    sources = {
        w["metadata"]["name"]: pod_net(_pods(deployed, w["metadata"]["name"])[0])
        for w in deployed.rendered_of("Deployment") + deployed.rendered_of("StatefulSet")
    }
    sources[matrix.PROBE] = probe
    return sources


@real_node
def test_network_policies_allow_exactly_what_the_traffic_model_predicts(
    deployed: Deployed, probe: PodNet
) -> None:
    sources = _sources(deployed, probe)
    targets: list[matrix.Target] = []
    named: dict[str, dict[str, int]] = {}
    for workload in deployed.rendered_of("Deployment") + deployed.rendered_of("StatefulSet"):
        name = workload["metadata"]["name"]
        ports = {
            p.get("name", str(p["containerPort"])): p["containerPort"]
            for c in workload["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        }
        named[name] = ports
        targets += [matrix.Target(name, "pod", sources[name].ip, port, port) for port in ports.values()]
    for service in deployed.rendered_of("Service"):
        live = deployed.live(service)
        assert live is not None
        name = service["spec"]["selector"]["app.kubernetes.io/name"]
        for p in live["spec"]["ports"]:
            target_port = p.get("targetPort", p["port"])
            pod_port = named[name][target_port] if isinstance(target_port, str) else target_port
            targets.append(matrix.Target(name, "service", live["spec"]["clusterIP"], p["port"], pod_port))
    started = time.monotonic()
    observed = matrix.observe(sources, targets)
    seconds = time.monotonic() - started
    lines, wrong = [], []
    for (source, target_name), outcome in sorted(observed.items()):
        target = next(t for t in targets if str(t) == target_name)
        if target.workload == source:
            # A pod reaching itself through its Service is hairpinned by kube-proxy with the
            # node's address, which no NetworkPolicy sees as the pod: not a policy question.
            continue
        expected = matrix.predicted(deployed.rendered, source, target)
        connected = outcome == "connected"
        lines.append(f"{source:28} -> {target_name:40} {outcome:12} model: {'allow' if expected else 'deny'}")
        if connected != expected:
            wrong.append(lines[-1])
    MATRIX.parent.mkdir(exist_ok=True)
    MATRIX.write_text(f"{len(lines)} pairs observed in {seconds:.2f}s\n" + "\n".join(lines) + "\n")
    deployed.timings["traffic matrix pairs"] = len(lines)
    deployed.timings["traffic matrix seconds"] = round(seconds, 2)
    assert any(o == "connected" for o in observed.values()), "nothing connected at all"
    assert not wrong, "observed traffic differs from the model:\n" + "\n".join(wrong)


@real_node
def test_dns_answers_only_through_the_cluster_dns(deployed: Deployed, probe: PodNet) -> None:
    sources = _sources(deployed, probe)
    database = deployed.project.config("database")["name"]
    name = f"{database}.{deployed.namespace}.svc.cluster.local"
    service = deployed.kube.get("v1", "Service", database, deployed.namespace)
    assert service is not None
    # A resolver that is not the cluster DNS: one answering in the probe's namespace.
    other = probe.ip
    server = subprocess.Popen(
        ["ip", "netns", "exec", probe.netns, sys.executable, "-c", _ECHO_DNS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        assert probe.resolve(other, name).get("rcode") == 0, "the other resolver itself does not answer"
        for source, net in sources.items():
            if source == matrix.PROBE:
                continue
            answer = net.resolve(node.CLUSTER_DNS, name)
            assert answer.get("ips") == [service["spec"]["clusterIP"]], f"{source}: {answer}"
            assert "error" in net.resolve(other, name), f"{source} got an answer from another resolver"
    finally:
        server.kill()
        server.wait()


_ECHO_DNS = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
while True:
    data, peer = s.recvfrom(4096)
    # The query echoed back as an empty NOERROR response.
    s.sendto(data[:2] + bytes([0x81, 0x80]) + data[4:], peer)
"""


@pytest.fixture(scope="module")
def mcp(deployed: Deployed, tmp_path_factory: pytest.TempPathFactory) -> Endpoint:
    """The MCP server through Traefik: its TLS Secret made with the test's own CA."""
    cluster = deployed.kube.cluster
    assert cluster.ingress is not None
    [service] = [s for s in deployed.project.config("services").values() if "expose" in s]
    expose = service["expose"]
    pki = tmp_path_factory.mktemp("ingress-pki")
    crt, key, ca = tls_certificate(pki, expose["host"])
    secret = tls_secret(deployed.namespace, expose["tlsSecretName"], crt, key)
    if deployed.kube.get("v1", "Secret", expose["tlsSecretName"], deployed.namespace) is None:
        cluster.apply(secret)
    return Endpoint(cluster.ingress.https_port, expose["host"], ca)


def _psql_run(deployed: Deployed, sql: str, password: str) -> subprocess.CompletedProcess[str]:
    database = deployed.project.config("database")
    [pod] = _pods(deployed, database["name"])
    return subprocess.run(
        [
            "psql", "--no-psqlrc", "--tuples-only", "--no-align", "--set", "ON_ERROR_STOP=1",
            "--host", pod["status"]["podIP"], "--port", "5432",
            "--username", database["user"], "--dbname", database["database"], "--command", sql,
        ],
        env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"},
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip


def _psql(deployed: Deployed, sql: str) -> str:
    """A query from the node to the database pod (node traffic, as kubelet's probes are)."""
    result = _psql_run(deployed, sql, deployed.password)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _password_accepted(deployed: Deployed, password: str) -> bool:
    """Whether PostgreSQL accepts ``password`` for the owner role now; any other failure than a
    refused password is an error of the test."""
    result = _psql_run(deployed, "SELECT 1", password)
    if result.returncode == 0:
        return True
    assert "password authentication failed" in result.stderr, result.stderr
    return False


def _wait_ingress_serves(mcp: Endpoint, token: str) -> None:
    def serves() -> bool:
        try:
            call_tools(mcp, token, [("list_products", {"limit": 1})])
        except Exception:
            return False
        return True

    _wait("Traefik routes the Ingress with its certificate", serves, 60)


@real_node
def test_mcp_client_through_the_ingress_changes_stock_in_postgresql(
    deployed: Deployed, mcp: Endpoint
) -> None:
    token = deployed.secrets["authToken"]
    _wait_ingress_serves(mcp, token)
    sku = f"node-{int(time.time() * 1000)}"
    (created, listed), _ = call_tools(
        mcp,
        token,
        [
            ("create_product", {"sku": sku, "name": "Widget", "price_cents": 1250, "quantity": 5}),
            ("list_products", {"limit": 500}),
        ],
    )
    assert created["sku"] == sku and created["quantity"] == 5
    assert sku in [p["sku"] for p in listed]
    (changed,), _ = call_tools(mcp, token, [("adjust_stock", {"product_id": created["id"], "delta": -3})])
    assert changed["quantity"] == 2
    assert _psql(deployed, f"SELECT quantity FROM products WHERE sku = '{sku}'") == "2"
    # Latency through Traefik, the MCP server, the API and PostgreSQL: one bounded session.
    _, timings = call_tools(mcp, token, [("list_products", {"limit": 10})] * 200)
    q = statistics.quantiles(timings, n=100)
    deployed.timings["mcp tool call p50 ms"] = round(q[49] * 1000, 1)
    deployed.timings["mcp tool call p95 ms"] = round(q[94] * 1000, 1)


@real_node
def test_without_the_token_401_and_plain_http_gets_no_data(deployed: Deployed, mcp: Endpoint) -> None:
    import asyncio

    async def post(token: str | None) -> int:
        async with mcp.client(token) as http:
            response = await http.post(
                mcp.url,
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={"Accept": "application/json, text/event-stream"},
            )
            return response.status_code

    assert asyncio.run(post(None)) == 401
    assert asyncio.run(post("not-the-token")) == 401
    cluster = deployed.kube.cluster
    assert cluster.ingress is not None
    request = urllib.request.Request(
        f"http://127.0.0.1:{cluster.ingress.http_port}/mcp",
        headers={"Host": mcp.host, "Authorization": f"Bearer {deployed.secrets['authToken']}"},
    )
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as plain:
        opener.open(request, timeout=10)
    # Plain HTTP only redirects to HTTPS: no data from the service.
    assert plain.value.code in (301, 302, 307, 308), plain.value.code
    assert plain.value.headers["Location"].startswith("https://"), plain.value.headers["Location"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


INGRESS_LOAD = ROOT / "build" / "ingress-load.json"
"""The summary of ``bench/load.py`` through the Ingress, with the command that produced it."""
INGRESS_LOAD_OPTIONS: dict[str, Any] = {
    "requests": 1_000,
    "concurrency": 8,
    "deadline": 180,
    "products": 2,
    "initial_stock": 10,
    "deltas": "-4..3",
    "seed": 20,
}
"""The default mix (reads, pages, creates, adjustments) with its adjustments on two products of
10 units, deltas -4..3: with seed 20 each product's deltas add up to less than -10 (-29 and
-46), so some are refused whatever order they reach the database in, and positive ones are
always accepted."""


@real_node
def test_bounded_load_through_the_ingress_keeps_stock_correct(
    deployed: Deployed, mcp: Endpoint, tmp_path: Path
) -> None:
    token = deployed.secrets["authToken"]
    _wait_ingress_serves(mcp, token)
    summary, command = ingress_load.run(mcp, token, tmp_path, timeout=300, **INGRESS_LOAD_OPTIONS)
    INGRESS_LOAD.parent.mkdir(exist_ok=True)
    INGRESS_LOAD.write_text(json.dumps({"command": command, "summary": summary}, indent=2) + "\n")
    requests = INGRESS_LOAD_OPTIONS["requests"]
    assert summary["errors"] == {}, summary
    assert summary["completed"] == requests, summary
    assert set(summary["by_operation"]) == {"get", "list", "create", "adjust"}, summary["by_operation"]
    stock = summary["stock"]
    assert stock["consistent"] is True and summary["exit_code"] == 0, stock
    adjustments = summary["by_operation"]["adjust"]["count"]
    assert 0 < summary["refused"] < adjustments, f"expected accepted and refused adjustments: {summary}"
    assert len(summary["refusals"]) == summary["refused"]
    for refusal in summary["refusals"]:
        assert refusal["status"] == 409, refusal
        # The store API's 409, carried through the MCP server as the tool's error.
        assert "409" in refusal["detail"] and f"product {refusal['product_id']}" in refusal["detail"], refusal
    # PostgreSQL holds what the generator read back through the Ingress.
    ids = sorted(int(pid) for pid in stock["products"])
    rows = _psql(
        deployed, f"SELECT id, quantity FROM products WHERE id IN ({','.join(map(str, ids))}) ORDER BY id"
    )
    quantities = {int(i): int(q) for i, q in (row.split("|") for row in rows.splitlines())}
    for pid in ids:
        expected = stock["initial"] + stock["products"][str(pid)]["accepted_delta"]
        assert quantities[pid] == expected == stock["products"][str(pid)]["final"], (pid, quantities, stock)
        assert quantities[pid] >= 0, quantities
    latency = summary["latency_ms"]
    deployed.timings["mcp load through the ingress: requests/s"] = summary["throughput_per_s"]
    for q in ("p50", "p95", "p99"):
        deployed.timings[f"mcp load through the ingress: {q} ms"] = latency[q]
    deployed.timings["mcp load through the ingress: load average"] = float(summary["loadavg"].split()[0])


def _endpoints(deployed: Deployed, service: str) -> list[str]:
    slices = deployed.kube.list("discovery.k8s.io/v1", "EndpointSlice", deployed.namespace)
    return [
        address
        for s in slices
        if s["metadata"]["labels"].get("kubernetes.io/service-name") == service
        for e in s.get("endpoints") or []
        if (e.get("conditions") or {}).get("ready")
        for address in e["addresses"]
    ]


@real_node
def test_database_pod_recreated_on_its_claim_with_its_data(deployed: Deployed) -> None:
    database = deployed.project.config("database")["name"]
    api = next(n for n, s in deployed.project.config("services").items() if s.get("egressTo") == [database])
    sku = f"keep-{int(time.time() * 1000)}"
    _psql(deployed, f"INSERT INTO products (sku, name, price_cents, quantity) VALUES ('{sku}', 'Kept', 1, 7)")
    [old] = _pods(deployed, database)
    claim = old["spec"]["volumes"]
    assert _endpoints(deployed, api), "the API has no ready endpoint to begin with"
    deployed.kube.cluster.api(
        "DELETE", f"/api/v1/namespaces/{deployed.namespace}/pods/{old['metadata']['name']}"
    )
    new = _wait(
        "the StatefulSet's new database pod Ready",
        lambda: [
            p
            for p in _pods(deployed, database)
            if p["metadata"]["uid"] != old["metadata"]["uid"] and _ready(p)
        ],
        180,
    )[0]
    assert new["spec"]["volumes"] == claim, "the new pod mounts another claim"
    assert _psql(deployed, f"SELECT quantity FROM products WHERE sku = '{sku}'") == "7"
    _wait("the API ready again", lambda: _endpoints(deployed, api), 90)


def _pod_lives(deployed: Deployed) -> dict[str, tuple[str, str, int]]:
    """Every pod of the stack by uid: its workload, its name and how often its containers
    restarted."""
    return {
        p["metadata"]["uid"]: (
            p["metadata"]["labels"].get("app.kubernetes.io/name", ""),
            p["metadata"]["name"],
            sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses", [])),
        )
        for p in deployed.kube.list("v1", "Pod", deployed.namespace)
        if not p["metadata"].get("deletionTimestamp")
    }


def _token_refused_by(deployed: Deployed, token: str) -> list[str]:
    """The MCP server's pods (reached directly from the node) that answer 401 to ``token``."""
    [(name, service)] = [(n, s) for n, s in deployed.project.config("services").items() if "expose" in s]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    refused = []
    for pod in _pods(deployed, name):
        request = urllib.request.Request(
            f"http://{pod['status']['podIP']}:{service['port']}/mcp",
            data=body,
            headers={
                "Host": service["expose"]["host"],
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                refused.append(pod["metadata"]["name"])
    return refused


_READY = r"""
import json, sys, urllib.request, urllib.error
states = {}
for url in sys.argv[1:]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            states[url] = json.load(r).get("database")
    except urllib.error.HTTPError as exc:
        states[url] = "HTTP %d" % exc.code
    except OSError as exc:
        states[url] = type(exc).__name__
print(json.dumps(states))
"""


def _api_database_states(deployed: Deployed, client: PodNet, api: str) -> list[str]:
    """What each store API pod's ``/ready`` says of the database, asked from ``client``'s
    network namespace (a peer the API's NetworkPolicy admits): ``ok`` once a new connection
    with the password of its URL file is accepted."""
    port = deployed.project.config("services")[api]["port"]
    urls = [f"http://{p['status']['podIP']}:{port}/ready" for p in _pods(deployed, api)]
    states: dict[str, str] = json.loads(client.run(_READY, *urls))
    return list(states.values())


def _templates(deployed: Deployed) -> dict[str, str]:
    """Each workload's live pod template: it changes on a rollout, not on scaling."""
    templates = {}
    for workload in deployed.rendered_of("Deployment") + deployed.rendered_of("StatefulSet"):
        live = deployed.live(workload)
        assert live is not None
        templates[workload["metadata"]["name"]] = json.dumps(live["spec"]["template"], sort_keys=True)
    return templates


def _scale(deployed: Deployed, workload: str, replicas: int) -> None:
    """Set a Deployment's replicas through its scale subresource, as ``kubectl scale`` and an
    HPA do: no pod template change, no Pulumi state change. An HPA that cannot read metrics
    (no metrics API) leaves a count within its bounds as it is."""
    path = deployed.kube.path("apps/v1", "Deployment", deployed.namespace, workload) + "/scale"
    deployed.kube.cluster.api(
        "PATCH", path, {"spec": {"replicas": replicas}}, content_type="application/merge-patch+json"
    )
    _wait(
        f"{workload} has {replicas} ready pods behind its Service",
        lambda: (
            len([p for p in _pods(deployed, workload) if _ready(p)]) == replicas
            and len(_endpoints(deployed, workload)) == replicas
        ),
        180,
    )


@real_node
def test_rotating_both_secrets_under_a_request_stream(deployed: Deployed, mcp: Endpoint) -> None:
    """``pulumi config set --secret`` of both secrets and ``pulumi up`` while requests flow: the
    Secrets change in place, no pod restarts, no request fails, and PostgreSQL refuses the old
    password and the MCP server the old token once the kubelet has updated the files and the
    token's grace is over.

    The MCP server runs two replicas, as prod does, so the Ingress spreads the calls over
    replicas whose token files the kubelet updates at different times."""
    services = deployed.project.config("services")
    [mcp_name] = [n for n, s in services.items() if "expose" in s]
    [api] = services[mcp_name]["egressTo"]
    mcp_replicas = len(_pods(deployed, mcp_name))
    _scale(deployed, mcp_name, 2)
    old_password, old_token = deployed.password, deployed.secrets["authToken"]
    new_password, new_token = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    _wait_ingress_serves(mcp, old_token)
    assert _password_accepted(deployed, old_password), "the deployed password does not work"
    secret_uids = {
        s["metadata"]["name"]: s["metadata"]["uid"]
        for s in deployed.kube.list("v1", "Secret", deployed.namespace)
    }
    templates = _templates(deployed)
    pods_before = _pod_lives(deployed)
    replicas_before = {n: len(_pods(deployed, n)) for n in templates}
    client_net = pod_net(_pods(deployed, mcp_name)[0])

    # Requests to the store API through its Service from the MCP server's pod, and MCP tool
    # calls through the Ingress (each through the API to PostgreSQL) by a client that holds
    # both tokens, as docs/rotating-secrets.md prescribes.
    address = deployed.kube.get("v1", "Service", api, deployed.namespace)["spec"]["clusterIP"]  # type: ignore[index]
    stream = RequestStream(
        client_net,
        f"http://{address}:{services[api]['port']}/products?limit=1",
        seconds=600,
        stop_file=str(deployed.project.workdir / "rotation-stream.stop"),
    )
    client = RotatingTokenClient(mcp, old_token)
    stop = threading.Event()
    mcp_outcomes: dict[str, int] = {}
    mcp_thread = threading.Thread(
        target=lambda: mcp_outcomes.update(client.stream("list_products", {"limit": 1}, stop, 600)),
        daemon=True,
    )
    mcp_thread.start()
    time.sleep(3)
    try:
        deployed.project.set("databasePassword", new_password, secret=True)
        deployed.project.set("authToken", new_token, secret=True)
        client.rotate(new_token)
        result, events = deployed.preview()
        changed = {k: op for k, op in _planned(events).items() if op != "same"}
        assert {k[0] for k in changed} == {"Secret"} and set(changed.values()) == {"update"}, changed
        assert len(changed) == 3, changed
        assert set(result.change_summary) <= {auto.OpType.SAME, auto.OpType.UPDATE}, result.change_summary
        started = time.monotonic()
        up = deployed.stack.up(
            policy_packs=[str(POLICY_PACK)], policy_pack_configs=[str(deployed.project.policy_config())]
        )
        applied = time.monotonic()
        deployed.timed("up (rotation)", started)
        changes = {str(getattr(op, "value", op)): n for op, n in (up.summary.resource_changes or {}).items()}
        assert set(changes) <= {"same", "update"} and changes.get("update") == 3, changes
        # The kubelet rewrites each pod's files at its next sync (every 10 s on this node),
        # then the database applies its file within PASSWORD_CHECK_SECONDS (5 s).
        _wait(
            "PostgreSQL refuses the old password", lambda: not _password_accepted(deployed, old_password), 180
        )
        password_refused = time.monotonic() - applied
        assert _password_accepted(deployed, new_password), "the new password does not work"
        mcp_pods = len(_pods(deployed, mcp_name))
        assert mcp_pods == 2, f"{mcp_pods} MCP server pods during the rotation"
        # Each replica accepts the old token for AUTH_TOKEN_GRACE_SECONDS (120 s) after its file
        # changed, so every replica refuses it only after the last update plus that grace.
        _wait(
            "every MCP server pod refuses the old token",
            lambda: len(_token_refused_by(deployed, old_token)) == mcp_pods,
            300,
        )
        token_refused = time.monotonic() - applied
        assert not _token_refused_by(deployed, new_token), "a pod refuses the new token"
        # Every store API replica connects anew with the new password (its URL file updated).
        seen: set[str] = set()

        def api_switched_over() -> bool:
            states = _api_database_states(deployed, client_net, api)
            seen.update(states)
            return set(states) == {"ok"}

        _wait("every store API replica's new connections accepted", api_switched_over, 180)
        print(f"the store API's /ready during the rotation: {sorted(seen)}")
        api_switched = time.monotonic() - applied
        time.sleep(5)
    finally:
        stop.set()
        outcomes = stream.finish()
        mcp_thread.join(timeout=120)
    pods_after = _pod_lives(deployed)
    replicas_after = {n: len(_pods(deployed, n)) for n in templates}
    _scale(deployed, mcp_name, mcp_replicas)
    deployed.password = new_password
    deployed.secrets = {**deployed.secrets, "databasePassword": new_password, "authToken": new_token}
    deployed.timings["rotation: requests to the API"] = sum(outcomes.values())
    deployed.timings["rotation: MCP tool calls"] = sum(mcp_outcomes.values())
    deployed.timings["rotation: MCP calls retried with the other token"] = client.retried
    deployed.timings["rotation: MCP server replicas"] = replicas_before[mcp_name]
    deployed.timings["rotation: seconds after up until the old password is refused"] = round(
        password_refused, 1
    )
    deployed.timings["rotation: seconds after up until the old token is refused"] = round(token_refused, 1)
    deployed.timings["rotation: seconds after up until the API connects anew"] = round(api_switched, 1)
    assert set(outcomes) == {"200"}, f"requests to the API failed during the rotation: {outcomes}"
    assert set(mcp_outcomes) == {"ok"}, f"MCP tool calls failed during the rotation: {mcp_outcomes}"
    assert outcomes["200"] > 100 and mcp_outcomes["ok"] > 20, (outcomes, mcp_outcomes)
    # In place: the same Secret objects, no rollout, no container restarted; a pod gone only
    # where the autoscaler scaled its workload in meanwhile.
    uids = {
        s["metadata"]["name"]: s["metadata"]["uid"]
        for s in deployed.kube.list("v1", "Secret", deployed.namespace)
    }
    assert {n: uids.get(n) for n in secret_uids} == secret_uids, "a Secret was replaced"
    assert _templates(deployed) == templates, "a workload rolled out"
    for uid, (workload, name, restarts) in pods_before.items():
        if uid in pods_after:
            assert pods_after[uid][2] == restarts, f"{name} restarted"
        else:
            assert replicas_after[workload] < replicas_before[workload], f"{name} was replaced"


@pytest.mark.parametrize("kind", ["HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"])
def test_policy_objects_hold_what_was_rendered(deployed: Deployed, kind: str) -> None:
    objects = deployed.rendered_of(kind)
    assert objects, f"{deployed.project.name}: nothing of kind {kind} rendered"
    for obj in objects:
        live = deployed.live(obj)
        assert live is not None, _identity(obj)
        problems = subset(obj["spec"], live["spec"], f"{kind}/{obj['metadata']['name']}.spec")
        assert not problems, "\n".join(problems)


def test_password_in_the_secret_and_only_ciphertext_in_state(deployed: Deployed) -> None:
    secrets_live = deployed.kube.list("v1", "Secret", deployed.namespace)
    values = [base64.b64decode(v).decode() for s in secrets_live for v in (s.get("data") or {}).values()]
    assert any(deployed.password in v for v in values), "the database password reached no Secret"
    # Plain, or base64 as in a Secret's data (at any of the three alignments).
    secret = deployed.password.encode()
    aligned = (base64.b64encode(pad + secret).decode()[4:-4] for pad in (b"", b"x", b"xy"))
    forms = [deployed.password, *aligned]
    exported = deployed.project.cli("stack", "export")
    assert not [f for f in forms if f in exported], "pulumi stack export holds the password"
    assert '"ciphertext"' in exported
    outputs = deployed.project.cli("stack", "output", "--json")
    assert not [f for f in forms if f in outputs], "a stack output holds the password"
    assert deployed.up_result is not None
    assert not [f for f in forms if f in deployed.up_result.stdout], "the up log shows the password"


def test_second_preview_on_live_state_changes_nothing(deployed: Deployed) -> None:
    # The policy pack now sees outputs (API-server defaults, replicas the HPA set).
    result, events = deployed.preview(expect_no_changes=True)
    changed = {k: op for k, op in _planned(events).items() if op != "same"}
    assert not changed, f"{deployed.project.name}: perpetual diff on {changed}"
    assert set(result.change_summary) <= {auto.OpType.SAME}, result.change_summary


PREVIEW_RBAC = ROOT / "deploy" / "rbac" / "preview-reader.yaml"


def _status_as(cluster: LocalCluster, token: str, method: str, path: str, body: Any = None) -> int:
    try:
        cluster.api(method, path, body, token=token)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


@real_node
def test_preview_identity_previews_dev_and_can_write_and_read_no_secret(
    deployed: Deployed, cluster: LocalCluster
) -> None:
    # The pull-request preview identity of deploy/rbac, applied as the docs say, judged by the
    # API server's own RBAC authorizer: the dev stack previews with it (no changes on live
    # state), and it can neither read a Secret, nor write, nor see another namespace.
    for obj in yaml.safe_load_all(PREVIEW_RBAC.read_text()):
        if obj:
            cluster.apply(obj)
    account = next(
        o for o in yaml.safe_load_all(PREVIEW_RBAC.read_text()) if o and o["kind"] == "ServiceAccount"
    )
    name, home = account["metadata"]["name"], account["metadata"]["namespace"]
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600},
    }
    token = cluster.api("POST", f"/api/v1/namespaces/{home}/serviceaccounts/{name}/token", request)["status"][
        "token"
    ]
    kubeconfig = cluster.write_kubeconfig("preview", token=token)

    started = time.monotonic()
    events: list[auto.EngineEvent] = []
    result = deployed.project.with_kubeconfig(kubeconfig).preview(
        policy_packs=[str(POLICY_PACK)],
        policy_pack_configs=[str(deployed.project.policy_config())],
        on_event=events.append,
    )
    deployed.timed("preview as the preview identity", started)
    changed = {k: op for k, op in _planned(events).items() if op != "same"}
    assert not changed, f"the preview identity plans changes on live state: {changed}"
    assert set(result.change_summary) <= {auto.OpType.SAME}, result.change_summary

    ns = deployed.namespace
    service = next(iter(deployed.project.config("services")))
    secret = f"{deployed.project.config('database')['name']}-credentials"
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-a-pull-request"}}
    pod = _pods(deployed, service)[0]["metadata"]["name"]
    refused = {
        "read a Secret": ("GET", f"/api/v1/namespaces/{ns}/secrets/{secret}", None),
        "list Secrets": ("GET", f"/api/v1/namespaces/{ns}/secrets", None),
        "create a ConfigMap": ("POST", f"/api/v1/namespaces/{ns}/configmaps", config_map),
        "delete a Deployment": ("DELETE", f"/apis/apps/v1/namespaces/{ns}/deployments/{service}", None),
        "exec into a pod": (
            "POST",
            f"/api/v1/namespaces/{ns}/pods/{pod}/exec?command=true&stdout=true",
            None,
        ),
        "list pods elsewhere": ("GET", "/api/v1/namespaces/kube-system/pods", None),
        "list namespaces": ("GET", "/api/v1/namespaces", None),
    }
    statuses = {what: _status_as(cluster, token, *call) for what, call in refused.items()}
    assert statuses == dict.fromkeys(refused, 403), statuses
    readable = _status_as(cluster, token, "GET", f"/apis/apps/v1/namespaces/{ns}/deployments/{service}")
    assert readable == 200


HARDENING_COST = ROOT / "build" / "hardening-cost.json"
"""Throughput and latency of the hardened store API beside the same images with controls taken
out (:mod:`.variants`), under the same bounded load, rounds interleaved."""
COST_VARIANTS = {
    "plain": variants.CONTROLS,
    "no-limits": frozenset({"resources"}),
    "no-limits-no-policies": frozenset({"resources", "policies"}),
}
"""Each copy and what it leaves out: together they tell the cost of each control apart."""
COST_ROUNDS = 5
COST_REQUESTS = 2_000
COST_CONCURRENCY = 16


def _cost_figures(summaries: list[dict[str, Any]], plain: list[dict[str, Any]]) -> dict[str, float]:
    """Medians over the rounds; the ratios are taken round by round against the plain copy's
    run of the same round (the machine's load changes between rounds, less within one)."""
    pairs = list(zip(summaries, plain, strict=True))
    return {
        "throughput_per_s": statistics.median(s["throughput_per_s"] for s in summaries),
        "p99_ms": statistics.median(s["latency_ms"]["p99"] for s in summaries),
        "throughput_vs_plain": round(
            statistics.median(s["throughput_per_s"] / b["throughput_per_s"] for s, b in pairs), 3
        ),
        "p99_vs_plain": round(
            statistics.median(s["latency_ms"]["p99"] / b["latency_ms"]["p99"] for s, b in pairs), 3
        ),
    }


@real_node
def test_what_hardening_costs_under_the_same_load(deployed: Deployed, cluster: LocalCluster) -> None:
    # The same images on the same node: the dev stack as deployed, a plain copy (no security
    # contexts, no requests or limits, no policies) and a copy without requests or limits only.
    # Each gets the same load from inside its own MCP pod (the client its policies admit) to
    # one API pod, in rounds taken in turn, so a busy machine weighs on all alike.
    services = deployed.project.config("services")
    api = next(n for n, s in services.items() if s.get("component") == "api")
    client = next(n for n, s in services.items() if api in s.get("egressTo", []))
    live: dict[str, dict[str, str]] = {}
    for rendered in deployed.rendered_of("Secret"):
        secret = deployed.live(rendered)
        assert secret is not None, rendered["metadata"]
        live[rendered["metadata"]["name"]] = secret["data"]
    images: dict[str, str] = {}
    for rendered in deployed.rendered_of("Deployment") + deployed.rendered_of("StatefulSet"):
        workload = deployed.live(rendered)
        assert workload is not None, rendered["metadata"]
        pod = workload["spec"]["template"]["spec"]
        images.update((c["name"], c["image"]) for c in [*pod.get("initContainers", []), *pod["containers"]])
    namespaces = {"hardened": deployed.namespace}
    try:
        for name, strip in COST_VARIANTS.items():
            namespaces[name] = f"{deployed.namespace}-{name}"
            variants.deploy(
                cluster,
                deployed.kube,
                variants.variant(deployed.rendered, namespaces[name], strip, live, images),
            )
        targets = {}
        for name, ns in namespaces.items():
            pods = deployed.kube.list("v1", "Pod", ns)
            api_pod = next(
                p for p in pods if p["metadata"]["labels"].get("app.kubernetes.io/name") == api and _ready(p)
            )
            client_pod = next(
                p
                for p in pods
                if p["metadata"]["labels"].get("app.kubernetes.io/name") == client and _ready(p)
            )
            container = api_pod["spec"]["containers"][0]
            strip = COST_VARIANTS.get(name, frozenset())
            # What runs is what the variant says: the controls are there, or gone.
            has = {
                "securityContext": bool(container.get("securityContext")),
                "resources": bool(container.get("resources", {}).get("limits")),
                "policies": bool(deployed.kube.list("networking.k8s.io/v1", "NetworkPolicy", ns)),
            }
            assert has == {c: c not in strip for c in variants.CONTROLS}, (name, has)
            port = container["ports"][0]["containerPort"]
            targets[name] = (pod_net(client_pod).netns, f"http://{api_pod['status']['podIP']}:{port}")
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for round_ in range(COST_ROUNDS):
            for name, (netns, url) in targets.items():
                runs[name].append(
                    run_load(
                        netns,
                        url,
                        requests=COST_REQUESTS,
                        concurrency=COST_CONCURRENCY,
                        deadline=120,
                        seed=round_,
                    )
                )
    finally:
        for name, ns in namespaces.items():
            if name != "hardened":
                variants.remove(cluster, ns)
    for name, summaries in runs.items():
        for summary in summaries:
            assert not summary["errors"], (name, summary)
            assert summary["completed"] == COST_REQUESTS, (name, summary)
    figures = {name: _cost_figures(summaries, runs["plain"]) for name, summaries in runs.items()}
    for name, figure in figures.items():
        deployed.timings[f"store API {name}: requests/s"] = figure["throughput_per_s"]
        deployed.timings[f"store API {name}: throughput vs plain"] = figure["throughput_vs_plain"]
    HARDENING_COST.parent.mkdir(exist_ok=True)
    HARDENING_COST.write_text(
        json.dumps(
            {
                "requests": COST_REQUESTS,
                "concurrency": COST_CONCURRENCY,
                "rounds": COST_ROUNDS,
                "figures": figures,
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )


AUTOSCALING = ROOT / "build" / "autoscaling.json"
"""What the limits and HPA tests measured on the real node (docs/performance.md)."""
THROTTLING_BOUND = 25.0
"""The share of CFS periods (percent) a container may be throttled in at its target load."""
TARGET_SECONDS = 30
SWEEP = (0.3, 0.5, 0.7, 0.85, 0.95)
"""Shares of the CPU limit the rates after the target's are chosen to use, :data:`SWEEP_SECONDS`
each: up to what share of its limit a container stays within :data:`THROTTLING_BOUND`, so what
limit the target rate needs."""
SWEEP_SECONDS = 15


def _record(section: str, figures: dict[str, Any]) -> None:
    data = json.loads(AUTOSCALING.read_text()) if AUTOSCALING.exists() else {}
    data[section] = figures
    AUTOSCALING.parent.mkdir(exist_ok=True)
    AUTOSCALING.write_text(json.dumps(data, indent=2) + "\n")


@real_node
def test_limits_fit_the_target_load(deployed: Deployed, probe: PodNet) -> None:
    """The store API's requests and limits against what it uses at a defined load.

    The target load is the rate at which one replica uses what its HPA aims for (the CPU
    target, 70 % of the 50m request on dev): up to it one replica is expected to carry the load,
    beyond it the HPA adds replicas. It is found from the API's own CPU time per request at a
    calibration rate, then held open loop (``bench/load.py --rate``) through the Service from the
    probe pod. At that rate the API's container may be throttled in at most 25 % of its CFS
    periods; no container is OOM-killed or restarted at any rate, up to saturation. No metrics
    API runs here, so the HPA holds the one replica that takes all of it."""
    services = deployed.project.config("services")
    database = deployed.project.config("database")["name"]
    api = next(n for n, s in services.items() if s.get("egressTo") == [database])
    hpa = deployed.kube.get("autoscaling/v2", "HorizontalPodAutoscaler", api, deployed.namespace)
    assert hpa is not None
    target_percent = next(
        m["resource"]["target"]["averageUtilization"]
        for m in hpa["spec"]["metrics"]
        if m["resource"]["name"] == "cpu"
    )
    pods = _pods(deployed, api)
    assert len(pods) == 1, f"{api}: {len(pods)} pods; without a metrics API its HPA holds one"
    [pod], [db] = pods, _pods(deployed, database)
    resources = pod["spec"]["containers"][0]["resources"]
    request = float(parse_quantity(resources["requests"]["cpu"]))
    limit = float(parse_quantity(resources["limits"]["cpu"]))
    watched = {"api": pod, "database": db}
    phases: dict[str, dict[str, Any]] = {}
    failed: list[Any] = []

    def killed_or_restarted() -> dict[str, tuple[str, int, int]]:
        live = {
            n: deployed.kube.get("v1", "Pod", p["metadata"]["name"], deployed.namespace)
            for n, p in watched.items()
        }
        return {
            n: (
                p["metadata"]["uid"],
                autoscale.oom_kills(p),
                p["status"]["containerStatuses"][0]["restartCount"],
            )
            for n, p in live.items()
            if p is not None
        }

    before_load = killed_or_restarted()

    def measure(label: str, run: Any) -> dict[str, Any]:
        before, at = {n: autoscale.CPUSample.read(p) for n, p in watched.items()}, time.monotonic()
        report = run()
        seconds = time.monotonic() - at
        cpu = {n: autoscale.CPUSample.read(p).since(before[n], seconds) for n, p in watched.items()}
        phases[label] = {
            "cpu": cpu,
            "memory_mib": {n: autoscale.memory_mib(p) for n, p in watched.items()},
            "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        }
        if report is not None:
            if report["errors"] or report["completed"] != report["requests"]:
                failed.append((label, report))
            phases[label]["load"] = {
                k: report[k]
                for k in (
                    "requests",
                    "concurrency",
                    "completed",
                    "wall_seconds",
                    "throughput_per_s",
                    "latency_ms",
                )
            } | ({"schedule": report["schedule"]} if "schedule" in report else {})
            # Millicores while the requests ran (the window also holds the generator's start).
            for figures in cpu.values():
                figures["millicores_under_load"] = round(
                    1000 * figures["cpu_seconds"] / report["wall_seconds"], 1
                )
                figures["ms_per_request"] = round(
                    1000 * figures["cpu_seconds"] / max(1, report["completed"]), 3
                )
        return phases[label]

    with autoscale.from_probe(deployed.kube, deployed.namespace, api, probe) as url:
        idle = measure("idle, 10 s", lambda: time.sleep(10))
        idle_cores = idle["cpu"]["api"]["millicores"] / 1000

        def paced(rate: float, seconds: float, seed: int) -> Any:
            return lambda: run_load(
                probe.netns,
                url,
                requests=max(1, round(rate * seconds)),
                concurrency=64,
                deadline=seconds + 30,
                rate=rate,
                seed=seed,
                products=autoscale.PRODUCTS,
            )

        def cost(phase: dict[str, Any]) -> float:
            """The API's CPU-seconds per request of a phase, less its idle CPU."""
            net = phase["cpu"]["api"]["cpu_seconds"] - idle_cores * phase["load"]["wall_seconds"]
            return float(net / phase["load"]["completed"])

        calibration = measure("calibration, 50 requests/s", paced(50, 20, 1))
        per_request = calibration_cost = cost(calibration)
        assert per_request > 0, calibration
        target_rate = round((target_percent / 100 * request - idle_cores) / per_request, 1)
        assert target_rate > 0, (target_percent, request, idle_cores, per_request)
        target = measure(f"target, {target_rate} requests/s", paced(target_rate, TARGET_SECONDS, 2))
        for number, share in enumerate(SWEEP):
            # A request costs less CPU the more of them come (measured: 1.3 ms at 50/s, 0.6 ms
            # at saturation), so each rate is chosen with the cost of the phase before it.
            rate = round((share * limit - idle_cores) / per_request, 1)
            swept = measure(
                f"{share} of the limit, {rate} requests/s", paced(rate, SWEEP_SECONDS, 3 + number)
            )
            per_request = cost(swept)
        saturated = measure(
            "saturation, closed loop, 8 in flight",
            lambda: run_load(
                probe.netns,
                url,
                requests=6_000,
                concurrency=8,
                deadline=90,
                seed=9,
                products=autoscale.PRODUCTS,
            ),
        )
    after_load = killed_or_restarted()
    # Where throttling stays within the bound, as a share of the limit: the limit the target needs.
    within = [
        f["cpu"]["api"]["millicores_under_load"] / (1000 * limit)
        for f in phases.values()
        if "load" in f
        and "schedule" in f["load"]
        and f["cpu"]["api"]["throttled_percent"] <= THROTTLING_BOUND
    ]
    target_millicores = target["cpu"]["api"]["millicores_under_load"]
    figures = {
        "api": {"request_cpu": request, "limit_cpu": limit, "hpa_cpu_target_percent": target_percent},
        "idle_millicores": idle["cpu"]["api"]["millicores"],
        "api_cpu_ms_per_request": round(1000 * calibration_cost, 3),
        "database_cpu_ms_per_request": round(
            1000 * calibration["cpu"]["database"]["cpu_seconds"] / calibration["load"]["completed"], 3
        ),
        "target_rate_per_s": target_rate,
        "target_throttled_percent": target["cpu"]["api"]["throttled_percent"],
        "database_target_throttled_percent": target["cpu"]["database"]["throttled_percent"],
        "saturation_throttled_percent": saturated["cpu"]["api"]["throttled_percent"],
        "saturation_rate_per_s": saturated["load"]["throughput_per_s"],
        "highest_share_of_limit_within_bound": round(max(within), 3) if within else None,
        "smallest_limit_for_target_millicores": round(target_millicores / max(within), 1) if within else None,
        "phases": phases,
    }
    _record("limits", figures)
    deployed.timings["limits: target rate (requests/s)"] = target_rate
    deployed.timings["limits: API throttled at the target (%)"] = figures["target_throttled_percent"]
    deployed.timings["limits: API throttled at saturation (%)"] = figures["saturation_throttled_percent"]
    assert not failed, f"requests failed or were not sent: {failed}"
    # The same pods, none of their processes OOM-killed and no container restarted, at any rate.
    assert after_load == before_load, f"(pod uid, OOM kills, restarts) {before_load} -> {after_load}"
    assert target["cpu"]["api"]["throttled_percent"] <= THROTTLING_BOUND, (
        f"the API is throttled in {target['cpu']['api']['throttled_percent']} % of its periods at "
        f"{target_rate} requests/s, its target load: {figures}"
    )


def test_memory_limit_change_is_one_rolling_update(deployed: Deployed) -> None:
    service = next(iter(deployed.project.config("services")))
    key = f"services.{service}.resources.limits.memory"
    deployed.project.set(key, "300Mi", path=True)
    result, events = deployed.preview()
    changed = {k: op for k, op in _planned(events).items() if op != "same"}
    assert changed == {("Deployment", deployed.namespace, service): "update"}, changed
    assert result.change_summary.get(auto.OpType.UPDATE) == 1, result.change_summary
    before = deployed.kube.get("apps/v1", "Deployment", service, deployed.namespace)
    assert before is not None
    stream = None
    if deployed.project.name == REAL_NODE_STACK:
        # On the real node the rollout happens under a bounded stream of requests from a
        # client of the API (the MCP server's pod) through the API's Service.
        client = next(
            n for n, s in deployed.project.config("services").items() if service in s.get("egressTo", [])
        )
        address = deployed.kube.get("v1", "Service", service, deployed.namespace)["spec"]["clusterIP"]  # type: ignore[index]
        port = deployed.project.config("services")[service]["port"]
        stream = RequestStream(
            pod_net(_pods(deployed, client)[0]),
            f"http://{address}:{port}/products?limit=1",
            seconds=600,
            stop_file=str(deployed.project.workdir / "stream.stop"),
        )
        time.sleep(2)
    started = time.monotonic()
    deployed.stack.up(
        policy_packs=[str(POLICY_PACK)], policy_pack_configs=[str(deployed.project.policy_config())]
    )
    deployed.timed("up (one change)", started)
    if stream is not None:
        time.sleep(2)
        outcomes = stream.finish()
        deployed.timings["requests during the rollout"] = sum(outcomes.values())
        assert set(outcomes) == {"200"}, f"requests failed during the rollout: {outcomes}"
        assert outcomes["200"] > 20, outcomes
    after = deployed.kube.get("apps/v1", "Deployment", service, deployed.namespace)
    assert after is not None
    assert after["spec"]["strategy"]["type"] == "RollingUpdate"
    # The HPA may also have scaled it meanwhile (through the scale subresource).
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    assert after["status"]["observedGeneration"] == after["metadata"]["generation"]
    limits = after["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["memory"] == "300Mi", limits
    replica_sets = [
        rs
        for rs in deployed.kube.list("apps/v1", "ReplicaSet", deployed.namespace)
        if any(o["name"] == service for o in rs["metadata"].get("ownerReferences", []))
    ]
    assert len(replica_sets) == 2, [rs["metadata"]["name"] for rs in replica_sets]
    # The old ReplicaSet was scaled down to zero as the new one became available.
    assert sorted(rs["spec"]["replicas"] for rs in replica_sets) == [0, after["spec"]["replicas"]]
    status = after["status"]
    assert status.get("updatedReplicas") == status.get("replicas") == status.get("availableReplicas"), status


HPA_WINDOW = 60
"""The scale-down stabilization window the HPA test sets through the stack's config. The
committed stacks keep the library's 300 s (slow on purpose: the unit tier holds every committed
stack to it), which would add four minutes of waiting to the tier."""


def _hpa(deployed: Deployed, name: str) -> dict[str, Any]:
    hpa = deployed.kube.get("autoscaling/v2", "HorizontalPodAutoscaler", name, deployed.namespace)
    assert hpa is not None, f"HorizontalPodAutoscaler/{name} is gone"
    return hpa


class TestWithTheMetricsAPI:
    """The tests that need the HPAs to act, with metrics-server running for them alone.

    They come after every other test of the real node's pods: while the metrics API is there
    every HPA rescales its workload on real metrics. Before them, and after them once
    :func:`.autoscale.metrics_api` has removed it, an HPA cannot read metrics and holds its
    replica count, so no other test has a pod added or taken away under it."""

    @pytest.fixture(scope="class")
    def metrics_api(self, deployed: Deployed, cluster: LocalCluster) -> Iterator[float]:
        with autoscale.metrics_api(cluster, deployed.kube, deployed.namespace) as seconds:
            deployed.timings["metrics API Available (on demand)"] = seconds
            yield seconds

    @real_node
    def test_metrics_api_reports_every_pod_of_the_stack(self, deployed: Deployed, metrics_api: float) -> None:
        """What ``kubectl top pods`` reads: metrics-server's aggregated API, from kubelet's
        ``/metrics/resource`` on the real node, for each running pod of the stack."""
        path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{deployed.namespace}/pods"

        def running() -> set[str]:
            return {
                p["metadata"]["name"]
                for p in deployed.kube.list("v1", "Pod", deployed.namespace)
                if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
            }

        def reported() -> dict[str, dict[str, Any]]:
            items = deployed.kube.cluster.api("GET", path)["items"]
            found = {m["metadata"]["name"]: m for m in items}
            return {n: found[n] for n in names} if (names := running()) and names <= set(found) else {}

        # A pod's CPU rate needs two scrapes after it started (the metric resolution apart).
        metrics = _wait("pod metrics for every running pod of the stack", reported, 90)
        assert {w["metadata"]["name"] for w in deployed.rendered_of("Deployment")} <= {
            m["containers"][0]["name"] for m in metrics.values()
        }, sorted(metrics)
        working_sets = {}
        for name in metrics:
            [container] = metrics[name]["containers"]
            usage = container["usage"]
            assert parse_quantity(usage["memory"]) > 1 << 20, f"{name}: memory {usage['memory']}"
            assert parse_quantity(usage["cpu"]) > 0, f"{name}: cpu {usage['cpu']}"
            working_sets[container["name"]] = round(float(parse_quantity(usage["memory"])) / 2**20, 1)
        node_metrics = deployed.kube.cluster.api(
            "GET", f"/apis/metrics.k8s.io/v1beta1/nodes/{node.NODE_NAME}"
        )
        assert parse_quantity(node_metrics["usage"]["cpu"]) > 0, node_metrics
        _record("idle working set MiB (metrics API)", working_sets)

    @real_node
    def test_hpa_scales_the_api_out_under_load_and_back_in(
        self, deployed: Deployed, metrics_api: float, probe: PodNet
    ) -> None:
        """Bounded load through the API's Service makes its HPA scale out within its behaviour;
        the new pod becomes Ready and serves; once the load stops the HPA scales in after its
        window. A light stream of requests runs throughout, and no request of the load or the
        stream fails. Both come from the probe pod, which no autoscaler can remove."""
        services = deployed.project.config("services")
        database = deployed.project.config("database")["name"]
        api = next(n for n, s in services.items() if s.get("egressTo") == [database])
        key = f"services.{api}.autoscaling.scaleDownStabilizationSeconds"
        deployed.project.set(key, str(HPA_WINDOW), path=True)
        started = time.monotonic()
        deployed.stack.up(
            policy_packs=[str(POLICY_PACK)], policy_pack_configs=[str(deployed.project.policy_config())]
        )
        deployed.timed("up (HPA window)", started)

        # The behaviour as the API server holds it, not as the test assumes it.
        spec = _hpa(deployed, api)["spec"]
        low, high = spec["minReplicas"], spec["maxReplicas"]
        assert high > low, f"HorizontalPodAutoscaler/{api}: {low}..{high} leaves nothing to scale"
        targets = {
            m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in spec["metrics"]
        }
        scale_down = spec["behavior"]["scaleDown"]
        window = scale_down["stabilizationWindowSeconds"]
        assert window == HPA_WINDOW, scale_down

        def at_floor() -> bool:
            status, pods = _hpa(deployed, api).get("status", {}), _pods(deployed, api)
            return bool(
                status.get("currentReplicas") == status.get("desiredReplicas") == low
                and len(pods) == low
                and all(_ready(p) for p in pods)
            )

        # The HPA holds its floor without load (it has had no metrics until now).
        _wait(f"HorizontalPodAutoscaler/{api} at its {low} replicas", at_floor, window + 180)
        first = {p["metadata"]["name"]: p for p in _pods(deployed, api)}
        clock = time.time() - time.monotonic()  # monotonic -> wall clock, for the API's timestamps
        timeline: dict[str, float] = {}
        seen: dict[str, Any] = {
            "timeline (s after load start)": timeline,
            "targets (% of requests)": targets,
            "scale-down window (s)": window,
            "metrics API Available after (s)": metrics_api,
        }
        try:
            self._scale_out_and_in(deployed, probe, api, first, spec, clock, seen)
        finally:
            seen["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
            _record("hpa", seen)  # what was seen, also when an assertion stopped the test
        for what, moment in timeline.items():
            deployed.timings[f"hpa: {what} (s after load start)"] = moment

    @staticmethod
    def _scale_out_and_in(
        deployed: Deployed,
        probe: PodNet,
        api: str,
        first: dict[str, dict[str, Any]],
        spec: dict[str, Any],
        clock: float,
        seen: dict[str, Any],
    ) -> None:
        low, high = spec["minReplicas"], spec["maxReplicas"]
        scale_up = spec["behavior"]["scaleUp"]
        window = spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"]
        timeline: dict[str, float] = seen["timeline (s after load start)"]
        with autoscale.from_probe(deployed.kube, deployed.namespace, api, probe) as url:
            stream = RequestStream(
                probe, f"{url}/products?limit=1", seconds=900,
                stop_file=str(deployed.project.workdir / "hpa.stop"), interval=0.25,
            )  # fmt: skip
            try:
                time.sleep(5)
                load = autoscale.LoadRounds(
                    probe, url, requests=1500, concurrency=8, deadline=120, max_rounds=60
                ).start()

                def since_load(moment: float) -> float:
                    return round(moment - load.started, 1)

                try:
                    loaded = {n: autoscale.CPUSample.read(p) for n, p in first.items()}
                    loaded_at = time.monotonic()

                    def scaled_out() -> bool:
                        return bool(_hpa(deployed, api).get("status", {}).get("desiredReplicas", low) > low)

                    _wait(f"HorizontalPodAutoscaler/{api} deciding to scale out", scaled_out, 180)
                    status = _hpa(deployed, api)["status"]
                    timeline["first scale decision"] = since_load(_timestamp(status["lastScaleTime"]) - clock)
                    desired = status["desiredReplicas"]
                    seen["replicas"] = [low, desired]
                    # Within its behaviour: one step adds at most the larger of its policies
                    # (+100 %, +2 pods) and never passes maxReplicas.
                    step = max(low * 2, low + 2) if scale_up.get("selectPolicy", "Max") == "Max" else low + 1
                    assert low < desired <= min(high, step), f"{low} -> {desired} under {scale_up}"
                    alone = time.monotonic() - loaded_at
                    seen["first pod under load, alone"] = {
                        n: autoscale.CPUSample.read(p).since(loaded[n], alone) for n, p in first.items()
                    }

                    def added_ready() -> list[dict[str, Any]]:
                        pods = [
                            p
                            for p in _pods(deployed, api)
                            if p["metadata"]["name"] not in first and _ready(p)
                        ]
                        return pods if len(pods) >= desired - low else []

                    added = _wait("the added pods Ready", added_ready, 180)
                    timeline["added pods Ready"] = since_load(time.monotonic())
                    ips = {p["status"]["podIP"] for p in added}
                    _wait(
                        "the added pods in the Service's endpoints",
                        lambda: ips <= set(_endpoints(deployed, api)),
                        60,
                    )
                    timeline["added pods in the endpoints"] = since_load(time.monotonic())
                    # Serving: the added pods' own CPU time grows under the next rounds' connections.
                    before = {p["metadata"]["name"]: autoscale.CPUSample.read(p) for p in added}
                    measured_at, rounds = time.monotonic(), len(load.reports)
                    _wait(
                        "two more load rounds", lambda: len(load.reports) >= rounds + 2 or load.failures, 120
                    )
                    seconds = time.monotonic() - measured_at
                    everyone = {p["metadata"]["name"]: p for p in _pods(deployed, api)}
                    served = {
                        n: autoscale.CPUSample.read(everyone[n]).since(s, seconds) for n, s in before.items()
                    }
                    seen["added pods serving"] = served
                    seen["memory MiB under load"] = {n: autoscale.memory_mib(p) for n, p in everyone.items()}
                    for name, figures in served.items():
                        assert figures["millicores"] >= 20, f"{name} takes no traffic: {figures}"
                    timeline["added pods serving"] = since_load(time.monotonic())
                    # Saturated at its CPU limit, no container was killed (OOM) or restarted.
                    for pod in _pods(deployed, api):
                        [container] = pod["status"]["containerStatuses"]
                        assert container["restartCount"] == 0, f"{pod['metadata']['name']}: {container}"
                        assert autoscale.oom_kills(pod) == 0, pod["metadata"]["name"]
                finally:
                    reports = load.stop()
                    seen |= {
                        "load rounds": len(reports),
                        "requests under load": load.completed(),
                        "load errors": load.errors(),
                        "load requests/s by round": [r["throughput_per_s"] for r in reports],
                    }
                stopped = load.ended
                timeline["load stopped"] = since_load(stopped)
                assert not load.failures, load.failures
                assert load.errors() == {}, f"requests failed under load: {load.errors()}"
                assert load.completed() >= 1500, f"{load.completed()} requests completed"

                def scaled_in() -> bool:
                    status = _hpa(deployed, api).get("status", {})
                    return bool(status.get("desiredReplicas") == low and len(_pods(deployed, api)) == low)

                _wait(f"HorizontalPodAutoscaler/{api} scaling back in", scaled_in, window + 240)
                scaled_in_at = _timestamp(_hpa(deployed, api)["status"]["lastScaleTime"]) - clock
                timeline["scale-in"] = since_load(scaled_in_at)
                seen["scale-in after load stopped (s)"] = round(scaled_in_at - stopped, 1)
                seen["replicas"] = [low, desired, low]
                time.sleep(5)  # the stream goes on past the removed pod's endpoints and preStop
            finally:
                outcomes = stream.finish()
                seen["stream outcomes"] = outcomes
        assert set(outcomes) == {"200"}, f"requests failed while the HPA scaled: {outcomes}"
        # Not before the window: the recommendations under load were the larger count.
        assert scaled_in_at - stopped >= window - 5, f"scaled in {scaled_in_at - stopped:.0f}s after the load"


UNHARDENED = """
# Appended by the cluster tier: a workload declared without the library's hardening.
k8s.apps.v1.Deployment(
    "unhardened",
    metadata={"name": "unhardened", "namespace": system.namespace_name},
    spec={
        "selector": {"matchLabels": {"app": "unhardened"}},
        "template": {
            "metadata": {"labels": {"app": "unhardened"}},
            "spec": {"containers": [{"name": "app", "image": "quay.io/ecosystem-appeng/unhardened:latest"}]},
        },
    },
    opts=pulumi.ResourceOptions(provider=provider),
)
"""


def test_mandatory_violation_stops_the_preview(deployed: Deployed) -> None:
    # Config cannot weaken a pod without a named exemption (a config error before any
    # resource is registered); the pack is what stops a program that declares one.
    program = deployed.project.workdir / "__main__.py"
    original = program.read_text()
    program.write_text(original + UNHARDENED)
    try:
        with pytest.raises(auto.CommandError) as raised:
            deployed.preview()
    finally:
        program.write_text(original)
    text = str(raised.value)
    assert "mandatory" in text.lower(), text[-3000:]
    violated = {rule.id for rule in RULES if rule.severity == "mandatory" and rule.id in text}
    assert {"PSS-014", "HARD-001"} <= violated, text[-3000:]
    assert deployed.kube.get("apps/v1", "Deployment", "unhardened", deployed.namespace) is None


def test_destroy(deployed: Deployed) -> None:
    production = str(deployed.project.config("production")).lower() == "true"
    started = time.monotonic()
    if not production:
        deployed.stack.destroy()
        deployed.timed("destroy", started)
        left = [
            _identity(o)
            for o in deployed.rendered
            if o["kind"] != "Namespace" and deployed.live(o) is not None
        ]
        assert not left, f"still in the cluster after destroy: {left}"
        ns = deployed.kube.get("v1", "Namespace", deployed.namespace)
        assert ns is None or ns["status"].get("phase") == "Terminating", ns
        return
    with pytest.raises(auto.CommandError) as raised:
        deployed.stack.destroy()
    deployed.timed("destroy (refused: protected)", started)
    text = str(raised.value)
    assert "protect" in text, text[-3000:]
    database = deployed.project.config("database")
    statefulset = deployed.kube.get("apps/v1", "StatefulSet", database["name"], deployed.namespace)
    assert statefulset is not None, "a plain destroy removed the protected database"
