"""The unit tier runs in this process: a unit test that starts another program fails.

Starting a program (a fresh interpreter, pip, git, hadolint, the policy analyzer) costs a
tenth of a second to seconds, which is what made the unit tier slow. Tests that need one are
marked with the tier they belong to, ``tools`` for checks that run real tools on the
repository; an audit hook (:pep:`578`) refuses a process in any other test, naming the fix.

One process is allowed everywhere: the program's own ``git rev-parse HEAD``
(:func:`hardened_k8s.stack_config.source_revision`), which every run of ``__main__.py``
makes, exactly as ``pulumi preview`` runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from .tiers import tier_markers

_tiers: list[str] = []
"""The tiers whose tests may start other programs: every marker pyproject.toml declares."""

PROCESS_EVENTS = frozenset(
    {"subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn", "os.exec", "os.fork"}
)
PROGRAM_OWN = ("git", "rev-parse", "HEAD")

_current: list[str] = []
"""The node id of the unit test running now (empty between tests and in other tiers)."""


def _refuse(event: str, args: tuple[Any, ...]) -> None:
    if not _current or event not in PROCESS_EVENTS:
        return
    argv = args[1] if event == "subprocess.Popen" and len(args) > 1 else args[:1]
    if tuple(argv or ()) == PROGRAM_OWN:
        return
    raise RuntimeError(
        f"{_current[0]} starts a process ({event}: {argv!r}); the unit tier runs in-process: "
        f"mark the test @pytest.mark.tools (or the tier it belongs to)"
    )


def install(config: pytest.Config) -> None:
    """Add the audit hook; it lasts as long as the interpreter (audit hooks cannot be removed)."""
    _tiers[:] = tier_markers(config.rootpath)
    sys.addaudithook(_refuse)


def is_unit(item: pytest.Item) -> bool:
    """True for a test of no process tier."""
    return not any(item.get_closest_marker(tier) for tier in _tiers)


@contextmanager
def watching(item: pytest.Item) -> Iterator[None]:
    """Refuse processes while a unit test's setup or body runs.

    Not its teardown: that also runs the finalizers of every fixture whose scope ends there,
    such as the image tier's engine when the session's last test is a unit test.
    """
    if not is_unit(item):
        yield
        return
    _current[:] = [item.nodeid]
    try:
        yield
    finally:
        _current.clear()
