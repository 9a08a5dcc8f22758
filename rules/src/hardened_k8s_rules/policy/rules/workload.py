"""Workload hardening beyond the Pod Security Standards: the pod and its containers.

What kube-score, Polaris, kube-linter and Kubescape flag on a pod by default: a writable
root file system, a mounted ServiceAccount token, ids that are missing or low (or, under
OpenShift's restricted-v2 SCC, fixed at all), missing requests and limits, missing or
identical probes, images not pinned by digest, secrets in the environment, duplicate names.
Each rule reads one object.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...controls import MIN_RUN_AS_ID
from ...profiles import OPENSHIFT
from ..objects import K8sObject, PodTemplate, as_int, as_list, as_map, containers, is_positive_int, plain
from .registry import PODS, ObjectRule, PodCheck, pod_check

RESOURCE_NAMES = ("cpu", "memory")
"""The compute resources every container requests and is limited in (and an HPA scales on)."""
_SECRET_NAME_RE = re.compile(
    r"(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)",
    re.IGNORECASE,
)
_CREDENTIAL_URL_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^/:@\s]+:[^/@\s]+@", re.IGNORECASE)
_DIGEST_RE = re.compile(r"@sha256:[0-9a-f]{64}$")


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
    if not is_positive_int(psc.get("fsGroup")):
        problems.append(
            f"{pod.spec_path}.securityContext.fsGroup: is {psc.get('fsGroup')!r}; "
            "set a numeric non-zero GID such as 10001"
        )
    for key in ("runAsUser", "runAsGroup"):
        if is_positive_int(psc.get(key)):
            continue
        for c in containers(pod):
            value = c.security_context.get(key)
            if not is_positive_int(value):
                problems.append(
                    f"{c.sc_path}.{key}: is {value!r} and the pod sets none; set a numeric "
                    "non-zero id such as 10001 on the pod"
                )
    return problems


def _check_resources(names: tuple[str, ...]) -> PodCheck:
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
        f"{c.path}.imagePullPolicy: is {c.spec.get('imagePullPolicy')!r}; set Always"
        for c in containers(pod)
        if c.spec.get("imagePullPolicy") != "Always"
    ]


def _check_empty_dir_limits(pod: PodTemplate) -> list[str]:
    problems = []
    for volume in as_list(pod.spec.get("volumes")):
        volume = as_map(volume)
        if "emptyDir" in volume and not as_map(volume.get("emptyDir")).get("sizeLimit"):
            problems.append(f"{pod.spec_path}.volumes[{volume.get('name')}].emptyDir.sizeLimit: is not set")
    return problems


def looks_secret(name: str, value: Any) -> bool:
    """Whether a literal ``name``/``value`` pair (an env variable, a ConfigMap key) holds a secret.

    True when the name says so (``PASSWORD``, ``TOKEN``, ``API_KEY``...) or the value is a
    URL with credentials; a ``*_FILE`` variable holding an absolute path is the path of a
    mounted secret, not the secret.
    """
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
            if looks_secret(name, var.get("value")):
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


_ID_FIELDS = ("runAsUser", "runAsGroup")


def _id_levels(pod: PodTemplate) -> list[tuple[str, Mapping[str, Any], tuple[str, ...]]]:
    """``(path, securityContext, id fields)`` of the pod (with ``fsGroup``) and each container."""
    levels: list[tuple[str, Mapping[str, Any], tuple[str, ...]]] = [
        (f"{pod.spec_path}.securityContext", pod.security_context, (*_ID_FIELDS, "fsGroup"))
    ]
    levels += [(c.sc_path, c.security_context, _ID_FIELDS) for c in containers(pod)]
    return levels


def _check_high_ids(pod: PodTemplate) -> list[str]:
    """Set UIDs and GIDs are at least MIN_RUN_AS_ID; unset ones are HARD-005's business."""
    problems = []
    for path, sc, keys in _id_levels(pod):
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
    problems = [
        f"{path}.{key}: is {sc.get(key)!r}; leave it unset, the restricted-v2 SCC assigns the "
        "namespace's UID and fsGroup and refuses a fixed id outside its range"
        for path, sc, keys in _id_levels(pod)
        for key in keys
        if sc.get(key) is not None
    ]
    if pod.security_context.get("runAsNonRoot") is not True:
        problems.append(f"{pod.spec_path}.securityContext.runAsNonRoot: must be true")
    return problems


RULES = (
    ObjectRule(
        id="HARD-001",
        severity="mandatory",
        title="Read-only root file system",
        message="A writable root file system lets an intruder change the application.",
        fix="Set readOnlyRootFilesystem: true and mount emptyDir volumes at the writable paths.",
        kinds=PODS,
        check=pod_check(_check_read_only_root),
    ),
    ObjectRule(
        id="HARD-002",
        severity="mandatory",
        title="No service account token in the pod",
        message="A mounted token lets anyone inside the pod talk to the Kubernetes API.",
        fix="Set automountServiceAccountToken: false on the pod spec.",
        kinds=PODS,
        check=pod_check(_check_pod_token),
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
    ObjectRule(
        id="HARD-005",
        severity="mandatory",
        title="Numeric non-zero runAsUser, runAsGroup and fsGroup",
        message="Without numeric ids the kubelet cannot verify non-root, and files get group 0.",
        fix="Set runAsUser, runAsGroup and fsGroup (e.g. 10001) on the pod, matching the image's USER.",
        profiles=frozenset({"restricted"}),
        kinds=PODS,
        check=pod_check(_check_numeric_ids),
    ),
    ObjectRule(
        id="HARD-006",
        severity="mandatory",
        title="CPU and memory requests and limits",
        message="Without requests the scheduler overcommits; without limits one pod starves a node.",
        fix="Set resources.requests and resources.limits for cpu and memory on every container.",
        kinds=PODS,
        check=pod_check(_check_resources(RESOURCE_NAMES)),
    ),
    ObjectRule(
        id="HARD-007",
        severity="mandatory",
        title="Ephemeral-storage request and limit",
        message="Unbounded logs and scratch files can fill the node's disk and evict neighbours.",
        fix="Set resources.requests and resources.limits for ephemeral-storage on every container.",
        kinds=PODS,
        check=pod_check(_check_resources(("ephemeral-storage",))),
    ),
    ObjectRule(
        id="HARD-008",
        severity="mandatory",
        title="Readiness and liveness probes",
        message="Without readiness a pod gets traffic before it can serve; without liveness a "
        "hung pod is never restarted.",
        fix="Declare readinessProbe and livenessProbe on every container.",
        kinds=PODS,
        check=pod_check(_check_probes_present),
    ),
    ObjectRule(
        id="HARD-009",
        severity="mandatory",
        title="Liveness differs from readiness",
        message="A liveness probe identical to readiness restarts pods that are only busy.",
        fix="Make liveness a cheaper check (TCP socket or a shallow endpoint) than readiness.",
        kinds=PODS,
        check=pod_check(_check_probes_differ),
    ),
    ObjectRule(
        id="HARD-010",
        severity="advisory",
        title="Startup probe",
        message="Slow starters need a startup probe so liveness does not kill them while booting.",
        fix="Declare startupProbe with a failureThreshold covering the worst start time.",
        kinds=PODS,
        check=pod_check(_check_startup_probe),
    ),
    ObjectRule(
        id="HARD-011",
        severity="mandatory",
        title="Image pinned by digest",
        message="A tag can be moved; only a digest names exactly what was built and scanned.",
        fix="Reference images as repo@sha256:<digest> (the image component's output).",
        kinds=PODS,
        check=pod_check(_check_image_digest),
    ),
    ObjectRule(
        id="HARD-012",
        severity="mandatory",
        title="No latest tag",
        message="latest changes under a running Deployment and makes rollbacks meaningless.",
        fix="Tag by git SHA/semver and deploy by digest.",
        kinds=PODS,
        check=pod_check(_check_image_latest),
    ),
    ObjectRule(
        id="HARD-013",
        severity="mandatory",
        title="imagePullPolicy Always",
        message="With IfNotPresent a node starts an image it has cached for another pod without "
        "asking the registry whether this pod's credentials may pull it.",
        fix="Set imagePullPolicy: Always on every container; with the image pinned by digest the "
        "registry check is a manifest request, and the layers stay cached.",
        kinds=PODS,
        check=pod_check(_check_pull_policy),
    ),
    ObjectRule(
        id="HARD-014",
        severity="advisory",
        title="emptyDir volumes are size-limited",
        message="An unbounded emptyDir fills the node's disk (or memory, with medium Memory).",
        fix="Set emptyDir.sizeLimit (and medium: Memory for small scratch space such as /tmp).",
        kinds=PODS,
        check=pod_check(_check_empty_dir_limits),
    ),
    ObjectRule(
        id="HARD-015",
        severity="mandatory",
        title="No literal secrets in environment variables",
        message="A literal value is stored in plain text in the object, the state and the diff.",
        fix="Keep the value in a Secret (from a Pulumi secret) and mount it as a read-only volume.",
        kinds=PODS,
        check=pod_check(_check_literal_secrets),
    ),
    ObjectRule(
        id="HARD-035",
        severity="mandatory",
        title="Real image digests in production",
        message="A placeholder digest (all zeros, a repeated pattern) names no image: pods never start.",
        fix="Pin the digest the registry reports for the image, or build the image in the stack.",
        kinds=PODS,
        production_only=True,
        check=pod_check(_check_made_up_digest),
    ),
    ObjectRule(
        id="HARD-036",
        severity="mandatory",
        title="No duplicate environment variables, volumes or mount paths",
        message="The API refuses duplicate volumes, and a duplicate variable silently loses a value.",
        fix="Give each env variable, volume and mount path one entry (check env against the "
        "variables the components inject, such as DATABASE_URL).",
        kinds=PODS,
        check=pod_check(_check_unique_names),
    ),
    ObjectRule(
        id="HARD-037",
        severity="mandatory",
        title="Secrets as files, never environment variables",
        message="A Secret in the environment is inherited by every child process, shown by "
        "/proc/<pid>/environ and crash dumps, and printed by tools that log their environment.",
        fix="Mount the Secret as a volume (readOnly, defaultMode 0440 with fsGroup) and pass the "
        "file's path in a *_FILE variable instead of valueFrom.secretKeyRef or envFrom.secretRef.",
        kinds=PODS,
        check=pod_check(_check_secret_env),
    ),
    ObjectRule(
        id="HARD-038",
        severity="mandatory",
        title="UIDs and GIDs of 10000 or more",
        message="Ids below 10000 are the node's own users and system accounts: a process that "
        "escapes its container acts as one of them, with their files.",
        fix="Set runAsUser, runAsGroup and fsGroup to 10000 or more (e.g. 10001) and give the "
        "image's USER the same ids.",
        kinds=PODS,
        check=pod_check(_check_high_ids),
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
        kinds=PODS,
        check=pod_check(_check_assigned_ids),
    ),
)
"""The pod and container rules beyond PSS."""
