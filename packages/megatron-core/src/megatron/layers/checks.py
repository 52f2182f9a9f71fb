"""Input checks shared by the built-in layers.

Each raises :class:`~megatron.errors.LayerInputError` saying what was expected and what came;
the executor adds the layer and node names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from megatron.errors import LayerInputError, SpecError
from megatron.specs import Spec

NUMERIC_KINDS = "biuf"


def numeric(X: np.ndarray, what: str = "input") -> np.ndarray:
    """``X`` if it holds numbers (bool, int, float)."""
    if X.dtype.kind not in NUMERIC_KINDS:
        raise LayerInputError(f"expected a numeric {what}; got dtype {X.dtype}")
    return X


def floating(X: np.ndarray) -> np.dtype:
    """The float dtype results take for ``X``: its own float precision, else float64."""
    return floating_dtype(X.dtype)


def floating_dtype(dtype: np.dtype) -> np.dtype:
    """Float dtypes stay; any other dtype computes in float64."""
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def ndim(X: np.ndarray, at_least: int, what: str = "input") -> np.ndarray:
    """``X`` if it has at least ``at_least`` axes per observation."""
    if X.ndim - 1 < at_least:
        raise LayerInputError(
            f"expected {what} with at least {at_least} axes per observation; got shape {X.shape} "
            f"({X.ndim - 1} per observation)"
        )
    return X


def nonempty(X: np.ndarray, operation: str = "fit") -> np.ndarray:
    """``X`` if it holds at least one observation (a layer cannot learn from nothing)."""
    if X.shape[0] == 0:  # shape, not len(): a scipy.sparse matrix has no len()
        raise LayerInputError(f"cannot {operation} on an empty batch (shape {X.shape})")
    return X


MISSING_HINT = "fill missing values first (SimpleImpute, Impute)"


def finite(
    X: np.ndarray, operation: str = "fit on", allow_nan: bool = False, hint: str = MISSING_HINT
) -> np.ndarray:
    """``X`` if it holds no NaN or infinity (NaN allowed with ``allow_nan``): a statistic learned
    from one would be NaN, or 0, for every row. The error names the first bad feature."""
    if X.dtype.kind not in "fc":
        return X
    bad = ~np.isfinite(X)
    if allow_nan:
        bad &= ~np.isnan(X)
    if not bad.any():
        return X
    position = tuple(int(i) for i in np.argwhere(bad)[0])
    row, feature = position[0], position[1:]
    if not feature:
        where = "the input"
    else:
        index = feature[0] if len(feature) == 1 else feature
        where = f"feature {index}"
    raise LayerInputError(
        f"cannot {operation} non-finite values: {where} holds {X[position]} in row {row} "
        f"({int(bad.sum())} non-finite values in the batch), which would make what is learned NaN "
        f"or meaningless for every row: {hint}"
    )


def text(X: np.ndarray, what: str = "input") -> np.ndarray:
    """``X`` if it holds strings (a str array, or an object array of str)."""
    if X.dtype.kind == "U":
        return X
    if X.dtype.kind == "O" and all(isinstance(v, str) for v in X.flat):
        return X
    raise LayerInputError(f"expected text (str values) as {what}; got dtype {X.dtype}")


def same_length(*arrays: np.ndarray) -> None:
    counts = [a.shape[0] for a in arrays]  # shape, not len(): a scipy.sparse matrix has no len()
    if len(set(counts)) > 1:
        raise LayerInputError(f"inputs hold different numbers of observations: {counts}")


def spec_numeric(spec: Spec, what: str = "input") -> None:
    """Refuse at build time a declared dtype that is not numeric."""
    if spec.dtype is not None and spec.dtype.kind not in NUMERIC_KINDS:
        raise SpecError(f"expected a numeric {what}; the node's dtype is {spec.dtype}")


def broadcast_shapes(specs: tuple[Spec, ...]) -> tuple[int | None, ...] | None:
    """The per-observation shape of an element-wise combination, or ``None`` if unknown."""
    if any(s.shape is None for s in specs):
        return None
    shapes = [s.shape for s in specs if s.shape is not None]
    ndim_out = max(len(s) for s in shapes)
    out: list[int | None] = []
    for axis in range(-ndim_out, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis} - {1}
        known = {d for d in sizes if d is not None}
        if len(known) > 1:
            raise SpecError(f"shapes {[tuple(s) for s in shapes]} cannot be combined element-wise")
        out.append(known.pop() if known else (None if None in sizes else 1))
    return tuple(out)


def result_dtype(*specs: Spec, at_least: Any = None) -> np.dtype | None:
    """numpy's result dtype for combining ``specs`` (``None`` if any is unknown)."""
    if any(s.dtype is None for s in specs):
        return None
    dtypes = [s.dtype for s in specs] + ([np.dtype(at_least)] if at_least is not None else [])
    return np.result_type(*dtypes)
