"""Hardened pod building blocks shared by every workload component.

Each function returns pulumi-kubernetes Args for one concern (security context, writable
scratch space, resources, probes, graceful shutdown, spreading), with the Pod Security
Standards ``restricted`` profile and the checks of kube-score/Polaris met by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from .config import scratch_volume_name

SCRATCH_SIZE_LIMIT = "64Mi"
"""Size limit of each in-memory writable mount; it counts against the memory limit."""

PRE_STOP_SECONDS = 5
"""Delay before SIGTERM so endpoints controllers and proxies stop routing to the pod first."""

TERMINATION_GRACE_SECONDS = 30
"""Time in-flight requests get to finish after SIGTERM (includes the preStop delay)."""

SECRETS_DIR = "/etc/secrets"
"""Where Secret volumes are mounted, one directory per volume: ``/etc/secrets/<volume>/<key>``."""

SECRET_FILE_MODE = 0o440
"""``defaultMode`` of Secret files: read-only to the owner (root) and the pod's ``fsGroup``."""


def pod_security_context(uid: int | None, gid: int | None = None) -> k8s.core.v1.PodSecurityContextArgs:
    """Non-root numeric UID/GID, fsGroup for volumes, and the runtime's default seccomp.

    ``uid`` None leaves ``runAsUser``, ``runAsGroup`` and ``fsGroup`` to the platform
    (OpenShift's restricted-v2 SCC assigns them from the namespace's range); ``runAsNonRoot``
    still holds.
    """
    gid = uid if gid is None else gid
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=gid,
        fs_group=gid,
        # Skip the recursive chown of large volumes when ownership is already right.
        fs_group_change_policy="OnRootMismatch" if gid is not None else None,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security_context(
    uid: int | None, gid: int | None = None, *, writable_root_filesystem: bool = False
) -> k8s.core.v1.SecurityContextArgs:
    """No privilege, no escalation, every capability dropped, read-only root by default.

    ``writable_root_filesystem`` is the named opt-out for images that cannot run read-only.
    ``uid`` None leaves the ids to the platform, as in :func:`pod_security_context`.
    """
    gid = uid if gid is None else gid
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=not writable_root_filesystem,
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=gid,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def scratch_volumes(
    paths: Mapping[str, str], *, memory: bool = True
) -> tuple[list[k8s.core.v1.VolumeArgs], list[k8s.core.v1.VolumeMountArgs]]:
    """``emptyDir`` volumes and mounts for writable paths, keyed by volume name.

    ``memory`` backs them with tmpfs (fast, counted against the memory limit, gone on
    restart) and caps each at :data:`SCRATCH_SIZE_LIMIT`.
    """
    volumes = [
        k8s.core.v1.VolumeArgs(
            name=name,
            empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(
                medium="Memory" if memory else None, size_limit=SCRATCH_SIZE_LIMIT
            ),
        )
        for name in paths
    ]
    mounts = [k8s.core.v1.VolumeMountArgs(name=name, mount_path=path) for name, path in paths.items()]
    return volumes, mounts


def secret_volume(
    volume: str, secret_name: pulumi.Input[str], keys: Sequence[str], *, directory: str | None = None
) -> tuple[k8s.core.v1.VolumeArgs, k8s.core.v1.VolumeMountArgs]:
    """A Secret volume projecting ``keys`` as files, and its read-only mount at
    ``SECRETS_DIR/<directory>`` (``directory`` defaults to the volume name).

    The files are mode :data:`SECRET_FILE_MODE`: the kubelet gives them the pod's ``fsGroup``,
    so the container's non-root user reads them through its group and nobody can write them.
    The container gets the path (a ``*_FILE`` variable), never the value.
    """
    return (
        k8s.core.v1.VolumeArgs(
            name=volume,
            secret=k8s.core.v1.SecretVolumeSourceArgs(
                secret_name=secret_name,
                default_mode=SECRET_FILE_MODE,
                # Kubernetes' default, written out: a missing Secret keeps the pod from
                # starting. podman 4.3's kube play also dereferences it unchecked (it panics
                # on a Secret volume without it).
                optional=False,
                items=[k8s.core.v1.KeyToPathArgs(key=key, path=key) for key in keys],
            ),
        ),
        k8s.core.v1.VolumeMountArgs(
            name=volume, mount_path=f"{SECRETS_DIR}/{directory or volume}", read_only=True
        ),
    )


def secret_path(directory: str, key: str) -> str:
    """The file a key of a :func:`secret_volume` mounted at ``directory`` appears as."""
    return f"{SECRETS_DIR}/{directory}/{key}"


def scratch_names(paths: Sequence[str]) -> dict[str, str]:
    """Volume names for writable paths: ``/tmp`` -> ``tmp``, ``/var/cache/app`` -> ``var-cache-app``."""
    return {scratch_volume_name(path): path for path in paths}


def resource_requirements(
    resources: Mapping[str, Mapping[str, pulumi.Input[str]]],
) -> k8s.core.v1.ResourceRequirementsArgs:
    """Requests and limits of CPU, memory and ephemeral storage.

    ``resources`` is a ``ResourcesArgs`` with its defaults applied
    (:func:`~hardened_k8s.arguments.with_defaults`): ``requests`` and ``limits``, each with
    ``cpu``, ``memory`` and ``ephemeral_storage``.
    """

    def amounts(side: Mapping[str, pulumi.Input[str]]) -> dict[str, pulumi.Input[str]]:
        return {
            "cpu": side["cpu"],
            "memory": side["memory"],
            "ephemeral-storage": side["ephemeral_storage"],
        }

    return k8s.core.v1.ResourceRequirementsArgs(
        requests=amounts(resources["requests"]), limits=amounts(resources["limits"])
    )


def http_probes(
    port: str,
    *,
    readiness_path: pulumi.Input[str],
    liveness_path: pulumi.Input[str],
    startup_allowance_seconds: int,
) -> tuple[k8s.core.v1.ProbeArgs, k8s.core.v1.ProbeArgs, k8s.core.v1.ProbeArgs]:
    """Readiness, liveness and startup probes over HTTP on the named ``port``.

    Readiness reacts fast (10 s period, 3 failures) so traffic leaves a pod that cannot
    serve; liveness is slow to judge (20 s period, 6 failures) because restarting a pod that
    is merely busy turns load into an outage. The startup probe (on the liveness path) holds
    both back for ``startup_allowance_seconds``.
    """
    readiness = k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=readiness_path, port=port),
        period_seconds=10,
        timeout_seconds=2,
        failure_threshold=3,
        success_threshold=1,
    )
    liveness = k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path=liveness_path, port=port),
        period_seconds=20,
        timeout_seconds=5,
        failure_threshold=6,
    )
    startup = startup_probe(
        k8s.core.v1.HTTPGetActionArgs(path=liveness_path, port=port), startup_allowance_seconds
    )
    return readiness, liveness, startup


def startup_probe(
    action: k8s.core.v1.HTTPGetActionArgs | k8s.core.v1.ExecActionArgs, allowance_seconds: int
) -> k8s.core.v1.ProbeArgs:
    """A probe that polls every 5 s until it passes, for at most ``allowance_seconds``."""
    period = 5
    threshold = max(1, -(-allowance_seconds // period))
    if isinstance(action, k8s.core.v1.ExecActionArgs):
        return k8s.core.v1.ProbeArgs(
            exec_=action, period_seconds=period, timeout_seconds=5, failure_threshold=threshold
        )
    return k8s.core.v1.ProbeArgs(
        http_get=action, period_seconds=period, timeout_seconds=2, failure_threshold=threshold
    )


def pre_stop(kubernetes_version: str) -> k8s.core.v1.LifecycleArgs:
    """Wait :data:`PRE_STOP_SECONDS` before SIGTERM.

    From Kubernetes 1.30 the kubelet's own ``sleep`` action is used, which needs no
    ``sleep`` binary in the image; older clusters get the exec form.
    """
    minor = int(kubernetes_version.split(".")[1])
    if minor >= 30:
        handler = k8s.core.v1.LifecycleHandlerArgs(
            sleep=k8s.core.v1.SleepActionArgs(seconds=PRE_STOP_SECONDS)
        )
    else:
        handler = k8s.core.v1.LifecycleHandlerArgs(
            exec_=k8s.core.v1.ExecActionArgs(command=["sleep", str(PRE_STOP_SECONDS)])
        )
    return k8s.core.v1.LifecycleArgs(pre_stop=handler)


def topology_spread(selector: Mapping[str, str]) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    """Spread replicas across zones (best effort) and nodes (required, skew 1).

    ``pod-template-hash`` in ``matchLabelKeys`` makes each rollout spread on its own rather
    than counting the old ReplicaSet's pods. ``nodeTaintsPolicy`` and ``nodeAffinityPolicy``
    ``Honor``: nodes these pods cannot run on (a tainted control plane, a drained node) are
    not domains. Counted as empty domains they would cap every other node at ``maxSkew`` pods
    and strand the rest as Pending; honoured, skew 1 over the nodes that can take the pods
    fits any replica count (the HPA's maximum included) on a cluster of two or three nodes.
    """
    return [
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key=key,
            when_unsatisfiable=when,
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
            match_label_keys=["pod-template-hash"],
            node_taints_policy="Honor",
            node_affinity_policy="Honor",
        )
        for key, when in (
            ("topology.kubernetes.io/zone", "ScheduleAnyway"),
            ("kubernetes.io/hostname", "DoNotSchedule"),
        )
    ]


def host_anti_affinity(selector: Mapping[str, str]) -> k8s.core.v1.AffinityArgs:
    """Prefer nodes without another replica (weight 100), next to :func:`topology_spread`.

    A preference, never a requirement: with more replicas than nodes the scheduler still
    places them. Scanners that do not read topology spread look for this term.
    """
    return k8s.core.v1.AffinityArgs(
        pod_anti_affinity=k8s.core.v1.PodAntiAffinityArgs(
            preferred_during_scheduling_ignored_during_execution=[
                k8s.core.v1.WeightedPodAffinityTermArgs(
                    weight=100,
                    pod_affinity_term=k8s.core.v1.PodAffinityTermArgs(
                        topology_key="kubernetes.io/hostname",
                        label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selector)),
                    ),
                )
            ]
        )
    )
