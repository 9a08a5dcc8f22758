"""The real program for each stack: every hardening control, asserted on what it declared."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from hardened_k8s.mock_engine import SECRET_PLACEHOLDER, ProgramRun
from hardened_k8s.render import manifests, to_yaml

from ..conftest import DEPLOYED_SECRETS, Rendered
from ..traffic import admits

API, MCP, DB = "store-inventory", "mcp-store-inventory", "store-inventory-postgresql"
DIGEST_RE = re.compile(r"^quay\.io/ecosystem-appeng/[a-z0-9-]+@sha256:[0-9a-f]{64}$")
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def who(obj: dict[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


# --- Pod Security Standards, restricted -------------------------------------------------


def test_pod_security_context_is_restricted(stack: Rendered) -> None:
    for workload in stack.pod_workloads():
        spec = pod_spec(workload)
        ctx = spec["securityContext"]
        assert ctx["runAsNonRoot"] is True, who(workload)
        for key in ("runAsUser", "runAsGroup", "fsGroup"):
            assert ctx[key] >= 10000, (who(workload), key, ctx[key])
        assert ctx["seccompProfile"]["type"] == "RuntimeDefault", who(workload)
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(field), (who(workload), field)
        for volume in spec.get("volumes", []):
            kinds = set(volume) - {"name"}
            assert kinds <= RESTRICTED_VOLUMES, (who(workload), volume)


def test_container_security_context_is_restricted(stack: Rendered) -> None:
    for workload in stack.pod_workloads():
        uid = pod_spec(workload)["securityContext"]["runAsUser"]
        for c in containers(workload):
            ctx = c["securityContext"]
            where = f"{who(workload)} container {c['name']}"
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["privileged"] is False, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == uid, where
            assert ctx["runAsUser"] >= 10000 and ctx["runAsGroup"] >= 10000, where
            assert ctx["capabilities"] == {"drop": ["ALL"]}, where
            assert ctx["seccompProfile"]["type"] == "RuntimeDefault", where
            assert "ports" not in c or all("hostPort" not in p for p in c["ports"]), where


def test_services_run_as_the_image_uid(stack: Rendered) -> None:
    for name in (API, MCP):
        assert pod_spec(stack.get("Deployment", name))["securityContext"]["runAsUser"] == 10001, name


# --- Beyond PSS ---------------------------------------------------------------------------


def test_writable_tmp_is_a_size_limited_memory_emptydir(stack: Rendered) -> None:
    for workload in stack.pod_workloads():
        spec = pod_spec(workload)
        mounts = {m["mountPath"]: m["name"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, who(workload)
        volume = next(v for v in spec["volumes"] if v["name"] == mounts["/tmp"])
        assert volume["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Mi"}, who(workload)


def test_service_account_token_is_not_mounted(stack: Rendered) -> None:
    for workload in stack.pod_workloads():
        spec = pod_spec(workload)
        assert spec["automountServiceAccountToken"] is False, who(workload)
        account = stack.get("ServiceAccount", spec["serviceAccountName"])
        assert account["automountServiceAccountToken"] is False, who(account)


def test_every_container_has_requests_and_limits(stack: Rendered) -> None:
    for workload in stack.pod_workloads():
        for c in containers(workload):
            for side in ("requests", "limits"):
                assert set(c["resources"][side]) == {"cpu", "memory", "ephemeral-storage"}, (
                    who(workload),
                    side,
                )


def test_probes_present_and_liveness_differs_from_readiness(stack: Rendered) -> None:
    for workload in stack.pod_workloads():
        for c in workload["spec"]["template"]["spec"]["containers"]:
            assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(c), who(workload)
            assert c["livenessProbe"] != c["readinessProbe"], who(workload)


def test_api_readiness_checks_the_database_endpoint(rendered: Callable[[str], Rendered]) -> None:
    api = rendered("dev").get("Deployment", API)["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert api["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    # 60 s allowance at a 5 s period
    assert api["startupProbe"]["periodSeconds"] * api["startupProbe"]["failureThreshold"] == 60


def test_images_by_digest_under_the_registry(stack: Rendered) -> None:
    for workload in stack.pod_workloads():
        for c in containers(workload):
            assert DIGEST_RE.match(c["image"]), (who(workload), c["image"])
            assert c["imagePullPolicy"] == "Always", who(workload)


def test_rolling_update_is_graceful(stack: Rendered) -> None:
    for deployment in stack.all("Deployment"):
        spec = deployment["spec"]
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, who(deployment)
        assert spec["minReadySeconds"] > 0, who(deployment)
        pod = spec["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] > 5, who(deployment)
        pre_stop = pod["containers"][0]["lifecycle"]["preStop"]
        assert pre_stop == {"sleep": {"seconds": 5}}, who(deployment)


def test_recommended_labels_and_one_selector(stack: Rendered) -> None:
    required = {
        f"app.kubernetes.io/{k}"
        for k in ("name", "instance", "version", "component", "part-of", "managed-by")
    }
    for name in (API, MCP):
        deployment = stack.get("Deployment", name)
        selector = deployment["spec"]["selector"]["matchLabels"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert required <= set(pod_labels) and required <= set(deployment["metadata"]["labels"]), name
        assert selector.items() <= pod_labels.items(), name
        assert stack.get("Service", name)["spec"]["selector"] == selector, name
        assert stack.get("NetworkPolicy", name)["spec"]["podSelector"]["matchLabels"] == selector, name
        for pdb in stack.all("PodDisruptionBudget"):
            if pdb["metadata"]["name"] == name:
                assert pdb["spec"]["selector"]["matchLabels"] == selector, name
        hpa = stack.get("HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}


def test_service_ports_are_named_and_target_the_container_port(stack: Rendered) -> None:
    for name, port in ((API, 8000), (MCP, 8080)):
        svc = stack.get("Service", name)
        assert svc["spec"]["type"] == "ClusterIP"
        assert svc["spec"]["ports"] == [
            {"appProtocol": "http", "name": "http", "port": port, "protocol": "TCP", "targetPort": "http"}
        ]
        container = stack.get("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert container["ports"] == [{"containerPort": port, "name": "http", "protocol": "TCP"}]


# --- Scaling and disruption -------------------------------------------------------------


def test_hpa_owns_replicas(stack: Rendered) -> None:
    for hpa in stack.all("HorizontalPodAutoscaler"):
        target = stack.get("Deployment", hpa["spec"]["scaleTargetRef"]["name"])
        assert "replicas" not in target["spec"], who(target)
        assert hpa["apiVersion"] == "autoscaling/v2"
        metrics = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["spec"]["metrics"]}
        assert set(metrics) == {"cpu", "memory"}, who(hpa)
        assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300, who(hpa)


def test_pdb_is_consistent_with_hpa(stack: Rendered) -> None:
    for hpa in stack.all("HorizontalPodAutoscaler"):
        name = hpa["metadata"]["name"]
        pdb = stack.get("PodDisruptionBudget", name)
        spec = pdb["spec"]
        if "minAvailable" in spec:
            assert spec["minAvailable"] < hpa["spec"]["minReplicas"], name
        else:
            assert spec["maxUnavailable"] == 1, name


@pytest.mark.parametrize(
    ("stack_name", "low", "high", "spread"), [("dev", 1, 2, False), ("prod", 3, 10, True)]
)
def test_dev_and_prod_differ_as_configured(
    rendered: Callable[[str], Rendered], stack_name: str, low: int, high: int, spread: bool
) -> None:
    stack = rendered(stack_name)
    for name in (API, MCP):
        hpa = stack.get("HorizontalPodAutoscaler", name)["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (low, high), name
        targets = {
            m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]
        }
        assert targets == {"cpu": 70, "memory": 80}, name
        pod = stack.get("Deployment", name)["spec"]["template"]["spec"]
        assert ("topologySpreadConstraints" in pod) is spread, name
        assert ("affinity" in pod) is spread, name
        if spread:
            # The preferred hostname anti-affinity beside the spread selects the replicas themselves.
            (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            assert term["weight"] == 100, name
            assert term["podAffinityTerm"] == {
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {
                    "matchLabels": stack.get("Deployment", name)["spec"]["selector"]["matchLabels"]
                },
            }, name
            assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
        if spread:
            keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
            assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}, name
            for constraint in pod["topologySpreadConstraints"]:
                assert (
                    constraint["labelSelector"]["matchLabels"]
                    == stack.get("Deployment", name)["spec"]["selector"]["matchLabels"]
                )


def place(constraints: list[dict[str, Any]], nodes: dict[str, set[str]], replicas: int) -> dict[str, int]:
    """The scheduler's PodTopologySpread filter for ``replicas`` pods with no tolerations.

    ``nodes`` maps node name to its taints' effects. A pod fits a node if the node is not
    tainted ``NoSchedule`` and, for every ``DoNotSchedule`` hostname constraint, placing it
    keeps (count + 1 - minimum over the domains) within ``maxSkew``; the domains are every
    node, or with ``nodeTaintsPolicy: Honor`` only the nodes the pod tolerates.
    """
    placed = dict.fromkeys(nodes, 0)
    schedulable = [n for n, taints in nodes.items() if "NoSchedule" not in taints]
    for _ in range(replicas):
        fits = []
        for node in schedulable:
            ok = True
            for c in constraints:
                if c["topologyKey"] != "kubernetes.io/hostname" or c["whenUnsatisfiable"] != "DoNotSchedule":
                    continue
                honor = c.get("nodeTaintsPolicy", "Ignore") == "Honor"
                domains = schedulable if honor else list(nodes)
                ok &= placed[node] + 1 - min(placed[d] for d in domains) <= c["maxSkew"]
            if ok:
                fits.append(node)
        if not fits:
            break
        placed[min(fits, key=lambda n: placed[n])] += 1
    return placed


def test_prod_hpa_maximum_schedules_on_a_small_cluster_with_a_tainted_node(
    rendered: Callable[[str], Rendered],
) -> None:
    stack = rendered("prod")
    cluster = {"control-plane": {"NoSchedule"}, "node-a": set(), "node-b": set(), "node-c": set()}
    for name in (API, MCP):
        pod = stack.get("Deployment", name)["spec"]["template"]["spec"]
        constraints = pod["topologySpreadConstraints"]
        for c in constraints:
            assert (c["nodeTaintsPolicy"], c["nodeAffinityPolicy"]) == ("Honor", "Honor"), (name, c)
        hostname = [c for c in constraints if c["topologyKey"] == "kubernetes.io/hostname"]
        assert [(c["whenUnsatisfiable"], c["maxSkew"]) for c in hostname] == [("DoNotSchedule", 1)], name
        high = stack.get("HorizontalPodAutoscaler", name)["spec"]["maxReplicas"]
        placed = place(constraints, cluster, high)
        assert sum(placed.values()) == high, f"{name}: {high} replicas, only {placed} scheduled"
        assert max(placed.values()) - min(v for n, v in placed.items() if n != "control-plane") <= 1
        # The same constraints counting the tainted node as a domain strand all but three pods.
        ignored = [{**c, "nodeTaintsPolicy": "Ignore"} for c in constraints]
        assert sum(place(ignored, cluster, high).values()) == 3, "the oracle does not model taints"


def test_prod_is_sized_above_dev(rendered: Callable[[str], Rendered]) -> None:
    def cpu_limit(stack: str) -> str:
        c = rendered(stack).get("Deployment", API)["spec"]["template"]["spec"]["containers"][0]
        return str(c["resources"]["limits"]["cpu"])

    assert (cpu_limit("dev"), cpu_limit("prod")) == ("250m", "1")
    assert rendered("dev").get("Namespace", "store-inventory-dev")
    assert rendered("prod").get("Namespace", "store-inventory")


# --- Namespace and network --------------------------------------------------------------


def test_namespace_enforces_restricted_with_pinned_version(stack: Rendered) -> None:
    (namespace,) = stack.all("Namespace")
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", mode
        assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.31", mode


def test_default_deny_and_dns_egress(stack: Rendered) -> None:
    deny = stack.get("NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = stack.get("NetworkPolicy", "allow-dns")["spec"]
    assert dns["podSelector"] == {} and dns["policyTypes"] == ["Egress"]
    (rule,) = dns["egress"]
    assert sorted((p["protocol"], p["port"]) for p in rule["ports"]) == [("TCP", 53), ("UDP", 53)]
    assert rule["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}


def manifests_of(stack: Rendered) -> list[dict[str, Any]]:
    return [copy.deepcopy(o.manifest) for o in stack.objects]


def test_traffic_is_mcp_to_api_to_db_only(stack: Rendered) -> None:
    objects = manifests_of(stack)
    names = {API: 8000, MCP: 8080, DB: 5432}
    expected = {(MCP, API), (API, DB)}
    for source in names:
        for target, port in names.items():
            if source == target:
                continue
            out = admits(objects, "Egress", source, target, port)
            into = admits(objects, "Ingress", target, source, port)
            allowed = (source, target) in expected
            assert (out, into) == (allowed, allowed), f"{source} -> {target}: egress {out}, ingress {into}"


def _add_ingress_peer(objects: list[dict[str, Any]], policy: str, entry: dict[str, Any]) -> None:
    for obj in objects:
        if obj["kind"] == "NetworkPolicy" and obj["metadata"]["name"] == policy:
            obj["spec"]["ingress"].append({"from": [entry], "ports": [{"protocol": "TCP", "port": 5432}]})
            return
    raise AssertionError(f"no NetworkPolicy {policy}")


@pytest.mark.parametrize(
    ("entry", "admitted"),
    [
        ({"namespaceSelector": {}}, True),  # every pod of every namespace
        ({"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": MCP}}}, True),
        ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}, False),
        ({"namespaceSelector": {"matchExpressions": [{"key": "pod-security.kubernetes.io/enforce",
                                                      "operator": "In", "values": ["restricted"]}]}}, True),
        ({"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": API}}}, False),
        ({"ipBlock": {"cidr": "10.0.0.0/8"}}, True),
        # Selectors by meaning: every named namespace, all but one, none at all.
        ({"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                                      "operator": "Exists"}]}}, True),
        ({"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                                      "operator": "NotIn", "values": ["x"]}]}}, True),
        ({"namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name",
                                                      "operator": "DoesNotExist"}]}}, False),
        ({"namespaceSelector": {}, "podSelector": {"matchExpressions": [{"key": "app.kubernetes.io/name",
                                                  "operator": "NotIn", "values": [API]}]}}, True),
    ],
)  # fmt: skip
def test_traffic_oracle_evaluates_namespace_selectors(
    rendered: Callable[[str], Rendered], entry: dict[str, Any], admitted: bool
) -> None:
    """The oracle must see a peer the render's own policies never use, so a regression in them
    (a database admitting every namespace) cannot pass the traffic test by being skipped."""
    objects = manifests_of(rendered("dev"))
    assert not admits(objects, "Ingress", DB, MCP, 5432), "the committed policy already admits MCP"
    _add_ingress_peer(objects, DB, entry)
    assert admits(objects, "Ingress", DB, MCP, 5432) is admitted, entry


@pytest.mark.parametrize(
    ("ports", "admitted"),
    [
        ([{"protocol": "TCP", "port": 5000, "endPort": 6000}], True),
        ([{"protocol": "TCP", "port": 1, "endPort": 5431}], False),
        ([{"protocol": "TCP"}], True),  # no port: every port of the protocol
        ([{"protocol": "UDP"}], False),
        ([{"protocol": "TCP", "port": "postgres"}], True),  # the database's own port name
        ([{"protocol": "TCP", "port": "http"}], False),  # a name the database does not give a port
        ([], True),
    ],
)
def test_traffic_oracle_evaluates_port_ranges(
    rendered: Callable[[str], Rendered], ports: list[dict[str, Any]], admitted: bool
) -> None:
    objects = manifests_of(rendered("dev"))
    peer = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": MCP}}}
    for obj in objects:
        if obj["kind"] == "NetworkPolicy" and obj["metadata"]["name"] == DB:
            obj["spec"]["ingress"].append({"from": [peer], "ports": ports})
    assert admits(objects, "Ingress", DB, MCP, 5432) is admitted, ports


def test_every_pod_is_selected_by_an_allow_list_matching_its_labels(stack: Rendered) -> None:
    for workload in stack.pod_workloads():
        name = workload["metadata"]["name"]
        policy = stack.get("NetworkPolicy", name)["spec"]
        assert policy["podSelector"]["matchLabels"] == workload["spec"]["selector"]["matchLabels"], name


# --- Database -----------------------------------------------------------------------------


def test_postgres_statefulset(stack: Rendered) -> None:
    sts = stack.get("StatefulSet", DB)["spec"]
    assert sts["serviceName"] == f"{DB}-headless"
    assert stack.get("Service", f"{DB}-headless")["spec"]["clusterIP"] == "None"
    assert stack.get("Service", DB)["spec"]["ports"][0]["port"] == 5432
    (claim,) = sts["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    container = sts["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["POSTGRES_DB"]["value"] == "store_db"
    assert "POSTGRES_PASSWORD" not in env
    assert env["POSTGRES_PASSWORD_FILE"] == {
        "name": "POSTGRES_PASSWORD_FILE",
        "value": "/etc/secrets/credentials/password",
    }
    assert container["readinessProbe"]["exec"]["command"] == ["postgres-ready"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert {"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"} <= set(mounts)
    assert mounts["/etc/secrets/credentials"] == {
        "name": "credentials",
        "mountPath": "/etc/secrets/credentials",
        "readOnly": True,
    }
    volumes = {v["name"]: v for v in sts["template"]["spec"]["volumes"]}
    assert volumes["credentials"]["secret"] == {
        "secretName": f"{DB}-credentials",
        "defaultMode": 0o440,
        "optional": False,
        "items": [{"key": "password", "path": "password"}],
    }
    ctx = sts["template"]["spec"]["securityContext"]
    assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["fsGroup"]) == (10002, 10002, 10002)


def test_api_reads_database_url_from_secret_by_service_name(stack: Rendered) -> None:
    pod = stack.get("Deployment", API)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert all(e["name"] != "DATABASE_URL" for e in container["env"])
    (env,) = [e for e in container["env"] if e["name"] == "DATABASE_URL_FILE"]
    assert env == {"name": "DATABASE_URL_FILE", "value": "/etc/secrets/database-url/DATABASE_URL"}
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "secret-database-url"]
    assert mount == {
        "name": "secret-database-url",
        "mountPath": "/etc/secrets/database-url",
        "readOnly": True,
    }
    (volume,) = [v for v in pod["volumes"] if v["name"] == "secret-database-url"]
    assert volume["secret"] == {
        "secretName": f"{DB}-url",
        "defaultMode": 0o440,
        "optional": False,
        "items": [{"key": "DATABASE_URL", "path": "DATABASE_URL"}],
    }
    mcp = stack.get("Deployment", MCP)["spec"]["template"]["spec"]["containers"][0]
    assert all(not e["name"].startswith("DATABASE_URL") for e in mcp.get("env", []))
    assert {"name": "AUTH_TOKEN_FILE", "value": "/etc/secrets/auth-token/AUTH_TOKEN"} in mcp["env"]
    # The API's URL is derived from the egressTo peer, not written in the stack file.
    assert {"name": "STORE_INVENTORY_URL", "value": "http://store-inventory:8000"} in mcp["env"]


@pytest.mark.parametrize(("stack_name", "kept"), [("dev", False), ("prod", True)])
def test_prod_data_is_protected(rendered: Callable[[str], Rendered], stack_name: str, kept: bool) -> None:
    stack = rendered(stack_name)
    (namespace,) = stack.all("Namespace")
    for kind, name in (
        ("StatefulSet", DB),
        ("Secret", f"{DB}-credentials"),
        ("Namespace", namespace["metadata"]["name"]),
    ):
        reg = stack.registration(kind, name)
        assert (reg.protect, reg.retain_on_delete) == (kept, kept), (stack_name, kind)
    assert not stack.registration("Deployment", API).protect


# --- Secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_no_container_env_references_a_secret(rendered: Callable[[str], Rendered], stack_name: str) -> None:
    """Secrets are files of read-only Secret volumes; the environment carries only their paths."""
    stack = rendered(stack_name)
    secrets = {s["metadata"]["name"] for s in stack.all("Secret")}
    mounted: set[str] = set()
    for workload in stack.pod_workloads():
        spec = pod_spec(workload)
        secret_volumes = {v["name"]: v["secret"] for v in spec.get("volumes", []) if "secret" in v}
        mounted |= {v["secretName"] for v in secret_volumes.values()}
        for volume in secret_volumes.values():
            assert volume["defaultMode"] & 0o027 == 0, (who(workload), oct(volume["defaultMode"]))
            assert volume["optional"] is False, who(workload)
        for c in containers(workload):
            where = f"{who(workload)} container {c['name']}"
            for var in c.get("env", []):
                assert "valueFrom" not in var or "secretKeyRef" not in var["valueFrom"], (where, var)
            assert all("secretRef" not in source for source in c.get("envFrom", [])), where
            for mount in c.get("volumeMounts", []):
                if mount["name"] in secret_volumes:
                    assert mount.get("readOnly") is True, (where, mount)
    # Every Secret a workload reads (all but none) reaches it as a volume.
    assert mounted == secrets


def test_secret_values_are_secret_outputs_and_never_rendered(deployed_dev: ProgramRun) -> None:
    sentinel, token = DEPLOYED_SECRETS["databasePassword"], DEPLOYED_SECRETS["authToken"]
    run = deployed_dev
    secret_inputs = [r for r in run.kubernetes_objects() if r.type == "kubernetes:core/v1:Secret"]
    assert len(secret_inputs) == 3  # database credentials, database URL, MCP bearer token
    for reg in secret_inputs:
        # The SDK wraps secret values in its secret signature; a plain value would be a leak.
        assert "1b47061264138c4ac30d75fd1eb44270" in repr(reg.inputs["stringData"]), reg.name
    texts = [to_yaml(o, project=run.project, stack=run.stack) for o in manifests(run)]
    assert not any(sentinel in t or "pa55" in t or token in t for t in texts)
    assert any(f"DATABASE_URL: {SECRET_PLACEHOLDER}" in t for t in texts)
    assert sentinel not in repr(run.outputs)


# --- Structure ----------------------------------------------------------------------------


def test_every_resource_is_parented_to_a_component(stack: Rendered) -> None:
    regs = stack.run.by_urn()
    components = {u for u, r in regs.items() if r.type.startswith("hardened-k8s:")}
    for reg in stack.run.registrations:
        if reg.type == "pulumi:providers:kubernetes" or reg.type == "hardened-k8s:index:ServiceSystem":
            assert reg.parent.endswith(f"pulumi:pulumi:Stack::store-inventory-{stack.run.stack}"), reg.urn
            continue
        assert reg.parent in components, f"{reg.urn} has parent {reg.parent!r}"
        assert reg.name.startswith(regs[reg.parent].name + "-"), f"{reg.name} not named after its parent"


def test_kubernetes_objects_use_the_explicit_provider(stack: Rendered) -> None:
    (provider,) = [r for r in stack.run.registrations if r.type == "pulumi:providers:kubernetes"]
    assert provider.inputs["enableServerSideApply"] == "true"
    assert provider.inputs["context"] == f"store-inventory-{stack.run.stack}"
    for reg in stack.run.kubernetes_objects():
        assert reg.provider.startswith(provider.urn + "::"), reg.urn


def test_components_register_typed_outputs(stack: Rendered) -> None:
    for reg in stack.run.registrations:
        if reg.type.startswith("hardened-k8s:"):
            outputs = stack.run.component_outputs.get(reg.urn)
            assert outputs, f"{reg.urn} registered no outputs"


def test_stack_outputs(stack: Rendered) -> None:
    outputs = stack.run.outputs
    namespace = outputs["namespace"]
    assert namespace == stack.all("Namespace")[0]["metadata"]["name"]
    for name in (API, MCP, DB):
        assert outputs["services"][name]["dns"] == f"{name}.{namespace}.svc.cluster.local"
        assert DIGEST_RE.match(outputs["services"][name]["image"]), name
