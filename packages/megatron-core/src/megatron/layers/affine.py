"""Affine maps of a layer's input: what a layer declares through ``Layer.affine()`` so that the
plan compiler can fold a chain of such layers into one matrix product plus a bias.

An :class:`Affine` says ``transform(x) == x @ coef + intercept`` on the last axis, up to
rounding, for the layer's state at the time it was asked. An element-wise map (a scaler) says
so with ``elementwise=True``: ``coef`` and ``intercept`` are then per feature (shape
``(in,)``) or scalars, and the map is ``x * coef + intercept``, which keeps a NaN in its own
feature where a matrix product would spread it over a row.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np


def _as_float(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


@attrs.frozen(eq=False)
class Affine:
    """``x -> x @ coef + intercept`` (or ``x * coef + intercept`` when ``elementwise``).

    ``coef`` is ``(in, out)`` (``(in,)`` for one value per observation, as a regressor's
    prediction) and ``intercept`` ``(out,)`` or a scalar; for an element-wise map both are
    ``(in,)`` or scalars. ``finite_only``: the layer refuses non-finite input (scikit-learn's
    PCA), which a folded map must then refuse too. Coefficients are kept in float64.
    """

    coef: np.ndarray = attrs.field(converter=_as_float)
    intercept: np.ndarray = attrs.field(converter=_as_float)
    elementwise: bool = False
    finite_only: bool = False

    @classmethod
    def scaling(cls, scale: Any, shift: Any = 0.0, finite_only: bool = False) -> Affine:
        """The element-wise map ``x * scale + shift``."""
        return cls(scale, shift, elementwise=True, finite_only=finite_only)

    @classmethod
    def linear(cls, coef: Any, intercept: Any = None, finite_only: bool = False) -> Affine:
        """``x @ coef + intercept`` (a zero intercept when None)."""
        coef = _as_float(coef)
        if intercept is None:
            intercept = np.zeros(coef.shape[1:])
        return cls(coef, intercept, elementwise=False, finite_only=finite_only)

    @property
    def finite(self) -> bool:
        """Whether every coefficient is finite (a map with NaN coefficients is never folded)."""
        return bool(np.isfinite(self.coef).all() and np.isfinite(self.intercept).all())

    def then(self, other: Affine) -> Affine | None:
        """This map followed by ``other``, as one map; None where they do not compose (the
        widths differ, or a map of vectors follows one giving a value per observation)."""
        a1, b1, a2, b2 = self.coef, self.intercept, other.coef, other.intercept
        finite_only = self.finite_only or other.finite_only
        try:
            if self.elementwise and other.elementwise:
                return Affine(a1 * a2, b1 * a2 + b2, elementwise=True, finite_only=finite_only)
            if self.elementwise:  # scale the rows of other's matrix
                if a2.ndim == 0:
                    return None
                rows = a2 * (a1.reshape(-1, *([1] * (a2.ndim - 1))) if a1.ndim else a1)
                shift = b1 @ a2 if b1.ndim else b1 * a2.sum(axis=0)
                return Affine(rows, shift + b2, finite_only=finite_only)
            if other.elementwise:  # scale the columns of this matrix
                if a1.ndim < 2 and a2.ndim:
                    return None
                return Affine(a1 * a2, b1 * a2 + b2, finite_only=finite_only)
            if a1.ndim < 2:
                return None
            return Affine(a1 @ a2, b1 @ a2 + b2, finite_only=finite_only)
        except ValueError:  # shapes that do not line up: the layers themselves will say so
            return None

    def apply(self, X: np.ndarray) -> np.ndarray:
        """The map on ``X``, in float64 (a reference, for tests)."""
        X = np.asarray(X, dtype=np.float64)
        return (X * self.coef if self.elementwise else X @ self.coef) + self.intercept

    def __repr__(self) -> str:
        kind = "elementwise" if self.elementwise else "linear"
        return f"Affine({kind}, coef{self.coef.shape}, intercept{self.intercept.shape})"


def compose(maps: list[Affine | None]) -> Affine | None:
    """The maps in turn as one (None if any is None or they do not compose)."""
    if not maps or maps[0] is None:
        return None
    result: Affine | None = maps[0]
    for affine in maps[1:]:
        if affine is None or result is None:
            return None
        result = result.then(affine)
    return result


def fits(out: np.ndarray, X: np.ndarray, dtype: Any, *operands: Any) -> bool:
    """Whether ``out`` can take an element-wise result of ``X`` (and ``operands``, broadcast
    with it) in ``dtype`` (for a layer's ``transform_into``): the result has ``out``'s shape
    (operands that widen ``X`` give a larger one), and exactly its dtype."""
    if out.shape != X.shape or out.dtype != dtype:
        return False
    return (
        all(np.ndim(a) == 0 for a in operands)
        or np.broadcast_shapes(X.shape, *map(np.shape, operands)) == X.shape
    )


def per_feature(*arrays: Any) -> bool:
    """Whether learned statistics are one value per feature (or one in all), so that the layer
    is an element-wise map of the last axis."""
    return all(a is not None and np.ndim(a) <= 1 for a in arrays)
