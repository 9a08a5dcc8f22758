"""Run a real Pulumi program on Pulumi's mock engine and record what it registers.

No cluster, cloud, registry or Pulumi CLI is involved: :func:`run_program` reads the
project's stack file, hands its config to the SDK exactly as the engine would (structured
values as JSON, secret keys marked), runs ``__main__.py`` under
``pulumi.runtime.set_mocks`` and returns every resource registration with its type, name,
inputs, parent and options. Secret config values are never decrypted: each is replaced by
:data:`SECRET_PLACEHOLDER` before the program sees it.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import hashlib
import json
import os
import runpy
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from .config import ConfigError

_T = TypeVar("_T")

SECRET_PLACEHOLDER = "<secret>"
"""What a secret value looks like in anything the offline engine produces."""

# libyaml's parser, where PyYAML was built with it: the same documents, about 8x faster (a
# 100-service stack file is read three times per render).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
"""The all-zero digest: no real image has it (production refuses it, rule HARD-035)."""


def placeholder_digest(repository: str) -> str:
    """The digest the mock registry 'reports' for a built image of ``repository``.

    A hash of the repository name: stable from commit to commit (so render diffs show only
    real changes), different for every image (so a test can tell which image a workload
    runs), and never a digest any registry served.
    """
    return "sha256:" + hashlib.sha256(f"offline-render:{repository}".encode()).hexdigest()


@dataclass
class Registration:
    """One resource as the program registered it."""

    urn: str
    """The resource's URN as the engine made it."""
    type: str
    """Type token, e.g. ``kubernetes:apps/v1:Deployment``."""
    name: str
    """Logical (Pulumi) name of the resource."""
    inputs: dict[str, Any]
    """Inputs as the provider received them (secrets unwrapped)."""
    parent: str
    """URN of the parent resource (the stack for top-level resources)."""
    provider: str = ""
    """Provider reference (``urn::id``) when one was given explicitly. Default empty."""
    protect: bool = False
    """Whether ``protect`` was set. Default false."""
    retain_on_delete: bool = False
    """Whether ``retain_on_delete`` was set. Default false."""
    depends_on: list[str] = field(default_factory=list)
    """URNs the registration depends on. Default none."""
    ignore_changes: list[str] = field(default_factory=list)
    """Input paths whose changes the engine ignores (``ResourceOptions.ignore_changes``)."""

    @property
    def is_kubernetes_object(self) -> bool:
        """True for Kubernetes API objects (not providers, components or images)."""
        return self.type.startswith("kubernetes:") and not self.type.startswith("kubernetes:pulumi")


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that answer like a provider would and remember every resource's inputs.

    Outputs echo the inputs; a ``docker:index/image:Image`` also gets ``repoDigest``
    ``<repository>@`` :func:`placeholder_digest`, as the registry would report after a push.
    """

    def __init__(self) -> None:
        # The SDK registers from a thread pool; each thread sees its own latest call.
        self._local = threading.local()

    @property
    def last(self) -> pulumi_mocks.MockResourceArgs | None:
        """The latest resource this thread asked for."""
        return getattr(self._local, "last", None)

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self._local.last = args
        state = dict(args.inputs)
        if args.typ == "docker:index/image:Image":
            repository = str(args.inputs["imageName"]).rsplit(":", 1)[0]
            state["repoDigest"] = f"{repository}@{placeholder_digest(repository)}"
        return f"{args.name}-id", state

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, also keeping what a registration says besides its inputs."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks
        """The mocks that saw each registration's inputs."""
        self.registrations: list[Registration] = []
        """Every resource registered, in order (the stack itself left out)."""
        self.component_outputs: dict[str, dict[str, Any]] = {}
        """What each component passed to ``register_outputs``, by URN."""

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        """Register as the SDK's mock monitor does, and record the registration."""
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            last = self.recording.last
            assert last is not None and last.name == request.name
            self.registrations.append(
                Registration(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    inputs=last.inputs,
                    parent=request.parent,
                    provider=request.provider,
                    protect=request.protect,
                    retain_on_delete=request.retainOnDelete,
                    depends_on=list(request.dependencies),
                    ignore_changes=list(request.ignoreChanges),
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        """Record a component's outputs, then register them as the SDK's mock monitor does."""
        _ensure_event_loop()  # type: ignore[no-untyped-call]
        self.component_outputs[request.urn] = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


@dataclass
class ProgramRun:
    """What one run of a program registered and exported."""

    project: str
    """Pulumi project name the program ran as."""
    stack: str
    """Stack name the program ran as."""
    registrations: list[Registration]
    """Every resource registered, in registration order."""
    outputs: dict[str, Any]
    """The stack's exports (``pulumi.export``), resolved."""
    component_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """What each component passed to ``register_outputs``, by URN."""

    def kubernetes_objects(self) -> list[Registration]:
        """The Kubernetes API objects, in registration order."""
        return [r for r in self.registrations if r.is_kubernetes_object]

    def by_urn(self) -> dict[str, Registration]:
        """Every registration, by URN."""
        return {r.urn: r for r in self.registrations}


def stack_config(
    project: str, stack_file: Mapping[str, Any], *, assume_secrets: Sequence[str] = ()
) -> tuple[dict[str, str], list[str]]:
    """The config map and secret keys the engine would hand the program.

    Keys are namespaced (``project:key``); structured values become JSON text, scalars
    text. A ``secure:`` value is not decrypted: it becomes :data:`SECRET_PLACEHOLDER`.
    Each key of ``assume_secrets`` that the stack file does not set is handed over as a
    secret :data:`SECRET_PLACEHOLDER` too: stack files carry no secret until a deployer runs
    ``pulumi config set --secret``, and the offline engine never needs the value.
    """
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (stack_file.get("config") or {}).items():
        full = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[full] = SECRET_PLACEHOLDER
            secret_keys.append(full)
        elif isinstance(value, str):
            values[full] = value
        elif isinstance(value, bool):
            values[full] = "true" if value else "false"
        else:
            values[full] = json.dumps(value)
    # Only keys the file leaves unset: one set in plain text stays plain (and is refused).
    for key in assume_secrets:
        full = key if ":" in key else f"{project}:{key}"
        if full not in values:
            values[full] = SECRET_PLACEHOLDER
            secret_keys.append(full)
    return values, secret_keys


def stack_names(project_dir: Path) -> list[str]:
    """The stacks of a project: one per ``Pulumi.<stack>.yaml`` beside its ``Pulumi.yaml``."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.?*.yaml"))


def load_stack_file(project_dir: Path, stack: str) -> tuple[str, dict[str, Any]]:
    """The project name and the parsed ``Pulumi.<stack>.yaml`` of ``project_dir``.

    Raises :class:`~hardened_k8s.config.ConfigError` for a missing project or stack file
    (naming the stacks that exist) and for YAML that does not parse (file, line, column).
    """
    project = _project_name(project_dir)
    path = _stack_file(project_dir, stack)
    document = _read_yaml(path) or {}
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise ConfigError([(path.name, "is not a stack file; it must be a map with a `config:` map")])
    return project, document


def _project_name(project_dir: Path) -> str:
    """The ``name`` of ``project_dir/Pulumi.yaml``; a :class:`~hardened_k8s.config.ConfigError` if none."""
    project_doc = _read_yaml(project_dir / "Pulumi.yaml")
    if not isinstance(project_doc, dict) or not isinstance(project_doc.get("name"), str):
        raise ConfigError([("Pulumi.yaml", "has no project name; add `name: <project>`")])
    name: str = project_doc["name"]
    return name


def _stack_file(project_dir: Path, stack: str) -> Path:
    """``Pulumi.<stack>.yaml`` of ``project_dir``; a ConfigError naming the stacks if it is missing."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        existing = stack_names(project_dir)
        raise ConfigError(
            [
                (
                    "--stack",
                    f"{stack!r} has no stack file {path.name} in {project_dir}; use one of: "
                    f"{', '.join(existing) or '(none)'}, or create {path.name} (see README)",
                )
            ]
        )
    return path


class DuplicateKeyError(yaml.YAMLError):
    """A key written twice in one map; YAML loaders keep the last one silently."""

    def __init__(self, key: Any, line: int, first_line: int) -> None:
        super().__init__(f"duplicate key {key}")
        self.key, self.line, self.first_line = key, line, first_line


class _StrictLoader(_LOADER):  # type: ignore[valid-type,misc]
    """The safe loader, refusing a key written twice in one map (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise DuplicateKeyError(key, line, seen[key])
            if isinstance(key, str | int | float | bool):
                seen[key] = line
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError([(path.name, f"not found in {path.parent}; is this a Pulumi project directory?")])
    text = path.read_text()
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except DuplicateKeyError as exc:
        raise ConfigError(
            [
                (
                    f"{path.name}:{exc.line}",
                    f'duplicate key "{exc.key}" (first at line {exc.first_line}); YAML would keep only '
                    "the last one: merge the two into one key",
                )
            ]
        ) from None
    except yaml.YAMLError:
        pass
    # Broken YAML: the pure-Python parser names the problem more precisely than libyaml
    # ("found character '\\t' that cannot start any token"); same line and column.
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path.name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path.name
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{context}, {problem}" if context else problem
        raise ConfigError(
            [(where, f"YAML syntax error: {detail}; fix the file at that line and column")]
        ) from None


def run_program(
    project_dir: Path,
    stack: str,
    *,
    config: Mapping[str, str] | None = None,
    secret_keys: list[str] | None = None,
    monitor: RecordingMonitor | None = None,
    assume_secrets: Sequence[str] = (),
) -> ProgramRun:
    """Run ``project_dir/__main__.py`` for ``stack`` on the mock engine.

    ``config``/``secret_keys`` replace the stack file's config when given (tests use them
    to feed bad or secret values); otherwise the stack file's config is used, with
    ``assume_secrets`` as in :func:`stack_config`. Exceptions of the program, such as a
    config error, propagate unchanged after the runtime is shut down; pass your own
    ``monitor`` to see what had been registered by then.
    """
    if config is None:
        project, stack_file = load_stack_file(project_dir, stack)
        config, secret_keys = stack_config(project, stack_file, assume_secrets=assume_secrets)
    else:
        # Given config stands for the stack file's: only the project's name and the stack's
        # existence are read.
        project = _project_name(project_dir)
        _stack_file(project_dir, stack)

    def program() -> None:
        runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")

    with _inside(project_dir):
        return run_mocked(
            program, project=project, stack=stack, config=config, secret_keys=secret_keys, monitor=monitor
        )


def run_mocked(
    program: Callable[[], object],
    *,
    project: str = "project",
    stack: str = "stack",
    config: Mapping[str, str] | None = None,
    secret_keys: list[str] | None = None,
    monitor: RecordingMonitor | None = None,
    preview: bool = True,
) -> ProgramRun:
    """Run ``program`` (any code that declares resources) on the mock engine, as a preview
    (default) or, with ``preview=False``, as an update (``pulumi.runtime.is_dry_run()`` false).

    The program runs on a thread of its own (see :func:`_on_fresh_stack`), in the caller's
    context and event loop: code that needs the main thread, such as installing a signal
    handler, cannot run in it.
    """
    monitor = monitor or RecordingMonitor(RecordingMocks())

    def body() -> None:
        program()

    def run() -> dict[str, Any]:
        # A fresh root stack per run: the SDK keeps one per process otherwise.
        settings.ROOT.set(None)
        pulumi.runtime.set_mocks(
            monitor.recording, project=project, stack=stack, preview=preview, monitor=monitor
        )
        set_all_config(dict(config or {}), secret_keys or [])
        _sync_await(run_pulumi_func(body))
        root = settings.get_root_resource()
        exports = sorted(getattr(root, "outputs", {}).items())
        return {name: _sync_await(_resolve(value)) for name, value in exports}

    with paused_gc():
        outputs = _on_fresh_stack(run)
    return ProgramRun(project, stack, monitor.registrations, outputs, monitor.component_outputs)


def _on_fresh_stack(function: Callable[[], _T]) -> _T:
    """``function()``, called on a new thread's empty stack, in this thread's context and loop.

    The SDK records the call stack of every registration down to its first frame; called
    from deep inside another program (a test runner, say) that is mostly the caller's frames,
    and the capture is a sixth of a run's time. The new thread runs in a copy of this
    thread's context, with its event loop (which Outputs made before the run belong to).
    What ``function`` leaves in context variables (the SDK's config, its root stack) is set
    here after, as if it had run on this thread; the program itself runs in a task, whose
    context never reaches its caller on one thread or two.
    """
    loop = _ensure_event_loop()  # type: ignore[no-untyped-call]
    context = contextvars.copy_context()
    outcome: list[Any] = []

    def target() -> None:
        asyncio.set_event_loop(loop)
        try:
            outcome.append((True, context.run(function)))
        except BaseException as error:  # re-raised on the calling thread
            outcome.append((False, error))
        finally:
            asyncio.set_event_loop(None)

    # A daemon, so an interrupted caller (Ctrl-C during a render) need not wait for the run.
    worker = threading.Thread(target=target, name="pulumi-program", daemon=True)
    worker.start()
    worker.join()
    for variable, value in context.items():
        variable.set(value)
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run the body without Python's cyclic garbage collector; restore its state after.

    A program run allocates a few hundred thousand objects per hundred resources (inputs,
    Outputs, futures, protobuf copies) and keeps almost all of them until the run ends, so
    each automatic collection rescans a growing heap and frees next to nothing: a quarter
    of a 100-service render's time went there. Reference counting still frees everything
    acyclic at once; the cycles left (a few MB at 100 services) are collected when the
    collector is enabled again. Nests: an inner pause leaves an outer one in force.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def _resolve(value: Any) -> Any:
    """An export's value, or :data:`SECRET_PLACEHOLDER` where the value is a secret."""
    out = pulumi.Output.from_input(value)
    if await out.is_secret():
        return SECRET_PLACEHOLDER
    return await out.future()


def unwrap_secrets(value: Any) -> Any:
    """Inputs with every secret replaced by :data:`SECRET_PLACEHOLDER`, leaf by leaf.

    The SDK marks a secret input as ``{<sig>: <secret sig>, "value": ...}``; the shape
    under it is kept (a map stays a map) so the object still has its schema.
    """
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _redact(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        inner = value.get("value") if value.get(rpc._special_sig_key) == rpc._special_secret_sig else None
        if inner is not None:
            return _redact(inner)
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return SECRET_PLACEHOLDER


@contextmanager
def _inside(project_dir: Path) -> Iterator[None]:
    """Run with the project as working directory and import root, as the CLI does."""
    old_cwd = Path.cwd()
    path = str(project_dir.resolve())
    os.chdir(path)
    sys.path.insert(0, path)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        if path in sys.path:
            sys.path.remove(path)
