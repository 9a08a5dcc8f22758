"""Shared fixtures: the real program and components, run on Pulumi's mock engine.

The one ``Mocks`` class is :class:`hardened_k8s.mock_engine.RecordingMocks` (with its
monitor): it records every registered resource's type, name, inputs, parent and options.
The offline render uses the same class, so the tests exercise exactly what users run.
Nothing runs at import time; every program is built inside a fixture or test.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hardened_k8s.mock_engine import (
    ProgramRun,
    RecordingMonitor,
    Registration,
    run_mocked,
    run_program,
    stack_config,
    stack_names,
)
from hardened_k8s.render import RenderedObject, manifests
from hardened_k8s.stack_config import RENDER_ASSUMES_SECRETS

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "store-inventory"
STACKS = tuple(stack_names(ROOT))
"""Every stack of the project: one per ``Pulumi.<stack>.yaml``."""


class Rendered:
    """One stack's program run and its manifests, with lookups that name what is missing."""

    def __init__(self, run: ProgramRun) -> None:
        self.run = run
        self.objects: list[RenderedObject] = manifests(run)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o.manifest for o in self.objects if o.manifest["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for obj in self.all(kind):
            if obj["metadata"]["name"] == name:
                return obj
        names = [o["metadata"]["name"] for o in self.all(kind)]
        raise AssertionError(f"{self.run.stack}: no {kind} named {name!r} (have {names})")

    def registration(self, kind: str, name: str) -> Registration:
        for obj in self.objects:
            if obj.manifest["kind"] == kind and obj.manifest["metadata"]["name"] == name:
                return obj.registration
        raise AssertionError(f"{self.run.stack}: no {kind} named {name!r}")

    def pod_workloads(self) -> list[dict[str, Any]]:
        return self.all("Deployment") + self.all("StatefulSet")


def stack_file_config(stack: str) -> dict[str, Any]:
    """The ``config:`` map of ``Pulumi.<stack>.yaml`` with short keys (a fresh copy)."""
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    return {key.split(":", 1)[1]: copy.deepcopy(value) for key, value in data["config"].items()}


def engine_config(config: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Short-keyed stack config as the engine would pass it (secrets become placeholders)."""
    return stack_config(
        PROJECT,
        {"config": {f"{PROJECT}:{k}": v for k, v in config.items()}},
        assume_secrets=RENDER_ASSUMES_SECRETS,
    )


def run_stack(
    stack: str,
    config: dict[str, Any] | None = None,
    *,
    secrets: dict[str, str] | None = None,
    monitor: RecordingMonitor | None = None,
) -> ProgramRun:
    """Run the real ``__main__.py`` for ``stack``, optionally with edited config.

    ``secrets`` sets secret config values as the engine would after decryption, to check
    where a real secret value ends up.
    """
    if config is None and secrets is None:
        return run_program(ROOT, stack, monitor=monitor, assume_secrets=RENDER_ASSUMES_SECRETS)
    values, secret_keys = engine_config(config if config is not None else stack_file_config(stack))
    for key, value in (secrets or {}).items():
        values[f"{PROJECT}:{key}"] = value
        secret_keys.append(f"{PROJECT}:{key}")
    return run_program(ROOT, stack, config=values, secret_keys=secret_keys, monitor=monitor)


@pytest.fixture(scope="session")
def rendered() -> Iterator[Callable[[str], Rendered]]:
    """``rendered(stack)``: the real program's run for a stack, computed once per session."""
    cache: dict[str, Rendered] = {}

    def get(stack: str) -> Rendered:
        if stack not in cache:
            cache[stack] = Rendered(run_stack(stack))
        return cache[stack]

    yield get


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, rendered: Callable[[str], Rendered]) -> Rendered:
    """Each stack in turn."""
    return rendered(request.param)


def mocked(program: Callable[[], object]) -> ProgramRun:
    """Run a component-building function on the mock engine."""
    return run_mocked(program, project="test", stack="test")


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
