"""What a NetworkPolicy peer selector and port list admit, judged by meaning, not by shape.

A selector is *narrow* when it names the objects it admits by value: some key is pinned to a
finite set of values (a ``matchLabels`` entry or an ``In`` expression), or it cannot match at
all. Every other selector admits objects nobody named: ``{}`` does, and so do ``NotIn`` (all
but a few), ``Exists`` (anything labelled) and ``DoesNotExist`` (anything unlabelled), alone or
together. The one exception is a key every object carries: the API server labels every
namespace with ``kubernetes.io/metadata.name``, so ``DoesNotExist`` on it matches no namespace.

A port entry admits one port (a number or a name, which resolves to one container port of the
destination), a range (``port`` to ``endPort``), or, without ``port``, every port of its
protocol. A rule without ports admits every port of every protocol.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from .objects import as_int, as_list, as_map

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""The label the API server sets on every namespace, to its name."""

NAMESPACE_KEYS = frozenset({NAMESPACE_NAME_LABEL})
"""Keys every namespace carries: pass as ``always`` when judging a ``namespaceSelector``."""

MAX_PORT = 65535
"""The highest TCP/UDP port number."""
MAX_PORT_RANGE = 64
"""A port entry admitting more ports than this (a wide ``endPort`` range, or no ``port``) is broad."""


def pinned_values(selector: Mapping[str, Any], key: str) -> frozenset[str] | None:
    """The values ``key`` may take in objects ``selector`` matches, or None when any value (or none)
    may: the intersection of its ``matchLabels`` value and its ``In`` expressions on ``key``, less
    the values its ``NotIn`` expressions on ``key`` exclude."""
    allowed: frozenset[str] | None = None
    excluded: set[str] = set()
    labels = as_map(selector.get("matchLabels"))
    if key in labels:
        allowed = frozenset({str(labels[key])})
    for expr in as_list(selector.get("matchExpressions")):
        expr = as_map(expr)
        if expr.get("key") != key:
            continue
        values = frozenset(str(v) for v in as_list(expr.get("values")))
        if expr.get("operator") == "In":
            allowed = values if allowed is None else allowed & values
        elif expr.get("operator") == "NotIn":
            excluded |= values
    return None if allowed is None else allowed - excluded


def _matches_nothing(selector: Mapping[str, Any], always: Collection[str]) -> bool:
    """Whether the terms contradict each other (no label set satisfies them all)."""
    exprs = [as_map(e) for e in as_list(selector.get("matchExpressions"))]
    keys = {str(k) for k in as_map(selector.get("matchLabels"))} | {str(e.get("key")) for e in exprs}
    for key in keys:
        allowed = pinned_values(selector, key)
        operators = {e.get("operator") for e in exprs if e.get("key") == key}
        present_required = key in always or allowed is not None or "Exists" in operators
        if "DoesNotExist" in operators and present_required:
            return True
        if allowed is not None and not allowed:
            return True
    return False


def selector_is_broad(selector: Mapping[str, Any], always: Collection[str] = ()) -> bool:
    """Whether ``selector`` admits objects it does not name by value (see the module docstring).

    ``always``: label keys every candidate object carries (default none; :data:`NAMESPACE_KEYS`
    for namespaces). An unknown operator pins nothing.
    """
    if _matches_nothing(selector, always):
        return False
    if as_map(selector.get("matchLabels")):
        return False
    return not any(
        as_map(e).get("operator") == "In" and as_map(e).get("key") is not None
        for e in as_list(selector.get("matchExpressions"))
    )


def port_span(entry: Mapping[str, Any]) -> int:
    """How many ports of its protocol one ``ports`` entry admits: every port without ``port``, one
    for a name, ``endPort - port + 1`` for a range (an inverted range is refused by the API server
    and counts as its ``port`` alone)."""
    port = entry.get("port")
    if port is None:
        return MAX_PORT
    number = as_int(port)
    if number is None:
        return 1
    end = as_int(entry.get("endPort"))
    return max(end - number + 1, 1) if end is not None else 1


def port_entry_admits(entry: Mapping[str, Any], port: int, names: Collection[str] = ()) -> bool:
    """Whether one ``ports`` entry admits ``port`` (any protocol): a number or range that covers it,
    no ``port`` at all, its number written as a string, or a name in ``names`` (the names the
    destination gives that port)."""
    value = entry.get("port")
    if value is None:
        return True
    number = as_int(value)
    if number is None:
        text = str(value)
        return text in names or (text.isdigit() and int(text) == port)
    end = as_int(entry.get("endPort"))
    return number == port or (end is not None and number <= port <= end)


def ports_admit(ports: Sequence[Any], port: int, names: Collection[str] = ()) -> bool:
    """Whether a rule's ``ports`` admit ``port``; an empty list admits every port."""
    return not ports or any(port_entry_admits(as_map(p), port, names) for p in ports)
