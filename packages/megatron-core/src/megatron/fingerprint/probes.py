"""Probes: how a kept fingerprint tells that the slots it read still hold what they held."""

from __future__ import annotations

import functools
import operator
import types
from collections.abc import Callable
from typing import Any

Probe = tuple[Callable[[Any], Any], Any, Any]
"""``(get, key, expected)``: the slot still holds what was read when ``get(key) is expected``."""

MISSING = object()
"""What :func:`entry` reads from a mapping that lacks the key."""

attribute = functools.cache(operator.attrgetter)
cell_contents = attribute("cell_contents")


def unchanged(probes: tuple[Probe, ...]) -> bool:
    """Whether every slot still holds the object it held when it was read."""
    try:
        for get, key, expected in probes:
            if get(key) is not expected:
                return False
    except Exception:  # a slot that cannot be read any more (a deleted attribute or global)
        return False
    return True


def entry(key: Any) -> Callable[[Any], Any]:
    """Reads ``mapping[key]`` without inserting it (a ``defaultdict``), or a marker if absent."""
    return operator.methodcaller("get", key, MISSING)


def has_length(pair: tuple[Any, int]) -> bool:
    return len(pair[0]) == pair[1]


def function_slots(f: types.FunctionType) -> tuple[Any, ...]:
    return (f, f.__code__, f.__defaults__, f.__kwdefaults__, f.__dict__, len(f.__dict__))


def same_function(slots: tuple[Any, ...]) -> bool:
    """Whether a function still has the code, defaults, keyword defaults and attribute dict
    (of as many attributes) it had."""
    f, code, defaults, kwdefaults, attributes, n = slots
    return (
        f.__code__ is code
        and f.__defaults__ is defaults
        and f.__kwdefaults__ is kwdefaults
        and f.__dict__ is attributes
        and len(attributes) == n
    )


def has_items(pair: tuple[set[Any], frozenset[Any]]) -> bool:
    return pair[0] == pair[1]


def is_empty(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return True
    return False
