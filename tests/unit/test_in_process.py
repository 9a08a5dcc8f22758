"""The unit tier's guard against starting processes (:mod:`tests.in_process`)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_a_unit_test_cannot_start_a_process() -> None:
    with pytest.raises(RuntimeError, match=r"mark the test @pytest.mark.tools") as caught:
        subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert "test_a_unit_test_cannot_start_a_process" in str(caught.value)


@pytest.mark.tools
def test_a_tools_test_can() -> None:
    done = subprocess.run([sys.executable, "-c", "print('ran')"], capture_output=True, text=True)
    assert done.stdout == "ran\n"
