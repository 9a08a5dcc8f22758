"""Stack config from raw data to a checked :class:`~hardened_k8s.config.StackConfig`.

Two passes, both before any resource exists: the pydantic models check each value, then
:func:`semantic_problems` checks what only the whole stack can tell (references between
services, production rules, files on disk). Every problem is reported with its key path
and a fix, all at once, as one :class:`~hardened_k8s.config.ConfigError`.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from hardened_k8s_rules.policy.rules.workload import made_up_digest
from hardened_k8s_rules.profiles import CLUSTER_DNS

from .config import ConfigError, StackConfig, is_pinned
from .formats import REPOSITORY_MAX
from .messages import describe
from .network import Peer
from .postgres import URL_KEY
from .workload import AUTH_TOKEN_KEY, FILE_SUFFIX, file_variable, peer_url_env

DNS_PORTS = frozenset(port for dns in CLUSTER_DNS.values() for port in dns.ports)
"""Ports a cluster DNS serves on (53, and 5353 on OpenShift): egress to them is only for the
cluster DNS (rule HARD-034), so no service another one calls may listen on them."""

M = TypeVar("M", bound=BaseModel)


def parse_stack_config(raw: Mapping[str, Any], *, root: Path) -> StackConfig:
    """Validate ``raw`` (camelCase keys, as in the stack file) into a
    :class:`~hardened_k8s.config.StackConfig`.

    ``root`` is the project directory that build contexts are relative to. Raises
    :class:`~hardened_k8s.config.ConfigError` listing every problem found.
    """
    try:
        config = StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        # Cross-references need only names, so they are checked on the raw data and
        # reported with the type and value errors rather than after they are fixed.
        problems = [describe_error(err) for err in exc.errors()]
        problems += [p for p in reference_problems(raw) if p not in problems]
        raise ConfigError(problems) from None
    problems = semantic_problems(config, root=root)
    if problems:
        raise ConfigError(problems)
    return config


def validate_model(model: type[M], raw: Any, *, path: str = "") -> M:
    """Validate ``raw`` into ``model``, raising :class:`~hardened_k8s.config.ConfigError` with
    key paths under ``path``.

    For programs that take one library model (e.g. a ``ServiceSpec``) from their own config.
    """
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [describe_error(err, root=model) for err in exc.errors()]
        if path:
            problems = [(f"{path}.{p}" if p else path, m) for p, m in problems]
        raise ConfigError(problems) from None


def semantic_problems(config: StackConfig, *, root: Path) -> list[tuple[str, str]]:
    """Problems that no single value shows: references, names, production rules, build contexts."""
    problems = reference_problems(config.model_dump(by_alias=True))
    problems += name_collisions(config)
    services = config.services
    for name, svc in services.items():
        base = f"services.{name}"
        for key, source in sorted(injected_env(config, name).items()):
            if key in svc.env:
                problems.append(
                    (
                        f"{base}.env.{key}",
                        f"is set by the library ({source}); remove it from env, the injected "
                        "value would be shadowed or shadow it",
                    )
                )
            secret = key.removesuffix(FILE_SUFFIX)
            if secret != key and secret in svc.env:
                problems.append(
                    (
                        f"{base}.env.{secret}",
                        f"is a secret the library mounts as a file ({source}, path in {key}); "
                        "remove it from env: a secret in an environment variable leaks into "
                        "the object, the state and every child process",
                    )
                )
        problems += _opt_outs_without_exemption(config, name)
        build = svc.image.build
        repository = f"{config.registry}/{name}"
        if build is not None and len(repository) > REPOSITORY_MAX:
            problems.append(
                (
                    "registry",
                    f"with service {name} the image repository {repository} has {len(repository)} "
                    f"characters, more than the {REPOSITORY_MAX} a registry takes; shorten registry",
                )
            )
        if build is not None:
            context = root / build.context
            if not context.is_dir():
                problems.append(
                    (
                        f"{base}.image.build.context",
                        f"directory {build.context!r} does not exist; "
                        "give a path relative to the project directory",
                    )
                )
            elif not (context / build.containerfile).is_file():
                problems.append(
                    (
                        f"{base}.image.build.containerfile",
                        f"{build.containerfile!r} not found in {build.context!r}",
                    )
                )
        if config.production:
            if svc.image.ref is not None and made_up_digest(svc.image.ref):
                problems.append((f"{base}.image.ref", _PLACEHOLDER_DIGEST.format(ref=svc.image.ref)))
            if not svc.image.pinned:
                problems.append(
                    (
                        f"{base}.image.ref",
                        f"{svc.image.ref!r} has no digest; production deploys "
                        "only repo@sha256:<digest> (or build the image)",
                    )
                )
            if svc.min_replicas < 2:
                problems.append(
                    (
                        base,
                        f"runs {svc.min_replicas} replica in production; set replicas or "
                        "autoscaling.minReplicas to at least 2",
                    )
                )
    db_ref = config.database.image.ref if config.database else None
    if config.production and db_ref is not None and made_up_digest(db_ref):
        problems.append(("database.image.ref", _PLACEHOLDER_DIGEST.format(ref=db_ref)))
    if config.production and db_ref is not None and not is_pinned(db_ref):
        problems.append(
            (
                "database.image.ref",
                f'"{db_ref}" has no digest; production deploys only repo@sha256:<digest> '
                "(or build the image)",
            )
        )
    return problems


_PLACEHOLDER_DIGEST = (
    '"{ref}" has a placeholder digest (all zeros or a repeated pattern) that no registry serves, '
    "so production pods would never start (rule HARD-035); pin the digest the registry reports "
    "(skopeo inspect docker://<repo>:<tag>), or build the image"
)


OPT_OUT_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "writableRootFilesystem": (("HARD-001", "Deployment"),),
    "serviceAccountToken": (("HARD-002", "Deployment"), ("HARD-003", "ServiceAccount")),
}
"""The rules each ``optOuts`` key breaks, and the kind of object the finding is on."""


def _opt_outs_without_exemption(config: StackConfig, service: str) -> list[tuple[str, str]]:
    """An opt-out is a decision to break a mandatory rule: it needs the exemption that says why."""
    problems = []
    opt_outs = config.services[service].opt_outs.model_dump(by_alias=True)
    for key, rules in OPT_OUT_RULES.items():
        if not opt_outs.get(key):
            continue
        for rule, kind in rules:
            if any(e.matches(rule, kind, service, config.namespace) for e in config.policy_exemptions):
                continue
            problems.append(
                (
                    f"services.{service}.optOuts.{key}",
                    f"breaks rule {rule} and no exemption says why; add to policyExemptions: "
                    f"{{rule: {rule}, resource: {kind}/{service}, reason: <why, and what "
                    "replaces the control>}, or remove the opt-out",
                )
            )
    return problems


def reference_problems(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``ingressFrom``/``egressTo`` that name no service (or database), or only one side of a
    link, and a called service listening on a DNS port.

    Works on raw stack data, tolerating values of the wrong type (those are the models'
    errors), so it can run whether or not the models accept the rest.
    """
    services_raw = raw.get("services")
    services: dict[str, Mapping[str, Any]] = {
        str(k): v
        for k, v in (services_raw.items() if isinstance(services_raw, Mapping) else ())
        if isinstance(v, Mapping)
    }
    db_raw = raw.get("database")
    database = None
    if isinstance(db_raw, Mapping):
        database = db_raw.get("name", "postgresql")
        database = database if isinstance(database, str) else None

    def names(spec: Mapping[str, Any], key: str) -> list[str]:
        value = spec.get(key, spec.get(_snake(key)))
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    problems: list[tuple[str, str]] = []
    targets = sorted([*services, *([database] if database else [])])
    for name, svc in services.items():
        base = f"services.{name}"
        for peer in names(svc, "ingressFrom"):
            if peer not in services:
                problems.append(
                    (f"{base}.ingressFrom", f"{peer!r} is not a service of this stack ({_known(services)})")
                )
            elif name not in names(services[peer], "egressTo"):
                problems.append(
                    (
                        f"services.{peer}.egressTo",
                        f"does not list {name!r}, but services.{name}.ingressFrom admits "
                        f"{peer!r}; add {name!r} to it or remove {peer!r} from ingressFrom",
                    )
                )
        for peer in names(svc, "egressTo"):
            if peer == name:
                problems.append((f"{base}.egressTo", f"names the service itself ({name!r})"))
            elif peer not in targets:
                problems.append(
                    (
                        f"{base}.egressTo",
                        f"{peer!r} is not a service or database of this stack ({_known(targets)})",
                    )
                )
            elif peer in services:
                port = _port(services[peer].get("port"))
                if port in DNS_PORTS:
                    problems.append(
                        (
                            f"services.{peer}.port",
                            f"is {port}, a DNS port, and services.{name}.egressTo names {peer!r}: "
                            "egress on a DNS port goes only to the cluster DNS (rule HARD-034); "
                            "use another port",
                        )
                    )
                if name not in names(services[peer], "ingressFrom"):
                    problems.append(
                        (
                            f"services.{peer}.ingressFrom",
                            f"does not list {name!r}, but services.{name}.egressTo names {peer!r}; "
                            f"add {name!r} to it or remove {peer!r} from egressTo",
                        )
                    )
    return problems


def _port(value: Any) -> int | None:
    """A port as the stack file or ``pulumi config set`` gives it (a number or its digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def injected_env(config: StackConfig, service: str) -> dict[str, str]:
    """Environment variables the library sets in ``service``'s container, and why.

    Keep in step with :class:`~hardened_k8s.system.ServiceSystem` and
    :class:`~hardened_k8s.workload.HardenedService`; a test compares the two on the rendered
    Deployments (every variable not in ``env`` must be listed here, and nothing more).
    """
    spec = config.services[service]
    injected: dict[str, str] = {"PORT": f"from services.{service}.port"}
    db = config.database
    if db is not None and db.name in spec.egress_to:
        injected[file_variable(URL_KEY)] = (
            f"the file of the Secret {db.name}-url, because egressTo names {db.name!r}"
        )
    for peer in spec.egress_to:
        if peer in config.services:
            key, _ = peer_url_env(Peer(peer, {}, config.services[peer].port))
            injected[key] = f"the URL of {peer!r}, because egressTo names it"
    if spec.bearer_auth:
        injected[file_variable(AUTH_TOKEN_KEY)] = (
            f"the file of the Secret {service}-auth, because bearerAuth is set"
        )
    if spec.expose is not None:
        injected["ALLOWED_HOSTS"] = "the exposed host and the Service names, because expose is set"
    return injected


def object_names(config: StackConfig) -> list[tuple[str, str, str]]:
    """``(kind, name, key path)`` of every Kubernetes object the stack declares.

    Mirrors the components' naming (:class:`~hardened_k8s.namespace.SecureNamespace`,
    :class:`~hardened_k8s.workload.HardenedService`, :class:`~hardened_k8s.postgres.PostgreSQL`);
    a test compares it with what the program renders.
    """
    found = [
        ("Namespace", config.namespace, "namespace"),
        ("NetworkPolicy", "default-deny", "namespace"),
        ("NetworkPolicy", "allow-dns", "namespace"),
    ]
    for name, svc in config.services.items():
        path = f"services.{name}"
        kinds = ["ServiceAccount", "Deployment", "Service", "NetworkPolicy"]
        if svc.expose is not None:
            kinds.append("Ingress")
        if svc.bearer_auth:
            found.append(("Secret", f"{name}-auth", f"{path}.bearerAuth"))
        if svc.autoscaling is not None:
            kinds.append("HorizontalPodAutoscaler")
        if (svc.autoscaling.max_replicas if svc.autoscaling else svc.min_replicas) > 1:
            kinds.append("PodDisruptionBudget")
        found += [(kind, name, path) for kind in kinds]
    db = config.database
    if db is not None:
        found += [
            ("Secret", f"{db.name}-credentials", "database.name"),
            ("Secret", f"{db.name}-url", "database.name"),
            ("ServiceAccount", db.name, "database.name"),
            ("Service", f"{db.name}-headless", "database.name"),
            ("Service", db.name, "database.name"),
            ("StatefulSet", db.name, "database.name"),
            ("PersistentVolumeClaim", f"data-{db.name}-0", "database.name"),
            ("NetworkPolicy", db.name, "database.name"),
        ]
    return found


def name_collisions(config: StackConfig) -> list[tuple[str, str]]:
    """Two parts of the stack that would declare the same object (one would overwrite the other)."""
    owners: dict[tuple[str, str], str] = {}
    problems: list[tuple[str, str]] = []
    for kind, name, path in object_names(config):
        first = owners.setdefault((kind, name), path)
        if first != path:
            problem = (
                path,
                f"its {kind} would be named {name!r}, the name of the {kind} of {first}; rename one of them",
            )
            if problem not in problems:
                problems.append(problem)
    # A TLS Secret is the deployer's, referenced by name; one the library writes is never a certificate.
    created = {name: path for kind, name, path in object_names(config) if kind == "Secret"}
    for name, svc in config.services.items():
        if svc.expose is not None and svc.expose.tls_secret_name in created:
            problems.append(
                (
                    f"services.{name}.expose.tlsSecretName",
                    f"{svc.expose.tls_secret_name!r} is the Secret the library writes for "
                    f"{created[svc.expose.tls_secret_name]}, not a certificate; name the Secret "
                    "that holds your tls.crt and tls.key",
                )
            )
    return problems


def _known(names: typing.Iterable[str]) -> str:
    return "known: " + ", ".join(sorted(names))


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe_error(err: Any, root: type[BaseModel] = StackConfig) -> tuple[str, str]:
    """One pydantic error as (key path, message with the fix)."""
    # pydantic marks a bad dict key with a trailing "[key]"; the key itself is the path.
    loc = tuple(part for part in err["loc"] if part != "[key]")
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        known = _known_keys(loc[:-1], root)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f'did you mean "{close[0]}"? ' if close else ""
        return _path(loc), (f"unknown key; {hint}remove it or use one of: {', '.join(known)}")
    if kind == "missing":
        return _path(loc), "required key is missing; add it to the stack config"
    return _path(loc), describe(err)


def _known_keys(loc: tuple[int | str, ...], root: type[BaseModel]) -> list[str]:
    """camelCase keys accepted by the model found at ``loc`` under ``root`` (empty if none)."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if isinstance(part, int):  # a list index in front of a list's own model
                continue
            field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return []
            current = field.annotation
        else:
            args = [a for a in typing.get_args(current) if a is not type(None)]
            if not args:
                return []
            current = args[-1]  # dict[str, X] and list[X] both end with X
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(f.alias or n for n, f in current.model_fields.items())
    return []


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``; anything else unchanged."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
