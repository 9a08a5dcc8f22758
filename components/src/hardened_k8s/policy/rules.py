"""The hardening rules: one :class:`Rule` per control of the project's hardening guide.

Two kinds of rule share one registry (:data:`RULES`):

* :class:`ObjectRule`: ``check(obj) -> list[str]``, problems found in one object, each
  starting with the field path it is about
  (``spec.template.spec.containers[api].securityContext.allowPrivilegeEscalation: ...``).
* :class:`StackRule`: ``check(objs) -> list[(obj, problem)]``, cross-object controls
  (NetworkPolicy coverage, PDB/HPA consistency, one shared selector, secrets in ConfigMaps).

Ids are stable and never reused: ``PSS-0xx`` are the Pod Security Standards controls
(baseline ``PSS-001``..``PSS-012``, restricted ``PSS-013``..``PSS-018``), mirroring the
checks of the Kubernetes ``pod-security-admission`` library; ``HARD-0xx`` are the controls
scanners such as kube-score, Polaris, kube-linter and Kubescape flag by default.

Severity: ``mandatory`` fails the render and blocks ``pulumi preview``/``up``; ``advisory``
is reported but does not fail. Every PSS control and every security control of the guide
is mandatory, and so is each availability control the components are expected to meet
out of the box (PDB, HPA, rolling update, graceful shutdown, shared selector); a mandatory
finding can only be waived by a named exemption with a reason. Advisory are the judgement
calls: a startup probe (only slow starters need one), ``minReadySeconds``, ``emptyDir``
size limits, having DNS egress to kube-dns at all, the recommended labels, and topology
spread in production (soft placement depends on the cluster's nodes and zones). Where DNS
egress goes is mandatory: port 53 only to the cluster DNS.
Production-only rules (``production_only=True``) run only when the engine is told the
stack is a production stack: at least two replicas and real image digests (mandatory) and
topology spread.

Every check is a pure function of its input and imports neither Pulumi nor a Kubernetes
client, so the offline render and the CrossGuard policy pack run exactly the same code.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..profiles import CLUSTER_DNS, OPENSHIFT, PROFILES, SecurityProfile
from .objects import (
    LONG_RUNNING_KINDS,
    POD_BEARING_KINDS,
    SCALABLE_KINDS,
    Container,
    K8sObject,
    PodTemplate,
    as_list,
    as_map,
    containers,
    declares,
    index_by,
    kind_of,
    labels_of,
    name_of,
    namespace_of,
    plain,
    pod_template,
    ref,
    selector_is_empty,
    selector_matches,
    workload_selector,
)

Severity = Literal["mandatory", "advisory"]
ObjectCheck = Callable[[K8sObject], list[str]]
StackCheck = Callable[[Sequence[K8sObject]], list[tuple[K8sObject, str]]]


@dataclass(frozen=True, kw_only=True)
class Rule:
    """A hardening control: what it asks, why, and how to fix a violation."""

    id: str
    severity: Severity
    title: str
    message: str
    """Why the control matters, one or two sentences."""
    fix: str
    """What to change, in the components' or the stack config's terms."""
    production_only: bool = False
    """Evaluated only for production stacks."""
    profiles: frozenset[SecurityProfile] = frozenset(PROFILES)
    """Security profiles (``securityProfile``) the rule is evaluated for; default all."""


@dataclass(frozen=True, kw_only=True)
class ObjectRule(Rule):
    """A control decided by one object alone."""

    kinds: frozenset[str]
    """Kinds the check applies to; others are skipped."""
    check: ObjectCheck = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class StackRule(Rule):
    """A control decided across every object of a stack."""

    check: StackCheck = field(repr=False)


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

_RESOURCE_NAMES = ("cpu", "memory")
_SECRET_NAME_RE = re.compile(
    r"(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)",
    re.IGNORECASE,
)
_CREDENTIAL_URL_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^/:@\s]+:[^/@\s]+@", re.IGNORECASE)
_DIGEST_RE = re.compile(r"@sha256:[0-9a-f]{64}$")


def _pod_rule_check(
    body: Callable[[PodTemplate], list[str]],
) -> ObjectCheck:
    """Adapt a check of a pod template to an object check (non-pod kinds pass)."""

    def check(obj: K8sObject) -> list[str]:
        pod = pod_template(obj)
        return body(pod) if pod is not None else []

    return check


def _both_levels(pod: PodTemplate) -> list[tuple[str, Mapping[str, Any]]]:
    """``(path, securityContext)`` of the pod and of every container."""
    levels: list[tuple[str, Mapping[str, Any]]] = [(f"{pod.spec_path}.securityContext", pod.security_context)]
    levels += [(c.sc_path, c.security_context) for c in containers(pod)]
    return levels


def as_int(value: Any) -> int | None:
    """An integer field's value; ``None`` when unset or not an integer.

    Pulumi hands policy packs numbers through protobuf ``Struct``, as floats (``10001.0``),
    so an integral float counts as the integer it spells.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _is_positive_int(value: Any) -> bool:
    number = as_int(value)
    return number is not None and number > 0


def _workloads(objs: Sequence[K8sObject]) -> list[tuple[K8sObject, PodTemplate]]:
    found = []
    for obj in objs:
        pod = pod_template(obj)
        if pod is not None:
            found.append((obj, pod))
    return found


def _hpa_targets(objs: Sequence[K8sObject], workload: K8sObject) -> list[K8sObject]:
    """HPAs in the workload's namespace whose ``scaleTargetRef`` names it."""
    hpas = []
    for hpa in index_by(objs, "HorizontalPodAutoscaler"):
        target = as_map(as_map(hpa.get("spec")).get("scaleTargetRef"))
        if (
            namespace_of(hpa) == namespace_of(workload)
            and target.get("kind") == kind_of(workload)
            and target.get("name") == name_of(workload)
        ):
            hpas.append(hpa)
    return hpas


def _replica_range(objs: Sequence[K8sObject], workload: K8sObject) -> tuple[int, int]:
    """``(fewest, most)`` replicas the workload runs: from its HPA, else ``spec.replicas``."""
    for hpa in _hpa_targets(objs, workload):
        spec = as_map(hpa.get("spec"))
        low = as_int(spec.get("minReplicas", 1)) or 1
        high = as_int(spec.get("maxReplicas")) or low
        return low, high
    replicas = as_int(as_map(workload.get("spec")).get("replicas", 1))
    replicas = 1 if replicas is None else replicas
    return replicas, replicas


def _selecting(
    objs: Sequence[K8sObject], kind: str, selector_of: Callable[[K8sObject], Mapping[str, Any]]
) -> Callable[[K8sObject, PodTemplate], list[K8sObject]]:
    """Objects of ``kind`` in a workload's namespace whose selector picks its pods."""
    candidates = index_by(objs, kind)

    def find(workload: K8sObject, pod: PodTemplate) -> list[K8sObject]:
        return [
            c
            for c in candidates
            if namespace_of(c) == namespace_of(workload) and selector_matches(selector_of(c), pod.labels)
        ]

    return find


def _np_selector(np: K8sObject) -> Mapping[str, Any]:
    return as_map(as_map(np.get("spec")).get("podSelector"))


def _np_types(np: K8sObject) -> set[str]:
    spec = as_map(np.get("spec"))
    types = {str(t) for t in as_list(spec.get("policyTypes"))}
    if not types:
        # The API defaults policyTypes to Ingress, plus Egress when egress rules exist.
        types = {"Ingress"} | ({"Egress"} if "egress" in spec else set())
    return types


def _pdb_selector(pdb: K8sObject) -> Mapping[str, Any]:
    return as_map(as_map(pdb.get("spec")).get("selector"))


def _namespace_anchor(objs: Sequence[K8sObject], namespace: str, fallback: K8sObject) -> K8sObject:
    """The Namespace object a namespace-wide finding is reported on, if it is declared."""
    for ns in index_by(objs, "Namespace"):
        if name_of(ns) == namespace:
            return ns
    return fallback


def _scaled_amount(value: Any, total: int) -> int | None:
    """An int-or-percent PDB field as a number of pods (percent of ``total``, rounded up)."""
    if as_int(value) is not None:
        return as_int(value)
    if isinstance(value, str) and value.endswith("%"):
        try:
            return math.ceil(total * int(value[:-1]) / 100)
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------------------
# Pod Security Standards: baseline
# --------------------------------------------------------------------------------------


def _check_host_process(pod: PodTemplate) -> list[str]:
    return [
        f"{path}.windowsOptions.hostProcess: is true; remove it (host process containers "
        "run with the node's privileges)"
        for path, sc in _both_levels(pod)
        if as_map(sc.get("windowsOptions")).get("hostProcess") is True
    ]


def _check_host_namespaces(pod: PodTemplate) -> list[str]:
    return [
        f"{pod.spec_path}.{key}: is true; unset it or set false"
        for key in ("hostNetwork", "hostPID", "hostIPC")
        if pod.spec.get(key) is True
    ]


def _check_privileged(pod: PodTemplate) -> list[str]:
    return [
        f"{c.sc_path}.privileged: is true; unset it or set false"
        for c in containers(pod)
        if c.security_context.get("privileged") is True
    ]


_BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def _check_baseline_capabilities(pod: PodTemplate) -> list[str]:
    problems = []
    for c in containers(pod):
        added = as_list(as_map(c.security_context.get("capabilities")).get("add"))
        bad = sorted(str(cap) for cap in added if str(cap) not in _BASELINE_CAPABILITIES)
        if bad:
            problems.append(f"{c.sc_path}.capabilities.add: adds {', '.join(bad)}, outside the baseline set")
    return problems


def _check_host_path(pod: PodTemplate) -> list[str]:
    return [
        f"{pod.spec_path}.volumes[{as_map(v).get('name')}].hostPath: hostPath volumes are forbidden"
        for v in as_list(pod.spec.get("volumes"))
        if "hostPath" in as_map(v)
    ]


def _check_host_ports(pod: PodTemplate) -> list[str]:
    problems = []
    for c in containers(pod):
        for port in as_list(c.spec.get("ports")):
            port = as_map(port)
            if port.get("hostPort") not in (None, 0):
                problems.append(
                    f"{c.path}.ports[{port.get('name') or port.get('containerPort')}].hostPort: "
                    f"is {port.get('hostPort')}; remove it and expose the port through a Service"
                )
    return problems


def _check_apparmor(pod: PodTemplate) -> list[str]:
    problems = [
        f"{path}.appArmorProfile.type: is Unconfined; use RuntimeDefault or Localhost"
        for path, sc in _both_levels(pod)
        if as_map(sc.get("appArmorProfile")).get("type") == "Unconfined"
    ]
    prefix = "container.apparmor.security.beta.kubernetes.io/"
    for key, value in as_map(pod.metadata.get("annotations")).items():
        if str(key).startswith(prefix) and not (
            value in ("", "runtime/default") or str(value).startswith("localhost/")
        ):
            problems.append(f"{pod.metadata_path}.annotations[{key}]: is {value!r}; use runtime/default")
    return problems


_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})


def _check_selinux(pod: PodTemplate) -> list[str]:
    problems = []
    for path, sc in _both_levels(pod):
        options = as_map(sc.get("seLinuxOptions"))
        if str(options.get("type", "")) not in _SELINUX_TYPES:
            problems.append(
                f"{path}.seLinuxOptions.type: {options.get('type')!r} is not an allowed "
                "container type; use container_t or leave it unset"
            )
        for key in ("user", "role"):
            if options.get(key):
                problems.append(f"{path}.seLinuxOptions.{key}: must be unset")
    return problems


def _check_proc_mount(pod: PodTemplate) -> list[str]:
    return [
        f"{c.sc_path}.procMount: is {c.security_context.get('procMount')!r}; use Default"
        for c in containers(pod)
        if c.security_context.get("procMount") not in (None, "Default")
    ]


def _check_seccomp_baseline(pod: PodTemplate) -> list[str]:
    return [
        f"{path}.seccompProfile.type: is Unconfined; use RuntimeDefault"
        for path, sc in _both_levels(pod)
        if as_map(sc.get("seccompProfile")).get("type") == "Unconfined"
    ]


_SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)


def _check_sysctls(pod: PodTemplate) -> list[str]:
    return [
        f"{pod.spec_path}.securityContext.sysctls[{as_map(s).get('name')}]: is not a safe sysctl"
        for s in as_list(pod.security_context.get("sysctls"))
        if as_map(s).get("name") not in _SAFE_SYSCTLS
    ]


def _handlers(c: Container) -> list[tuple[str, Mapping[str, Any]]]:
    found = []
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in c.spec:
            found.append((f"{c.path}.{probe}", as_map(c.spec.get(probe))))
    lifecycle = as_map(c.spec.get("lifecycle"))
    for hook in ("postStart", "preStop"):
        if hook in lifecycle:
            found.append((f"{c.path}.lifecycle.{hook}", as_map(lifecycle.get(hook))))
    return found


def _check_probe_host(pod: PodTemplate) -> list[str]:
    problems = []
    for c in containers(pod):
        for path, handler in _handlers(c):
            for action in ("httpGet", "tcpSocket"):
                host = as_map(handler.get(action)).get("host")
                if host not in (None, ""):
                    problems.append(
                        f"{path}.{action}.host: is {host!r}; leave it unset so the kubelet "
                        "probes the pod itself"
                    )
    return problems


# --------------------------------------------------------------------------------------
# Pod Security Standards: restricted
# --------------------------------------------------------------------------------------

_RESTRICTED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)


def _check_volume_types(pod: PodTemplate) -> list[str]:
    problems = []
    for volume in as_list(pod.spec.get("volumes")):
        volume = as_map(volume)
        for source in sorted(set(volume) - {"name"} - _RESTRICTED_VOLUME_SOURCES):
            problems.append(
                f"{pod.spec_path}.volumes[{volume.get('name')}].{source}: volume type not "
                "allowed; use configMap, csi, downwardAPI, emptyDir, ephemeral, "
                "persistentVolumeClaim, projected or secret"
            )
    return problems


def _check_privilege_escalation(pod: PodTemplate) -> list[str]:
    return [
        f"{c.sc_path}.allowPrivilegeEscalation: is "
        f"{c.security_context.get('allowPrivilegeEscalation')!r}; must be false"
        for c in containers(pod)
        if c.security_context.get("allowPrivilegeEscalation") is not False
    ]


def _check_run_as_non_root(pod: PodTemplate) -> list[str]:
    pod_value = pod.security_context.get("runAsNonRoot")
    problems = []
    if pod_value is False:
        problems.append(f"{pod.spec_path}.securityContext.runAsNonRoot: is false; set true")
    for c in containers(pod):
        value = c.security_context.get("runAsNonRoot")
        if value is False or (value is None and pod_value is not True):
            problems.append(
                f"{c.sc_path}.runAsNonRoot: is {value!r} and the pod does not set it; "
                "set runAsNonRoot: true on the pod"
            )
    return problems


def _check_run_as_user_root(pod: PodTemplate) -> list[str]:
    return [
        f"{path}.runAsUser: is 0 (root); use a UID of 10000 or more such as 10001"
        for path, sc in _both_levels(pod)
        if sc.get("runAsUser") == 0 and not isinstance(sc.get("runAsUser"), bool)
    ]


_SECCOMP_OK = ("RuntimeDefault", "Localhost")


def _check_seccomp_restricted(pod: PodTemplate) -> list[str]:
    pod_type = as_map(pod.security_context.get("seccompProfile")).get("type")
    problems = []
    if pod_type is not None and pod_type not in _SECCOMP_OK:
        problems.append(
            f"{pod.spec_path}.securityContext.seccompProfile.type: is {pod_type!r}; use RuntimeDefault"
        )
    for c in containers(pod):
        value = as_map(c.security_context.get("seccompProfile")).get("type")
        if value is not None and value not in _SECCOMP_OK:
            problems.append(f"{c.sc_path}.seccompProfile.type: is {value!r}; use RuntimeDefault")
        elif value is None and pod_type not in _SECCOMP_OK:
            problems.append(
                f"{c.sc_path}.seccompProfile.type: unset and the pod sets none; set "
                "seccompProfile.type: RuntimeDefault on the pod"
            )
    return problems


def _check_capabilities_restricted(pod: PodTemplate) -> list[str]:
    problems = []
    for c in containers(pod):
        caps = as_map(c.security_context.get("capabilities"))
        if "ALL" not in [str(d) for d in as_list(caps.get("drop"))]:
            problems.append(f"{c.sc_path}.capabilities.drop: must contain ALL")
        extra = sorted(str(a) for a in as_list(caps.get("add")) if a != "NET_BIND_SERVICE")
        if extra:
            problems.append(
                f"{c.sc_path}.capabilities.add: adds {', '.join(extra)}; only NET_BIND_SERVICE may be added"
            )
    return problems


# --------------------------------------------------------------------------------------
# Beyond PSS: container and pod settings
# --------------------------------------------------------------------------------------


def _check_read_only_root(pod: PodTemplate) -> list[str]:
    return [
        f"{c.sc_path}.readOnlyRootFilesystem: is "
        f"{c.security_context.get('readOnlyRootFilesystem')!r}; must be true"
        for c in containers(pod, "initContainers", "containers")
        if c.security_context.get("readOnlyRootFilesystem") is not True
    ]


def _check_pod_token(pod: PodTemplate) -> list[str]:
    value = pod.spec.get("automountServiceAccountToken")
    if value is False:
        return []
    return [f"{pod.spec_path}.automountServiceAccountToken: is {value!r}; must be false"]


def _check_sa_token(obj: K8sObject) -> list[str]:
    value = obj.get("automountServiceAccountToken")
    if value is False:
        return []
    return [f"automountServiceAccountToken: is {value!r}; must be false"]


def _check_numeric_ids(pod: PodTemplate) -> list[str]:
    problems = []
    psc = pod.security_context
    if not _is_positive_int(psc.get("fsGroup")):
        problems.append(
            f"{pod.spec_path}.securityContext.fsGroup: is {psc.get('fsGroup')!r}; "
            "set a numeric non-zero GID such as 10001"
        )
    for key in ("runAsUser", "runAsGroup"):
        if _is_positive_int(psc.get(key)):
            continue
        for c in containers(pod):
            value = c.security_context.get(key)
            if not _is_positive_int(value):
                problems.append(
                    f"{c.sc_path}.{key}: is {value!r} and the pod sets none; set a numeric "
                    "non-zero id such as 10001 on the pod"
                )
    return problems


def _check_resources(names: tuple[str, ...]) -> Callable[[PodTemplate], list[str]]:
    def body(pod: PodTemplate) -> list[str]:
        problems = []
        for c in containers(pod, "initContainers", "containers"):
            resources = as_map(c.spec.get("resources"))
            for section in ("requests", "limits"):
                values = as_map(resources.get(section))
                for resource in names:
                    if values.get(resource) in (None, ""):
                        problems.append(f"{c.path}.resources.{section}.{resource}: is not set")
        return problems

    return body


def _check_probes_present(pod: PodTemplate) -> list[str]:
    problems = []
    for c in containers(pod, "containers"):
        for probe in ("readinessProbe", "livenessProbe"):
            if not as_map(c.spec.get(probe)):
                problems.append(f"{c.path}.{probe}: is not set")
    return problems


def _probe_action(probe: Mapping[str, Any]) -> Any:
    return {k: plain(probe.get(k)) for k in ("httpGet", "tcpSocket", "exec", "grpc") if k in probe}


def _check_probes_differ(pod: PodTemplate) -> list[str]:
    problems = []
    for c in containers(pod, "containers"):
        readiness = as_map(c.spec.get("readinessProbe"))
        liveness = as_map(c.spec.get("livenessProbe"))
        if readiness and liveness and _probe_action(readiness) == _probe_action(liveness):
            problems.append(
                f"{c.path}.livenessProbe: runs the same check as readinessProbe; make liveness "
                "a cheaper check (e.g. TCP) so a busy pod is not restarted"
            )
    return problems


def _check_startup_probe(pod: PodTemplate) -> list[str]:
    return [
        f"{c.path}.startupProbe: is not set"
        for c in containers(pod, "containers")
        if not as_map(c.spec.get("startupProbe"))
    ]


def _check_image_digest(pod: PodTemplate) -> list[str]:
    return [
        f"{c.path}.image: {c.spec.get('image')!r} is not pinned by digest; use repo@sha256:<digest>"
        for c in containers(pod)
        if not _DIGEST_RE.search(str(c.spec.get("image") or ""))
    ]


def _image_tag(image: str) -> str | None:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def made_up_digest(image: str) -> bool:
    """True for a ``@sha256:`` digest no build produces: all zeros, or a short repeated pattern.

    A real digest is a SHA-256: 64 hex digits with (all but certainly) at least 8 distinct ones
    and no period; placeholders such as ``000...`` or ``abab...`` have neither.
    """
    match = _DIGEST_RE.search(image)
    if match is None:
        return False
    digits = match.group(0).rsplit(":", 1)[1]
    periodic = any(digits == digits[:k] * (64 // k) for k in (1, 2, 4, 8, 16, 32))
    return periodic or len(set(digits)) < 8


def _check_made_up_digest(pod: PodTemplate) -> list[str]:
    return [
        f"{c.path}.image: {c.spec.get('image')!r} has a placeholder digest no registry serves; pin the "
        "digest the registry reports for the image (skopeo inspect docker://<repo>:<tag>)"
        for c in containers(pod)
        if made_up_digest(str(c.spec.get("image") or ""))
    ]


def _check_unique_names(pod: PodTemplate) -> list[str]:
    problems = []
    volumes = [str(as_map(v).get("name")) for v in as_list(pod.spec.get("volumes"))]
    for name in sorted({v for v in volumes if volumes.count(v) > 1}):
        problems.append(f"{pod.spec_path}.volumes[{name}]: is declared {volumes.count(name)} times")
    for c in containers(pod):
        env = [str(as_map(e).get("name")) for e in as_list(c.spec.get("env"))]
        for name in sorted({e for e in env if env.count(e) > 1}):
            problems.append(
                f"{c.path}.env[{name}]: is set {env.count(name)} times; only the last counts, "
                "so one of the values is silently lost"
            )
        mounts = [str(as_map(m).get("mountPath")) for m in as_list(c.spec.get("volumeMounts"))]
        for path in sorted({m for m in mounts if mounts.count(m) > 1}):
            problems.append(f"{c.path}.volumeMounts[{path}]: mounts {mounts.count(path)} volumes at one path")
    return problems


def _check_image_latest(pod: PodTemplate) -> list[str]:
    problems = []
    for c in containers(pod):
        image = str(c.spec.get("image") or "")
        tag = _image_tag(image)
        if tag == "latest" or (tag is None and "@" not in image):
            problems.append(f"{c.path}.image: {image!r} refers to the latest tag; deploy an immutable digest")
    return problems


def _check_pull_policy(pod: PodTemplate) -> list[str]:
    return [
        f"{c.path}.imagePullPolicy: is {c.spec.get('imagePullPolicy')!r}; set IfNotPresent"
        for c in containers(pod)
        if c.spec.get("imagePullPolicy") != "IfNotPresent"
    ]


def _check_empty_dir_limits(pod: PodTemplate) -> list[str]:
    problems = []
    for volume in as_list(pod.spec.get("volumes")):
        volume = as_map(volume)
        if "emptyDir" in volume and not as_map(volume.get("emptyDir")).get("sizeLimit"):
            problems.append(f"{pod.spec_path}.volumes[{volume.get('name')}].emptyDir.sizeLimit: is not set")
    return problems


def _looks_secret(name: str, value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    if name.endswith("_FILE") and value.startswith("/") and not _CREDENTIAL_URL_RE.search(value):
        return False  # the path of a mounted secret file, e.g. AUTH_TOKEN_FILE=/etc/secrets/...
    return bool(_SECRET_NAME_RE.search(name) or _CREDENTIAL_URL_RE.search(value))


def _check_literal_secrets(pod: PodTemplate) -> list[str]:
    problems = []
    for c in containers(pod):
        for var in as_list(c.spec.get("env")):
            var = as_map(var)
            name = str(var.get("name") or "")
            if _looks_secret(name, var.get("value")):
                problems.append(
                    f"{c.path}.env[{name}].value: holds a literal secret; read it from a "
                    "Secret mounted as a read-only volume"
                )
    return problems


def _check_secret_env(pod: PodTemplate) -> list[str]:
    """Secrets reach containers as files of Secret volumes, never as environment variables."""
    problems = []
    for c in containers(pod):
        for var in as_list(c.spec.get("env")):
            var = as_map(var)
            if "secretKeyRef" in as_map(var.get("valueFrom")):
                problems.append(
                    f"{c.path}.env[{var.get('name')}].valueFrom.secretKeyRef: puts a Secret in the "
                    "environment; mount the Secret as a read-only volume and pass the file's path"
                )
        for index, source in enumerate(as_list(c.spec.get("envFrom"))):
            if "secretRef" in as_map(source):
                problems.append(
                    f"{c.path}.envFrom[{index}].secretRef: puts a whole Secret in the environment; "
                    "mount it as a read-only volume instead"
                )
    return problems


MIN_RUN_AS_ID = 10000
"""Lowest UID/GID a container may run as: lower ids belong to the node's own users and
system accounts, which a process escaping its container would then act as."""

_ID_FIELDS = ("runAsUser", "runAsGroup")


def _check_high_ids(pod: PodTemplate) -> list[str]:
    """Set UIDs and GIDs are at least MIN_RUN_AS_ID; unset ones are HARD-005's business."""
    problems = []
    levels: list[tuple[str, Mapping[str, Any], tuple[str, ...]]] = [
        (f"{pod.spec_path}.securityContext", pod.security_context, (*_ID_FIELDS, "fsGroup"))
    ]
    levels += [(c.sc_path, c.security_context, _ID_FIELDS) for c in containers(pod)]
    for path, sc, keys in levels:
        for key in keys:
            number = as_int(sc.get(key))
            if number is not None and number < MIN_RUN_AS_ID:
                problems.append(
                    f"{path}.{key}: is {number}, below {MIN_RUN_AS_ID}; use an id of "
                    f"{MIN_RUN_AS_ID} or more (such as 10001) matching the image's USER"
                )
        for group in as_list(sc.get("supplementalGroups")):
            number = as_int(group)
            if number is not None and number < MIN_RUN_AS_ID:
                problems.append(f"{path}.supplementalGroups: has {number}, below {MIN_RUN_AS_ID}")
    return problems


def _check_assigned_ids(pod: PodTemplate) -> list[str]:
    """No fixed UID, GID or fsGroup: OpenShift's restricted-v2 SCC assigns them."""
    levels: list[tuple[str, Mapping[str, Any], tuple[str, ...]]] = [
        (f"{pod.spec_path}.securityContext", pod.security_context, (*_ID_FIELDS, "fsGroup"))
    ]
    levels += [(c.sc_path, c.security_context, _ID_FIELDS) for c in containers(pod)]
    problems = [
        f"{path}.{key}: is {sc.get(key)!r}; leave it unset, the restricted-v2 SCC assigns the "
        "namespace's UID and fsGroup and refuses a fixed id outside its range"
        for path, sc, keys in levels
        for key in keys
        if sc.get(key) is not None
    ]
    if pod.security_context.get("runAsNonRoot") is not True:
        problems.append(f"{pod.spec_path}.securityContext.runAsNonRoot: must be true")
    return problems


def _check_rolling_update(obj: K8sObject) -> list[str]:
    strategy = as_map(as_map(obj.get("spec")).get("strategy"))
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return [f"spec.strategy.type: is {strategy.get('type')!r}; use RollingUpdate"]
    value = as_map(strategy.get("rollingUpdate")).get("maxUnavailable")
    if value in (0, "0", "0%") and not isinstance(value, bool):
        return []
    return [
        f"spec.strategy.rollingUpdate.maxUnavailable: is {value!r} (the default is 25%); "
        "set 0 so capacity never drops during a rollout"
    ]


def _check_graceful_shutdown(obj: K8sObject) -> list[str]:
    pod = pod_template(obj)
    if pod is None:
        return []
    problems = []
    if not _is_positive_int(pod.spec.get("terminationGracePeriodSeconds")):
        problems.append(
            f"{pod.spec_path}.terminationGracePeriodSeconds: is not set; set it explicitly, "
            "longer than the preStop delay plus the longest request"
        )
    if kind_of(obj) == "Deployment":
        for c in containers(pod, "containers"):
            if not as_map(as_map(c.spec.get("lifecycle")).get("preStop")):
                problems.append(
                    f"{c.path}.lifecycle.preStop: is not set; add a short sleep so endpoints "
                    "are removed before the process gets SIGTERM"
                )
    return problems


def _check_min_ready(obj: K8sObject) -> list[str]:
    value = as_map(obj.get("spec")).get("minReadySeconds")
    if _is_positive_int(value):
        return []
    return [f"spec.minReadySeconds: is {value!r}; set a few seconds"]


RECOMMENDED_LABELS = tuple(
    f"app.kubernetes.io/{k}" for k in ("name", "instance", "version", "component", "part-of", "managed-by")
)


_SHARED_LABELS = ("app.kubernetes.io/part-of", "app.kubernetes.io/managed-by")
_WORKLOAD_OBJECT_KINDS = POD_BEARING_KINDS | {
    "Service",
    "ServiceAccount",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
}


def _check_labels(obj: K8sObject) -> list[str]:
    # Objects shared by a namespace (default deny, DNS egress) belong to no single app: they
    # need only part-of and managed-by, unless they name an app.
    labels = labels_of(obj)
    wanted = (
        RECOMMENDED_LABELS
        if kind_of(obj) in _WORKLOAD_OBJECT_KINDS or "app.kubernetes.io/name" in labels
        else _SHARED_LABELS
    )
    problems = []
    missing = [k for k in wanted if not labels.get(k)]
    if missing:
        problems.append(f"metadata.labels: missing {', '.join(missing)}")
    pod = pod_template(obj)
    if pod is not None:
        missing = [k for k in RECOMMENDED_LABELS if not pod.labels.get(k)]
        if missing:
            problems.append(f"{pod.metadata_path}.labels: missing {', '.join(missing)}")
    return problems


def _check_topology_spread(obj: K8sObject) -> list[str]:
    pod = pod_template(obj)
    if pod is None:
        return []
    anti = as_map(as_map(pod.spec.get("affinity")).get("podAntiAffinity"))
    if as_list(pod.spec.get("topologySpreadConstraints")) or anti:
        return []
    return [
        f"{pod.spec_path}.topologySpreadConstraints: is not set (nor podAntiAffinity); spread "
        "replicas across nodes and zones"
    ]


_PSA_LEVEL_LABELS = tuple(f"pod-security.kubernetes.io/{m}" for m in ("enforce", "audit", "warn"))
_PSA_VERSION_RE = re.compile(r"^v1\.\d+$")


def _check_psa_labels(obj: K8sObject) -> list[str]:
    labels = labels_of(obj)
    problems = [
        f"metadata.labels[{key}]: is {labels.get(key)!r}; set restricted"
        for key in _PSA_LEVEL_LABELS
        if labels.get(key) != "restricted"
    ]
    version_key = "pod-security.kubernetes.io/enforce-version"
    if not _PSA_VERSION_RE.match(str(labels.get(version_key) or "")):
        problems.append(
            f"metadata.labels[{version_key}]: is {labels.get(version_key)!r}; pin the "
            "cluster's minor version, e.g. v1.31 (not latest)"
        )
    return problems


_NAMESPACE_NAME = "kubernetes.io/metadata.name"
_DNS_PORT_NAMES = ("dns", "dns-tcp")
_DNS_PORTS = (
    *(port for dns in CLUSTER_DNS.values() for port in (*dns.ports, *map(str, dns.ports))),
    *_DNS_PORT_NAMES,
)
"""Ports that carry DNS: any cluster DNS's ports, as numbers or strings, and their names."""
BROAD_PREFIX = {4: 16, 6: 48}
"""An ipBlock shorter than this prefix (/16 for IPv4, /48 for IPv6) admits too many addresses."""


def _broad_peer(peer: Mapping[str, Any]) -> str | None:
    """Why a NetworkPolicy peer admits far more than one workload, or None."""
    if "ipBlock" in peer:
        cidr = as_map(peer.get("ipBlock")).get("cidr")
        try:
            network = ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            return f"ipBlock.cidr: {cidr!r} is not a CIDR"
        if network.prefixlen < BROAD_PREFIX[network.version]:
            return (
                f"ipBlock.cidr: {cidr} admits {network.num_addresses} addresses; narrow it to "
                f"/{BROAD_PREFIX[network.version]} or longer"
            )
        return None
    if "namespaceSelector" in peer and selector_is_empty(as_map(peer.get("namespaceSelector"))):
        return (
            "namespaceSelector: is empty, which admits every namespace of the cluster; "
            "select one by its labels"
        )
    if "namespaceSelector" not in peer and selector_is_empty(as_map(peer.get("podSelector"))):
        return "podSelector: is empty, which admits every pod of the namespace; select the workload's pods"
    return None


def _check_np_peers(obj: K8sObject) -> list[str]:
    spec = as_map(obj.get("spec"))
    problems = []
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for index, rule in enumerate(as_list(spec.get(direction))):
            rule = as_map(rule)
            path = f"spec.{direction}[{index}]"
            peers = as_list(rule.get(peers_key))
            if not peers:
                problems.append(f"{path}.{peers_key}: is empty, which allows every peer; name them")
            if not as_list(rule.get("ports")):
                problems.append(f"{path}.ports: is empty, which allows every port; list them")
            for p_index, peer in enumerate(peers):
                broad = _broad_peer(as_map(peer))
                if broad is not None:
                    problems.append(f"{path}.{peers_key}[{p_index}].{broad}")
    return problems


def _cluster_dns_of(peer: Mapping[str, Any]) -> tuple[int | str, ...] | None:
    """The ports of the cluster DNS the peer is exactly (kube-dns in kube-system, or
    OpenShift's DNS pods in openshift-dns: :data:`profiles.CLUSTER_DNS`), or None."""
    if "ipBlock" in peer:
        return None
    namespaces = as_map(as_map(peer.get("namespaceSelector")).get("matchLabels"))
    pods = as_map(as_map(peer.get("podSelector")).get("matchLabels"))
    for dns in CLUSTER_DNS.values():
        if namespaces.get(_NAMESPACE_NAME) == dns.namespace and all(
            pods.get(key) == value for key, value in dns.pod_labels.items()
        ):
            return (*dns.ports, *(str(port) for port in dns.ports), *_DNS_PORT_NAMES)
    return None


def _is_cluster_dns(peer: Mapping[str, Any]) -> bool:
    """The peer is exactly a cluster DNS, nothing else."""
    return _cluster_dns_of(peer) is not None


def _opens_dns(rule: Mapping[str, Any]) -> bool:
    return any(as_map(p).get("port") in _DNS_PORTS for p in as_list(rule.get("ports")))


def _check_dns_destination(obj: K8sObject) -> list[str]:
    problems = []
    for index, rule in enumerate(as_list(as_map(obj.get("spec")).get("egress"))):
        rule = as_map(rule)
        if not _opens_dns(rule):
            continue
        for p_index, peer in enumerate(as_list(rule.get("to"))):
            if not _is_cluster_dns(as_map(peer)):
                problems.append(
                    f"spec.egress[{index}].to[{p_index}]: opens port 53 to a peer other than the "
                    "cluster DNS; DNS to any other server can carry data out of the cluster"
                )
    return problems


def _check_hpa(obj: K8sObject) -> list[str]:
    problems = []
    if obj.get("apiVersion") != "autoscaling/v2":
        problems.append(f"apiVersion: is {obj.get('apiVersion')!r}; use autoscaling/v2")
    spec = as_map(obj.get("spec"))
    resources = {
        as_map(as_map(m).get("resource")).get("name")
        for m in as_list(spec.get("metrics"))
        if as_map(m).get("type") == "Resource"
    }
    for name in _RESOURCE_NAMES:
        if name not in resources:
            problems.append(f"spec.metrics: has no Resource target for {name}")
    scale_down = as_map(as_map(spec.get("behavior")).get("scaleDown"))
    if not scale_down:
        problems.append(
            "spec.behavior.scaleDown: is not set; add a stabilization window and a rate "
            "limit so scale-down is slow"
        )
    return problems


# --------------------------------------------------------------------------------------
# Stack rules
# --------------------------------------------------------------------------------------


def _stack_service_account(objs: Sequence[K8sObject]) -> list[tuple[K8sObject, str]]:
    accounts = {(namespace_of(sa), name_of(sa)) for sa in index_by(objs, "ServiceAccount")}
    findings = []
    for obj, pod in _workloads(objs):
        name = str(pod.spec.get("serviceAccountName") or "")
        path = f"{pod.spec_path}.serviceAccountName"
        if name in ("", "default"):
            findings.append((obj, f"{path}: uses the namespace's default ServiceAccount"))
        elif (namespace_of(obj), name) not in accounts:
            findings.append((obj, f"{path}: ServiceAccount {name!r} is not declared in this namespace"))
    return findings


def _stack_namespace_managed(objs: Sequence[K8sObject]) -> list[tuple[K8sObject, str]]:
    declared = {name_of(ns) for ns in index_by(objs, "Namespace")}
    return [
        (
            obj,
            f"metadata.namespace: {namespace_of(obj) or '(unset)'!r} is not a Namespace "
            "declared with Pod Security Admission labels",
        )
        for obj, _ in _workloads(objs)
        if namespace_of(obj) not in declared
    ]


def _is_default_deny(np: K8sObject) -> bool:
    spec = as_map(np.get("spec"))
    return (
        selector_is_empty(_np_selector(np))
        and {"Ingress", "Egress"} <= _np_types(np)
        and not as_list(spec.get("ingress"))
        and not as_list(spec.get("egress"))
    )


def _stack_default_deny(objs: Sequence[K8sObject]) -> list[tuple[K8sObject, str]]:
    denied = {namespace_of(np) for np in index_by(objs, "NetworkPolicy") if _is_default_deny(np)}
    findings = []
    seen: set[str] = set()
    for obj, _ in _workloads(objs):
        ns = namespace_of(obj)
        if ns in denied or ns in seen:
            continue
        seen.add(ns)
        findings.append(
            (
                _namespace_anchor(objs, ns, obj),
                f"namespace {ns or '(unset)'!r}: has no default-deny NetworkPolicy "
                "(podSelector {}, policyTypes [Ingress, Egress], no rules)",
            )
        )
    return findings


def _stack_np_coverage(objs: Sequence[K8sObject]) -> list[tuple[K8sObject, str]]:
    find = _selecting(objs, "NetworkPolicy", _np_selector)
    findings = []
    for obj, pod in _workloads(objs):
        types: set[str] = set()
        for np in find(obj, pod):
            types |= _np_types(np)
        missing = sorted({"Ingress", "Egress"} - types)
        if missing:
            findings.append(
                (
                    obj,
                    f"{pod.metadata_path}.labels: pods are not isolated for "
                    f"{' and '.join(missing)} by any NetworkPolicy",
                )
            )
    return findings


def _allows_dns(np: K8sObject) -> bool:
    for rule in as_list(as_map(np.get("spec")).get("egress")):
        rule = as_map(rule)
        for peer in as_list(rule.get("to")):
            ports = _cluster_dns_of(as_map(peer))
            if ports is None:
                continue
            protocols = {
                as_map(p).get("protocol", "TCP")
                for p in as_list(rule.get("ports"))
                if as_map(p).get("port") in ports
            }
            if {"UDP", "TCP"} <= protocols:
                return True
    return False


def _stack_dns_egress(objs: Sequence[K8sObject]) -> list[tuple[K8sObject, str]]:
    find = _selecting(objs, "NetworkPolicy", _np_selector)
    return [
        (
            obj,
            f"{pod.metadata_path}.labels: no NetworkPolicy selecting these pods allows egress "
            "to the cluster DNS on UDP and TCP",
        )
        for obj, pod in _workloads(objs)
        if not any(_allows_dns(np) for np in find(obj, pod))
    ]


def _stack_pdb_present(objs: Sequence[K8sObject]) -> list[tuple[K8sObject, str]]:
    find = _selecting(objs, "PodDisruptionBudget", _pdb_selector)
    findings = []
    for obj, pod in _workloads(objs):
        if kind_of(obj) not in SCALABLE_KINDS:
            continue
        _, high = _replica_range(objs, obj)
        if high > 1 and not find(obj, pod):
            findings.append(
                (obj, f"spec.selector: runs up to {high} replicas and no PodDisruptionBudget selects them")
            )
    return findings


def _stack_pdb_consistent(objs: Sequence[K8sObject]) -> list[tuple[K8sObject, str]]:
    find = _selecting(objs, "PodDisruptionBudget", _pdb_selector)
    findings = []
    for obj, pod in _workloads(objs):
        if kind_of(obj) not in SCALABLE_KINDS:
            continue
        low, _ = _replica_range(objs, obj)
        for pdb in find(obj, pod):
            spec = as_map(pdb.get("spec"))
            if "minAvailable" in spec:
                amount = _scaled_amount(spec.get("minAvailable"), low)
                if amount is None or amount >= low:
                    findings.append(
                        (
                            pdb,
                            f"spec.minAvailable: {spec.get('minAvailable')!r} is not below the "
                            f"{low} replica(s) {ref(obj)} may run, so no pod can ever be evicted; "
                            "use maxUnavailable: 1",
                        )
                    )
            elif "maxUnavailable" in spec:
                amount = _scaled_amount(spec.get("maxUnavailable"), low)
                if amount is None or amount < 1:
                    findings.append(
                        (
                            pdb,
                            f"spec.maxUnavailable: {spec.get('maxUnavailable')!r} blocks every "
                            "eviction; use 1",
                        )
                    )
            else:
                findings.append((pdb, "spec: sets neither minAvailable nor maxUnavailable"))
    return findings


def _stack_replicas_unset(objs: Sequence[K8sObject]) -> list[tuple[K8sObject, str]]:
    return [
        (
            obj,
            f"spec.replicas: is set while {ref(_hpa_targets(objs, obj)[0])} manages it; leave it "
            "unset so every apply does not reset the HPA's choice",
        )
        for obj, _ in _workloads(objs)
        if _hpa_targets(objs, obj) and declares(obj, "spec", "replicas")
    ]


def _followers(objs: Sequence[K8sObject]) -> list[tuple[K8sObject, str, Mapping[str, Any]]]:
    """Objects that select a workload's pods: ``(object, selector path, LabelSelector)``."""
    found: list[tuple[K8sObject, str, Mapping[str, Any]]] = []
    for svc in index_by(objs, "Service"):
        selector = as_map(as_map(svc.get("spec")).get("selector"))
        found.append((svc, "spec.selector", {"matchLabels": selector}))
    for pdb in index_by(objs, "PodDisruptionBudget"):
        found.append((pdb, "spec.selector", _pdb_selector(pdb)))
    for np in index_by(objs, "NetworkPolicy"):
        found.append((np, "spec.podSelector", _np_selector(np)))
    # Empty selectors are Services with hand-managed endpoints and namespace-wide policies.
    return [f for f in found if not selector_is_empty(f[2])]


def _stack_shared_selector(objs: Sequence[K8sObject]) -> list[tuple[K8sObject, str]]:
    findings: list[tuple[K8sObject, str]] = []
    workloads = [(o, p) for o, p in _workloads(objs) if kind_of(o) != "Pod"]
    followers = _followers(objs)
    used: set[int] = set()
    for obj, pod in workloads:
        selector = workload_selector(obj)
        expected = {"matchLabels": plain(as_map(selector.get("matchLabels")))}
        if not selector_matches(selector, pod.labels):
            findings.append((obj, "spec.selector: does not match the pod template's labels"))
        for follower, path, sel in followers:
            if namespace_of(follower) != namespace_of(obj) or not selector_matches(sel, pod.labels):
                continue
            used.add(id(follower))
            if plain(sel) != expected:
                findings.append(
                    (
                        follower,
                        f"{path}: selects {ref(obj)} with {plain(sel)} instead of its selector "
                        f"{expected}; reuse the one computed selector",
                    )
                )
    for follower, path, _ in followers:
        if id(follower) not in used:
            findings.append((follower, f"{path}: selects no workload's pods"))
    targets = {(namespace_of(o), kind_of(o), name_of(o)) for o, _ in workloads}
    for hpa in index_by(objs, "HorizontalPodAutoscaler"):
        target = as_map(as_map(hpa.get("spec")).get("scaleTargetRef"))
        if (namespace_of(hpa), target.get("kind"), target.get("name")) not in targets:
            findings.append(
                (
                    hpa,
                    f"spec.scaleTargetRef: {target.get('kind')}/{target.get('name')} is not a "
                    "workload of this stack",
                )
            )
    return findings


def _secret_values(objs: Sequence[K8sObject]) -> set[str]:
    values: set[str] = set()
    for secret in index_by(objs, "Secret"):
        for value in as_map(secret.get("stringData")).values():
            if isinstance(value, str):
                values.add(value)
        for value in as_map(secret.get("data")).values():
            if isinstance(value, str):
                try:
                    values.add(base64.b64decode(value, validate=True).decode())
                except (binascii.Error, UnicodeDecodeError):
                    continue
    # Very short values ("true", "5432") would match ordinary settings by chance.
    return {v for v in values if len(v) >= 8}


def _stack_secrets_in_configmaps(objs: Sequence[K8sObject]) -> list[tuple[K8sObject, str]]:
    secrets = _secret_values(objs)
    findings = []
    for cm in index_by(objs, "ConfigMap"):
        for key, value in as_map(cm.get("data")).items():
            if value in secrets:
                findings.append((cm, f"data[{key}]: holds the value of a Secret; reference the Secret"))
            elif _looks_secret(str(key), value):
                findings.append(
                    (cm, f"data[{key}]: looks like a secret; move it to a Secret mounted as a volume")
                )
    return findings


def _stack_production_replicas(objs: Sequence[K8sObject]) -> list[tuple[K8sObject, str]]:
    findings = []
    for obj, _ in _workloads(objs):
        if kind_of(obj) != "Deployment":
            continue
        low, _ = _replica_range(objs, obj)
        if low < 2:
            findings.append(
                (
                    obj,
                    f"spec.replicas: at most {low} replica may be running in production; run at "
                    "least 2 (HPA minReplicas or replicas)",
                )
            )
    return findings


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------

_PODS = POD_BEARING_KINDS


def _pss(id: str, title: str, message: str, fix: str, body: Callable[[PodTemplate], list[str]]) -> ObjectRule:
    return ObjectRule(
        id=id,
        severity="mandatory",
        title=title,
        message=message,
        fix=fix,
        kinds=_PODS,
        check=_pod_rule_check(body),
    )


RULES: tuple[Rule, ...] = (
    # Pod Security Standards, baseline
    _pss(
        "PSS-001",
        "No Windows host process containers",
        "Host process containers get full access to the node.",
        "Remove securityContext.windowsOptions.hostProcess.",
        _check_host_process,
    ),
    _pss(
        "PSS-002",
        "No host namespaces",
        "Sharing the node's network, PID or IPC namespace breaks pod isolation.",
        "Unset hostNetwork, hostPID and hostIPC (or set them false).",
        _check_host_namespaces,
    ),
    _pss(
        "PSS-003",
        "No privileged containers",
        "A privileged container has every capability and every device of the node.",
        "Remove securityContext.privileged.",
        _check_privileged,
    ),
    _pss(
        "PSS-004",
        "Capabilities only from the baseline set",
        "Capabilities outside the baseline set (SYS_ADMIN, NET_ADMIN, ...) allow escapes.",
        "Add no capability beyond NET_BIND_SERVICE (restricted); drop ALL.",
        _check_baseline_capabilities,
    ),
    _pss(
        "PSS-005",
        "No hostPath volumes",
        "hostPath volumes expose the node's file system to the pod.",
        "Use emptyDir, a PersistentVolumeClaim, a ConfigMap or a Secret instead.",
        _check_host_path,
    ),
    _pss(
        "PSS-006",
        "No host ports",
        "Host ports bind on the node and bypass NetworkPolicy.",
        "Remove ports[].hostPort and expose the port through a Service.",
        _check_host_ports,
    ),
    _pss(
        "PSS-007",
        "AppArmor not unconfined",
        "An unconfined AppArmor profile removes a layer of confinement.",
        "Use appArmorProfile.type RuntimeDefault (or leave it unset).",
        _check_apparmor,
    ),
    _pss(
        "PSS-008",
        "SELinux type and user limited",
        "Custom SELinux users, roles or types can lift the container's label confinement.",
        "Leave seLinuxOptions unset, or use type container_t without user and role.",
        _check_selinux,
    ),
    _pss(
        "PSS-009",
        "Default /proc mount",
        "An unmasked /proc exposes kernel interfaces to the container.",
        "Remove securityContext.procMount (or set Default).",
        _check_proc_mount,
    ),
    _pss(
        "PSS-010",
        "Seccomp not unconfined",
        "Without seccomp every system call reaches the kernel.",
        "Set seccompProfile.type: RuntimeDefault on the pod.",
        _check_seccomp_baseline,
    ),
    _pss(
        "PSS-011",
        "Only safe sysctls",
        "Unsafe sysctls change kernel settings shared with other pods on the node.",
        "Remove securityContext.sysctls outside the safe set.",
        _check_sysctls,
    ),
    _pss(
        "PSS-012",
        "No host field in probes and lifecycle handlers",
        "A probe or hook with a host field makes the kubelet send requests to other hosts.",
        "Remove httpGet.host / tcpSocket.host from probes and lifecycle handlers.",
        _check_probe_host,
    ),
    # Pod Security Standards, restricted
    _pss(
        "PSS-013",
        "Only restricted volume types",
        "Other volume types (nfs, iscsi, ...) mount storage the pod should not reach directly.",
        "Use configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected "
        "or secret volumes.",
        _check_volume_types,
    ),
    _pss(
        "PSS-014",
        "No privilege escalation",
        "setuid binaries could gain privileges the container was not given.",
        "Set securityContext.allowPrivilegeEscalation: false on every container (init too).",
        _check_privilege_escalation,
    ),
    _pss(
        "PSS-015",
        "Run as non-root",
        "A container running as root is one kernel bug away from root on the node.",
        "Set securityContext.runAsNonRoot: true on the pod.",
        _check_run_as_non_root,
    ),
    _pss(
        "PSS-016",
        "runAsUser is never 0",
        "UID 0 is root, whatever runAsNonRoot says elsewhere.",
        "Set runAsUser to the image's non-root UID (10001).",
        _check_run_as_user_root,
    ),
    _pss(
        "PSS-017",
        "Seccomp RuntimeDefault or Localhost",
        "The restricted profile requires a seccomp profile on every container.",
        "Set securityContext.seccompProfile.type: RuntimeDefault on the pod.",
        _check_seccomp_restricted,
    ),
    _pss(
        "PSS-018",
        "Drop ALL capabilities",
        "Containers keep a default capability set unless they drop it.",
        "Set capabilities.drop: [ALL]; add at most NET_BIND_SERVICE.",
        _check_capabilities_restricted,
    ),
    # Beyond PSS
    ObjectRule(
        id="HARD-001",
        severity="mandatory",
        title="Read-only root file system",
        message="A writable root file system lets an intruder change the application.",
        fix="Set readOnlyRootFilesystem: true and mount emptyDir volumes at the writable paths.",
        kinds=_PODS,
        check=_pod_rule_check(_check_read_only_root),
    ),
    ObjectRule(
        id="HARD-002",
        severity="mandatory",
        title="No service account token in the pod",
        message="A mounted token lets anyone inside the pod talk to the Kubernetes API.",
        fix="Set automountServiceAccountToken: false on the pod spec.",
        kinds=_PODS,
        check=_pod_rule_check(_check_pod_token),
    ),
    ObjectRule(
        id="HARD-003",
        severity="mandatory",
        title="ServiceAccount does not automount its token",
        message="The ServiceAccount's default decides for every pod that forgets to.",
        fix="Set automountServiceAccountToken: false on the ServiceAccount.",
        kinds=frozenset({"ServiceAccount"}),
        check=_check_sa_token,
    ),
    StackRule(
        id="HARD-004",
        severity="mandatory",
        title="Dedicated ServiceAccount",
        message="Pods on the namespace's default ServiceAccount share whatever it is granted.",
        fix="Declare a ServiceAccount per workload and set serviceAccountName to it.",
        check=_stack_service_account,
    ),
    ObjectRule(
        id="HARD-005",
        severity="mandatory",
        title="Numeric non-zero runAsUser, runAsGroup and fsGroup",
        message="Without numeric ids the kubelet cannot verify non-root, and files get group 0.",
        fix="Set runAsUser, runAsGroup and fsGroup (e.g. 10001) on the pod, matching the image's USER.",
        profiles=frozenset({"restricted"}),
        kinds=_PODS,
        check=_pod_rule_check(_check_numeric_ids),
    ),
    ObjectRule(
        id="HARD-006",
        severity="mandatory",
        title="CPU and memory requests and limits",
        message="Without requests the scheduler overcommits; without limits one pod starves a node.",
        fix="Set resources.requests and resources.limits for cpu and memory on every container.",
        kinds=_PODS,
        check=_pod_rule_check(_check_resources(_RESOURCE_NAMES)),
    ),
    ObjectRule(
        id="HARD-007",
        severity="mandatory",
        title="Ephemeral-storage request and limit",
        message="Unbounded logs and scratch files can fill the node's disk and evict neighbours.",
        fix="Set resources.requests and resources.limits for ephemeral-storage on every container.",
        kinds=_PODS,
        check=_pod_rule_check(_check_resources(("ephemeral-storage",))),
    ),
    ObjectRule(
        id="HARD-008",
        severity="mandatory",
        title="Readiness and liveness probes",
        message="Without readiness a pod gets traffic before it can serve; without liveness a "
        "hung pod is never restarted.",
        fix="Declare readinessProbe and livenessProbe on every container.",
        kinds=_PODS,
        check=_pod_rule_check(_check_probes_present),
    ),
    ObjectRule(
        id="HARD-009",
        severity="mandatory",
        title="Liveness differs from readiness",
        message="A liveness probe identical to readiness restarts pods that are only busy.",
        fix="Make liveness a cheaper check (TCP socket or a shallow endpoint) than readiness.",
        kinds=_PODS,
        check=_pod_rule_check(_check_probes_differ),
    ),
    ObjectRule(
        id="HARD-010",
        severity="advisory",
        title="Startup probe",
        message="Slow starters need a startup probe so liveness does not kill them while booting.",
        fix="Declare startupProbe with a failureThreshold covering the worst start time.",
        kinds=_PODS,
        check=_pod_rule_check(_check_startup_probe),
    ),
    ObjectRule(
        id="HARD-011",
        severity="mandatory",
        title="Image pinned by digest",
        message="A tag can be moved; only a digest names exactly what was built and scanned.",
        fix="Reference images as repo@sha256:<digest> (the image component's output).",
        kinds=_PODS,
        check=_pod_rule_check(_check_image_digest),
    ),
    ObjectRule(
        id="HARD-012",
        severity="mandatory",
        title="No latest tag",
        message="latest changes under a running Deployment and makes rollbacks meaningless.",
        fix="Tag by git SHA/semver and deploy by digest.",
        kinds=_PODS,
        check=_pod_rule_check(_check_image_latest),
    ),
    ObjectRule(
        id="HARD-013",
        severity="mandatory",
        title="imagePullPolicy IfNotPresent",
        message="With digests, Always only adds a registry round trip and an outage dependency.",
        fix="Set imagePullPolicy: IfNotPresent on every container.",
        kinds=_PODS,
        check=_pod_rule_check(_check_pull_policy),
    ),
    ObjectRule(
        id="HARD-014",
        severity="advisory",
        title="emptyDir volumes are size-limited",
        message="An unbounded emptyDir fills the node's disk (or memory, with medium Memory).",
        fix="Set emptyDir.sizeLimit (and medium: Memory for small scratch space such as /tmp).",
        kinds=_PODS,
        check=_pod_rule_check(_check_empty_dir_limits),
    ),
    ObjectRule(
        id="HARD-015",
        severity="mandatory",
        title="No literal secrets in environment variables",
        message="A literal value is stored in plain text in the object, the state and the diff.",
        fix="Keep the value in a Secret (from a Pulumi secret) and mount it as a read-only volume.",
        kinds=_PODS,
        check=_pod_rule_check(_check_literal_secrets),
    ),
    StackRule(
        id="HARD-016",
        severity="mandatory",
        title="No secret values in ConfigMaps",
        message="ConfigMaps are not encrypted at rest nor access-restricted like Secrets.",
        fix="Move the value into a Secret and mount it as a read-only volume.",
        check=_stack_secrets_in_configmaps,
    ),
    ObjectRule(
        id="HARD-017",
        severity="mandatory",
        title="Namespace enforces Pod Security restricted",
        message="The namespace labels make the cluster itself refuse anything weaker.",
        fix="Label the Namespace pod-security.kubernetes.io/{enforce,audit,warn}: restricted and "
        "enforce-version: v1.<minor>.",
        kinds=frozenset({"Namespace"}),
        check=_check_psa_labels,
    ),
    StackRule(
        id="HARD-018",
        severity="mandatory",
        title="Workloads run in a managed namespace",
        message="Only a namespace declared here carries the Pod Security Admission labels.",
        fix="Declare the workload's Namespace in the stack and put the workload in it.",
        check=_stack_namespace_managed,
    ),
    StackRule(
        id="HARD-019",
        severity="mandatory",
        title="Default-deny NetworkPolicy per namespace",
        message="Without a default deny every pod can reach and be reached by any other pod.",
        fix="Add a NetworkPolicy with podSelector {} and policyTypes [Ingress, Egress] and no rules.",
        check=_stack_default_deny,
    ),
    StackRule(
        id="HARD-020",
        severity="mandatory",
        title="Every pod isolated by a NetworkPolicy",
        message="A pod no NetworkPolicy selects accepts and sends any traffic.",
        fix="Make sure a NetworkPolicy selecting the pods covers both Ingress and Egress.",
        check=_stack_np_coverage,
    ),
    ObjectRule(
        id="HARD-021",
        severity="mandatory",
        title="NetworkPolicy rules name narrow peers and ports",
        message="A rule without peers or ports, or with a peer that admits every namespace, every "
        "pod or a wide address block, allows far more than the workloads it is written for.",
        fix="List the allowed peers by their labels (a non-empty podSelector, a namespaceSelector "
        "naming namespaces, an ipBlock of /16 or narrower) and the ports in every rule.",
        kinds=frozenset({"NetworkPolicy"}),
        check=_check_np_peers,
    ),
    StackRule(
        id="HARD-022",
        severity="advisory",
        title="DNS egress to the cluster DNS",
        message="Under a default deny, pods cannot resolve names unless DNS egress is allowed.",
        fix="Allow egress to kube-dns (kube-system) on 53/UDP and 53/TCP for every pod, or to "
        "openshift-dns on 5353 on OpenShift.",
        check=_stack_dns_egress,
    ),
    StackRule(
        id="HARD-023",
        severity="mandatory",
        title="PodDisruptionBudget for multi-replica workloads",
        message="Without a PDB a node drain can evict every replica at once.",
        fix="Declare a PodDisruptionBudget with the workload's selector and maxUnavailable: 1.",
        check=_stack_pdb_present,
    ),
    StackRule(
        id="HARD-024",
        severity="mandatory",
        title="PodDisruptionBudget consistent with the replica count",
        message="A PDB that allows no eviction blocks node drains and cluster upgrades.",
        fix="Use maxUnavailable: 1, or minAvailable below the HPA's minReplicas.",
        check=_stack_pdb_consistent,
    ),
    ObjectRule(
        id="HARD-025",
        severity="mandatory",
        title="HPA autoscaling/v2 with CPU, memory and behavior",
        message="Scaling on one resource misses the other; without behavior scale-down flaps.",
        fix="Use autoscaling/v2 with Resource metrics for cpu and memory and a behavior.scaleDown "
        "stabilization window.",
        kinds=frozenset({"HorizontalPodAutoscaler"}),
        check=_check_hpa,
    ),
    StackRule(
        id="HARD-026",
        severity="mandatory",
        title="No replicas on HPA-managed workloads",
        message="Each apply would reset the replica count the HPA chose.",
        fix="Leave spec.replicas unset when an HPA targets the workload.",
        check=_stack_replicas_unset,
    ),
    StackRule(
        id="HARD-027",
        severity="mandatory",
        title="One selector shared by workload, Service, PDB, HPA and NetworkPolicy",
        message="Selectors computed separately drift apart and silently select nothing.",
        fix="Compute the selector once (name + instance labels) and reuse it everywhere.",
        check=_stack_shared_selector,
    ),
    ObjectRule(
        id="HARD-028",
        severity="mandatory",
        title="Rolling update without unavailability",
        message="With the default maxUnavailable 25% a rollout removes serving capacity.",
        fix="Use strategy RollingUpdate with maxUnavailable: 0 (and a maxSurge).",
        kinds=frozenset({"Deployment"}),
        check=_check_rolling_update,
    ),
    ObjectRule(
        id="HARD-029",
        severity="mandatory",
        title="Graceful shutdown",
        message="Without a preStop delay and a grace period, in-flight requests are cut off.",
        fix="Set terminationGracePeriodSeconds and a preStop sleep on every serving container.",
        kinds=LONG_RUNNING_KINDS,
        check=_check_graceful_shutdown,
    ),
    ObjectRule(
        id="HARD-030",
        severity="advisory",
        title="minReadySeconds",
        message="A pod that crashes right after becoming ready should not count as available.",
        fix="Set spec.minReadySeconds to a few seconds.",
        kinds=frozenset({"Deployment"}),
        check=_check_min_ready,
    ),
    ObjectRule(
        id="HARD-031",
        severity="advisory",
        title="Recommended labels",
        message="The app.kubernetes.io labels let tools and people find what belongs together.",
        fix="Label objects and pod templates with app.kubernetes.io/{name,instance,version,"
        "component,part-of,managed-by}; namespace-wide objects at least part-of and managed-by.",
        kinds=frozenset({*_WORKLOAD_OBJECT_KINDS, "NetworkPolicy", "ConfigMap", "Secret"}),
        check=_check_labels,
    ),
    StackRule(
        id="HARD-032",
        severity="mandatory",
        title="At least two replicas in production",
        message="One replica means downtime on every node drain, crash and rollout hiccup.",
        fix="Set the HPA's minReplicas (or replicas) to at least 2 in the production stack.",
        production_only=True,
        check=_stack_production_replicas,
    ),
    ObjectRule(
        id="HARD-033",
        severity="advisory",
        title="Replicas spread across nodes and zones in production",
        message="Replicas on one node or zone fail together.",
        fix="Add topologySpreadConstraints on kubernetes.io/hostname and "
        "topology.kubernetes.io/zone (or pod anti-affinity).",
        kinds=frozenset({"Deployment"}),
        production_only=True,
        check=_check_topology_spread,
    ),
    ObjectRule(
        id="HARD-034",
        severity="mandatory",
        title="DNS egress only to the cluster DNS",
        message="Port 53 open to any other peer is a channel out of the cluster that looks like "
        "name resolution.",
        fix="Send DNS only to kube-dns: namespaceSelector kubernetes.io/metadata.name: kube-system "
        "and podSelector k8s-app: kube-dns.",
        kinds=frozenset({"NetworkPolicy"}),
        check=_check_dns_destination,
    ),
    ObjectRule(
        id="HARD-035",
        severity="mandatory",
        title="Real image digests in production",
        message="A placeholder digest (all zeros, a repeated pattern) names no image: pods never start.",
        fix="Pin the digest the registry reports for the image, or build the image in the stack.",
        kinds=_PODS,
        production_only=True,
        check=_pod_rule_check(_check_made_up_digest),
    ),
    ObjectRule(
        id="HARD-036",
        severity="mandatory",
        title="No duplicate environment variables, volumes or mount paths",
        message="The API refuses duplicate volumes, and a duplicate variable silently loses a value.",
        fix="Give each env variable, volume and mount path one entry (check env against the "
        "variables the components inject, such as DATABASE_URL).",
        kinds=_PODS,
        check=_pod_rule_check(_check_unique_names),
    ),
    ObjectRule(
        id="HARD-037",
        severity="mandatory",
        title="Secrets as files, never environment variables",
        message="A Secret in the environment is inherited by every child process, shown by "
        "/proc/<pid>/environ and crash dumps, and printed by tools that log their environment.",
        fix="Mount the Secret as a volume (readOnly, defaultMode 0440 with fsGroup) and pass the "
        "file's path in a *_FILE variable instead of valueFrom.secretKeyRef or envFrom.secretRef.",
        kinds=_PODS,
        check=_pod_rule_check(_check_secret_env),
    ),
    ObjectRule(
        id="HARD-038",
        severity="mandatory",
        title="UIDs and GIDs of 10000 or more",
        message="Ids below 10000 are the node's own users and system accounts: a process that "
        "escapes its container acts as one of them, with their files.",
        fix="Set runAsUser, runAsGroup and fsGroup to 10000 or more (e.g. 10001) and give the "
        "image's USER the same ids.",
        kinds=_PODS,
        check=_pod_rule_check(_check_high_ids),
    ),
    ObjectRule(
        id="HARD-039",
        severity="mandatory",
        title="Ids left to OpenShift's restricted-v2 SCC",
        message="restricted-v2 runs each pod as a UID from its namespace's range and refuses a "
        "fixed runAsUser, runAsGroup or fsGroup outside it; the pod must still refuse root.",
        fix="Remove runAsUser, runAsGroup and fsGroup (securityProfile openshift-restricted-v2 "
        "does) and keep runAsNonRoot: true.",
        profiles=frozenset({OPENSHIFT}),
        kinds=_PODS,
        check=_pod_rule_check(_check_assigned_ids),
    ),
)
"""Every rule, in id order."""

RULES_BY_ID: Mapping[str, Rule] = {rule.id: rule for rule in RULES}
"""Rules keyed by id."""
