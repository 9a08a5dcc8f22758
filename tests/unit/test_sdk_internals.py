"""The Pulumi SDK internals the mock engine and the stack-config reader rely on, pinned.

``hardened_k8s.mock_engine`` drives the SDK as the engine would and ``stack_config`` lists
the config keys the engine handed over; the SDK has no public API for either. Each test
below exercises one private name exactly as the library uses it, so an SDK upgrade that
changes one fails here, by name, rather than as a wrong render.
"""

from __future__ import annotations

import asyncio
import threading

import pulumi
from pulumi.runtime import config as runtime_config
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from hardened_k8s.mock_engine import run_mocked, unwrap_secrets

SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
"""The secret signature the tests look for in recorded inputs."""


def test_sync_await_runs_a_coroutine_to_its_result_from_synchronous_code() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert _sync_await(answer()) == 42


def test_ensure_event_loop_gives_a_thread_without_one_a_usable_loop() -> None:
    seen: list[object] = []

    def worker() -> None:
        loop = _ensure_event_loop()  # type: ignore[no-untyped-call]
        seen.append(loop.run_until_complete(asyncio.sleep(0, result="ran")))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == ["ran"]


def test_secret_inputs_are_marked_with_the_signature_unwrap_secrets_reads() -> None:
    assert rpc._special_secret_sig == SECRET_SIG
    marked = {rpc._special_sig_key: rpc._special_secret_sig, "value": {"password": "x"}}
    assert unwrap_secrets({"stringData": marked}) == {"stringData": {"password": "<secret>"}}

    def program() -> None:
        pulumi.CustomResource("test:index:Thing", "thing", {"password": pulumi.Output.secret("x")})

    (reg,) = run_mocked(program).registrations
    assert reg.inputs["password"] == {rpc._special_sig_key: rpc._special_secret_sig, "value": "x"}


def test_resetting_the_root_resource_gives_each_run_its_own_stack() -> None:
    def program() -> None:
        pulumi.CustomResource("test:index:Thing", "thing", {})

    first = run_mocked(program, project="one", stack="a")
    second = run_mocked(program, project="two", stack="b")
    assert first.registrations[0].parent.endswith("::one::pulumi:pulumi:Stack::one-a")
    assert second.registrations[0].parent.endswith("::two::pulumi:pulumi:Stack::two-b")


def test_the_config_map_lists_every_key_and_marks_the_secret_ones() -> None:
    set_all_config({"proj:plain": "1", "proj:hidden": "2"}, ["proj:hidden"])
    assert {"proj:plain", "proj:hidden"} <= set(runtime_config.CONFIG.get())
    assert runtime_config.is_config_secret("proj:hidden")
    assert not runtime_config.is_config_secret("proj:plain")
