"""Args are ``TypedDict``s, which Python does not check at runtime: a misspelt or camelCase
field would be dropped silently and the component would render its default. This module
finds every field of a given Args value, nested ones included, that its ``TypedDict`` does
not declare, with the closest declared name.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, is_typeddict

_CAMEL_RE = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake_case(key: str) -> str:
    """``minReplicas`` -> ``min_replicas``; a snake_case key is returned unchanged."""
    return _CAMEL_RE.sub(r"_\1", key).lower()


def fields_of(args_type: Any) -> dict[str, Any]:
    """The declared fields of a ``TypedDict`` (its bases' included) and their annotations."""
    found: dict[str, Any] = {}
    for klass in reversed(getattr(args_type, "__mro__", (args_type,))):
        found.update(getattr(klass, "__annotations__", {}))
    return found


def _nested(annotation: Any) -> list[tuple[str, Any]]:
    """How values of ``annotation`` hold a ``TypedDict``: ``("dict", T)``, ``("items", T)`` for a
    sequence of ``T``, ``("values", T)`` for a mapping to ``T``; through ``Input`` and ``|``."""
    if is_typeddict(annotation):
        return [("dict", annotation)]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) or origin in (typing.Required, typing.NotRequired):
        return [found for arg in args for found in _nested(arg)]
    if origin is None or not args:
        return []
    name = getattr(origin, "__name__", "")
    if name in ("Sequence", "list", "tuple", "Iterable") and is_typeddict(args[0]):
        return [("items", args[0])]
    if name in ("Mapping", "dict") and len(args) == 2 and is_typeddict(args[1]):
        return [("values", args[1])]
    return []


def unknown_fields(args_type: Any, given: Mapping[str, Any], path: str = "") -> list[tuple[str, str]]:
    """``(field path, message)`` of every key of ``given`` (and of its nested Args) that
    ``args_type`` does not declare; a message names the closest declared field."""
    declared = fields_of(args_type)
    problems: list[tuple[str, str]] = []
    for key, value in given.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in declared:
            problems.append((where, _unknown(str(key), sorted(declared))))
            continue
        for how, nested in _nested(declared[key]):
            if how == "dict" and isinstance(value, Mapping):
                problems += unknown_fields(nested, value, where)
            elif how == "items" and isinstance(value, list | tuple):
                for i, item in enumerate(value):
                    if isinstance(item, Mapping):
                        problems += unknown_fields(nested, item, f"{where}[{i}]")
            elif how == "values" and isinstance(value, Mapping):
                for name, item in value.items():
                    if isinstance(item, Mapping):
                        problems += unknown_fields(nested, item, f"{where}.{name}")
    return problems


def _unknown(key: str, declared: list[str]) -> str:
    snake = snake_case(key)
    if snake != key and snake in declared:
        return f'unknown field; Args fields are snake_case: write "{snake}"'
    close = difflib.get_close_matches(snake, declared, n=1, cutoff=0.6)
    hint = f'did you mean "{close[0]}"? ' if close else ""
    return f"unknown field; {hint}remove it or use one of: {', '.join(declared)}"
