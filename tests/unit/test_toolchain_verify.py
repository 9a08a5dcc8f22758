"""scripts/toolchain_verify.py: the committed Go module hashes against what a download gives.

Offline and in-process: the download is a function returning what ``go mod download -json``
prints, so the comparison, the messages and the exit codes are checked without a network.
"""

from __future__ import annotations

import hashlib
import re
from base64 import b64encode
from pathlib import Path

import pytest

from ..conftest import ROOT, script

verify = script("toolchain_verify")
PROVIDER = "github.com/pulumi/pulumi-kubernetes/provider/v4@v4.0.0-20260115033456-f47bc2d6f199"


def h1(text: str) -> str:
    return "h1:" + b64encode(hashlib.sha256(text.encode()).digest()).decode()


SERVED = {
    "k8s.io/api@v0.31.4": {"Sum": h1("api zip"), "GoModSum": h1("api go.mod")},
    PROVIDER: {"Sum": h1("provider zip"), "GoModSum": h1("provider go.mod")},
}


def served(ref: str) -> dict[str, str]:
    return SERVED.get(ref) or {"Error": f"{ref}: 403 Forbidden"}


def sum_file(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "toolchain.sum"
    path.write_text("# committed hashes\n\n" + "\n".join(lines) + "\n")
    return path


def good_lines() -> list[str]:
    return [
        f"k8s.io/api v0.31.4 {h1('api zip')}",
        f"k8s.io/api v0.31.4/go.mod {h1('api go.mod')}",
        f"{PROVIDER.replace('@', ' ')} {h1('provider zip')}",
    ]


def test_matching_hashes_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify.main([str(sum_file(tmp_path, *good_lines())), PROVIDER], download=served) == 0
    assert "3 hashes of toolchain.sum match" in capsys.readouterr().err


@pytest.mark.parametrize("go_mod", [False, True], ids=["zip", "go.mod"])
def test_a_mismatch_stops_with_both_hashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], go_mod: bool
) -> None:
    lines = good_lines()
    committed = h1("what was reviewed")
    lines[1 if go_mod else 0] = f"k8s.io/api v0.31.4{'/go.mod' if go_mod else ''} {committed}"
    assert verify.main([str(sum_file(tmp_path, *lines))], download=served) == 1
    err = capsys.readouterr().err
    downloaded = SERVED["k8s.io/api@v0.31.4"]["GoModSum" if go_mod else "Sum"]
    assert f"k8s.io/api@v0.31.4{'/go.mod' if go_mod else ''}: hash mismatch" in err
    assert f"toolchain.sum: {committed}" in err and f"downloaded:    {downloaded}" in err


def test_a_pin_without_its_hash_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bumped = "k8s.io/kubernetes@v1.32.0"
    assert verify.main([str(sum_file(tmp_path, *good_lines())), PROVIDER, bumped], download=served) == 1
    assert f"{bumped}: not in toolchain.sum; add its lines" in capsys.readouterr().err


def test_a_module_that_cannot_be_downloaded_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [*good_lines(), f"k8s.io/gone v0.1.0 {h1('gone')}"]
    assert verify.main([str(sum_file(tmp_path, *lines))], download=served) == 1
    assert "k8s.io/gone@v0.1.0: download failed: k8s.io/gone@v0.1.0: 403 Forbidden" in capsys.readouterr().err


def test_a_malformed_line_names_its_place(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = sum_file(tmp_path, *good_lines(), "k8s.io/api v0.31.4 sha256:abc")
    assert verify.main([str(path)], download=served) == 2
    assert "toolchain.sum:6: 'k8s.io/api v0.31.4 sha256:abc' is not 'MODULE VERSION[/go.mod] h1:<hash>'" in (
        capsys.readouterr().err
    )


def test_print_writes_lines_and_comments_modules_not_served(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    go_mod = tmp_path / "kubernetes.mod"
    go_mod.write_text(
        "module k8s.io/kubernetes\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n"
        "\tk8s.io/sample-apiserver => ./staging/src/k8s.io/sample-apiserver\n)\n"
    )
    download = {
        **SERVED,
        "k8s.io/kubernetes@v1.31.4": {"GoMod": str(go_mod), "Sum": h1("k"), "GoModSum": h1("km")},
    }
    argv = ["--print", "unused", "--staging-of", "k8s.io/kubernetes@v1.31.4"]
    assert verify.main(argv, download=lambda ref: download.get(ref) or {"Error": "403"}) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        f"k8s.io/kubernetes v1.31.4 {h1('k')}",
        f"k8s.io/kubernetes v1.31.4/go.mod {h1('km')}",
        f"k8s.io/api v0.31.4 {h1('api zip')}",
        f"k8s.io/api v0.31.4/go.mod {h1('api go.mod')}",
        "# k8s.io/sample-apiserver@v0.31.4: not served by the module proxy, so in no build",
    ]


def test_the_committed_sum_file_covers_the_toolchain_pins() -> None:
    """Every module toolchain.sh takes outside the checksum database at its pinned version."""
    text = (ROOT / "scripts" / "toolchain.sh").read_text()
    entries = verify.parse_sum((ROOT / "scripts" / "toolchain.sum").read_text())
    provider = f"github.com/pulumi/pulumi-kubernetes/provider/v4@{_pin(text, 'K8S_PROVIDER_VERSION')}"
    kubernetes = _pin(text, "KUBERNETES_VERSION")
    assert verify.missing(entries, [provider, f"k8s.io/kubernetes@{kubernetes}"]) == []
    staging = "v0." + kubernetes.removeprefix("v1.")
    assert {e.module for e in entries if e.version == staging} >= {
        "k8s.io/api",
        "k8s.io/client-go",
        "k8s.io/apimachinery",
    }
    assert all(e.go_mod or any(f.go_mod and f.ref == e.ref for f in entries) for e in entries)


def _pin(text: str, name: str) -> str:
    match = re.search(rf'^{name}="\$\{{{name}:-(\S+)\}}"$', text, re.M)
    assert match is not None, name
    return match[1]
