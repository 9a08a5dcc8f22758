"""Formats the API server or the image build enforce, checked where the user writes them.

Each checker takes a string and returns it unchanged, or raises ``ValueError`` with what is
wrong and how to fix it (the config models wrap the checkers with the key). The grammars are
Kubernetes' (apimachinery's DNS-1123 names, the Ingress host rules), the distribution
project's image reference grammar, and the platforms BuildKit builds. Where this library is
stricter than the API server, the docstring says why (docs/input-checks.md lists them).
"""

from __future__ import annotations

import ipaddress
import re

DNS_1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1123_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_MAX = 63
_SUBDOMAIN_MAX = 253


def _suggest_name(value: str) -> str:
    """A name Kubernetes accepts that is close to ``value`` (lower case, '-' for the rest)."""
    name = re.sub(r"[^a-z0-9.-]+", "-", value.lower()).strip("-.")
    return re.sub(r"-*\.-*", ".", name) or "my-name"


def dns_1123_label(value: str) -> str:
    """A DNS-1123 label (a namespace): at most 63 lower-case letters, digits and '-',
    alphanumeric at both ends."""
    if len(value) > _LABEL_MAX or not DNS_1123_LABEL_RE.fullmatch(value):
        suggestion = _suggest_name(value).replace(".", "-")[:_LABEL_MAX].strip("-")
        raise ValueError(
            f'"{value}" is not a DNS-1123 label; use at most 63 lower-case letters, digits and '
            f"'-', starting and ending with a letter or digit (e.g. \"{suggestion or 'my-name'}\")"
        )
    return value


def dns_1123_subdomain(value: str) -> str:
    """A DNS-1123 subdomain (the name of a Secret, an IngressClass, a StorageClass): at most
    253 characters of lower-case letters, digits, '-' and '.', alphanumeric at both ends of
    every dot-separated part."""
    if len(value) > _SUBDOMAIN_MAX or not DNS_1123_SUBDOMAIN_RE.fullmatch(value):
        raise ValueError(
            f'"{value}" is not a DNS-1123 subdomain; use at most 253 lower-case letters, digits, '
            f"'-' and '.', each dot-separated part starting and ending with a letter or digit "
            f'(e.g. "{_suggest_name(value)[:_SUBDOMAIN_MAX]}")'
        )
    return value


def ingress_host(value: str) -> str:
    """A host an Ingress rule and its TLS entry accept: a DNS-1123 subdomain, optionally
    ``*.`` followed by one (a wildcard covers exactly one label), never an IP address.

    Stricter than the API server on purpose: every dot-separated label has at most 63
    characters, since a longer one cannot be resolved or named in a certificate.
    """
    name = value.removeprefix("*.")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise ValueError(
            f'"{value}" is an IP address; an Ingress host must be a DNS name, e.g. mcp.example.com'
        )
    if "*" in name:
        raise ValueError(
            f'"{value}" has a "*" that is not the whole first label; a wildcard host is "*." and a '
            "DNS name, e.g. *.example.com"
        )
    if len(value) > _SUBDOMAIN_MAX or not DNS_1123_SUBDOMAIN_RE.fullmatch(name):
        raise ValueError(
            f'"{value}" is not a DNS name an Ingress accepts; use lower-case letters, digits, '
            f"'-' and '.', each label starting and ending with a letter or digit, optionally "
            f'after "*." (e.g. "{_suggest_name(name) or "mcp.example.com"}")'
        )
    long = [label for label in name.split(".") if len(label) > _LABEL_MAX]
    if long:
        raise ValueError(
            f'"{value}" has a label of {len(long[0])} characters; DNS allows at most 63 per label'
        )
    return value


# --- Image references (the distribution project's reference grammar) -----------------------

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_REGISTRY_RE = re.compile(rf"^{_DOMAIN}(?:/{_PATH_COMPONENT})*$")
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
REPOSITORY_MAX = 255
"""Longest repository name (registry and path) the distribution grammar allows."""


def _split_reference(value: str) -> tuple[str, str | None, str | None]:
    """``repository``, ``tag`` and ``digest`` of ``repo[:tag][@digest]`` (each part unchecked)."""
    name, _, digest = value.partition("@")
    repository, tag = name, None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = name.rsplit(":", 1)
    return repository, tag, digest or None


def image_reference(value: str) -> str:
    """``repository@sha256:<64 hex digits>`` or ``repository:tag`` (also both: ``repo:tag@sha256:..``).

    The repository is ``[registry[:port]/]path``: its path lower-case (``quay.io/org/app``),
    at most 255 characters. A digest is sha256, the one algorithm registries serve.
    """
    if value != value.strip() or any(c.isspace() for c in value):
        raise ValueError(f'"{value}" contains white space; an image reference has none')
    if "://" in value:
        raise ValueError(
            f'"{value}" has a URL scheme; an image reference has none, e.g. quay.io/org/app@sha256:<digest>'
        )
    repository, tag, digest = _split_reference(value)
    if not _REPOSITORY_RE.fullmatch(repository):
        lower = repository.split("/", 1)
        hint = ""
        if repository != repository.lower() and _REPOSITORY_RE.fullmatch(
            "/".join([lower[0], lower[1].lower()]) if len(lower) == 2 else repository.lower()
        ):
            hint = " (the repository path must be lower-case)"
        raise ValueError(
            f'"{value}" is not an image reference{hint}; use registry/path:tag or '
            "registry/path@sha256:<64 hex digits>, the path of lower-case letters, digits and "
            "'.', '_', '-' between them, e.g. quay.io/org/app@sha256:<digest>"
        )
    if len(repository) > REPOSITORY_MAX:
        raise ValueError(f'"{value}" has a repository of {len(repository)} characters; at most 255')
    if tag is not None and not TAG_RE.fullmatch(tag):
        raise ValueError(
            f"\"{value}\" has the tag \"{tag}\"; a tag is at most 128 letters, digits, '_', '.' "
            "and '-', not starting with '.' or '-'"
        )
    if digest is not None and not _SHA256_RE.fullmatch(digest):
        raise ValueError(
            f'"{value}" has the digest "{digest}"; use sha256: and 64 lower-case hex digits '
            "(as the registry reports it)"
        )
    if tag is None and digest is None:
        raise ValueError(
            f'"{value}" names no tag or digest; pin it as {value}@sha256:<digest> '
            f"(or {value}:<tag> outside production)"
        )
    return value


def repository(value: str) -> str:
    """An image repository without tag or digest, ``registry[:port]/path`` (``quay.io/org/app``)."""
    if not _REPOSITORY_RE.fullmatch(value) or len(value) > REPOSITORY_MAX:
        raise ValueError(
            f'"{value}" is not an image repository; use registry/path (at most 255 characters), '
            "the path of lower-case letters, digits and '.', '_', '-' between them, e.g. quay.io/org/app"
        )
    return value


def tag(value: str) -> str:
    """An image tag: at most 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'."""
    if not TAG_RE.fullmatch(value):
        raise ValueError(
            f"\"{value}\" is not an image tag; use at most 128 letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'"
        )
    return value


def registry(value: str) -> str:
    """Where images are pushed: ``registry[:port][/path]`` (``quay.io/ecosystem-appeng``),
    without a scheme, tag or trailing '/'; the path lower-case."""
    if "://" in value:
        host = value.split("://", 1)[1]
        raise ValueError(f'"{value}" has a URL scheme; drop it: "{host}"')
    if not _REGISTRY_RE.fullmatch(value):
        raise ValueError(
            f'"{value}" is not a registry and organisation; use host[:port]/org, the org of '
            "lower-case letters, digits and '.', '_', '-' between them, without a trailing '/' "
            "(e.g. quay.io/ecosystem-appeng)"
        )
    if len(value) > REPOSITORY_MAX - 2:
        raise ValueError(f'"{value}" is {len(value)} characters; an image repository has at most 255')
    return value


# --- Build platforms (what BuildKit builds) -------------------------------------------------

PLATFORM_VARIANTS: dict[str, tuple[str, ...]] = {
    "amd64": ("v1", "v2", "v3", "v4"),
    "arm64": ("v8",),
    "arm": ("v5", "v6", "v7"),
    "386": (),
    "ppc64le": (),
    "s390x": (),
    "riscv64": (),
    "mips64le": (),
    "mips64": (),
    "loong64": (),
}
"""Linux architectures BuildKit builds (with QEMU where not native), and their variants."""
_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "armhf": "arm/v7",
    "armel": "arm/v6",
    "i386": "386",
    "i686": "386",
    "x86": "386",
}


def platform(value: str) -> str:
    """One build platform, ``linux/<arch>[/<variant>]`` (default ``linux/amd64``).

    Only ``linux``: the pods' hardening (seccomp, non-root UIDs, read-only root) is Linux's.
    """
    if "," in value:
        raise ValueError(
            f'"{value}" names several platforms; each image is built for one: pick one, e.g. "linux/amd64"'
        )
    parts = value.split("/")
    known = ", ".join(f"linux/{arch}" for arch in PLATFORM_VARIANTS)
    if len(parts) not in (2, 3) or parts[0] != "linux":
        arch = parts[-1] if parts else value
        alias = _ARCH_ALIASES.get(arch.lower(), arch.lower())
        hint = f'"linux/{alias}"' if alias.split("/")[0] in PLATFORM_VARIANTS else f"one of {known}"
        raise ValueError(f'"{value}" is not a build platform; use os/arch[/variant], e.g. {hint}')
    arch = parts[1]
    if arch not in PLATFORM_VARIANTS:
        known_alias = _ARCH_ALIASES.get(arch.lower())
        hint = f'"linux/{known_alias}"' if known_alias else f"one of {known}"
        raise ValueError(f'"{value}": BuildKit knows no architecture "{arch}"; use {hint}')
    if len(parts) == 3:
        variants = PLATFORM_VARIANTS[arch]
        if parts[2] not in variants:
            allowed = ", ".join(f"linux/{arch}/{v}" for v in variants) or f"linux/{arch} (no variant)"
            raise ValueError(f'"{value}": "{parts[2]}" is not a variant of {arch}; use {allowed}')
    return value


# --- HTTP paths -----------------------------------------------------------------------------

_PATH_CHARS_RE = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def http_path(value: str) -> str:
    """An absolute HTTP path (with an optional query) the kubelet can request as written.

    The API server takes any string here, but a space or a character that is not valid in a
    URL makes every probe fail, and the pod never becomes ready.
    """
    if not value.startswith("/"):
        raise ValueError(f'"{value}" must start with "/", e.g. "/{value.lstrip()}"')
    if not _PATH_CHARS_RE.fullmatch(value):
        bad = next(c for c in value if not _PATH_CHARS_RE.fullmatch("/" + c))
        shown = {" ": "a space", "\t": "a tab", "\n": "a line break"}.get(bad, f'"{bad}"')
        raise ValueError(
            f'"{value}" contains {shown}, which is not valid in a URL path; percent-encode it or remove it'
        )
    if _BAD_ESCAPE_RE.search(value):
        raise ValueError(f'"{value}" has a "%" not followed by two hex digits; write %25 for a literal "%"')
    return value


# --- Containerfile stages -------------------------------------------------------------------

_STAGE_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]*$")


def build_stage(value: str) -> str:
    """A Containerfile stage name (``FROM ... AS <name>``): a letter, then letters, digits,
    '_', '.' and '-'."""
    if not _STAGE_RE.fullmatch(value):
        raise ValueError(
            f'"{value}" is not a Containerfile stage name; use the name after AS in a FROM line, '
            "a letter then letters, digits, '_', '.' and '-' (e.g. runtime)"
        )
    return value


_PG_IDENTIFIER_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def postgres_identifier(value: str) -> str:
    """A PostgreSQL database or role name as the image's init creates it unquoted: a
    lower-case letter or '_', then lower-case letters, digits and '_', at most 63 bytes."""
    if not _PG_IDENTIFIER_RE.fullmatch(value):
        suggestion = re.sub(r"[^a-z0-9_]+", "_", value.lower()).strip("_")[:63] or "app"
        if suggestion[0].isdigit():
            suggestion = f"_{suggestion}"[:63]
        raise ValueError(
            f'"{value}" is not a PostgreSQL name; use at most 63 lower-case letters, digits and '
            f'"_", not starting with a digit (e.g. "{suggestion}")'
        )
    return value
