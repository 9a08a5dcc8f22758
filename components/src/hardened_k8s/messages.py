"""One pydantic error as a sentence a user can act on: what is wrong, then how to fix it.

pydantic's own wording ("Input should be a valid integer, unable to parse string as an
integer"), its regular expressions and Python reprs never reach the user; every error type
a config model or an Args check can raise is worded here.
"""

from __future__ import annotations

import re
from typing import Any


def shown(value: Any) -> str:
    """A value as the stack file would spell it: text in double quotes, ``true``/``false``, ``null``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list | tuple):
        return "a list"
    return str(value)


def _choices(expected: str) -> str:
    """pydantic's ``'a', 'b' or 'c'`` without the Python quotes."""
    return re.sub(r"'([^']*)'", r"\1", expected)


def describe(err: Any) -> str:
    """The message of one pydantic error (``err`` as ``ValidationError.errors()`` gives it)."""
    kind: str = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    got = shown(value)
    if kind == "value_error":
        return str(ctx["error"])
    if kind == "missing":
        return "required key is missing; add it"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"is {got}, not a whole number; write a number such as 8080 (no quotes, no decimals)"
    if kind in ("float_parsing", "float_type"):
        return f"is {got}, not a number; write a number such as 0.5"
    if kind in ("bool_parsing", "bool_type"):
        return f"is {got}, not true or false; write true or false"
    if kind == "string_type":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (
                f"is the number {value}, but must be text; YAML reads unquoted digits as a number "
                f'(1.10 becomes 1.1): quote the value, e.g. "{value}"'
            )
        return f"is {got}, but must be text"
    bounds = {
        "greater_than_equal": ("greater than or equal to", "ge"),
        "greater_than": ("greater than", "gt"),
        "less_than_equal": ("less than or equal to", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"is {got}; use a number {words} {ctx[key]}"
    if kind in ("literal_error", "enum"):
        return f"is {got}; use one of: {_choices(str(ctx.get('expected', '')))}"
    if kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        return f"is {got}, but must be a map of keys and values"
    if kind in ("list_type", "tuple_type", "set_type"):
        return f"is {got}, but must be a list"
    unit = "characters" if kind.startswith("string") else "items"
    if kind in ("string_too_long", "too_long"):
        return f"is too long; use at most {ctx.get('max_length')} {unit}"
    if kind in ("string_too_short", "too_short"):
        return f"is too short; use at least {ctx.get('min_length')} {unit}"
    if kind == "string_pattern_mismatch":
        return f"is {got}, which is not in the form this key takes; see the key's description"
    if kind == "extra_forbidden":
        return "unknown key; remove it"
    # Any other type: pydantic's sentence without its "Input should be" preamble.
    message = str(err.get("msg", "is not valid")).replace("Input should be", "must be")
    return f"is {got}; {message[:1].lower()}{message[1:]}"
