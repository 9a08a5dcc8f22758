"""Shared fixtures: the real program and components, run on Pulumi's mock engine.

The one ``Mocks`` class is :class:`hardened_k8s.mock_engine.RecordingMocks` (with its
monitor): it records every registered resource's type, name, inputs, parent and options.
The offline render uses the same class, so the tests exercise exactly what users run.
Nothing runs at import time; every program is built inside a fixture or test.
"""

# ruff: noqa: E402 - the collector is turned off before the imports below

from __future__ import annotations

import gc

# The session's modules (the SDKs, the library, the tests) load from here to the end of
# collection: a few hundred thousand objects that live as long as the session, whose
# allocation triggers some 400 collections that free next to nothing (a quarter of a
# second). pytest_collection_finish freezes them and turns the collector back on.
gc.disable()

import copy
import functools
import hashlib
import importlib.util
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
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
from hardened_k8s.render import Checks, RenderedObject, manifests, render_stack
from hardened_k8s.stack_config import RENDER_ASSUMES_SECRETS

from . import in_process
from .tiers import unavailable

ROOT = Path(__file__).resolve().parents[1]
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML has it: the same documents, about ten times faster."""
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


@functools.cache
def _stack_file(stack: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load((ROOT / f"Pulumi.{stack}.yaml").read_text(), Loader=YAML_LOADER)
    return data


def stack_file_config(stack: str) -> dict[str, Any]:
    """The ``config:`` map of ``Pulumi.<stack>.yaml`` with short keys (a fresh copy).

    The file is parsed once per session: tests edit copies, never the committed file.
    """
    return {key.split(":", 1)[1]: copy.deepcopy(value) for key, value in _stack_file(stack)["config"].items()}


def engine_config(
    config: dict[str, Any],
    secrets: dict[str, str] | None = None,
    *,
    assume_secrets: Sequence[str] = RENDER_ASSUMES_SECRETS,
) -> tuple[dict[str, str], list[str]]:
    """Short-keyed stack config as the engine would pass it.

    ``secrets`` are set as the engine hands them over after decryption; each key of
    ``assume_secrets`` left unset becomes a secret placeholder (default: those the render
    assumes; ``()`` for exactly the given values).
    """
    values, secret_keys = stack_config(
        PROJECT, {"config": {f"{PROJECT}:{k}": v for k, v in config.items()}}, assume_secrets=assume_secrets
    )
    for key, value in (secrets or {}).items():
        values[f"{PROJECT}:{key}"] = value
        secret_keys.append(f"{PROJECT}:{key}")
    return values, secret_keys


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
    values, secret_keys = engine_config(config if config is not None else stack_file_config(stack), secrets)
    return run_program(ROOT, stack, config=values, secret_keys=secret_keys, monitor=monitor)


@dataclass(frozen=True)
class StackRender:
    """What the offline render did for one committed stack, as ``python -m hardened_k8s.render``.

    ``out`` is the output root (the files are in ``out / stack``), written with umask 022.
    """

    rendered: Rendered
    checks: Checks
    printed: str
    out: Path


@pytest.fixture(scope="session")
def stack_render(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], StackRender]]:
    """``stack_render(stack)``: the offline render of a committed stack, done once per session.

    Every test that only reads a committed stack's objects, report or files shares it, so
    each stack's program runs once per session. Tests must leave what they read unchanged.
    """
    cache: dict[str, StackRender] = {}

    def get(stack: str) -> StackRender:
        if stack not in cache:
            out = tmp_path_factory.mktemp(f"render-{stack}")
            printed = io.StringIO()
            umask = os.umask(0o022)  # the ordinary umask, so file modes can be checked
            try:
                run, checks = render_stack(ROOT, stack, out, stdout=printed)
            finally:
                os.umask(umask)
            cache[stack] = StackRender(Rendered(run), checks, printed.getvalue(), out)
        return cache[stack]

    yield get


@pytest.fixture(scope="session")
def rendered(stack_render: Callable[[str], StackRender]) -> Callable[[str], Rendered]:
    """``rendered(stack)``: the real program's run for a committed stack, once per session."""
    return lambda stack: stack_render(stack).rendered


PINNED = "quay.io/ecosystem-appeng/pinned@sha256:" + hashlib.sha256(b"pinned-image").hexdigest()
"""The digest :func:`deployed_dev` pins the MCP server to."""
DEPLOYED_SECRETS = {"databasePassword": "pa55-w0rd/with:odd@chars", "authToken": "t0ken-sentinel-value"}
"""The secret values :func:`deployed_dev` sets, as a deployer's ``pulumi config set --secret``."""


@pytest.fixture(scope="session")
def deployed_dev() -> ProgramRun:
    """The dev program as a deployment runs it, once per session.

    Real secret values (:data:`DEPLOYED_SECRETS`) instead of the render's placeholders, and
    the MCP server pinned to :data:`PINNED` while the other images build: a stack mixing
    promoted and built images.
    """
    config = stack_file_config("dev")
    config["services"]["mcp-store-inventory"]["image"] = {"ref": PINNED}
    return run_stack("dev", config, secrets=DEPLOYED_SECRETS)


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, rendered: Callable[[str], Rendered]) -> Rendered:
    """Each stack in turn."""
    return rendered(request.param)


def script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (``scripts`` is not a package), loaded once."""
    module_name = f"scripts_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def mocked(program: Callable[[], object]) -> ProgramRun:
    """Run a component-building function on the mock engine."""
    return run_mocked(program, project="test", stack="test")


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


def pytest_configure(config: pytest.Config) -> None:
    in_process.install(config)


KUBERNETES_API_GROUPS = ("core.v1", "apps.v1", "networking.v1", "policy.v1", "autoscaling.v2", "meta.v1")
PROGRAM_MODULES = (
    *(f"pulumi_kubernetes.{group}" for group in KUBERNETES_API_GROUPS),
    "pulumi_docker",  # the dev stack builds its images
    "hardened_k8s.system",  # and with it every component module
)
"""The modules a run of the program loads beyond what the tests import: the SDK loads each
API group on first use."""


def pytest_collection_finish(session: pytest.Session) -> None:
    """Load the modules every program run needs, then exempt them from the cyclic collector.

    The Kubernetes and Docker SDKs' modules are a few hundred thousand objects that live as
    long as the session; each full collection would rescan them. Loading them here rather than
    in the first test that runs a program is the same work, done before :func:`gc.freeze`
    moves everything loaded so far out of the collector's way (with the little garbage the
    imports left, which a collection first would cost a tenth of a second to free). The
    collector, off since this file was loaded, is then turned back on.
    """
    for module in PROGRAM_MODULES:
        importlib.import_module(module)
    gc.freeze()
    gc.enable()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Unit tests run with the cyclic collector paused, from the first of a row to its last.

    As a render pauses it for a program run (:func:`~hardened_k8s.mock_engine.paused_gc`): a
    unit test allocates freely and frees almost everything by reference counting, so the
    collector's passes cost time (a tenth of the tier) and free little. What cycles the tier
    leaves are collected when a test of another tier comes next, or at the end
    (:func:`pytest_unconfigure`); collecting them after each test cost more than they weigh
    (peak RSS of the tier stays at 148 MB either way). The other tiers' tests keep the
    collector: they run long and wait on other programs.
    """
    if not in_process.is_unit(item):
        return (yield)
    gc.disable()
    try:
        return (yield)
    finally:
        if nextitem is None or not in_process.is_unit(nextitem):
            gc.enable()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """A unit test's fixtures start no process (:mod:`tests.in_process`)."""
    with in_process.watching(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Nor does its body."""
    with in_process.watching(item):
        return (yield)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Collect garbage once, then exempt the survivors from every later collection.

    After this hook pytest collects five times in a row (to run finalizers and report their
    unraisable exceptions) and the interpreter once more at exit: each pass rescans every
    object the session keeps (modules, renders), about a second in all. One collection here
    still finalizes the session's garbage while pytest listens; the passes after it see only
    what that creates.
    """
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def harness() -> Iterator[Any]:
    """The image tier's engine, registry and base image, one per session: the image tier
    builds with it, and the cluster tier's real node pulls from its registry."""
    from .image.engine import Harness, missing_tools

    missing = missing_tools()
    if missing:
        unavailable("image", "missing " + ", ".join(missing) + "; scripts/ci-image-deps.sh installs them")
    if not os.environ.get("DOCKER_HOST") and os.geteuid() != 0:
        unavailable("image", "starting dockerd and running debootstrap need root (or set DOCKER_HOST)")
    with Harness() as h:
        yield h
