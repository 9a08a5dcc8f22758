"""What a component does with its Args before any child is registered: defaults, then checks.

Defaults are the stack file's (:func:`with_defaults` reads them off the config models), so a
component built from Args alone and one built from a stack file agree. The constraints are
the stack file's own (:mod:`hardened_k8s.config`): a known Args value is validated by the
config model field of the same name, so a port, a replica count or a writable path is held to
one definition whichever door it came in by. A value that is an ``Output`` is not known yet
and is left to the Kubernetes API. Every problem is reported at once, each naming the Args
field and the fix, as one :class:`ArgsError`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any

import pulumi
from pydantic import BaseModel, TypeAdapter, ValidationError

from hardened_k8s_rules import profiles

from .config import ConfigError
from .inputs import SecurityProfile
from .messages import describe
from .strict_args import unknown_fields


class ArgsError(ConfigError):
    """Args a component cannot deploy; ``problems`` are ``(field path, message)`` pairs.

    ``str()`` shows one problem a line, such as
    ``HardenedService 'api' args.autoscaling: minReplicas (5) is greater than maxReplicas (3); ...``.
    """


def is_known(value: Any) -> bool:
    """True for a plain value (maps and lists of plain values included), False for an Output
    or an awaitable: those are checked by the API server once they resolve."""
    if isinstance(value, pulumi.Output) or inspect.isawaitable(value):
        return False
    if isinstance(value, Mapping):
        return all(is_known(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(is_known(v) for v in value)
    return True


def whole(value: Any) -> Any:
    """An integral float as an ``int``, anything else unchanged.

    Numbers cross the engine's wire as doubles: a component constructed by the component
    package gets ``port`` as ``8080.0``, which must not become ``PORT=8080.0``.
    """
    return int(value) if isinstance(value, float) and value.is_integer() else value


def with_defaults(model: type[BaseModel], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """``given`` (a nested Args value, snake_case keys) over the defaults of ``model``.

    A field whose default is itself a model (``Resources.requests``) is merged one level
    down, so ``{"limits": {"memory": "512Mi"}}`` keeps every other amount. Fields without a
    default are present only when given. Integral floats become ints (:func:`whole`).
    """
    given = given or {}
    merged: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if info.is_required():
            if name in given:
                merged[name] = whole(given[name])
            continue
        default = info.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            merged[name] = {**default.model_dump(), **(given.get(name) or {})}
        else:
            merged[name] = whole(given.get(name, default))
    return merged


def profile_of(value: Any) -> profiles.SecurityProfile:
    """A ``security_profile`` Args value (:class:`~hardened_k8s.inputs.SecurityProfile`, or its
    string as a component package sends it) as :mod:`hardened_k8s_rules.profiles` names it."""
    profile = SecurityProfile(value).value
    return next(p for p in profiles.PROFILES if p == profile)


def default_of(model: type[BaseModel], field: str) -> Any:
    """The stack file's default of ``model.field`` (a factory is called)."""
    return model.model_fields[field].get_default(call_default_factory=True)


@cache
def _field_adapter(model: type[BaseModel], field: str) -> TypeAdapter[Any]:
    info = model.model_fields[field]
    return TypeAdapter(Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation)


@cache
def _type_adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


class ArgsCheck:
    """Collects the problems of one component's Args; :meth:`done` raises them together."""

    def __init__(self, component: str, name: str) -> None:
        self._owner = f"{component} {name!r} args"
        self.problems: list[tuple[str, str]] = []
        """``(field path, message)`` pairs recorded so far."""

    def fields(self, args_type: Any, args: Mapping[str, Any]) -> None:
        """Refuse every field of ``args`` (nested Args included) that ``args_type`` does not
        declare: a ``TypedDict`` is not checked at runtime, and a misspelt field would
        otherwise be dropped for its default."""
        for path, message in unknown_fields(args_type, args):
            self.add(path, message)

    def add(self, path: str, message: str) -> None:
        """Record a problem of the field at ``path`` (``autoscaling.min_replicas``)."""
        self.problems.append((f"{self._owner}.{path}", message))

    def field(self, path: str, value: Any, model: type[BaseModel], field: str) -> None:
        """Check a known ``value`` as ``model.field`` of the stack config would be checked."""
        if is_known(value):
            self._validate(path, _field_adapter(model, field), value)

    def value(self, path: str, value: Any, annotation: Any) -> None:
        """Check a known ``value`` against a constrained type of :mod:`hardened_k8s.config`."""
        if is_known(value):
            self._validate(path, _type_adapter(annotation), value)

    def model(self, path: str, values: Mapping[str, Any], model: type[BaseModel]) -> None:
        """Check a nested Args value (defaults applied) as ``model`` would check it.

        When every value is known the whole model runs, rules between fields included (a
        limit below its request, a minimum above the maximum); otherwise each known field.
        """
        if is_known(values):
            try:
                model.model_validate(dict(values))
            except ValidationError as exc:
                for error in exc.errors():
                    self._report(path, error)
            return
        for key, value in values.items():
            nested = model.model_fields[key].annotation
            if isinstance(value, Mapping) and isinstance(nested, type) and issubclass(nested, BaseModel):
                self.model(f"{path}.{key}", value, nested)
            else:
                self.field(f"{path}.{key}", value, model, key)

    def done(self) -> None:
        """Raise :class:`ArgsError` with every problem found, if any."""
        if self.problems:
            raise ArgsError(self.problems)

    def _validate(self, path: str, adapter: TypeAdapter[Any], value: Any) -> None:
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            for error in exc.errors():
                self._report(path, error)

    def _report(self, path: str, error: Any) -> None:
        loc = ".".join(str(part) for part in error["loc"] if part != "[key]")
        self.add(f"{path}.{loc}" if loc else path, describe(error))
