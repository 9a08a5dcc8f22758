"""Kubernetes resource quantities (``500m``, ``256Mi``, ``1.5``, ``1e3``) as exact decimals.

The grammar is apimachinery's ``resource.Quantity`` (without signs: no amount here may be
negative). The Kubernetes Python client has a parser too, but importing it loads the whole
generated client, which the config models must not pay for a dozen lines of grammar.
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
# Sign is refused on purpose: no resource amount in this library may be negative.
_QUANTITY_RE = re.compile(
    r"^(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<exp>[eE][+-]?[0-9]+)|(?P<decimal>[numkMGTPE]?))$"
)


def parse_quantity(value: str | int | float) -> Decimal:
    """Return the amount a quantity stands for (``"256Mi"`` -> ``268435456``).

    Raises ``ValueError`` naming the accepted forms for anything else, including negative
    numbers and unit spellings such as ``512mb`` or ``1GB``.
    """
    text = str(value).strip()
    match = _QUANTITY_RE.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a Kubernetes quantity; use a non-negative number with an optional "
            "suffix: binary Ki/Mi/Gi/Ti/Pi/Ei, decimal n/u/m/k/M/G/T/P/E or an exponent "
            "(e.g. 500m, 256Mi, 1Gi, 0.5)"
        )
    try:
        number = Decimal(match["number"])
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"{text!r} is not a number") from exc
    if match["binary"]:
        return number * _BINARY[match["binary"]]
    if match["exp"]:
        return number * (Decimal(10) ** int(match["exp"][1:]))
    return number * _DECIMAL[match["decimal"] or ""]
