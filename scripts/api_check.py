"""API compatibility of ``hardened-k8s`` with its last release (``make lint`` runs it).

``components/api-baseline.txt`` names the last release and the commit it was made from. The
public API of the package (every module, class, function and attribute whose name has no
leading underscore) is loaded at that commit and in the working tree with griffe, and its
breaking changes listed: removed names, removed or reordered parameters, parameters made
required, changed defaults, changed base classes. The rules distribution
(``hardened_k8s_rules``, ``rules/src``), whose modules ``hardened_k8s`` re-exported under their
former names until 0.2.0, is loaded beside it, so that releases with those re-exports load.
Semantic Versioning decides:

* breaking changes need a major version bump over the baseline (while the major version is
  0, a minor bump: 0.1.x -> 0.2.0);
* a version that differs from the baseline needs its own ``## <version>`` section in
  ``components/CHANGELOG.md``;
* ``hardened_k8s_rules.__version__`` and the ``hardened-k8s-rules==`` pin of
  ``components/pyproject.toml`` equal ``hardened_k8s.__version__`` (the two are released in
  lockstep, and that is the one place the version is decided).

``--against REF`` compares with a git ref instead of the baseline file's commit (the release
workflow passes the previous release's tag), the version read from ``REF`` itself.

Exit status 0 when both hold, 1 with the breaking changes listed when not, 2 when the
baseline cannot be read (a shallow clone lacks the commit: fetch the whole history).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import griffe

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "hardened_k8s"
SOURCE = "components/src"
RULES_PACKAGE = "hardened_k8s_rules"
RULES_SOURCE = "rules/src"
BASELINE = ROOT / "components" / "api-baseline.txt"
CHANGELOG = ROOT / "components" / "CHANGELOG.md"
VERSION_RE = re.compile(r'^__version__ = "(\d+)\.(\d+)\.(\d+)"$', re.MULTILINE)
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def parse_version(text: str) -> tuple[int, int, int]:
    major, minor, patch = (int(part) for part in text.split("."))
    return major, minor, patch


def current_version(source: str = SOURCE, package: str = PACKAGE) -> tuple[int, int, int]:
    """The ``__version__`` of ``package`` in the working tree (default: ``hardened_k8s``)."""
    init = (ROOT / source / package / "__init__.py").read_text()
    match = VERSION_RE.search(init)
    if match is None:
        raise SystemExit(f'error: no __version__ = "X.Y.Z" in {source}/{package}/__init__.py')
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def lockstep_problems(version: tuple[int, int, int]) -> list[str]:
    """Where the rules distribution's version, or the library's pin of it, is not ``version``."""
    shown = ".".join(map(str, version))
    problems = []
    rules = current_version(RULES_SOURCE, RULES_PACKAGE)
    if rules != version:
        problems.append(
            f"{RULES_SOURCE}/{RULES_PACKAGE}/__init__.py has version {'.'.join(map(str, rules))}; "
            f"set it to {shown}, the version of {PACKAGE} (they are released in lockstep)"
        )
    pyproject = (ROOT / "components" / "pyproject.toml").read_text()
    if f'"hardened-k8s-rules=={shown}"' not in pyproject:
        problems.append(
            f'components/pyproject.toml does not require "hardened-k8s-rules=={shown}"; pin it exactly'
        )
    return problems


def read_baseline() -> tuple[tuple[int, int, int], str]:
    lines = [line for line in BASELINE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    version, commit = lines[-1].split()
    return parse_version(version), commit


def version_at(ref: str) -> tuple[int, int, int]:
    """The ``__version__`` of ``hardened_k8s`` at the git ref ``ref``."""
    shown = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:{SOURCE}/{PACKAGE}/__init__.py"],
        capture_output=True, text=True,
    )  # fmt: skip
    match = VERSION_RE.search(shown.stdout) if shown.returncode == 0 else None
    if match is None:
        raise SystemExit(f'error: no __version__ = "X.Y.Z" in {SOURCE}/{PACKAGE}/__init__.py at {ref}')
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def breaking_allowed(base: tuple[int, int, int], now: tuple[int, int, int]) -> bool:
    """Whether ``now`` is a major bump over ``base`` (a minor bump while the major is 0)."""
    if now[0] > base[0]:
        return True
    return base[0] == 0 and now[0] == 0 and now[1] > base[1]


def breaking_changes(old_ref: str, new_ref: str | None = None) -> list[str]:
    """Breaking changes of the public API from ``old_ref`` to ``new_ref`` (default: the
    working tree), one line each."""
    old, new = load_api(old_ref), load_api(new_ref)
    return sorted({ANSI_RE.sub("", change.explain()) for change in griffe.find_breaking_changes(old, new)})


def load_api(ref: str | None) -> griffe.Object | griffe.Alias:
    """``hardened_k8s`` at ``ref`` (``None``: the working tree), loaded after the rules
    distribution at the same ref, when it exists there (from 0.2.0), so that the library's
    re-exports of it at refs that had them (``from hardened_k8s_rules.policy import *``)
    expand to its names."""
    modules, lines = griffe.ModulesCollection(), griffe.LinesCollection()
    loaded: griffe.Object | griffe.Alias | None = None
    for package in (RULES_PACKAGE, PACKAGE):
        try:
            if ref is None:
                paths = [str(ROOT / SOURCE), str(ROOT / RULES_SOURCE)]
                loaded = griffe.load(
                    package, search_paths=paths, modules_collection=modules, lines_collection=lines
                )
            else:
                loaded = griffe.load_git(
                    package, ref=ref, repo=ROOT, search_paths=[SOURCE, RULES_SOURCE],
                    modules_collection=modules, lines_collection=lines,
                )  # fmt: skip
        except ImportError:
            # The rules have been a distribution of their own since 0.2.0; earlier refs lack them.
            if package == PACKAGE:
                raise
    assert loaded is not None
    return loaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--against",
        metavar="REF",
        help="compare with this git ref (a release tag) instead of components/api-baseline.txt",
    )
    args = parser.parse_args(argv)
    base, commit = read_baseline()
    if args.against is not None:
        commit = args.against
    now = current_version()
    shown = ".".join(map(str, now))
    verify = subprocess.run(
        ["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True
    )
    if verify.returncode != 0:
        print(
            f"error: baseline commit {commit} is not in this clone; fetch the whole history "
            "(git fetch --unshallow, or actions/checkout with fetch-depth: 0)",
            file=sys.stderr,
        )
        return 2
    if args.against is not None:
        base = version_at(commit)
    problems = []
    changes = breaking_changes(commit)
    if changes and not breaking_allowed(base, now):
        problems.append(
            f"{len(changes)} breaking change(s) since {'.'.join(map(str, base))} but the version is "
            f"{shown}: raise it to {base[0] + 1}.0.0"
            + (f" (or {base[0]}.{base[1] + 1}.0 while 0.x)" if base[0] == 0 else "")
            + " in components/src/hardened_k8s/__init__.py and record the changes in the changelog"
        )
    problems += lockstep_problems(now)
    if now != base and not re.search(rf"^## {re.escape(shown)}\b", CHANGELOG.read_text(), re.MULTILINE):
        problems.append(f"components/CHANGELOG.md has no '## {shown}' section for the version")
    for change in changes:
        print(f"  {change}")
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    print(f"API check passed: {shown} against {'.'.join(map(str, base))} ({len(changes)} breaking change(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
