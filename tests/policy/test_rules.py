"""Every rule accepts the hardened stack and rejects a targeted mutation of it."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from hardened_k8s_rules.policy import RULES, RULES_BY_ID, evaluate, format_report, run_rule
from hardened_k8s_rules.policy.rules import made_up_digest

from .stack import Obj, find, hardened_stack, openshift_stack

Mutation = Callable[[list[Obj]], object]


def _api(objs: list[Obj]) -> Obj:
    return find(objs, "Deployment", "store-api")


def _pod(objs: list[Obj]) -> Any:
    return _api(objs)["spec"]["template"]["spec"]


def _main(objs: list[Obj]) -> Any:
    return _pod(objs)["containers"][0]


def _sc(objs: list[Obj]) -> Any:
    return _main(objs)["securityContext"]


def _psc(objs: list[Obj]) -> Any:
    return _pod(objs)["securityContext"]


def _set(getter: Callable[[list[Obj]], Any], key: str, value: Any) -> Mutation:
    def mutate(objs: list[Obj]) -> None:
        getter(objs)[key] = value

    return mutate


def _del(getter: Callable[[list[Obj]], Any], key: str) -> Mutation:
    def mutate(objs: list[Obj]) -> None:
        del getter(objs)[key]

    return mutate


def _remove(kind: str, name: str) -> Mutation:
    def mutate(objs: list[Obj]) -> None:
        objs.remove(find(objs, kind, name))

    return mutate


def _add_init_container(objs: list[Obj]) -> None:
    init = {**_main(objs), "name": "migrate", "securityContext": {**_sc(objs)}}
    del init["securityContext"]["allowPrivilegeEscalation"]
    _pod(objs)["initContainers"] = [init]


def _add_volume(volume: Obj) -> Mutation:
    def mutate(objs: list[Obj]) -> None:
        _pod(objs)["volumes"].append(volume)

    return mutate


def _ns_label(key: str, value: str | None) -> Mutation:
    def mutate(objs: list[Obj]) -> None:
        labels = find(objs, "Namespace")["metadata"]["labels"]
        if value is None:
            del labels[f"pod-security.kubernetes.io/{key}"]
        else:
            labels[f"pod-security.kubernetes.io/{key}"] = value

    return mutate


def _hpa_spec(objs: list[Obj]) -> Any:
    return find(objs, "HorizontalPodAutoscaler")["spec"]


def _pdb_spec(objs: list[Obj]) -> Any:
    return find(objs, "PodDisruptionBudget")["spec"]


def _no_hpa_two_replicas(objs: list[Obj]) -> None:
    objs.remove(find(objs, "HorizontalPodAutoscaler"))
    _api(objs)["spec"]["replicas"] = 2


def _sts_three_replicas_no_pdb(objs: list[Obj]) -> None:
    find(objs, "StatefulSet")["spec"]["replicas"] = 3


def _svc_selector_drift(objs: list[Obj]) -> None:
    find(objs, "Service", "store-api")["spec"]["selector"] = {"app.kubernetes.io/name": "store-api"}


def _pdb_selector_typo(objs: list[Obj]) -> None:
    _pdb_spec(objs)["selector"] = {"matchLabels": {"app.kubernetes.io/name": "store-apl"}}


def _hpa_target_missing(objs: list[Obj]) -> None:
    _hpa_spec(objs)["scaleTargetRef"]["name"] = "store-ap1"
    _api(objs)["spec"]["replicas"] = 2


def _np_in_other_namespace(objs: list[Obj]) -> None:
    for obj in objs:
        if obj["kind"] == "NetworkPolicy":
            obj["metadata"]["namespace"] = "elsewhere"


def _np_ingress_only(objs: list[Obj]) -> None:
    for obj in objs:
        if obj["kind"] == "NetworkPolicy":
            obj["spec"]["policyTypes"] = ["Ingress"]


def _secret_in_configmap(objs: list[Obj]) -> None:
    find(objs, "ConfigMap")["data"]["DB_PASS_COPY"] = "placeholder-password-value"


def _secret_key_in_configmap(objs: list[Obj]) -> None:
    find(objs, "ConfigMap")["data"]["API_TOKEN"] = "abc123abc123"


def _base64_secret_in_configmap(objs: list[Obj]) -> None:
    secret = find(objs, "Secret")
    secret["data"] = {"token": base64.b64encode(b"s3cr3t-value-xyz").decode()}
    find(objs, "ConfigMap")["data"]["UPSTREAM"] = "s3cr3t-value-xyz"


def _workload_in_default_namespace(objs: list[Obj]) -> None:
    del _api(objs)["metadata"]["namespace"]


def _apparmor_annotation(objs: list[Obj]) -> None:
    _api(objs)["spec"]["template"]["metadata"]["annotations"] = {
        "container.apparmor.security.beta.kubernetes.io/api": "unconfined"
    }


def _dns_open_to_everyone(objs: list[Obj]) -> None:
    find(objs, "NetworkPolicy", "allow-dns")["spec"]["egress"][0]["to"] = []


def _np_ingress_any_port(objs: list[Obj]) -> None:
    del find(objs, "NetworkPolicy", "store-api")["spec"]["ingress"][0]["ports"]


def _np_egress_anywhere(objs: list[Obj]) -> None:
    find(objs, "NetworkPolicy", "store-api")["spec"]["egress"][0]["to"] = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]


def _db_ingress_from(*peers: Obj) -> Mutation:
    def mutate(objs: list[Obj]) -> None:
        find(objs, "NetworkPolicy", "postgres")["spec"]["ingress"][0]["from"] = list(peers)

    return mutate


def _dns_to(*peers: Obj) -> Mutation:
    def mutate(objs: list[Obj]) -> None:
        find(objs, "NetworkPolicy", "allow-dns")["spec"]["egress"][0]["to"] = list(peers)

    return mutate


def _api_egress(*rules: Obj) -> Mutation:
    """The API's egress rules replaced by ``rules``."""

    def mutate(objs: list[Obj]) -> None:
        find(objs, "NetworkPolicy", "store-api")["spec"]["egress"] = list(rules)

    return mutate


OUTSIDE = {"ipBlock": {"cidr": "203.0.113.7/32"}}
"""One address outside the cluster: a narrow peer by itself."""


def _expr(key: str, operator: str, *values: str) -> Obj:
    return {"key": key, "operator": operator, **({"values": list(values)} if values else {})}


def _anti_term(objs: list[Obj]) -> Obj:
    """The API's preferred hostname anti-affinity term."""
    (term,) = _pod(objs)["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    return term["podAffinityTerm"]  # type: ignore[no-any-return]


def _image_digest(digits: str) -> Mutation:
    def mutate(objs: list[Obj]) -> None:
        _main(objs)["image"] = f"quay.io/ecosystem-appeng/store-api@sha256:{digits}"

    return mutate


def _duplicate_env(objs: list[Obj]) -> None:
    _main(objs)["env"].append({"name": "LOG_LEVEL", "value": "debug"})


def _duplicate_volume(objs: list[Obj]) -> None:
    _pod(objs)["volumes"].append({"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}})


def _duplicate_mount_path(objs: list[Obj]) -> None:
    _pod(objs)["volumes"].append({"name": "tmp2", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}})
    _main(objs)["volumeMounts"].append({"name": "tmp2", "mountPath": "/tmp"})


KUBE_DNS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


# Rule id -> mutations of the hardened stack, each of which that rule must reject.
FAILING: dict[str, list[tuple[str, Mutation]]] = {
    "PSS-001": [
        ("pod hostProcess", _set(_psc, "windowsOptions", {"hostProcess": True})),
        ("container hostProcess", _set(_sc, "windowsOptions", {"hostProcess": True})),
    ],
    "PSS-002": [
        ("hostNetwork", _set(_pod, "hostNetwork", True)),
        ("hostPID", _set(_pod, "hostPID", True)),
        ("hostIPC", _set(_pod, "hostIPC", True)),
    ],
    "PSS-003": [("privileged", _set(_sc, "privileged", True))],
    "PSS-004": [("SYS_ADMIN", _set(_sc, "capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN"]}))],
    "PSS-005": [("hostPath", _add_volume({"name": "host", "hostPath": {"path": "/var"}}))],
    "PSS-006": [
        ("hostPort", _set(_main, "ports", [{"name": "http", "containerPort": 8000, "hostPort": 80}]))
    ],
    "PSS-007": [
        ("pod profile", _set(_psc, "appArmorProfile", {"type": "Unconfined"})),
        ("container profile", _set(_sc, "appArmorProfile", {"type": "Unconfined"})),
        ("annotation", _apparmor_annotation),
    ],
    "PSS-008": [
        ("type", _set(_sc, "seLinuxOptions", {"type": "spc_t"})),
        ("user", _set(_psc, "seLinuxOptions", {"user": "system_u"})),
    ],
    "PSS-009": [("Unmasked", _set(_sc, "procMount", "Unmasked"))],
    "PSS-010": [("pod Unconfined", _set(_psc, "seccompProfile", {"type": "Unconfined"}))],
    "PSS-011": [("kernel.msgmax", _set(_psc, "sysctls", [{"name": "kernel.msgmax", "value": "1"}]))],
    "PSS-012": [
        (
            "probe host",
            _set(_main, "readinessProbe", {"httpGet": {"path": "/", "port": 80, "host": "10.0.0.1"}}),
        ),
        ("preStop host", _set(_main, "lifecycle", {"preStop": {"tcpSocket": {"port": 1, "host": "x"}}})),
    ],
    "PSS-013": [("nfs", _add_volume({"name": "nfs", "nfs": {"server": "nfs", "path": "/"}}))],
    "PSS-014": [
        ("unset", _del(_sc, "allowPrivilegeEscalation")),
        ("true", _set(_sc, "allowPrivilegeEscalation", True)),
        ("init container", _add_init_container),
    ],
    "PSS-015": [
        ("pod false", _set(_psc, "runAsNonRoot", False)),
        (
            "unset everywhere",
            lambda objs: (_del(_psc, "runAsNonRoot")(objs), _del(_sc, "runAsNonRoot")(objs)),
        ),
        ("container false", _set(_sc, "runAsNonRoot", False)),
    ],
    "PSS-016": [("container root", _set(_sc, "runAsUser", 0)), ("pod root", _set(_psc, "runAsUser", 0))],
    "PSS-017": [
        ("unset", _del(_psc, "seccompProfile")),
        ("container Unconfined", _set(_sc, "seccompProfile", {"type": "Unconfined"})),
    ],
    "PSS-018": [
        ("no drop", _set(_sc, "capabilities", {})),
        ("adds CHOWN", _set(_sc, "capabilities", {"drop": ["ALL"], "add": ["CHOWN"]})),
    ],
    "HARD-001": [
        ("unset", _del(_sc, "readOnlyRootFilesystem")),
        ("false", _set(_sc, "readOnlyRootFilesystem", False)),
    ],
    "HARD-002": [
        ("unset", _del(_pod, "automountServiceAccountToken")),
        ("true", _set(_pod, "automountServiceAccountToken", True)),
    ],
    "HARD-003": [
        ("unset", lambda objs: find(objs, "ServiceAccount", "store-api").pop("automountServiceAccountToken"))
    ],
    "HARD-004": [
        ("default SA", _del(_pod, "serviceAccountName")),
        ("undeclared SA", _remove("ServiceAccount", "store-api")),
    ],
    "HARD-005": [
        ("no fsGroup", _del(_psc, "fsGroup")),
        ("named user", lambda objs: (_del(_psc, "runAsUser")(objs), _set(_sc, "runAsUser", "app")(objs))),
        ("no runAsGroup", _del(_psc, "runAsGroup")),
    ],
    "HARD-006": [
        ("no cpu limit", lambda objs: _main(objs)["resources"]["limits"].pop("cpu")),
        ("no requests", lambda objs: _main(objs)["resources"].pop("requests")),
    ],
    "HARD-007": [
        ("no ephemeral limit", lambda objs: _main(objs)["resources"]["limits"].pop("ephemeral-storage"))
    ],
    "HARD-008": [
        ("no liveness", _del(_main, "livenessProbe")),
        ("no readiness", _del(_main, "readinessProbe")),
    ],
    "HARD-009": [
        (
            "liveness is readiness",
            lambda objs: _set(_main, "livenessProbe", {**_main(objs)["readinessProbe"], "periodSeconds": 20})(
                objs
            ),
        )
    ],
    "HARD-010": [("no startup probe", _del(_main, "startupProbe"))],
    "HARD-011": [("tag", _set(_main, "image", "quay.io/ecosystem-appeng/store-api:1.0.0"))],
    "HARD-012": [
        ("latest", _set(_main, "image", "quay.io/ecosystem-appeng/store-api:latest")),
        ("implicit latest", _set(_main, "image", "quay.io/ecosystem-appeng/store-api")),
    ],
    "HARD-013": [
        ("IfNotPresent", _set(_main, "imagePullPolicy", "IfNotPresent")),
        ("unset", _del(_main, "imagePullPolicy")),
    ],
    "HARD-014": [("no sizeLimit", lambda objs: _pod(objs)["volumes"][0]["emptyDir"].pop("sizeLimit"))],
    "HARD-015": [
        (
            "password literal",
            lambda objs: _main(objs)["env"].append({"name": "DB_PASSWORD", "value": "hunter22"}),
        ),
        (
            "credential URL",
            lambda objs: _main(objs)["env"].append(
                {"name": "DATABASE_URL", "value": "postgresql://app:hunter22@postgres:5432/store"}
            ),
        ),
    ],
    "HARD-016": [
        ("secret value", _secret_in_configmap),
        ("secret-looking key", _secret_key_in_configmap),
        ("base64 secret value", _base64_secret_in_configmap),
    ],
    "HARD-017": [
        ("enforce baseline", _ns_label("enforce", "baseline")),
        ("no warn", _ns_label("warn", None)),
        ("version latest", _ns_label("enforce-version", "latest")),
    ],
    "HARD-018": [
        ("default namespace", _workload_in_default_namespace),
        ("undeclared", _remove("Namespace", "store")),
    ],
    "HARD-019": [("no default deny", _remove("NetworkPolicy", "default-deny"))],
    "HARD-020": [("policies elsewhere", _np_in_other_namespace), ("ingress only", _np_ingress_only)],
    "HARD-021": [
        (
            "ingress from anyone",
            lambda objs: find(objs, "NetworkPolicy", "store-api")["spec"]["ingress"][0].pop("from"),
        ),
        ("any port", _np_ingress_any_port),
        ("0.0.0.0/0", _np_egress_anywhere),
        ("every namespace", _db_ingress_from({"namespaceSelector": {}})),
        (
            "API pods of every namespace",
            _db_ingress_from({"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}}),
        ),
        ("every pod of the namespace", _db_ingress_from({"podSelector": {}})),
        ("a /8 block", _db_ingress_from({"ipBlock": {"cidr": "10.0.0.0/8"}})),
        ("an IPv6 /32 block", _db_ingress_from({"ipBlock": {"cidr": "2001:db8::/32"}})),
        ("not a CIDR", _db_ingress_from({"ipBlock": {"cidr": "10.0.0.300/24"}})),
        (
            "every named namespace (Exists)",
            _db_ingress_from(
                {"namespaceSelector": {"matchExpressions": [_expr("kubernetes.io/metadata.name", "Exists")]}}
            ),
        ),
        (
            "every namespace but one (NotIn)",
            _db_ingress_from(
                {
                    "namespaceSelector": {
                        "matchExpressions": [_expr("kubernetes.io/metadata.name", "NotIn", "x")]
                    }
                }
            ),
        ),
        (
            "every unlabelled namespace (DoesNotExist)",
            _db_ingress_from({"namespaceSelector": {"matchExpressions": [_expr("team", "DoesNotExist")]}}),
        ),
        (
            "every labelled pod (Exists)",
            _db_ingress_from(
                {"podSelector": {"matchExpressions": [_expr("app.kubernetes.io/name", "Exists")]}}
            ),
        ),
        (
            "every pod but one (NotIn)",
            _db_ingress_from({"podSelector": {"matchExpressions": [_expr("app", "NotIn", "postgres")]}}),
        ),
        ("no port in the entry", _api_egress({"to": [OUTSIDE], "ports": [{"protocol": "TCP"}]})),
        (
            "every port by endPort",
            _api_egress({"to": [OUTSIDE], "ports": [{"protocol": "TCP", "port": 1, "endPort": 65535}]}),
        ),
        (
            "a range of 65 ports",
            _api_egress({"to": [OUTSIDE], "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8064}]}),
        ),
    ],
    "HARD-022": [
        ("no DNS policy", _remove("NetworkPolicy", "allow-dns")),
        ("DNS to anyone", _dns_open_to_everyone),
        ("DNS to a public resolver only", _dns_to({"ipBlock": {"cidr": "8.8.8.8/32"}})),
    ],
    "HARD-023": [
        ("HPA without PDB", _remove("PodDisruptionBudget", "store-api")),
        ("StatefulSet with 3 replicas", _sts_three_replicas_no_pdb),
    ],
    "HARD-024": [
        (
            "minAvailable = minReplicas",
            lambda objs: _pdb_spec(objs).update({"minAvailable": 2}) or _pdb_spec(objs).pop("maxUnavailable"),
        ),
        (
            "minAvailable 100%",
            lambda objs: (
                _pdb_spec(objs).update({"minAvailable": "100%"}) or _pdb_spec(objs).pop("maxUnavailable")
            ),
        ),
        ("maxUnavailable 0", lambda objs: _pdb_spec(objs).update({"maxUnavailable": 0})),
    ],
    "HARD-025": [
        ("v1", lambda objs: find(objs, "HorizontalPodAutoscaler").update({"apiVersion": "autoscaling/v1"})),
        ("cpu only", lambda objs: _hpa_spec(objs)["metrics"].pop()),
        ("no behavior", lambda objs: _hpa_spec(objs).pop("behavior")),
    ],
    "HARD-026": [("replicas with HPA", lambda objs: _api(objs)["spec"].update({"replicas": 3}))],
    "HARD-027": [
        ("Service selector drift", _svc_selector_drift),
        ("PDB selects nothing", _pdb_selector_typo),
        ("HPA target missing", _hpa_target_missing),
    ],
    "HARD-028": [
        ("default maxUnavailable", lambda objs: _api(objs)["spec"].pop("strategy")),
        ("Recreate", lambda objs: _api(objs)["spec"].update({"strategy": {"type": "Recreate"}})),
    ],
    "HARD-029": [
        ("no preStop", _del(_main, "lifecycle")),
        ("no grace period", _del(_pod, "terminationGracePeriodSeconds")),
    ],
    "HARD-030": [("no minReadySeconds", lambda objs: _api(objs)["spec"].pop("minReadySeconds"))],
    "HARD-031": [
        ("object labels", lambda objs: _api(objs)["metadata"]["labels"].pop("app.kubernetes.io/version")),
        (
            "template labels",
            lambda objs: _api(objs)["spec"]["template"]["metadata"]["labels"].pop(
                "app.kubernetes.io/part-of"
            ),
        ),
    ],
    "HARD-032": [
        ("HPA minReplicas 1", lambda objs: _hpa_spec(objs).update({"minReplicas": 1})),
        ("no HPA, 1 replica", lambda objs: (_remove("HorizontalPodAutoscaler", "store-api")(objs), None)),
    ],
    "HARD-033": [("no spread", _del(_pod, "topologySpreadConstraints"))],
    "HARD-034": [
        ("DNS also to a public resolver", _dns_to(KUBE_DNS, {"ipBlock": {"cidr": "8.8.8.8/32"}})),
        (
            "DNS to any pod of kube-system",
            _dns_to({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}),
        ),
        (
            "DNS to kube-dns pods of any namespace",
            _dns_to({"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}),
        ),
        (
            "a range over 53 to an outside address",
            _api_egress({"to": [OUTSIDE], "ports": [{"protocol": "UDP", "port": 50, "endPort": 60}]}),
        ),
        ("every port to an outside address", _api_egress({"to": [OUTSIDE]})),
        ("port 53 as a string", _api_egress({"to": [OUTSIDE], "ports": [{"protocol": "UDP", "port": "53"}]})),
        ("the dns port name", _api_egress({"to": [OUTSIDE], "ports": [{"protocol": "UDP", "port": "dns"}]})),
        (
            "kube-dns pods of every namespace but one",
            _dns_to(
                {
                    "namespaceSelector": {
                        "matchExpressions": [_expr("kubernetes.io/metadata.name", "NotIn", "default")]
                    },
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ),
        ),
    ],
    "HARD-040": [
        ("no affinity", _del(_pod, "affinity")),
        ("zone only", lambda objs: _anti_term(objs).update({"topologyKey": "topology.kubernetes.io/zone"})),
        (
            "selects other pods",
            lambda objs: _anti_term(objs).update({"labelSelector": {"matchLabels": {"app": "other"}}}),
        ),
        (
            "affinity, not anti-affinity",
            lambda objs: _pod(objs).update(
                {"affinity": {"podAffinity": _pod(objs)["affinity"]["podAntiAffinity"]}}
            ),
        ),
    ],
    "HARD-035": [
        ("all-zero digest", _image_digest("0" * 64)),
        ("one repeated digit", _image_digest("a" * 64)),
        ("repeated pattern", _image_digest("0123456789abcdef" * 4)),
        ("few distinct digits", _image_digest("ab12" * 15 + "abcd")),
    ],
    "HARD-037": [
        (
            "secretKeyRef env",
            lambda objs: _main(objs)["env"].append(
                {
                    "name": "DATABASE_PASSWORD",
                    "valueFrom": {"secretKeyRef": {"name": "postgres", "key": "password"}},
                }
            ),
        ),
        ("envFrom secretRef", _set(_main, "envFrom", [{"secretRef": {"name": "postgres"}}])),
    ],
    "HARD-038": [
        ("pod runAsUser 999", _set(_psc, "runAsUser", 999)),
        ("pod runAsGroup 1000", _set(_psc, "runAsGroup", 1000)),
        ("fsGroup 999", _set(_psc, "fsGroup", 999)),
        ("container runAsUser 9999", _set(_sc, "runAsUser", 9999)),
        ("container runAsGroup as a protobuf double", _set(_sc, "runAsGroup", 999.0)),
        ("supplementalGroups", _set(_psc, "supplementalGroups", [10001, 4])),
    ],
    "HARD-039": [
        ("pod runAsUser", _set(_psc, "runAsUser", 10001)),
        ("pod fsGroup", _set(_psc, "fsGroup", 1000680000)),
        ("container runAsGroup", _set(_sc, "runAsGroup", 10001)),
        ("runAsNonRoot dropped", _set(_psc, "runAsNonRoot", None)),
    ],
    "HARD-036": [
        ("duplicate env", _duplicate_env),
        ("duplicate volume", _duplicate_volume),
        ("duplicate mount path", _duplicate_mount_path),
    ],
}

CASES = [
    pytest.param(rule_id, mutate, id=f"{rule_id}-{label}")
    for rule_id, mutations in FAILING.items()
    for label, mutate in mutations
]


def _findings(objs: list[Obj], rule_id: str) -> list[str]:
    return [f"{v.resource}: {v.problem}" for v in run_rule(RULES_BY_ID[rule_id], objs)]


def test_every_registered_rule_has_failing_cases() -> None:
    assert sorted(FAILING) == sorted(RULES_BY_ID), "rules without a failing case: " + ", ".join(
        sorted(set(RULES_BY_ID) - set(FAILING))
    )


def test_rule_ids_unique_and_documented() -> None:
    assert len({r.id for r in RULES}) == len(RULES)
    for rule in RULES:
        assert rule.severity in ("mandatory", "advisory"), rule.id
        assert rule.title and rule.message and rule.fix, rule.id


def _base_stack(rule_id: str) -> list[Obj]:
    """The hardened stack of the profile the rule runs for (restricted where it runs for both)."""
    return hardened_stack() if "restricted" in RULES_BY_ID[rule_id].profiles else openshift_stack()


@pytest.mark.parametrize("rule_id", sorted(RULES_BY_ID))
def test_hardened_stack_passes(rule_id: str) -> None:
    assert _findings(_base_stack(rule_id), rule_id) == []


@pytest.mark.parametrize(("rule_id", "mutate"), CASES)
def test_mutation_fails(rule_id: str, mutate: Mutation) -> None:
    objs = _base_stack(rule_id)
    mutate(objs)
    assert _findings(objs, rule_id), f"{rule_id} accepted the mutated stack"


def test_whole_hardened_stack_passes_in_production() -> None:
    report = evaluate(hardened_stack(), production=True)
    assert report.violations == (), format_report(report)
    assert not report.failed


@pytest.mark.parametrize("production", [False, True])
def test_openshift_stack_passes_its_profile_and_only_its_profile(production: bool) -> None:
    report = evaluate(openshift_stack(), production=production, security_profile="openshift-restricted-v2")
    assert report.violations == (), format_report(report)
    # The same objects under the default profile lack the fixed ids it requires ...
    assert {v.rule_id for v in evaluate(openshift_stack(), production=production).violations} == {"HARD-005"}
    # ... and a stack with fixed ids is refused by the OpenShift profile.
    fixed = evaluate(hardened_stack(), production=production, security_profile="openshift-restricted-v2")
    assert {v.rule_id for v in fixed.violations} == {"HARD-039"}


def test_dns_to_openshift_dns_on_port_53_only_is_not_dns_egress() -> None:
    objs = openshift_stack()
    dns = find(objs, "NetworkPolicy", "allow-dns")
    dns["spec"]["egress"][0]["ports"] = [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert _findings(objs, "HARD-022"), "the DNS operator's pods listen on 5353, not 53"


def test_findings_name_the_field_path() -> None:
    objs = hardened_stack()
    _sc(objs)["allowPrivilegeEscalation"] = True
    assert _findings(objs, "PSS-014") == [
        "Deployment/store/store-api: spec.template.spec.containers[api].securityContext."
        "allowPrivilegeEscalation: is True; must be false"
    ]


def test_cronjob_pod_is_found() -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "store"},
        "spec": {
            "schedule": "@daily",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "job", "image": "x"}]}}}},
        },
    }
    problems = RULES_BY_ID["PSS-014"].check(job)  # type: ignore[attr-defined]
    assert problems == [
        "spec.jobTemplate.spec.template.spec.containers[job].securityContext."
        "allowPrivilegeEscalation: is None; must be false"
    ]


def test_production_rules_only_run_for_production() -> None:
    objs = hardened_stack()
    _hpa_spec(objs)["minReplicas"] = 1
    _del(_pod, "topologySpreadConstraints")(objs)
    dev = evaluate(objs, production=False)
    prod = evaluate(objs, production=True)
    assert {v.rule_id for v in dev.violations} == set()
    assert {v.rule_id for v in prod.violations} == {"HARD-032", "HARD-033"}
    assert prod.failed


def test_all_zero_digest_fails_only_in_production() -> None:
    objs = hardened_stack()
    _image_digest("0" * 64)(objs)
    assert evaluate(objs, production=False).violations == ()
    prod = evaluate(objs, production=True)
    assert [(v.rule_id, v.resource) for v in prod.violations] == [("HARD-035", "Deployment/store/store-api")]


@pytest.mark.parametrize("name", ["store-api", "postgres", "sha256-of-anything"])
def test_real_digests_are_not_made_up(name: str) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    assert not made_up_digest(f"quay.io/ecosystem-appeng/{name}@sha256:{digest}")
    assert made_up_digest(f"quay.io/ecosystem-appeng/{name}@sha256:{'0' * 64}")


def test_broad_peer_message_names_the_field() -> None:
    objs = hardened_stack()
    _db_ingress_from({"namespaceSelector": {}})(objs)
    assert _findings(objs, "HARD-021") == [
        "NetworkPolicy/store/postgres: spec.ingress[0].from[0].namespaceSelector: is empty, which "
        "admits every namespace of the cluster; select one by its labels (matchLabels or an In "
        "expression)"
    ]


def test_wide_port_range_message_names_the_field() -> None:
    objs = hardened_stack()
    _api_egress({"to": [OUTSIDE], "ports": [{"protocol": "TCP", "port": 1, "endPort": 65535}]})(objs)
    assert _findings(objs, "HARD-021") == [
        "NetworkPolicy/store/store-api: spec.egress[0].ports[0]: endPort: 1-65535 admits 65535 ports; "
        "list the ports or narrow the range to at most 64"
    ]


@pytest.mark.parametrize(
    "peer",
    [
        KUBE_DNS,
        {
            "namespaceSelector": {
                "matchExpressions": [_expr("kubernetes.io/metadata.name", "In", "kube-system")]
            },
            "podSelector": {"matchExpressions": [_expr("k8s-app", "In", "kube-dns")]},
        },
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {
                "matchLabels": {"k8s-app": "kube-dns"},
                "matchExpressions": [_expr("x", "Exists")],
            },
        },
    ],
    ids=["matchLabels", "In expressions", "narrowed further"],
)
def test_cluster_dns_is_recognised_by_meaning(peer: Obj) -> None:
    """A peer that selects exactly kube-dns passes the DNS rules however its selectors are spelled."""
    objs = hardened_stack()
    _dns_to(peer)(objs)
    assert _findings(objs, "HARD-034") == []
    assert _findings(objs, "HARD-022") == []
    assert _findings(objs, "HARD-021") == []


def test_narrow_ranges_and_named_ports_pass() -> None:
    objs = hardened_stack()
    _api_egress(
        {"to": [OUTSIDE], "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8063}]},
        {"to": [OUTSIDE], "ports": [{"protocol": "TCP", "port": "https"}]},
    )(objs)
    assert _findings(objs, "HARD-021") == []
    assert _findings(objs, "HARD-034") == []


def test_numbers_as_floats_are_integers() -> None:
    """Pulumi passes numbers to policy packs as protobuf doubles (10001.0)."""
    objs = json.loads(json.dumps(hardened_stack()), parse_int=float)
    report = evaluate(objs, production=True)
    assert report.violations == (), format_report(report)
