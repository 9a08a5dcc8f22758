"""Read-only access to rendered Kubernetes objects, shared by every rule.

Objects are plain mappings with the Kubernetes API's camelCase keys: the offline render's
dicts, or the property bags Pulumi CrossGuard hands to a policy pack. The latter are
``Mapping``/``Sequence`` proxies that raise on values unknown during preview, so nothing
here assumes ``dict``/``list`` or copies a whole object: a rule touches only the fields it
reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

K8sObject = Mapping[str, Any]
"""One Kubernetes object as the API spells it (``apiVersion``, ``kind``, ``metadata``, ...)."""

POD_BEARING_KINDS = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet"}
)
"""Kinds whose spec carries a pod template (or is a pod)."""

LONG_RUNNING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})
"""Pod-bearing kinds that serve traffic and are scaled, disrupted and rolled."""

SCALABLE_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})
"""Kinds an HPA may target and a PodDisruptionBudget protects."""

_EMPTY: Mapping[str, Any] = {}


def as_map(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one (missing or mistyped fields)."""
    return value if isinstance(value, Mapping) else _EMPTY


def as_list(value: Any) -> Sequence[Any]:
    """``value`` if it is a list-like (not a string), else an empty tuple."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return value
    return ()


def plain(value: Any) -> Any:
    """A deep copy made of ``dict``/``list``, so that two fragments compare by value."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


def declares(obj: K8sObject, *path: str) -> bool:
    """Whether whoever deploys ``obj`` declares the field at ``path`` (e.g. spec, replicas).

    Rules judge what the deployer declares, but policies see objects in two shapes. A
    declared object (the render's, or a resource's inputs) holds exactly what was declared.
    A live object (the outputs a CrossGuard stack policy sees) also holds what the API server
    defaulted and what controllers wrote; there ``metadata.managedFields`` says who set each
    field, and a field counts as declared when a manager that writes the object itself owns
    it. Writes through a subresource do not count: an HPA or ``kubectl scale`` sets
    ``spec.replicas`` through ``scale``, and controllers write ``status``.
    """
    managed = as_list(as_map(obj.get("metadata")).get("managedFields"))
    if not managed:
        value: Any = obj
        for key in path:
            if key not in as_map(value):
                return False
            value = as_map(value)[key]
        return True
    for entry in managed:
        entry = as_map(entry)
        if entry.get("subresource"):
            continue
        node = as_map(entry.get("fieldsV1"))
        for key in path:
            child = node.get(f"f:{key}")
            if child is None:
                break
            node = as_map(child)
        else:
            return True
    return False


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


def is_positive_int(value: Any) -> bool:
    """Whether ``value`` is an integer (in the sense of :func:`as_int`) above zero."""
    number = as_int(value)
    return number is not None and number > 0


def kind_of(obj: K8sObject) -> str:
    """``kind`` of ``obj``; empty when missing."""
    return str(obj.get("kind") or "")


def name_of(obj: K8sObject) -> str:
    """``metadata.name`` of ``obj``; empty when missing."""
    return str(as_map(obj.get("metadata")).get("name") or "")


def namespace_of(obj: K8sObject) -> str:
    """The object's namespace; empty for cluster-scoped objects and unset namespaces."""
    return str(as_map(obj.get("metadata")).get("namespace") or "")


def labels_of(obj: K8sObject) -> Mapping[str, Any]:
    """``metadata.labels`` of ``obj``; empty when missing."""
    return as_map(as_map(obj.get("metadata")).get("labels"))


def ref(obj: K8sObject) -> str:
    """``Kind/namespace/name`` (or ``Kind/name`` when cluster-scoped), for messages."""
    ns = namespace_of(obj)
    return f"{kind_of(obj)}/{ns}/{name_of(obj)}" if ns else f"{kind_of(obj)}/{name_of(obj)}"


@dataclass(frozen=True)
class PodTemplate:
    """Where the pod of a pod-bearing object lives, and its metadata and spec."""

    path: str
    """Dotted path of the template (``spec.template``); empty for a bare Pod."""
    metadata: Mapping[str, Any]
    """The template's (or Pod's) ``metadata``."""
    spec: Mapping[str, Any]
    """The pod spec."""

    @property
    def spec_path(self) -> str:
        """Dotted path of the pod spec, for messages."""
        return f"{self.path}.spec" if self.path else "spec"

    @property
    def metadata_path(self) -> str:
        """Dotted path of the pod metadata, for messages."""
        return f"{self.path}.metadata" if self.path else "metadata"

    @property
    def labels(self) -> Mapping[str, Any]:
        """The pod's labels; empty when none."""
        return as_map(self.metadata.get("labels"))

    @property
    def security_context(self) -> Mapping[str, Any]:
        """The pod-level ``securityContext``; empty when unset."""
        return as_map(self.spec.get("securityContext"))


def pod_template(obj: K8sObject) -> PodTemplate | None:
    """The pod of a pod-bearing object, or ``None`` for any other kind."""
    kind = kind_of(obj)
    if kind not in POD_BEARING_KINDS:
        return None
    spec = as_map(obj.get("spec"))
    if kind == "Pod":
        return PodTemplate("", as_map(obj.get("metadata")), spec)
    if kind == "CronJob":
        template = as_map(as_map(as_map(spec.get("jobTemplate")).get("spec")).get("template"))
        path = "spec.jobTemplate.spec.template"
    else:
        template = as_map(spec.get("template"))
        path = "spec.template"
    return PodTemplate(path, as_map(template.get("metadata")), as_map(template.get("spec")))


@dataclass(frozen=True)
class Container:
    """One container of a pod and the path that names it in messages."""

    path: str
    """``spec.template.spec.containers[api]``: list field and container name."""
    spec: Mapping[str, Any]
    """The container's spec."""
    field: str
    """``containers``, ``initContainers`` or ``ephemeralContainers``."""

    @property
    def name(self) -> str:
        """The container's name; empty when missing."""
        return str(self.spec.get("name") or "")

    @property
    def security_context(self) -> Mapping[str, Any]:
        """The container's ``securityContext``; empty when unset."""
        return as_map(self.spec.get("securityContext"))

    @property
    def sc_path(self) -> str:
        """Dotted path of the container's ``securityContext``, for messages."""
        return f"{self.path}.securityContext"


CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")
"""The pod spec's container lists, in the order rules report them."""


def containers(pod: PodTemplate, *fields: str) -> Iterator[Container]:
    """Containers of ``pod`` in the given list fields (default: all three)."""
    for field in fields or CONTAINER_FIELDS:
        for index, spec in enumerate(as_list(pod.spec.get(field))):
            spec = as_map(spec)
            label = spec.get("name") or index
            yield Container(f"{pod.spec_path}.{field}[{label}]", spec, field)


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """Whether a ``LabelSelector`` (``matchLabels``/``matchExpressions``) selects ``labels``.

    An empty selector selects everything, as in NetworkPolicy ``podSelector: {}``.
    """
    for key, value in as_map(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expr in as_list(selector.get("matchExpressions")):
        expr = as_map(expr)
        expr_key = str(expr.get("key") or "")
        op = expr.get("operator")
        values = set(as_list(expr.get("values")))
        present = expr_key in labels
        if op == "In" and not (present and labels.get(expr_key) in values):
            return False
        if op == "NotIn" and present and labels.get(expr_key) in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def selector_is_empty(selector: Mapping[str, Any]) -> bool:
    """Whether a label selector has neither ``matchLabels`` nor ``matchExpressions``: it selects
    everything."""
    return not as_map(selector.get("matchLabels")) and not as_list(selector.get("matchExpressions"))


def pod_selector(obj: K8sObject) -> Mapping[str, Any]:
    """The ``LabelSelector`` with which a Service, PodDisruptionBudget or NetworkPolicy picks pods.

    A Service's ``spec.selector`` is a plain label map: it comes back as ``matchLabels``.
    Other kinds select no pods (an empty mapping).
    """
    kind = kind_of(obj)
    spec = as_map(obj.get("spec"))
    if kind == "Service":
        return {"matchLabels": as_map(spec.get("selector"))}
    if kind == "PodDisruptionBudget":
        return as_map(spec.get("selector"))
    if kind == "NetworkPolicy":
        return as_map(spec.get("podSelector"))
    return _EMPTY


def workload_selector(obj: K8sObject) -> Mapping[str, Any]:
    """``spec.selector`` of a Deployment/StatefulSet/DaemonSet/ReplicaSet/Job (else empty)."""
    return as_map(as_map(obj.get("spec")).get("selector"))
