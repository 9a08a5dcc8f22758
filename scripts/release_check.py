"""What the release workflow (``.github/workflows/release.yml``) decides, as plain functions.

A release is a tag ``vX.Y.Z`` pushed on a commit where everything already names that version:

``check --tag vX.Y.Z``
    the tag, the version of ``hardened-k8s`` (``components/pyproject.toml``), the version of
    ``hardened-k8s-rules`` (``rules/pyproject.toml``), the library's exact pin of the rules,
    and the top version section of ``components/CHANGELOG.md`` (not marked ``unreleased``)
    all agree. Exit 1 with each disagreement named and how to fix it.
``compat --tag vX.Y.Z``
    runs ``scripts/api_check.py --against <previous tag>``: the public API against the
    newest release tag below this one (by version, not by name), so a breaking change needs a
    major bump (a minor one while 0.x). With no earlier tag it checks against
    ``components/api-baseline.txt``.
``package --tag vX.Y.Z --out DIR``
    writes the component package, ``hardened-k8s-component-package-X.Y.Z.tar.gz``: the
    source-based plugin of ``components/provider`` requiring ``hardened-k8s==X.Y.Z`` from the
    package index, and the ``schema.json`` the installed plugin serves.

Each runs offline but for ``package``, which starts the plugin the library installs.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAG_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
VERSION_RE = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)
SECTION_RE = re.compile(r"^## (\d+\.\d+\.\d+)\b(.*)$", re.MULTILINE)
LIBRARY, RULES = "components", "rules"
PACKAGE_FILES = ("PulumiPlugin.yaml", "__main__.py")
"""Files of ``components/provider`` the component package carries as they are."""

Version = tuple[int, int, int]


class ReleaseError(Exception):
    """A release that must not go ahead; the message says why and what to change."""


def tag_version(tag: str) -> str:
    """``X.Y.Z`` of a release tag ``vX.Y.Z``; anything else is refused."""
    match = TAG_RE.match(tag)
    if match is None:
        raise ReleaseError(f"tag {tag!r} is not a release tag; push a tag of the form vX.Y.Z (e.g. v0.2.0)")
    return tag[1:]


def _parse(version: str) -> Version:
    major, minor, patch = (int(part) for part in version.split("."))
    return major, minor, patch


def project_version(root: Path, project: str) -> tuple[str, str]:
    """``(distribution name, version)`` of ``<project>/pyproject.toml``: its static version, or
    the ``__version__`` its ``[tool.setuptools.dynamic]`` attribute names."""
    pyproject = tomllib.loads((root / project / "pyproject.toml").read_text())
    name: str = pyproject["project"]["name"]
    if "version" in pyproject["project"]:
        return name, str(pyproject["project"]["version"])
    attr: str = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    module = attr.removesuffix(".__version__").replace(".", "/")
    where = pyproject["tool"]["setuptools"].get("packages", {}).get("find", {}).get("where", ["."])[0]
    init = root / project / where / module / "__init__.py"
    match = VERSION_RE.search(init.read_text())
    if match is None:
        raise ReleaseError(f'{init.relative_to(root)} has no __version__ = "X.Y.Z"')
    return name, match.group(1)


def changelog_version(root: Path) -> tuple[str, str]:
    """The top version section of ``components/CHANGELOG.md``: ``(version, rest of the heading)``."""
    match = SECTION_RE.search((root / LIBRARY / "CHANGELOG.md").read_text())
    if match is None:
        raise ReleaseError("components/CHANGELOG.md has no '## X.Y.Z' section")
    return match.group(1), match.group(2).strip()


def unreleased_entries(root: Path) -> bool:
    """Whether ``components/CHANGELOG.md`` has a non-empty ``## Unreleased`` section above its
    top version section: changes that would ship in the release without being listed in it."""
    text = (root / LIBRARY / "CHANGELOG.md").read_text()
    match = SECTION_RE.search(text)
    head = text[: match.start()] if match else text
    unreleased = re.search(r"^## Unreleased\b.*$", head, re.MULTILINE | re.IGNORECASE)
    return unreleased is not None and bool(head[unreleased.end() :].strip())


def agreement_problems(tag: str, root: Path = ROOT) -> list[str]:
    """Everything that disagrees with the release tag ``tag`` (empty: release it)."""
    try:
        version = tag_version(tag)
    except ReleaseError as error:
        return [str(error)]
    problems = []
    for project in (LIBRARY, RULES):
        name, found = project_version(root, project)
        if found != version:
            problems.append(
                f"{project}/pyproject.toml: {name} is version {found}, the tag is {tag}; "
                f"set __version__ to {version} or tag v{found}"
            )
    dependencies = tomllib.loads((root / LIBRARY / "pyproject.toml").read_text())["project"]["dependencies"]
    rules_name = project_version(root, RULES)[0]
    if f"{rules_name}=={version}" not in dependencies:
        problems.append(
            f'{LIBRARY}/pyproject.toml does not require "{rules_name}=={version}"; pin it exactly'
        )
    top, heading = changelog_version(root)
    if top != version:
        problems.append(
            f"components/CHANGELOG.md: the top section is {top}, the tag is {tag}; add '## {version}'"
        )
    elif "unreleased" in heading.lower():
        problems.append(
            f"components/CHANGELOG.md: '## {top} {heading}' is marked unreleased; "
            f"replace the mark with the release date"
        )
    if unreleased_entries(root):
        problems.append(
            f"components/CHANGELOG.md has entries under '## Unreleased'; move them into '## {version}'"
        )
    return problems


def previous_tag(tag: str, tags: Iterable[str]) -> str | None:
    """The newest release tag below ``tag``, by version (``v0.10.0`` after ``v0.9.0``)."""
    current = _parse(tag_version(tag))
    earlier = [t for t in tags if TAG_RE.match(t) and _parse(t[1:]) < current]
    return max(earlier, key=lambda t: _parse(t[1:]), default=None)


def git_tags(root: Path = ROOT) -> list[str]:
    """The repository's tags (the release workflow checks out the whole history)."""
    listed = subprocess.run(["git", "-C", str(root), "tag", "--list", "v*"], capture_output=True, text=True)
    if listed.returncode != 0:
        raise ReleaseError(f"git tag failed: {listed.stderr.strip()}")
    return listed.stdout.split()


def compat_command(tag: str, tags: Iterable[str], python: str = sys.executable) -> list[str]:
    """The API check of ``tag`` against the previous release (the baseline file when none)."""
    command = [python, str(ROOT / "scripts" / "api_check.py")]
    previous = previous_tag(tag, tags)
    return command if previous is None else [*command, "--against", previous]


def requirement_of(version: str) -> str:
    """``requirements.txt`` of the released plugin: the library from the index, exactly."""
    header = f"# The hardened-k8s component package {version}: the library from the package index."
    return f"{header}\nhardened-k8s=={version}\n"


def plugin_schema(plugin: Path) -> dict[str, object]:
    """The schema the component package's plugin serves, asked over gRPC as the engine asks."""
    import grpc
    from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

    # The engine's address is only dialled for Construct; GetSchema needs none.
    process = subprocess.Popen([str(plugin), "127.0.0.1:1"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            reply = stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=60)
        schema: dict[str, object] = json.loads(reply.schema)
        return schema
    finally:
        process.terminate()
        process.wait(timeout=30)


def build_package(tag: str, out: Path, plugin: Path, root: Path = ROOT) -> Path:
    """Write the component package of ``tag`` into ``out``; its schema must name the version."""
    version = tag_version(tag)
    schema = plugin_schema(plugin)
    if (schema.get("name"), schema.get("version")) != ("hardened-k8s", version):
        raise ReleaseError(
            f"the plugin serves {schema.get('name')} {schema.get('version')}, not hardened-k8s {version}; "
            "install the library of this commit first"
        )
    prefix = f"hardened-k8s-component-package-{version}"
    files = {name: (root / LIBRARY / "provider" / name).read_bytes() for name in PACKAGE_FILES}
    files["requirements.txt"] = requirement_of(version).encode()
    files["schema.json"] = (json.dumps(schema, indent=2, sort_keys=True) + "\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    archive = out / f"{prefix}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(f"{prefix}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return archive


def main(argv: Sequence[str] | None = None, run: Callable[[list[str]], int] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["check", "compat", "package"])
    parser.add_argument("--tag", required=True, help="the release tag, vX.Y.Z")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "dist", help="package: output directory (default dist)"
    )
    parser.add_argument(
        "--plugin",
        type=Path,
        default=Path(sys.executable).parent / "pulumi-resource-hardened-k8s",
        help="package: the installed plugin (default: beside this interpreter)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            problems = agreement_problems(args.tag)
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            if not problems:
                print(
                    f"release {args.tag}: tag, both pyproject versions, the rules pin and the changelog agree"
                )
            return 1 if problems else 0
        if args.command == "compat":
            command = compat_command(args.tag, git_tags())
            print("+ " + " ".join(command[1:]), flush=True)
            return (run or (lambda c: subprocess.run(c).returncode))(command)
        archive = build_package(args.tag, args.out, args.plugin)
        print(f"component package: {archive}")
        return 0
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
