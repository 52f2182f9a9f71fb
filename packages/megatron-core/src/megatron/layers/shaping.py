"""Shaping layers: the dtype, axes and shape of each observation (the observation axis is
always kept)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from megatron.errors import LayerInputError, SpecError
from megatron.layers import checks
from megatron.layers.base import StatelessLayer
from megatron.layers.naming import FeatureNames, passed_through
from megatron.specs import Spec


class Cast(StatelessLayer):
    """Convert to ``dtype``.

    Example::

        as_float = Cast('float32')(pixels)
    """

    def __init__(self, dtype: Any) -> None:
        self.dtype = np.dtype(dtype).name

    def output_spec(self, X: Spec) -> Spec:
        return Spec(X.shape, self.dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        target = np.dtype(self.dtype)
        if X.dtype.kind in "biufc" and target.kind in "biufc":
            _check_cast(X, target)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
                out = X.astype(target)
        except (TypeError, ValueError, OverflowError) as exc:
            raise LayerInputError(f"cannot cast {X.dtype} values to {self.dtype}: {exc}") from exc
        if target.kind == "f" and X.dtype.kind in "fc" and target.itemsize < X.dtype.itemsize:
            overflowed = np.isinf(out) & np.isfinite(X.real if X.dtype.kind == "c" else X)
            if overflowed.any():
                raise LayerInputError(
                    f"cannot cast {X.dtype} values to {self.dtype}: {X.flat[np.flatnonzero(overflowed)[0]]} "
                    f"is beyond its largest value {np.finfo(target).max}"
                )
        return out

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The input's names: each feature keeps its name."""
        return passed_through(input_features)


def _check_cast(X: np.ndarray, target: np.dtype) -> None:
    """Refuse numbers that ``target`` cannot hold, which numpy would turn into others silently:
    NaN, infinities and out-of-range values cast to integers, imaginary parts cast to reals."""
    if not X.size:
        return
    if X.dtype.kind == "c" and target.kind != "c":
        if np.any(X.imag != 0):
            raise LayerInputError(f"cannot cast complex values with an imaginary part to {target}")
        X = X.real
    if target.kind not in "iu" or X.dtype.kind == "b":
        return
    if X.dtype.kind == "f":
        bad = ~np.isfinite(X)
        if bad.any():
            raise LayerInputError(
                f"cannot cast {X.flat[np.flatnonzero(bad)[0]]} to {target}: an integer holds no NaN or "
                f"infinity ({int(bad.sum())} such values); impute them first"
            )
    info = np.iinfo(target)
    low, high = X.min(), X.max()
    # compared as Python numbers: exact for every integer dtype and for floats
    if low.item() <= info.min - 1 or high.item() >= info.max + 1:
        bad_value = low if low.item() <= info.min - 1 else high
        raise LayerInputError(
            f"cannot cast {bad_value} to {target}, which holds {info.min} to {info.max}: the value "
            "would wrap around or saturate"
        )


def _size(shape: tuple[int | None, ...]) -> int:
    """The number of values in an observation of ``shape`` (its known sizes)."""
    return math.prod(d for d in shape if d is not None)


def _axis(axis: int, ndim: int) -> int:
    """A per-observation axis (negative counts from the end) as an axis of the batch array."""
    position = axis if axis >= 0 else ndim + 1 + axis
    if not 0 <= position <= ndim:
        raise SpecError(f"axis {axis} is out of range for observations with {ndim} axes")
    return position + 1


class AddDim(StatelessLayer):
    """Insert an axis of length 1 in each observation (at the end by default).

    Example::

        column = AddDim()(scalars)   # (n,) -> (n, 1)
    """

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def output_spec(self, X: Spec) -> Spec:
        if X.shape is None:
            return X
        position = _axis(self.axis, len(X.shape)) - 1
        return Spec((*X.shape[:position], 1, *X.shape[position:]), X.dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        try:
            position = _axis(self.axis, X.ndim - 1)
        except SpecError as exc:
            raise LayerInputError(str(exc)) from None
        return X[(slice(None),) * position + (None,)]


class Reshape(StatelessLayer):
    """Reshape each observation to ``new_shape`` (the observation axis is kept; one entry may
    be -1).

    Example::

        images = Reshape((28, 28))(flat_pixels)   # (n, 784) -> (n, 28, 28)
    """

    def __init__(self, new_shape: Sequence[int]) -> None:
        self.new_shape = tuple(int(d) for d in new_shape)

    def output_spec(self, X: Spec) -> Spec:
        if X.shape is None or None in X.shape:
            return Spec(None if -1 in self.new_shape else self.new_shape, X.dtype)
        size = _size(X.shape)
        try:
            shape = np.empty(size, dtype=np.int8).reshape(self.new_shape).shape
        except ValueError:
            raise SpecError(f"cannot reshape observations of shape {X.shape} to {self.new_shape}") from None
        return Spec(shape, X.dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        shape = self.new_shape
        if -1 in shape:  # resolve it per observation, so that an empty batch reshapes too
            known = math.prod(d for d in shape if d != -1)
            shape = (
                tuple(math.prod(X.shape[1:]) // known if d == -1 else d for d in shape) if known else shape
            )
        try:
            return X.reshape((len(X), *shape))
        except ValueError:
            raise LayerInputError(
                f"cannot reshape observations of shape {X.shape[1:]} to {self.new_shape}"
            ) from None


class Flatten(StatelessLayer):
    """Flatten each observation to one axis (the observation axis is kept).

    Example::

        flat = Flatten()(images)   # (n, 48, 48, 3) -> (n, 6912)
    """

    def output_spec(self, X: Spec) -> Spec:
        if X.shape is None or None in X.shape:
            return Spec((None,), X.dtype)
        return Spec((_size(X.shape),), X.dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return X.reshape(len(X), math.prod(X.shape[1:]))


class Slice(StatelessLayer):
    """Slice each observation along a per-observation ``axis`` (the last by default).

    Example::

        first_three = Slice(0, 3)(features)   # (n, 10) -> (n, 3)
    """

    def __init__(
        self, start: int | None = None, stop: int | None = None, step: int | None = None, axis: int = -1
    ) -> None:
        self.start = start
        self.stop = stop
        self.step = step
        self.axis = axis

    def output_spec(self, X: Spec) -> Spec:
        if X.shape is None:
            return X
        if not X.shape:
            raise SpecError("cannot slice observations that are single values")
        axis = self.axis % len(X.shape)
        length = X.shape[axis]
        size = None if length is None else len(range(length)[slice(self.start, self.stop, self.step)])
        return Spec((*X.shape[:axis], size, *X.shape[axis + 1 :]), X.dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        checks.ndim(X, 1)
        index: list[Any] = [slice(None)] * X.ndim
        index[(self.axis % (X.ndim - 1)) + 1] = slice(self.start, self.stop, self.step)
        return X[tuple(index)]

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The names of the features kept, for a slice of the last axis (else not known)."""
        names = passed_through(input_features)
        return None if names is None or self.axis != -1 else names[self.start : self.stop : self.step]
