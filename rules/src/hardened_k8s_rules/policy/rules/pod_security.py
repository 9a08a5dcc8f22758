"""Pod Security Standards: the ``baseline`` and ``restricted`` controls as rules ``PSS-0xx``.

``PSS-001``..``PSS-012`` are the baseline controls, ``PSS-013``..``PSS-018`` the restricted
ones, each mirroring the check of the Kubernetes ``pod-security-admission`` library with the
same name. All are mandatory: the namespaces enforce ``restricted`` (HARD-017), so a pod that
fails one of these would be refused by the API server anyway; the rules say so at preview.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..objects import Container, PodTemplate, as_list, as_map, containers
from .registry import PODS, ObjectRule, PodCheck, pod_check


def _both_levels(pod: PodTemplate) -> list[tuple[str, Mapping[str, Any]]]:
    """``(path, securityContext)`` of the pod and of every container."""
    levels: list[tuple[str, Mapping[str, Any]]] = [(f"{pod.spec_path}.securityContext", pod.security_context)]
    levels += [(c.sc_path, c.security_context) for c in containers(pod)]
    return levels


# Baseline


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


# Restricted

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


def _pss(id: str, title: str, message: str, fix: str, body: PodCheck) -> ObjectRule:
    return ObjectRule(
        id=id,
        severity="mandatory",
        title=title,
        message=message,
        fix=fix,
        kinds=PODS,
        check=pod_check(body),
    )


RULES = (
    # Baseline
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
    # Restricted
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
)
"""The Pod Security Standards rules, ``PSS-001``..``PSS-018``."""
