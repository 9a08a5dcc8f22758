"""scripts/api_check.py: the public API compared across real commits of this repository."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from ..conftest import ROOT


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("api_check", ROOT / "scripts" / "api_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


api_check = _script()

SECRET_FILES = "55ef3f0f622fae7f2022aed2cc7923f6be6d3cbb"
"""A commit after 0.1.0 where ``HardenedService`` takes ``secret_files`` instead of ``secret_env``."""


@pytest.mark.parametrize(
    ("base", "now", "allowed"),
    [
        ((0, 1, 0), (0, 1, 1), False),
        ((0, 1, 0), (0, 2, 0), True),
        ((0, 1, 3), (1, 0, 0), True),
        ((1, 4, 0), (1, 5, 0), False),
        ((1, 4, 0), (2, 0, 0), True),
        ((1, 4, 0), (1, 4, 0), False),
    ],
)
def test_breaking_changes_need_a_major_bump(
    base: tuple[int, int, int], now: tuple[int, int, int], allowed: bool
) -> None:
    assert api_check.breaking_allowed(base, now) is allowed


@pytest.mark.tools
def test_finds_the_removed_parameter_between_two_real_commits() -> None:
    _, baseline = api_check.read_baseline()
    assert api_check.breaking_changes(baseline, baseline) == []
    changes = api_check.breaking_changes(baseline, SECRET_FILES)
    assert any(
        "HardenedService.__init__(secret_env)" in c and "Parameter was removed" in c for c in changes
    ), changes
    assert any("SecretEnv" in c and "removed" in c for c in changes), changes


@pytest.mark.tools
def test_against_a_ref_reads_that_refs_version_and_compares_with_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--against`` (the release workflow's previous tag) takes base version and API from the ref."""
    _, baseline = api_check.read_baseline()
    assert api_check.version_at(baseline) == (0, 1, 0)
    assert api_check.main(["--against", baseline]) == 0
    assert "against 0.1.0" in capsys.readouterr().out
    assert api_check.main(["--against", "no-such-ref-" + "0" * 8]) == 2
