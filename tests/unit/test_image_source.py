"""``ServiceImage`` pushes only a committed tree: real git in a temporary repository.

In the tools tier: ``pulumi up`` asks git about the build context, which starts a process.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from hardened_k8s.arguments import ArgsError
from hardened_k8s.build import build_spec
from hardened_k8s.image import ServiceImage, service_image_args
from hardened_k8s.mock_engine import run_mocked
from hardened_k8s.provenance import uncommitted_paths

pytestmark = pytest.mark.tools


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one committed build context, ``service/``."""
    git(tmp_path, "init", "-q")
    (tmp_path / "service").mkdir()
    (tmp_path / "service" / "Containerfile").write_text("FROM scratch AS runtime\n")
    (tmp_path / "other.txt").write_text("outside the context\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "initial")
    return tmp_path


def build(repo: Path, *, preview: bool) -> int:
    """Declare a ServiceImage of ``service/`` at HEAD; the number of docker resources registered."""
    spec = build_spec(
        "app",
        context=repo / "service",
        registry="quay.io/example",
        version="1.0.0",
        revision=git(repo, "rev-parse", "HEAD"),
    )
    run = run_mocked(lambda: ServiceImage("app", service_image_args(spec)), preview=preview)
    return sum(1 for r in run.registrations if r.type.startswith("docker:"))


def test_a_committed_context_is_built_and_pushed(repo: Path) -> None:
    assert uncommitted_paths(repo / "service") == []
    (repo / "other.txt").write_text("changed outside the context: not in the image\n")
    assert build(repo, preview=False) == 3  # the image, the version tag and its push


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (
            lambda ctx: (ctx / "Containerfile").write_text("FROM scratch AS runtime\nLABEL x=y\n"),
            "Containerfile",
        ),
        (lambda ctx: (ctx / "new.py").write_text("print('untracked')\n"), "new.py"),
    ],
    ids=["modified", "untracked"],
)
def test_up_refuses_a_context_with_uncommitted_changes(
    repo: Path, change: Callable[[Path], object], path: str
) -> None:
    context = repo / "service"
    change(context)
    path = f"service/{path}"  # as git names it: from the repository's root
    assert uncommitted_paths(context) == [path]
    with pytest.raises(ArgsError) as info:
        build(repo, preview=False)
    message = str(info.value)
    assert "ServiceImage 'app' args.context:" in message, message
    assert f"has uncommitted changes ({path})" in message and "commit or stash them" in message
    assert f"quay.io/example/app:sha-{git(repo, 'rev-parse', 'HEAD')}" in message


def test_a_preview_of_a_dirty_context_builds_nothing_and_passes(repo: Path) -> None:
    (repo / "service" / "new.py").write_text("print('untracked')\n")
    assert build(repo, preview=True) == 3


def test_outside_a_checkout_nothing_is_known(tmp_path: Path) -> None:
    assert uncommitted_paths(tmp_path) is None
