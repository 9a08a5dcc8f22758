"""The TypeScript example's pins: the packages ``npm ci`` installs are the ones its docs name, and
its ``@pulumi/pulumi`` suits both the toolchain's CLI and the Node.js the project supports.

The example itself runs in the cluster tier (``tests/cluster/test_typescript.py``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..conftest import ROOT

EXAMPLE = ROOT / "examples" / "typescript-service"
EXACT = re.compile(r"\d+\.\d+\.\d+")


def _json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLE / name).read_text())
    return data


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.removeprefix("v").split("."))


def _toolchain_pulumi() -> str:
    found = re.search(
        r'PULUMI_VERSION="\$\{PULUMI_VERSION:-(v[\d.]+)\}"', (ROOT / "scripts/toolchain.sh").read_text()
    )
    assert found, "scripts/toolchain.sh: no PULUMI_VERSION default"
    return found.group(1)


def test_every_package_is_pinned_exactly_and_locked_at_that_version() -> None:
    package, lock = _json("package.json"), _json("package-lock.json")
    wanted = {**package["dependencies"], **package["devDependencies"]}
    assert "@pulumi/pulumi" in package["dependencies"]
    for name, version in wanted.items():
        assert EXACT.fullmatch(version), f"package.json: {name} {version!r} is a range; pin one version"
        locked = lock["packages"][f"node_modules/{name}"]["version"]
        assert locked == version, (
            f"package-lock.json: {name} {locked}, package.json {version}; run npm install"
        )
    assert lock["packages"][""]["dependencies"] == package["dependencies"]
    assert lock["packages"][""]["devDependencies"] == package["devDependencies"]


def test_the_sdk_suits_the_toolchain_cli_and_the_supported_node() -> None:
    package, lock = _json("package.json"), _json("package-lock.json")
    sdk = package["dependencies"]["@pulumi/pulumi"]
    cli = _toolchain_pulumi()
    # An SDK older than (or as old as) the CLI, of the same major version, is what the engine
    # supports; a newer SDK may use protocol features the CLI lacks.
    assert _version(sdk)[0] == _version(cli)[0] and _version(sdk) <= _version(cli), (sdk, cli)
    # The SDK's own engines field is the project's: 3.249 and later need Node.js 22.
    sdk_engines = lock["packages"]["node_modules/@pulumi/pulumi"]["engines"]["node"]
    assert sdk_engines == package["engines"]["node"], (
        f"@pulumi/pulumi {sdk} needs Node.js {sdk_engines}, the example declares {package['engines']['node']}"
    )
    assert "engine-strict=true" in (EXAMPLE / ".npmrc").read_text().splitlines()


def test_the_docs_name_the_pinned_versions() -> None:
    package = _json("package.json")
    sdk = package["dependencies"]["@pulumi/pulumi"]
    cli = _toolchain_pulumi()
    for doc in (ROOT / "docs" / "typescript.md", EXAMPLE / "README.md"):
        text = doc.read_text()
        assert f"`@pulumi/pulumi` {sdk}" in text or f"`@pulumi/pulumi` is pinned to {sdk}" in text, doc
        assert cli in text, f"{doc}: the toolchain's CLI {cli}"


def test_the_sdk_is_generated_never_committed() -> None:
    ignored = (EXAMPLE / ".gitignore").read_text().split()
    assert {"sdks/", "node_modules/", "bin/"} <= set(ignored)
    assert "@pulumi/hardened-k8s" not in json.dumps(_json("package.json"))
    tsconfig = _json("tsconfig.json")
    assert tsconfig["files"] == ["index.ts", "automation.ts"]
