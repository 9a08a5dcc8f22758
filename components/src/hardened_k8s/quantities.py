"""Kubernetes resource quantities (``500m``, ``256Mi``, ``1.5``, ``1e3``) as exact decimals.

The grammar is apimachinery's ``resource.Quantity``, signs included, so a negative amount
is named as such rather than as a bad format (no amount here may be negative or, where the
API server or the hardening needs one, zero). The Kubernetes Python client has a parser too,
but importing it loads the whole generated client, which the config models must not pay for
a dozen lines of grammar.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY_RE = re.compile(
    r"^(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<exp>[eE][+-]?[0-9]+)|(?P<decimal>[numkMGTPE]?))$"
)


_MAX_EXPONENT = 18
_MAX_AMOUNT = Decimal(2**63 - 1)
_UNIT_FIXES = {
    "kb": ("Ki", "k"), "kib": ("Ki",), "ki": ("Ki",), "mb": ("Mi", "M"), "mib": ("Mi",), "mi": ("Mi",),
    "gb": ("Gi", "G"), "gib": ("Gi",), "gi": ("Gi",), "tb": ("Ti", "T"), "tib": ("Ti",), "ti": ("Ti",),
}  # fmt: skip
"""Unit spellings Kubernetes does not know, and the suffix that means the same."""


def parse_quantity(value: str | int | float) -> Decimal:
    """Return the amount a quantity stands for (``"256Mi"`` -> ``268435456``).

    Raises ``ValueError`` naming the accepted forms for anything else, including negative
    numbers and unit spellings such as ``512mb`` or ``1GB``.
    """
    text = str(value).strip()
    match = _QUANTITY_RE.fullmatch(text)
    if match and match["sign"] == "-" and Decimal(match["number"]) != 0:
        raise ValueError(f'"{text}" is negative; a resource amount must be 0 or more, e.g. {text[1:]}')
    if match and match["exp"] and abs(int(match["exp"][1:])) > _MAX_EXPONENT:
        raise ValueError(
            f'"{text}" has an exponent beyond what Kubernetes stores; write the amount with a suffix'
        )
    if not match:
        unit = re.match(r"^[0-9.]+\s*([A-Za-z]+)$", text)
        fix = _UNIT_FIXES.get(unit[1].lower()) if unit else None
        if unit and fix:
            digits = text[: -len(unit[1])].strip()
            spelled = " or ".join(f'"{digits}{suffix}"' for suffix in fix)
            raise ValueError(
                f'"{text}" is not a Kubernetes quantity; write {spelled} (binary, then decimal)'
                if len(fix) > 1
                else f'"{text}" is not a Kubernetes quantity; write {spelled}'
            )
        raise ValueError(
            f'"{text}" is not a Kubernetes quantity; use a non-negative number with an optional '
            "suffix: binary Ki/Mi/Gi/Ti/Pi/Ei, decimal n/u/m/k/M/G/T/P/E or an exponent "
            "(e.g. 500m, 256Mi, 1Gi, 0.5)"
        )
    try:
        number = Decimal(match["number"])
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"{text!r} is not a number") from exc
    if match["binary"]:
        amount = number * _BINARY[match["binary"]]
    elif match["exp"]:
        amount = number * (Decimal(10) ** int(match["exp"][1:]))
    else:
        amount = number * _DECIMAL[match["decimal"] or ""]
    if amount > _MAX_AMOUNT:
        raise ValueError(f'"{text}" is larger than Kubernetes can store (2^63-1); use a smaller amount')
    return amount


def positive_quantity(value: str | int | float) -> Decimal:
    """:func:`parse_quantity` of an amount that must be above zero."""
    amount = parse_quantity(value)
    if amount <= 0:
        raise ValueError(
            f'"{value}" is zero; give an amount above zero, e.g. 100m for CPU or 128Mi for memory'
        )
    return amount
