"""How :func:`hardened_k8s.mock_engine.run_mocked` runs a program: on a stack of its own,
in the caller's context and event loop."""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable

import pulumi
import pytest
from pulumi.runtime import settings
from pulumi.runtime.sync_await import _sync_await

from hardened_k8s.mock_engine import run_mocked

MARK: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="unset")


def _at_depth(depth: int, call: Callable[[], object]) -> object:
    return call() if depth == 0 else _at_depth(depth - 1, call)


def test_a_program_runs_on_a_stack_of_its_own() -> None:
    # The SDK captures the whole call stack per registration: the caller's depth must not
    # reach the program.
    depths: list[int] = []

    def program() -> None:
        depths.append(len(inspect.stack(0)))
        pulumi.CustomResource("test:index:Thing", "thing", {})

    _at_depth(0, lambda: run_mocked(program))
    _at_depth(200, lambda: run_mocked(program))
    assert depths[0] == depths[1], depths
    assert depths[0] < 60, depths


def test_the_program_sees_the_callers_context_and_the_caller_the_runs_config_and_stack() -> None:
    MARK.set("set by the caller")
    seen: list[str] = []

    def program() -> None:
        seen.append(MARK.get())
        pulumi.CustomResource("test:index:Thing", "thing", {})

    run = run_mocked(program, project="ctx", stack="one", config={"ctx:answer": "42"})
    assert seen == ["set by the caller"]
    assert pulumi.Config("ctx").get_int("answer") == 42
    # The root stack resource the run made, as when the run used the caller's thread.
    root = settings.get_root_resource()
    assert root is not None
    assert run.registrations[0].parent == _sync_await(root.urn.future())


def test_an_output_made_before_the_run_resolves_inside_it() -> None:
    earlier = pulumi.Output.from_input("made before").apply(str.upper)

    def program() -> None:
        pulumi.CustomResource("test:index:Thing", "thing", {"value": earlier})

    (thing,) = run_mocked(program).registrations
    assert thing.inputs["value"] == "MADE BEFORE"


def test_a_program_error_reaches_the_caller_unchanged() -> None:
    error = ValueError("bad input")

    def program() -> None:
        raise error

    with pytest.raises(ValueError) as raised:
        run_mocked(program)
    assert raised.value is error
