"""scripts/release_check.py: what the release workflow decides, offline.

The version agreement runs on copies of the repository's own pyproject files, version
modules and changelog, changed the way a careless release would change them; the previous
tag and the compatibility command on tag lists; the component package (tools tier) is built
from the real plugin the library installs.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

import hardened_k8s

from ..conftest import ROOT

VERSION = hardened_k8s.__version__
TAG = f"v{VERSION}"


def _script() -> ModuleType:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return importlib.import_module("release_check")
    finally:
        sys.path.remove(str(ROOT / "scripts"))


release_check = _script()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The files the release check reads, copied, with the changelog's top section released."""
    for path in [
        "components/pyproject.toml",
        "components/CHANGELOG.md",
        "components/src/hardened_k8s/__init__.py",
        "rules/pyproject.toml",
        "rules/src/hardened_k8s_rules/__init__.py",
    ]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    changelog = tmp_path / "components" / "CHANGELOG.md"
    changelog.write_text(
        re.sub(r"^## (\S+) \(unreleased\)$", r"## \1 (2026-12-04)", changelog.read_text(), flags=re.M)
    )
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def test_the_tag_both_versions_the_pin_and_the_changelog_agree(tree: Path) -> None:
    assert release_check.agreement_problems(TAG, tree) == []
    assert release_check.project_version(tree, "components") == ("hardened-k8s", VERSION)
    assert release_check.project_version(tree, "rules") == ("hardened-k8s-rules", VERSION)


def test_the_repository_agrees_with_its_own_version_but_for_the_unreleased_changelog() -> None:
    """As committed, only the changelog's unreleased state (an ``(unreleased)`` mark, entries
    under ``## Unreleased``) stands between the repository and its release."""
    problems = release_check.agreement_problems(TAG)
    assert all("marked unreleased" in p or "entries under '## Unreleased'" in p for p in problems), problems


@pytest.mark.parametrize("tag", ["v9.9.9", "v0.2.1", "0.2.0", "v0.2", "release-0.2.0", "v0.2.0-rc1"])
def test_a_tag_that_is_not_the_version_is_refused(tree: Path, tag: str) -> None:
    problems = release_check.agreement_problems(tag, tree)
    assert problems
    if re.fullmatch(r"v\d+\.\d+\.\d+", tag):
        assert any(f"hardened-k8s is version {VERSION}, the tag is {tag}" in p for p in problems), problems
        assert any(f"hardened-k8s-rules is version {VERSION}, the tag is {tag}" in p for p in problems)
        assert any(f"the top section is {VERSION}, the tag is {tag}" in p for p in problems)
    else:
        assert problems == [f"tag {tag!r} is not a release tag; push a tag of the form vX.Y.Z (e.g. v0.2.0)"]


def test_a_rules_version_behind_the_library_is_refused(tree: Path) -> None:
    _edit(tree / "rules/src/hardened_k8s_rules/__init__.py", f'"{VERSION}"', '"0.1.9"')
    assert release_check.agreement_problems(TAG, tree) == [
        f"rules/pyproject.toml: hardened-k8s-rules is version 0.1.9, the tag is {TAG}; "
        f"set __version__ to {VERSION} or tag v0.1.9"
    ]


def test_a_loose_rules_pin_is_refused(tree: Path) -> None:
    _edit(
        tree / "components/pyproject.toml",
        f'"hardened-k8s-rules=={VERSION}"',
        f'"hardened-k8s-rules>={VERSION}"',
    )
    assert release_check.agreement_problems(TAG, tree) == [
        f'components/pyproject.toml does not require "hardened-k8s-rules=={VERSION}"; pin it exactly'
    ]


def test_an_unreleased_or_missing_changelog_section_is_refused(tree: Path) -> None:
    changelog = tree / "components/CHANGELOG.md"
    _edit(changelog, f"## {VERSION} (2026-12-04)", f"## {VERSION} (unreleased)")
    assert ["marked unreleased" in p for p in release_check.agreement_problems(TAG, tree)] == [True]
    _edit(changelog, f"## {VERSION} (unreleased)", "## Unreleased")
    assert release_check.agreement_problems(TAG, tree) == [
        f"components/CHANGELOG.md: the top section is 0.1.0, the tag is {TAG}; add '## {VERSION}'",
        f"components/CHANGELOG.md has entries under '## Unreleased'; move them into '## {VERSION}'",
    ]


def test_entries_left_under_unreleased_are_refused(tree: Path) -> None:
    changelog = tree / "components/CHANGELOG.md"
    _edit(
        changelog,
        f"## {VERSION} (2026-12-04)",
        f"## Unreleased\n\n- A late change.\n\n## {VERSION} (2026-12-04)",
    )
    assert release_check.agreement_problems(TAG, tree) == [
        f"components/CHANGELOG.md has entries under '## Unreleased'; move them into '## {VERSION}'"
    ]
    _edit(changelog, "- A late change.\n", "")
    assert release_check.agreement_problems(TAG, tree) == []


def test_the_previous_tag_is_the_newest_lower_version() -> None:
    tags = ["v0.1.0", "v0.2.0", "v0.9.0", "v0.10.0", "v0.10.1", "v1.0.0", "not-a-release", "v0.3.0-rc1"]
    assert release_check.previous_tag("v0.10.1", tags) == "v0.10.0"
    assert release_check.previous_tag("v0.11.0", tags) == "v0.10.1"
    assert release_check.previous_tag("v0.10.0", tags) == "v0.9.0"
    assert release_check.previous_tag("v0.1.0", tags) is None


def test_the_compat_check_runs_against_the_previous_tag() -> None:
    api_check = str(ROOT / "scripts" / "api_check.py")
    assert release_check.compat_command("v0.3.0", ["v0.1.0", "v0.2.0"], python="py") == [
        "py",
        api_check,
        "--against",
        "v0.2.0",
    ]
    # The first release tag has nothing before it: the check uses components/api-baseline.txt.
    assert release_check.compat_command("v0.2.0", [], python="py") == ["py", api_check]


@pytest.mark.tools
def test_compat_runs_the_api_check_it_names(capsys: pytest.CaptureFixture[str]) -> None:
    ran: list[list[str]] = []

    def run(command: list[str]) -> int:
        ran.append(command)
        return 0

    assert release_check.main(["compat", "--tag", TAG], run=run) == 0
    assert ran and ran[0][1] == str(ROOT / "scripts" / "api_check.py")
    assert capsys.readouterr().out.startswith("+ ")
    assert release_check.main(["compat", "--tag", "latest"], run=lambda c: 0) == 1


@pytest.mark.tools
def test_the_component_package_carries_the_plugin_and_its_schema(tmp_path: Path) -> None:
    plugin = Path(sys.executable).parent / "pulumi-resource-hardened-k8s"
    archive = release_check.build_package(TAG, tmp_path, plugin)
    assert archive.name == f"hardened-k8s-component-package-{VERSION}.tar.gz"
    prefix = f"hardened-k8s-component-package-{VERSION}"
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
        read = {name: tar.extractfile(name).read().decode() for name in names}  # type: ignore[union-attr]
    assert names == [
        f"{prefix}/{n}" for n in ["PulumiPlugin.yaml", "__main__.py", "requirements.txt", "schema.json"]
    ]
    assert read[f"{prefix}/PulumiPlugin.yaml"] == (ROOT / "components/provider/PulumiPlugin.yaml").read_text()
    assert f"\nhardened-k8s=={VERSION}\n" in read[f"{prefix}/requirements.txt"]
    schema = json.loads(read[f"{prefix}/schema.json"])
    assert (schema["name"], schema["version"]) == ("hardened-k8s", VERSION)
    assert "hardened-k8s:index:HardenedService" in schema["resources"]
    with pytest.raises(release_check.ReleaseError, match=r"serves hardened-k8s .*, not hardened-k8s 9\.9\.9"):
        release_check.build_package("v9.9.9", tmp_path, plugin)
