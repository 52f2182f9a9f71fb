"""Metric states: the generic merge of two states, and the state of a metric that collects.

Two states of disjoint parts of the data merge into the state of both parts, in order (the
first argument's rows come first). The generic merge reads the state's structure: numbers and
arrays add, tuples and lists of the same length merge element by element, mappings merge by
key (keys of the first, then the second's new keys), and :class:`Batches` (what ``Metric(fn)``
collects) concatenate. It is pure: it returns new containers and never changes its arguments.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from megatron.errors import MetricError


class Batches(list[Any]):
    """The batches a collecting metric keeps, each a tuple of its input arrays; two of them
    merge by concatenation (the first's batches, then the second's)."""


def merge_states(a: Any, b: Any, where: str) -> Any:
    """The state of the parts whose states are ``a`` then ``b``, by the generic rules; a state
    they do not cover is a :class:`~megatron.errors.MetricError` naming ``where``."""
    if isinstance(a, Batches) or isinstance(b, Batches):
        if not isinstance(a, list) or not isinstance(b, list):
            raise _unmergeable(a, b, where, "collected batches merge only with collected batches")
        return Batches([*a, *b])
    if _is_bool(a) or _is_bool(b):
        raise _unmergeable(a, b, where, "a boolean has no sum")
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if a.shape != b.shape:
            raise _unmergeable(a, b, where, f"arrays of shapes {a.shape} and {b.shape} do not add")
        return a + b
    if _is_number_or_array(a) and _is_number_or_array(b):
        return a + b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        merged = {key: merge_states(value, b[key], f"{where}[{key!r}]") if key in b else copy.deepcopy(value)
                  for key, value in a.items()}  # fmt: skip
        merged.update({key: copy.deepcopy(value) for key, value in b.items() if key not in a})
        return merged
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        if len(a) != len(b):
            raise _unmergeable(a, b, where, f"sequences of lengths {len(a)} and {len(b)}")
        items = [merge_states(x, y, f"{where}[{i}]") for i, (x, y) in enumerate(zip(a, b))]
        if isinstance(a, tuple) and hasattr(a, "_fields"):  # a named tuple
            return type(a)(*items)
        return type(a)(items)
    raise _unmergeable(a, b, where, "the generic merge adds numbers, arrays, tuples, lists and mappings")


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_)) or (isinstance(value, np.ndarray) and value.dtype == np.bool_)


def _is_number_or_array(value: Any) -> bool:
    return isinstance(value, (numbers.Number, np.ndarray, np.number))


def _unmergeable(a: Any, b: Any, where: str, why: str) -> MetricError:
    return MetricError(
        f"{where}: cannot merge a state of type {type(a).__name__} with one of type "
        f"{type(b).__name__} ({why}); define merge(a, b) on the metric to combine its states."
    )
