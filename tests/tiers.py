"""What a tier that needs real tools or daemons does when they are missing."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(tier: str, reason: str) -> NoReturn:
    """Skip locally, with the reason; fail under CI (``CI`` set), where every tier must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{tier} tier cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)
