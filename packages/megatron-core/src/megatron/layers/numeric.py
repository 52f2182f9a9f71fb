"""Numeric layers: arithmetic, products, scaling and element-wise functions."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import reduce
from typing import Any

import numpy as np

from megatron.errors import LayerInputError, SpecError
from megatron.layers import checks
from megatron.layers.base import StatefulLayer, StatelessLayer
from megatron.specs import Spec


class _ElementWise(StatelessLayer):
    """Combine inputs element-wise, with numpy broadcasting per observation."""

    min_inputs = 2

    def output_spec(self, *inputs: Spec) -> Spec:
        if len(inputs) < self.min_inputs:
            raise SpecError(f"expected at least {self.min_inputs} inputs; got {len(inputs)}")
        for spec in inputs:
            checks.spec_numeric(spec)
        return Spec(checks.broadcast_shapes(inputs), self._dtype(inputs))

    def _dtype(self, inputs: tuple[Spec, ...]) -> np.dtype | None:
        return checks.result_dtype(*inputs)

    @staticmethod
    def _aligned(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Arrays whose per-observation axes broadcast against each other (trailing alignment)."""
        for a in arrays:
            checks.numeric(a)
        checks.same_length(*arrays)
        ndim = max(a.ndim for a in arrays)
        aligned = [a.reshape(a.shape[:1] + (1,) * (ndim - a.ndim) + a.shape[1:]) for a in arrays]
        try:
            np.broadcast_shapes(*(a.shape for a in aligned))
        except ValueError:
            raise LayerInputError(
                f"cannot combine observations of shapes {[a.shape[1:] for a in arrays]} element-wise "
                "(each axis must match or be 1)"
            ) from None
        return aligned


class Add(_ElementWise):
    """Element-wise sum of two or more inputs.

    Example::

        total = Add()([price, tax], 'total')
    """

    def transform(self, *inputs: np.ndarray) -> np.ndarray:
        return reduce(np.add, self._aligned(inputs))


class Subtract(_ElementWise):
    """The first input minus the second.

    Example::

        change = Subtract()([after, before], 'change')
    """

    def output_spec(self, *inputs: Spec) -> Spec:
        if len(inputs) != 2:
            raise SpecError(f"expected exactly 2 inputs; got {len(inputs)}")
        return super().output_spec(*inputs)

    def transform(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = self._aligned([a, b])
        return np.subtract(a, b)


class ElementWiseMultiply(_ElementWise):
    """Element-wise product of two or more inputs.

    Example::

        area = ElementWiseMultiply()([width, height], 'area')
    """

    def transform(self, *inputs: np.ndarray) -> np.ndarray:
        return reduce(np.multiply, self._aligned(inputs))


class Divide(_ElementWise):
    """The first input divided by the second, in the inputs' own float precision.

    Where the divisor is zero the result is ``impute`` (no infinities, no warnings).

    Example::

        ratio = Divide(impute=0)([income, debt], 'ratio')
    """

    def __init__(self, impute: float = 0.0) -> None:
        self.impute = impute

    def output_spec(self, *inputs: Spec) -> Spec:
        if len(inputs) != 2:
            raise SpecError(f"expected exactly 2 inputs; got {len(inputs)}")
        return super().output_spec(*inputs)

    def _dtype(self, inputs: tuple[Spec, ...]) -> np.dtype | None:
        dtype = checks.result_dtype(*inputs)
        return None if dtype is None else (dtype if dtype.kind == "f" else np.dtype(np.float64))

    def transform(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = self._aligned([a, b])
        dtype = np.result_type(a, b)
        if dtype.kind != "f":
            dtype = np.dtype(np.float64)
        shape = np.broadcast_shapes(a.shape, b.shape)
        out = np.full(shape, self.impute, dtype=dtype)
        np.divide(a, b, out=out, where=np.broadcast_to(b != 0, shape), casting="unsafe")
        return out


class ScalarMultiply(StatelessLayer):
    """Multiply by a constant.

    Example::

        cents = ScalarMultiply(100)(dollars, 'cents')
    """

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X)
        return Spec(X.shape, None if X.dtype is None else np.result_type(X.dtype, self.factor))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return checks.numeric(X) * self.factor


class StaticDot(StatelessLayer):
    """Each observation (a vector, or a matrix's last axis) times a fixed matrix ``W``.

    Example::

        projected = StaticDot(np.random.normal(size=(50, 10)))(features, 'projected')
    """

    def __init__(self, W: Any) -> None:
        self.W = np.asarray(W)
        if self.W.ndim not in (1, 2) or self.W.dtype.kind not in checks.NUMERIC_KINDS:
            raise SpecError(f"StaticDot needs a numeric vector or matrix W; got {self.W.dtype}{self.W.shape}")

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X)
        if X.shape is None:
            return Spec(None, checks.result_dtype(X, Spec((), self.W.dtype)))
        if not X.shape or X.shape[-1] not in (None, self.W.shape[0]):
            raise SpecError(f"the last axis must have length {self.W.shape[0]} to match W {self.W.shape}")
        return Spec(X.shape[:-1] + self.W.shape[1:], checks.result_dtype(X, Spec((), self.W.dtype)))

    def transform(self, X: np.ndarray) -> np.ndarray:
        checks.ndim(checks.numeric(X), 1)
        if X.shape[-1] != self.W.shape[0]:
            raise LayerInputError(f"expected a last axis of length {self.W.shape[0]}; got shape {X.shape}")
        return X @ self.W


class Dot(StatelessLayer):
    """Per-observation dot product of two or more inputs, chained left to right.

    Vectors give their inner product; matrices multiply as matrices (like ``np.dot`` on each
    observation).

    Example::

        similarity = Dot()([user_vector, item_vector], 'similarity')
    """

    def output_spec(self, *inputs: Spec) -> Spec:
        if len(inputs) < 2:
            raise SpecError(f"expected at least 2 inputs; got {len(inputs)}")
        for spec in inputs:
            checks.spec_numeric(spec)
        shape: tuple[int | None, ...] | None = inputs[0].shape
        for spec in inputs[1:]:
            if shape is None or spec.shape is None:
                shape = None
                continue
            if not shape or not spec.shape or len(shape) > 2 or len(spec.shape) > 2:
                raise SpecError("each observation must be a vector or a matrix")
            inner = spec.shape[0]
            if None not in (shape[-1], inner) and shape[-1] != inner:
                raise SpecError(f"inner dimensions differ: {shape} and {spec.shape}")
            shape = shape[:-1] + spec.shape[1:]
        return Spec(shape, checks.result_dtype(*inputs))

    def transform(self, *inputs: np.ndarray) -> np.ndarray:
        for X in inputs:
            checks.ndim(checks.numeric(X), 1)
        checks.same_length(*inputs)
        result = inputs[0]
        for other in inputs[1:]:
            if result.ndim > 3 or other.ndim > 3 or result.shape[-1] != other.shape[1]:
                raise LayerInputError(
                    f"expected observations that are vectors or matrices with matching inner sizes; "
                    f"got shapes {result.shape[1:]} and {other.shape[1:]} (batches {result.shape} and {other.shape})"
                )
            if result.ndim == 2 and other.ndim == 2:
                result = np.einsum("ni,ni->n", result, other)
            elif result.ndim == 2:
                result = np.matmul(result[:, None, :], other)[:, 0]
            elif other.ndim == 2:
                result = np.matmul(result, other[:, :, None])[..., 0]
            else:
                result = np.matmul(result, other)
        return result


class Normalize(StatelessLayer):
    """Scale each row (the last axis) to sum to 1; rows summing to 0 stay 0.

    Example::

        shares = Normalize()(counts, 'shares')
    """

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X)
        return Spec(X.shape, None if X.dtype is None else (X.dtype if X.dtype.kind == "f" else np.float64))

    def transform(self, X: np.ndarray) -> np.ndarray:
        checks.numeric(X)
        dtype = checks.floating(X)
        with np.errstate(over="ignore"):
            totals = X.sum(axis=-1, keepdims=True, dtype=dtype) if X.ndim > 1 else X.astype(dtype, copy=False)
        infinite = np.isinf(totals)
        if infinite.any():
            row = int(np.argwhere(infinite)[0][0])
            raise LayerInputError(
                f"row {row} sums to {totals.flat[np.flatnonzero(infinite)[0]]} (an infinite value, or "
                f"values whose sum overflows {dtype}), so it has no shares to normalize to"
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.divide(X, totals, dtype=dtype)
        empty = totals == 0
        if empty.any():
            out[np.broadcast_to(empty, out.shape)] = 0
        return out


_IGNORE_NAN_HINT = f"{checks.MISSING_HINT}, or leave NaN out of the statistics with ignore_nan=True"


class Whiten(StatefulLayer):
    """Standard scaling: zero mean and unit variance per feature, learned in fit.

    ``partial_fit`` merges running moments exactly, so fitting batch by batch gives the same
    result as one fit on all the data. Constant features are centred and left unscaled. Fit
    data must be finite: a NaN or infinity is refused, naming the feature, since it would make
    the feature NaN for every row. With ``ignore_nan=True``, NaN values are left out of each
    feature's statistics (as scikit-learn's ``StandardScaler`` does) and stay NaN in the output.

    Example::

        scaled = Whiten()(features, 'scaled')
    """

    def __init__(self, ignore_nan: bool = False) -> None:
        self.ignore_nan = ignore_nan

    def partial_fit(self, X: np.ndarray) -> None:
        checks.nonempty(checks.numeric(X), "partial_fit")
        X = X.astype(checks.floating(X), copy=False)
        checks.finite(X, allow_nan=self.ignore_nan, hint=_IGNORE_NAN_HINT)
        m = self.metadata
        if self.ignore_nan:
            present = ~np.isnan(X)
            n_b = present.sum(axis=0)
            mean_b = np.divide(np.where(present, X, 0).sum(axis=0), np.maximum(n_b, 1), dtype=X.dtype)
            centred = np.where(present, X - mean_b, 0)
        else:
            n_b = len(X)
            mean_b = X.mean(axis=0)
            centred = X - mean_b
        m2_b = np.einsum("i...,i...->...", centred, centred)
        if "n" not in m:
            m["n"], m["mean"], m["m2"] = np.asarray(n_b), mean_b, m2_b
            self._set_scale()
            return
        n_a, mean_a = m["n"], m["mean"]
        n = n_a + n_b
        delta = mean_b - mean_a
        if self.ignore_nan:
            share = np.divide(n_b, np.maximum(n, 1))
            m["mean"] = (mean_a + delta * share).astype(mean_a.dtype, copy=False)
            m["m2"] = (m["m2"] + m2_b + delta**2 * (n_a * share)).astype(mean_a.dtype, copy=False)
        else:
            m["mean"] = mean_a + delta * (n_b / n)
            m["m2"] = m["m2"] + m2_b + delta**2 * (n_a * n_b / n)
        m["n"] = np.asarray(n)
        self._set_scale()

    def _set_scale(self) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):  # a feature with no values at all
            std = np.sqrt(self.metadata["m2"] / self.metadata["n"])
        self.metadata["scale"] = np.where(std == 0, 1, std).astype(self.metadata["mean"].dtype)

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X)
        return Spec(X.shape, None if X.dtype is None else (X.dtype if X.dtype.kind == "f" else np.float64))

    def transform(self, X: np.ndarray) -> np.ndarray:
        checks.numeric(X)
        metadata = self.metadata
        out = np.subtract(X, metadata["mean"], dtype=checks.floating(X))
        out /= metadata["scale"]
        return out


class MinMaxScale(StatefulLayer):
    """Scale each feature to ``feature_range`` (default [0, 1]) from minima and maxima learned
    in fit; ``partial_fit`` is exact. Constant features map to the range's lower end. Fit data
    must be finite (an infinity would map the feature to a constant); with ``ignore_nan=True``,
    NaN values are left out of the minima and maxima and stay NaN in the output.

    Example::

        scaled = MinMaxScale()(features, 'scaled')
    """

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0), ignore_nan: bool = False) -> None:
        low, high = feature_range
        if not low < high:
            raise SpecError(
                f"MinMaxScale needs feature_range (low, high) with low < high; got {feature_range}"
            )
        self.feature_range = (low, high)
        self.ignore_nan = ignore_nan

    def partial_fit(self, X: np.ndarray) -> None:
        checks.nonempty(checks.numeric(X), "partial_fit")
        checks.finite(X, allow_nan=self.ignore_nan, hint=_IGNORE_NAN_HINT)
        if self.ignore_nan and X.dtype.kind == "f":
            with warnings.catch_warnings():  # a feature with no values in this batch stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
        else:
            low, high = X.min(axis=0), X.max(axis=0)
        m = self.metadata
        minimum, maximum = (np.fmin, np.fmax) if self.ignore_nan else (np.minimum, np.maximum)
        m["min"] = low if "min" not in m else minimum(m["min"], low)
        m["max"] = high if "max" not in m else maximum(m["max"], high)

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X)
        return Spec(X.shape, None if X.dtype is None else (X.dtype if X.dtype.kind == "f" else np.float64))

    def transform(self, X: np.ndarray) -> np.ndarray:
        checks.numeric(X)
        low, high = self.feature_range
        span = self.metadata["max"] - self.metadata["min"]
        scale = (high - low) / np.where(span == 0, 1, span)
        out = np.subtract(X, self.metadata["min"], dtype=checks.floating(X))
        out *= scale
        out += low
        return out


class Clip(StatelessLayer):
    """Limit values to ``[min_val, max_val]`` (either bound may be None).

    Example::

        bounded = Clip(0, 100)(percent, 'bounded')
    """

    def __init__(self, min_val: float | None = None, max_val: float | None = None) -> None:
        if min_val is None and max_val is None:
            raise SpecError("Clip needs min_val, max_val or both")
        self.min_val = min_val
        self.max_val = max_val

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X)
        return X

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.clip(checks.numeric(X), self.min_val, self.max_val)


class Log(StatelessLayer):
    """Logarithm of ``X + offset`` in ``base`` (natural by default); values must be positive.

    Example::

        log_income = Log(offset=1)(income, 'log_income')
    """

    def __init__(self, base: float | None = None, offset: float = 0.0) -> None:
        self.base = base
        self.offset = offset

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X)
        return Spec(X.shape, None if X.dtype is None else (X.dtype if X.dtype.kind == "f" else np.float64))

    def transform(self, X: np.ndarray) -> np.ndarray:
        checks.numeric(X)
        shifted = np.add(X, self.offset, dtype=checks.floating(X))
        if shifted.size and np.isnan(shifted).any():
            raise LayerInputError(
                f"cannot take the log of NaN ({int(np.isnan(shifted).sum())} in the batch); "
                "fill missing values first (SimpleImpute, Impute)"
            )
        if shifted.size and not (shifted > 0).all():
            raise LayerInputError(
                f"expected values above {-self.offset} (log of X + offset {self.offset}); "
                f"got minimum {np.nanmin(X) if X.dtype.kind == 'f' else X.min()}"
            )
        out = np.log(shifted, out=shifted)
        if self.base is not None:
            out /= np.log(self.base)
        return out
