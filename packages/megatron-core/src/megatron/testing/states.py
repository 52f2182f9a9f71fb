"""Comparing learned states (what ``StatefulLayer.get_state`` gives): nested mappings,
sequences, arrays, numbers and objects such as a fitted scikit-learn estimator (by their
attributes), either bit for bit or up to floating-point rounding."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

ROUNDING = 1e-12
"""How far apart two float64 values of states equal "up to rounding" may be, relative to the
largest magnitude in their array; values of a narrower float may be as many units in the
last place apart (about 4,500: 5e-4 relative for float32)."""


def rounding(dtype: np.dtype) -> float:
    """The relative tolerance of "up to rounding" for values of ``dtype``."""
    return ROUNDING * float(np.finfo(dtype).eps / np.finfo(np.float64).eps)


def state_difference(
    got: Any, want: Any, exact: bool = True, where: str = "state", rtol: float = 0.0
) -> str | None:
    """Where and how ``got`` differs from ``want``, or ``None`` when they are the same: of
    the same structure, keys and dtypes, with values bit for bit equal (``exact``) or, for
    floating-point arrays and numbers, within :func:`rounding` of their dtype (or ``rtol``,
    if larger: states learned from float32 data hold its rounding in float64 arrays) of the
    largest magnitude of their array (NaN where NaN)."""
    if isinstance(want, Mapping) or isinstance(got, Mapping):
        return _mapping_difference(got, want, exact, where, rtol)
    if isinstance(want, list | tuple) or isinstance(got, list | tuple):
        if not isinstance(got, list | tuple) or not isinstance(want, list | tuple) or len(got) != len(want):
            return f"{where}: {_shown(got)} where {_shown(want)} was expected"
        for i, (g, w) in enumerate(zip(got, want)):
            found = state_difference(g, w, exact, f"{where}[{i}]", rtol)
            if found is not None:
                return found
        return None
    if _is_array_like(want) or _is_array_like(got):
        return _array_difference(got, want, exact, where, rtol)
    if hasattr(want, "__dict__") and not isinstance(want, type) and not callable(want):
        if type(got) is not type(want):
            return f"{where}: a {type(got).__name__} where a {type(want).__name__} was expected"
        return _mapping_difference(vars(got), vars(want), exact, where, rtol)
    return None if _equal(got, want) else f"{where}: {got!r} where {want!r} was expected"


def _mapping_difference(got: Any, want: Any, exact: bool, where: str, rtol: float) -> str | None:
    if not isinstance(got, Mapping) or not isinstance(want, Mapping):
        return f"{where}: {_shown(got)} where {_shown(want)} was expected"
    if set(got) != set(want):
        extra, missing = sorted(map(str, set(got) - set(want))), sorted(map(str, set(want) - set(got)))
        return f"{where}: keys {extra} that were not expected, and {missing} missing"
    for key in want:
        found = state_difference(got[key], want[key], exact, f"{where}[{key!r}]", rtol)
        if found is not None:
            return found
    return None


def _is_array_like(value: Any) -> bool:
    return isinstance(value, np.ndarray | np.generic) or (
        isinstance(value, numbers.Number) and not isinstance(value, bool)
    )


def _array_difference(got: Any, want: Any, exact: bool, where: str, rtol: float) -> str | None:
    if not _is_array_like(got) or not _is_array_like(want):
        return f"{where}: {_shown(got)} where {_shown(want)} was expected"
    g, w = np.asarray(got), np.asarray(want)
    if g.dtype != w.dtype or g.shape != w.shape:
        return f"{where}: {g.dtype}{g.shape} where {w.dtype}{w.shape} was expected"
    if w.dtype.kind == "O":
        return state_difference(g.tolist(), w.tolist(), exact, where, rtol)
    if exact or w.dtype.kind not in "fc":
        if g.tobytes() != w.tobytes():
            return f"{where}: {_values(g)} where {_values(w)} was expected, bit for bit"
        return None
    finite = np.abs(w[np.isfinite(w)])
    scale, rtol = (float(finite.max()) if finite.size else 0.0), max(rtol, rounding(w.dtype))
    if not np.allclose(g, w, rtol=rtol, atol=rtol * scale, equal_nan=True):
        return f"{where}: {_values(g)} where {_values(w)} was expected, to {rtol:.2g} relative"
    return None


def _equal(got: Any, want: Any) -> bool:
    try:
        return bool(got == want)
    except (TypeError, ValueError):
        return got is want


def _shown(value: Any) -> str:
    return f"a {type(value).__name__}" + (
        f" of {len(value)}" if isinstance(value, list | tuple | Mapping) else ""
    )


def _values(array: np.ndarray) -> str:
    return np.array2string(array, precision=17, threshold=12)
