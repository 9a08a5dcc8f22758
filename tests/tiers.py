"""The test tiers: which exist, and what one that needs real tools or daemons does when they are missing."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import NoReturn

import pytest


def unavailable(tier: str, reason: str) -> NoReturn:
    """Skip locally, with the reason; fail under CI (``CI`` set), where every tier must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{tier} tier cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def tier_markers(root: Path) -> list[str]:
    """The markers ``pyproject.toml`` declares: one per tier besides the unit tier."""
    options = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return [marker.split(":", 1)[0] for marker in options["markers"]]
