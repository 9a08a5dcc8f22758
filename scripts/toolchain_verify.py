"""Check the Go modules the toolchain builds against the hashes committed in scripts/toolchain.sum.

    python3 scripts/toolchain_verify.py scripts/toolchain.sum \\
        github.com/pulumi/pulumi-kubernetes/provider/v4@v4.0.0-... --staging-of k8s.io/kubernetes@v1.31.4

``go mod download`` outside a module writes no ``go.sum``, and scripts/toolchain.sh takes two kinds
of module outside the checksum database (``GONOSUMDB``): the Kubernetes provider's untagged commit
and the Kubernetes staging modules swapped in for ``k8s.io/kubernetes``'s ``./staging`` replaces.
Without this check each is trusted as first served. With it, every module of the sum file is
downloaded (``go mod download -json MODULE@VERSION``, from the module cache when it is there) and
its ``Sum`` (and ``GoModSum``) compared with the committed ``h1:`` hash, before anything is built.

Arguments besides the sum file name modules that must be in it (a pin bumped in toolchain.sh
without its hash fails). Exit 0 when every hash matches; 1 on a mismatch (both hashes printed),
a module missing from the file, or a download that fails; 2 on a malformed sum file.

``--print`` writes the lines for the given modules instead, for whoever bumps a pin (review them
like a go.sum change); with ``--staging-of k8s.io/kubernetes@VERSION`` also for every staging
module that module's go.mod replaces, at ``v0.<minor>.<patch>``. A staging module the proxy does
not serve cannot be in the build either; it gets a comment line.

Standard library only: the toolchain runs it with the system's python3, before any virtualenv.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

Download = Callable[[str], dict[str, str]]
"""``MODULE@VERSION`` -> the JSON ``go mod download -json`` prints for it."""

_LINE_RE = re.compile(
    r"^(?P<module>\S+) (?P<version>v\S+?)(?P<gomod>/go\.mod)? (?P<hash>h1:[A-Za-z0-9+/]{43}=)$"
)


class SumFileError(ValueError):
    """A line of the sum file is not ``MODULE VERSION[/go.mod] h1:<base64 sha256>``."""


@dataclass(frozen=True)
class Entry:
    module: str
    version: str
    go_mod: bool
    """The hash of the module's go.mod (``GoModSum``) rather than of its zip (``Sum``)."""
    hash: str

    @property
    def ref(self) -> str:
        return f"{self.module}@{self.version}"

    @property
    def what(self) -> str:
        return f"{self.ref}{'/go.mod' if self.go_mod else ''}"


def parse_sum(text: str, name: str = "toolchain.sum") -> list[Entry]:
    """The entries of a sum file (go.sum's format); ``#`` comments and blank lines are skipped."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE_RE.match(line)
        if match is None:
            raise SumFileError(
                f"{name}:{number}: {line!r} is not 'MODULE VERSION[/go.mod] h1:<hash>'; regenerate it "
                "with scripts/toolchain_verify.py --print"
            )
        entries.append(Entry(match["module"], match["version"], bool(match["gomod"]), match["hash"]))
    return entries


def go_download(ref: str, go: str = "go") -> dict[str, str]:
    """``go mod download -json ref`` (exits non-zero with the module's ``Error`` on failure)."""
    out = subprocess.run([go, "mod", "download", "-json", ref], capture_output=True, text=True, timeout=3600)
    try:
        info: dict[str, str] = json.loads(out.stdout)
    except json.JSONDecodeError:
        info = {"Error": (out.stderr or out.stdout).strip() or f"go exited {out.returncode}"}
    return info


def check(entries: Iterable[Entry], download: Download) -> list[str]:
    """One message per entry whose hash differs from what the download gives, or that fails."""
    problems = []
    served: dict[str, dict[str, str]] = {}
    for entry in entries:
        info = served.get(entry.ref) or served.setdefault(entry.ref, download(entry.ref))
        if info.get("Error"):
            problems.append(f"{entry.ref}: download failed: {info['Error']}")
            continue
        got = info.get("GoModSum" if entry.go_mod else "Sum")
        if got != entry.hash:
            problems.append(
                f"{entry.what}: hash mismatch\n    toolchain.sum: {entry.hash}\n    downloaded:    {got}\n"
                "  The module is not the one reviewed: stop. If the pin changed on purpose, regenerate "
                "the line with --print and review it."
            )
    return problems


def missing(entries: Iterable[Entry], required: Iterable[str]) -> list[str]:
    """``MODULE@VERSION``s of ``required`` with no zip hash in ``entries``."""
    have = {e.ref for e in entries if not e.go_mod}
    return [ref for ref in required if ref not in have]


def staging_modules(go_mod: str, kubernetes_version: str) -> list[str]:
    """``MODULE@v0.<minor>.<patch>`` of each module a k8s.io/kubernetes go.mod replaces with ./staging."""
    staging = "v0." + kubernetes_version.removeprefix("v1.")
    found = re.findall(r"^\s*(?:replace\s+)?(\S+)\s+=>\s+\./staging/\S+\s*$", go_mod, re.M)
    return [f"{module}@{staging}" for module in sorted(set(found))]


def lines_for(refs: Iterable[str], download: Download, optional: Iterable[str] = ()) -> list[str]:
    """The sum file lines (zip and go.mod hash) of each ``MODULE@VERSION``; one of ``optional``
    that cannot be downloaded gets a comment instead."""
    lines = []
    optional = set(optional)
    for ref in refs:
        info = download(ref)
        if info.get("Error") and ref in optional:
            lines.append(f"# {ref}: not served by the module proxy, so in no build")
            continue
        if info.get("Error"):
            raise RuntimeError(f"{ref}: {info['Error']}")
        module, version = ref.split("@", 1)
        lines += [f"{module} {version} {info['Sum']}", f"{module} {version}/go.mod {info['GoModSum']}"]
    return lines


def main(argv: list[str] | None = None, download: Download | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sum_file", type=Path)
    parser.add_argument("modules", nargs="*", metavar="MODULE@VERSION", help="must be in the sum file")
    parser.add_argument(
        "--staging-of",
        metavar="MODULE@VERSION",
        help="with --print: k8s.io/kubernetes and its staging modules",
    )
    parser.add_argument("--go", default="go", help="the go command (default: go)")
    parser.add_argument("--print", action="store_true", help="print the lines for the modules instead")
    args = parser.parse_args(argv)
    fetch: Download = download or (lambda ref: go_download(ref, args.go))
    required = list(args.modules)
    if args.print:
        staged: list[str] = []
        if args.staging_of:
            info = fetch(args.staging_of)
            if info.get("Error") or not info.get("GoMod"):
                print(f"error: {args.staging_of}: {info.get('Error') or 'no go.mod'}", file=sys.stderr)
                return 1
            staged = staging_modules(Path(info["GoMod"]).read_text(), args.staging_of.split("@")[1])
            required.append(args.staging_of)
        print("\n".join(lines_for([*required, *staged], fetch, optional=staged)))
        return 0
    try:
        entries = parse_sum(args.sum_file.read_text(), args.sum_file.name)
    except (OSError, SumFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = [
        f"{ref}: not in {args.sum_file.name}; add its lines "
        f"(scripts/toolchain_verify.py --print {ref}) and review them"
        for ref in missing(entries, required)
    ] + check(entries, fetch)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"toolchain: {len(entries)} hashes of {args.sum_file.name} match", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
