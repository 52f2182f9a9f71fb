"""Numeric layers: element-wise arithmetic of inputs, products, clipping and logarithms."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from typing import Any

import numpy as np

from megatron.errors import ConfigError, LayerInputError, NotInvertibleError, SpecError
from megatron.layers import checks
from megatron.layers.affine import Affine, fits
from megatron.layers.base import StatelessLayer
from megatron.layers.naming import FeatureNames, numbered, passed_through, shared
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

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The inputs' names where they all have the same ones (else not known)."""
        return shared(input_features)

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

    fresh_output = True

    def transform_into(self, out: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``transform(X)`` written into ``out`` where it fits (else a new array)."""
        if np.ndim(self.factor) or not fits(out, checks.numeric(X), np.result_type(X, self.factor)):
            return self.transform(X)
        return np.multiply(X, self.factor, out=out)

    def affine(self) -> Affine | None:
        """``x * factor``, for a real scalar factor."""
        factor = self.factor
        return Affine.scaling(factor) if np.ndim(factor) == 0 and np.isrealobj(factor) else None

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The input's names: each feature keeps its name."""
        return passed_through(input_features)

    @property
    def invertible(self) -> bool:
        """True unless the factor is 0 (which maps every value to 0)."""
        return bool(np.all(np.asarray(self.factor) != 0))

    def why_not_invertible(self) -> str | None:
        """That the factor is 0 (or holds a 0), where it is."""
        zero = "is 0, which maps every value" if np.ndim(self.factor) == 0 else "holds a 0, which maps values"
        return None if self.invertible else f"its factor {zero} to 0"

    def inverse_transform(self, Y: np.ndarray) -> np.ndarray:
        """``Y / factor`` (a float array)."""
        if not self.invertible:
            raise NotInvertibleError(
                f"{type(self).__name__} {self.name!r} cannot recover its input: {self.why_not_invertible()}"
            )
        return np.true_divide(checks.numeric(Y), self.factor)


class ScalarAdd(StatelessLayer):
    """Add a constant.

    Example::

        celsius = ScalarAdd(-273.15)(kelvin, 'celsius')
    """

    def __init__(self, value: float) -> None:
        self.value = value

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X)
        return Spec(X.shape, None if X.dtype is None else np.result_type(X.dtype, self.value))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return checks.numeric(X) + self.value

    fresh_output = True

    def transform_into(self, out: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``transform(X)`` written into ``out`` where it fits (else a new array)."""
        if np.ndim(self.value) or not fits(out, checks.numeric(X), np.result_type(X, self.value)):
            return self.transform(X)
        return np.add(X, self.value, out=out)

    def affine(self) -> Affine | None:
        """``x + value``, for a real scalar value."""
        value = self.value
        return Affine.scaling(1.0, value) if np.ndim(value) == 0 and np.isrealobj(value) else None

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The input's names: each feature keeps its name."""
        return passed_through(input_features)

    def inverse_transform(self, Y: np.ndarray) -> np.ndarray:
        """``Y - value``."""
        return checks.numeric(Y) - self.value


class StaticDot(StatelessLayer):
    """Each observation (a vector, or a matrix's last axis) times a fixed matrix ``W``.

    Example::

        projected = StaticDot(np.random.normal(size=(50, 10)))(features, 'projected')
    """

    def __init__(self, W: Any) -> None:
        self.W = np.asarray(W)
        if self.W.ndim not in (1, 2) or self.W.dtype.kind not in checks.NUMERIC_KINDS:
            raise ConfigError(
                f"StaticDot needs a numeric vector or matrix W; got {self.W.dtype}{self.W.shape}"
            )

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

    fresh_output = True

    def affine(self) -> Affine | None:
        """``x @ W``, for a real ``W``."""
        return Affine.linear(self.W) if self.W.dtype.kind in "biuf" else None

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The components of the projection, ``<layer>0``, ``<layer>1``... (the layer's own name
        for a vector ``W``, which gives one value)."""
        return numbered(self.name, self.W.shape[1]) if self.W.ndim == 2 else [self.name]


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


class Clip(StatelessLayer):
    """Limit values to ``[min_val, max_val]`` (either bound may be None).

    Example::

        bounded = Clip(0, 100)(percent, 'bounded')
    """

    def __init__(self, min_val: float | None = None, max_val: float | None = None) -> None:
        if min_val is None and max_val is None:
            raise ConfigError("Clip needs min_val, max_val or both")
        self.min_val = min_val
        self.max_val = max_val

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X)
        return X

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.clip(checks.numeric(X), self.min_val, self.max_val)

    fresh_output = True

    def transform_into(self, out: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``transform(X)`` written into ``out`` where it fits (else a new array)."""
        bounds = [b for b in (self.min_val, self.max_val) if b is not None]
        if not fits(out, checks.numeric(X), np.result_type(X, *bounds), *bounds):
            return self.transform(X)
        return np.clip(X, self.min_val, self.max_val, out=out)

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The input's names: each feature keeps its name."""
        return passed_through(input_features)


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

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The input's names: each feature keeps its name."""
        return passed_through(input_features)

    def inverse_transform(self, Y: np.ndarray) -> np.ndarray:
        """``base ** Y - offset`` (``exp(Y) - offset`` for the natural log)."""
        checks.numeric(Y)
        with np.errstate(over="ignore"):
            if self.base is None:
                out = np.exp(Y, dtype=checks.floating(Y))
            else:
                out = np.power(np.asarray(self.base, dtype=checks.floating(Y)), Y, dtype=checks.floating(Y))
        out -= self.offset
        return out
