"""Hypothesis strategies for whole stack configurations, over every key of the stack file.

:func:`stack_configs` draws a ``config:`` map (short, camelCase keys, as in
``Pulumi.<stack>.yaml``) that the library's own rules accept: names, quantities, image
references, platforms, paths and hosts up to their limits (63-character labels, 253-character
subdomains, wildcard hosts, quantities with exponents, signs and every suffix), services wired
to each other and to the database in both directions, production and both security profiles.
The unit tier renders them and checks schema and policy; the cluster tier also submits every
object to a real API server (server-side dry run).

:func:`refused_values` draws values each format check refuses, with the key they go to, for
the other direction: a refusal must name the key, and (in the cluster tier) the API server or
the build must refuse the value too unless the refusal is a documented hardening choice.
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

from hardened_k8s.config import SUPPORTED_KUBERNETES_VERSIONS
from hardened_k8s.formats import PLATFORM_VARIANTS
from hardened_k8s.validation import DNS_PORTS
from hardened_k8s_rules.policy.rules.workload import made_up_digest
from hardened_k8s_rules.profiles import PROFILES

RESERVED = {"default", "kube-system", "kube-public", "kube-node-lease"}
BUILD_CONTEXTS = ("services/store-api", "services/mcp-server")
"""Build contexts of the repository (relative to its root) that hold a Containerfile."""
INJECTED_ENV = {"PORT", "ALLOWED_HOSTS", "DATABASE_URL", "DATABASE_URL_FILE", "AUTH_TOKEN", "AUTH_TOKEN_FILE"}

_LOWER_ALNUM = string.ascii_lowercase + string.digits


def _joined(parts: st.SearchStrategy[list[str]], sep: str) -> st.SearchStrategy[str]:
    return parts.map(sep.join)


def dns_label(*, max_size: int = 63, first: str = _LOWER_ALNUM) -> st.SearchStrategy[str]:
    """A DNS label (DNS-1035 with ``first=ascii_lowercase``), often at its length limit."""
    middle_max = max(max_size - 2, 0)
    body = st.builds(
        lambda a, mid, z: (a + mid + z)[:max_size] if mid or z else a,
        st.sampled_from(first),
        st.text(alphabet=_LOWER_ALNUM + "-", max_size=middle_max),
        st.sampled_from(["", *_LOWER_ALNUM]),
    ).filter(lambda s: not s.endswith("-"))
    longest = st.builds(
        lambda a, z: a + "x" * (max_size - 2) + z,
        st.sampled_from(first),
        st.sampled_from(_LOWER_ALNUM),
    )
    return st.one_of(body, longest)


def dns_1035(max_size: int = 63) -> st.SearchStrategy[str]:
    return dns_label(max_size=max_size, first=string.ascii_lowercase)


def dns_subdomain() -> st.SearchStrategy[str]:
    """A DNS-1123 subdomain of up to 253 characters (labels of up to 63)."""
    return _joined(st.lists(dns_label(max_size=63), min_size=1, max_size=4), ".").filter(
        lambda s: len(s) <= 253
    )


def hosts() -> st.SearchStrategy[str]:
    """Ingress hosts: DNS names with 1-4 labels, sometimes a wildcard."""
    name = _joined(st.lists(dns_label(max_size=63), min_size=2, max_size=4), ".").filter(
        lambda s: len(s) <= 251 and not s.replace(".", "").isdigit()
    )
    return st.one_of(name, name.map(lambda s: f"*.{s}"))


def quantities(low: int, high: int, *, binary: bool) -> st.SearchStrategy[str]:
    """An amount in ``[low, high]`` base units, spelled every way the grammar allows."""

    def spell(amount: int, style: int) -> str:
        if binary and style == 0 and amount >= 2**20:
            return f"{amount // 2**20}Mi"
        if style == 1:
            return f"+{amount}"
        if style == 2 and amount % 1000 == 0:
            return f"{amount // 1000}e3"
        if style == 3 and amount % 1000 == 0:
            return f"{amount // 1000}k"
        return str(amount)

    return st.builds(spell, st.integers(low, high), st.integers(0, 4))


def cpu() -> st.SearchStrategy[str]:
    millis = st.integers(1, 64000)
    return st.one_of(
        millis.map(lambda m: f"{m}m"),
        millis.map(lambda m: f"{m / 1000:g}"),
        st.integers(1, 64).map(str),
        st.sampled_from(["1e-3", "0.5", ".25", "+2", "1E0"]),
    )


def memory() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(1, 65536).map(lambda n: f"{n}Mi"),
        st.integers(1, 64).map(lambda n: f"{n}Gi"),
        st.integers(1, 10**6).map(lambda n: f"{n}k"),
        quantities(2**20, 2**34, binary=True),
        st.sampled_from(["1Ti", "128974848", "129e6", "1e9", "256M"]),
    )


def resources() -> st.SearchStrategy[dict[str, Any]]:
    """Requests and limits with every limit at least its request."""
    from hardened_k8s.quantities import parse_quantity

    def pair(values: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str]]:
        def ordered(p: tuple[str, str]) -> tuple[str, str]:
            low, high = sorted(p, key=parse_quantity)
            return low, high

        return st.tuples(values, values).map(ordered)

    return st.builds(
        lambda c, m, e: {
            "requests": {"cpu": c[0], "memory": m[0], "ephemeralStorage": e[0]},
            "limits": {"cpu": c[1], "memory": m[1], "ephemeralStorage": e[1]},
        },
        pair(cpu()),
        pair(memory()),
        pair(memory()),
    )


def http_paths() -> st.SearchStrategy[str]:
    segment = st.text(
        alphabet=string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@", min_size=1, max_size=20
    )
    path = _joined(st.lists(segment, min_size=0, max_size=4), "/").map(lambda s: "/" + s)
    path = path.filter(lambda p: all(part not in (".", "..") for part in p.split("/")))
    return st.one_of(path, path.map(lambda p: p + "?probe=1"), st.just("/%20x"))


def label_values(max_size: int = 63) -> st.SearchStrategy[str]:
    alnum = string.ascii_letters + string.digits
    return st.builds(
        lambda a, mid, z: (a + mid + z)[:max_size] if mid else a,
        st.sampled_from(alnum),
        st.text(alphabet=alnum + "-_.", max_size=max_size - 2),
        st.sampled_from(alnum),
    ).filter(lambda v: v[-1].isalnum())


def versions() -> st.SearchStrategy[str]:
    """Both an image tag and a label value."""
    return label_values(63).filter(lambda v: v[0] not in ".-")


def image_refs(*, production: bool) -> st.SearchStrategy[str]:
    domain = st.sampled_from(
        ["quay.io", "registry.example.com:5000", "localhost:5000", "ghcr.io", "10.1.2.3:443"]
    )
    path = _joined(
        st.lists(
            st.from_regex(r"[a-z0-9]{1,8}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,8}){0,2}", fullmatch=True),
            min_size=1,
            max_size=3,
        ),
        "/",
    )
    repository = st.builds(lambda d, p: f"{d}/{p}", domain, path)
    digest = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"sha256:{h}")
    if production:  # rule HARD-035: no placeholder digest (all zeros, a repeated pattern)
        digest = digest.filter(lambda d: not made_up_digest(f"x@{d}"))
    pinned = st.builds(lambda r, d: f"{r}@{d}", repository, digest)
    tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
    # Rule HARD-011 wants a digest in every stack (a tag, allowed outside production by the
    # config, fails the render's policy); a tag may come with it.
    return st.one_of(pinned, st.builds(lambda r, t, d: f"{r}:{t}@{d}", repository, tag, digest))


def image_specs(*, production: bool) -> st.SearchStrategy[dict[str, Any]]:
    build = st.builds(
        lambda context, args: {
            "build": {"context": context, "containerfile": "Containerfile", "target": "runtime", "args": args}
        },
        st.sampled_from(BUILD_CONTEXTS),
        st.dictionaries(
            st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True), st.text(max_size=10), max_size=2
        ),
    )
    return st.one_of(build, image_refs(production=production).map(lambda r: {"ref": r}))


def writable_paths() -> st.SearchStrategy[list[str]]:
    segment = st.from_regex(r"[a-z0-9](?:[a-z0-9_-]{0,10}[a-z0-9])?", fullmatch=True)
    path = _joined(st.lists(segment, min_size=1, max_size=3), "/")
    return st.lists(
        path.map(lambda p: "/" + p),
        min_size=0,
        max_size=3,
        unique_by=lambda p: p.strip("/").replace("/", "-").replace("_", "-"),
    ).filter(lambda ps: all(len(p.strip("/")) <= 63 for p in ps))


def env_vars() -> st.SearchStrategy[dict[str, str]]:
    name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True).filter(
        lambda n: n not in INJECTED_ENV and not n.endswith(("_URL", "_FILE"))
    )
    return st.dictionaries(name, st.text(alphabet=string.printable, max_size=40), max_size=4)


@st.composite
def service_specs(draw: st.DrawFn, *, production: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "image": draw(image_specs(production=production)),
        # Not a DNS port: a service the others may call cannot listen there (rule HARD-034,
        # refused at the key; tests/unit/test_config_errors.py).
        "port": draw(
            st.one_of(st.integers(1, 65535), st.sampled_from([1, 80, 8080, 65535])).filter(
                lambda p: p not in DNS_PORTS
            )
        ),
        "component": draw(label_values()),
        "version": draw(versions()),
        "env": draw(env_vars()),
        "resources": draw(resources()),
        "probes": {
            "readinessPath": (readiness := draw(http_paths())),
            "livenessPath": draw(http_paths().filter(lambda p: p != readiness)),
            "startupAllowanceSeconds": draw(st.integers(5, 600)),
        },
        "runAsUser": draw(st.integers(10000, 2**31 - 1)),
        "writablePaths": draw(writable_paths()),
        "bearerAuth": draw(st.booleans()),
    }
    low = 2 if production else 1
    if draw(st.booleans()):
        floor = draw(st.integers(low, 10))
        spec["autoscaling"] = {
            "minReplicas": floor,
            "maxReplicas": draw(st.integers(floor, 20)),
            "cpuUtilization": draw(st.integers(1, 100)),
            "memoryUtilization": draw(st.integers(1, 100)),
            "scaleDownStabilizationSeconds": draw(st.integers(0, 3600)),
        }
    else:
        spec["replicas"] = draw(st.integers(low, 10))
    if draw(st.booleans()):
        spec["expose"] = {
            "host": draw(hosts()),
            "tlsSecretName": draw(dns_subdomain()),
            "ingressClassName": draw(dns_subdomain()),
            "controllerNamespace": draw(dns_label()),
        }
    return spec


@st.composite
def stack_configs(draw: st.DrawFn) -> dict[str, Any]:
    """A stack file's ``config:`` map (short keys) that the library accepts."""
    production = draw(st.booleans())
    names = draw(st.lists(dns_1035(63), min_size=1, max_size=3, unique=True))
    services = {name: draw(service_specs(production=production)) for name in names}
    config: dict[str, Any] = {
        "namespace": draw(dns_label().filter(lambda n: n not in RESERVED)),
        "registry": draw(
            st.sampled_from(["quay.io/ecosystem-appeng", "localhost:5000", "registry.example.com:443/a/b"])
        ),
        "kubernetesVersion": draw(st.sampled_from(SUPPORTED_KUBERNETES_VERSIONS)),
        "kubeContext": draw(st.text(max_size=20)),
        "partOf": draw(dns_1035()),
        "production": production,
        "platform": draw(
            st.sampled_from(
                [f"linux/{a}" for a in PLATFORM_VARIANTS]
                + [f"linux/{a}/{v}" for a, vs in PLATFORM_VARIANTS.items() for v in vs]
            )
        ),
        "securityProfile": draw(st.sampled_from(list(PROFILES))),
        "sourceUrl": draw(st.sampled_from(["", "https://example.com/repo.git"])),
        "imageRevision": draw(st.from_regex(r"[0-9a-f]{40}", fullmatch=True)),
        "services": services,
    }
    # Opt-outs, each with the exemptions that say why (the config refuses one without them).
    exemptions: list[dict[str, Any]] = []
    for name, spec in services.items():
        opt_outs = {"writableRootFilesystem": draw(st.booleans()), "serviceAccountToken": draw(st.booleans())}
        spec["optOuts"] = opt_outs
        rules = [("HARD-001", "Deployment")] if opt_outs["writableRootFilesystem"] else []
        rules += (
            [("HARD-002", "Deployment"), ("HARD-003", "ServiceAccount")]
            if opt_outs["serviceAccountToken"]
            else []
        )
        for rule, kind in rules:
            exemption = {
                "rule": rule,
                "resource": f"{kind}/{name}",
                "reason": "generated: the workload needs it",
            }
            if draw(st.booleans()):
                exemption["namespace"] = config["namespace"]
            exemptions.append(exemption)
    if exemptions:
        config["policyExemptions"] = exemptions
    if draw(st.booleans()):
        config["registryUsername"] = draw(st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,30}", fullmatch=True))
    if draw(st.booleans()):
        db_name = draw(
            dns_1035(52).filter(
                lambda n: n not in names and not any(n.startswith(s) or s.startswith(n) for s in names)
            )
        )
        config["database"] = {
            "name": db_name,
            "image": {"ref": draw(image_refs(production=True))},
            "database": draw(st.from_regex(r"[a-z_][a-z0-9_]{0,62}", fullmatch=True)),
            "user": draw(st.from_regex(r"[a-z_][a-z0-9_]{0,62}", fullmatch=True)),
            "storage": draw(
                st.one_of(
                    st.integers(1, 500).map(lambda n: f"{n}Gi"), st.sampled_from(["1e9", "+1Gi", "512Mi"])
                )
            ),
            "resources": draw(resources()),
            "version": draw(label_values()),
            "runAsUser": draw(st.integers(10000, 2**31 - 1)),
            "protect": draw(st.booleans()),
        }
        if draw(st.booleans()):
            config["database"]["storageClassName"] = draw(dns_subdomain())
        if draw(st.booleans()):
            # TLS-only modes need the database to serve TLS: its certificate's Secret.
            config["database"]["tlsSecretName"] = draw(dns_subdomain())
            config["database"]["sslmode"] = draw(st.sampled_from(["prefer", "require", "verify-full"]))
        elif draw(st.booleans()):
            config["database"]["sslmode"] = draw(st.sampled_from(["disable", "allow", "prefer"]))
        targets = [*names, db_name]
    else:
        targets = list(names)
    # Traffic: each edge a -> b is in a's egressTo and (for a service b) in b's ingressFrom.
    for name in names:
        others = [t for t in targets if t != name]
        egress = draw(st.lists(st.sampled_from(others), unique=True, max_size=len(others))) if others else []
        services[name]["egressTo"] = egress
        for target in egress:
            if target in services:
                services[target].setdefault("ingressFrom", []).append(name)
    return config


def _uppercased(names: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return names.filter(lambda n: any(c.isalpha() for c in n)).map(
        lambda n: n[0].upper() + n[1:] if n[0].isalpha() else n.upper()
    )


REFUSED: dict[str, st.SearchStrategy[str]] = {
    "namespace": st.one_of(
        st.sampled_from(["-ns", "Ns", "n" * 64, "ns.x", "ns_1"]),
        _uppercased(dns_label()),
        dns_label(max_size=62).map(lambda n: n + "_"),
    ),
    "expose.host": st.one_of(
        st.sampled_from(["10.0.0.1", "*.*.a.io", "a*.io", "A.io", "a_b.io", "-a.io", "a..io", "::1"]),
        _uppercased(hosts().filter(lambda h: not h.startswith("*"))),
        st.ip_addresses(v=4).map(str),
    ),
    "expose.tlsSecretName": st.one_of(
        st.sampled_from(["Tls", "tls_x", "-tls", "t" * 254]), _uppercased(dns_subdomain())
    ),
    "expose.ingressClassName": st.one_of(
        st.sampled_from(["Nginx", "nginx_x", "nginx-"]), dns_subdomain().map(lambda n: n + ".")
    ),
    "resources.requests.cpu": st.one_of(
        st.sampled_from(["-1", "-100m", "1GB", "1 m", "abc"]),
        cpu().filter(lambda q: not q.startswith("+")).map(lambda q: "-" + q),
    ),
    "database.storage": st.one_of(
        st.sampled_from(["0", "-1Gi", "1GB", "0Gi"]),
        memory().filter(lambda q: not q.startswith("+")).map(lambda q: "-" + q),
    ),
}
"""Values the library refuses that the API server refuses too (no hardening choice involved),
drawn from the generator's own strategies turned invalid, and a few hand-picked ones."""

HARDENING_CHOICES: dict[str, list[str]] = {
    "resources.requests.cpu": ["0", "0m"],
    "expose.host": ["a" * 64 + ".example.com"],
    "probes.readinessPath": ["/re ady", "/100%"],
}
"""Values the library refuses on purpose although the API server accepts them
(docs/input-checks.md says why); the cluster tier checks that the API server does accept them,
so the list of choices stays true."""


def refused_values() -> st.SearchStrategy[tuple[str, str]]:
    """``(key, value)``: a value every check of the key refuses."""
    return st.sampled_from(sorted(REFUSED)).flatmap(lambda key: REFUSED[key].map(lambda value: (key, value)))


def check_settings_of(config: dict[str, Any]) -> Any:
    """The render's :class:`~hardened_k8s.render.CheckSettings` of a generated ``config``, read
    as the render reads a stack file (version, production, exemptions, profile)."""
    from hardened_k8s.config import StackSettings
    from hardened_k8s.render import CheckSettings
    from hardened_k8s.validation import validate_model

    keys = {field.alias or name for name, field in StackSettings.model_fields.items()}
    settings = validate_model(StackSettings, {k: v for k, v in config.items() if k in keys})
    return CheckSettings(
        kubernetes_version=settings.kubernetes_version,
        production=settings.production,
        exemptions=tuple(settings.policy_exemptions),
        security_profile=settings.security_profile,
    )
