"""Shaping layers: dtypes, axes, one-hot encodings, windows, joins, slices and row filters.

Every layer works per observation: the first axis (observations) is always kept, except by
the row filters (``Filter``, ``TimeSeries``), which report the rows they keep so that the
observation index stays aligned.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from megatron.errors import LayerInputError, SpecError
from megatron.layers import checks
from megatron.layers.base import StatefulLayer, StatelessLayer
from megatron.specs import Spec

POSITIONS = Spec((), np.int64)


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


class OneHotRange(StatefulLayer):
    """One-hot encode integers in ``[min_val, max_val]``: one column per value.

    A bound that is not given is learned in fit (``partial_fit`` is exact). Values outside the
    range give all-zero rows, or an error with ``strict=True``.

    Example::

        ohe_labels = OneHotRange(max_val=1)(labels)   # labels 0/1 -> (n, 2)
    """

    def __init__(
        self,
        min_val: int | None = None,
        max_val: int | None = None,
        strict: bool = False,
        dtype: str = "float32",
    ) -> None:
        if min_val is not None and max_val is not None and min_val > max_val:
            raise SpecError(f"OneHotRange needs min_val <= max_val; got {min_val} and {max_val}")
        self.min_val = min_val
        self.max_val = max_val
        self.strict = strict
        self.dtype = np.dtype(dtype).name
        if self._known():
            self.fitted = True

    fixed_shape = False  # one range of values, whatever the shape

    def _known(self) -> bool:
        return self.min_val is not None and self.max_val is not None

    def reset(self) -> None:
        super().reset()
        self.fitted = self._known()

    def partial_fit(self, X: np.ndarray) -> None:
        X = self._integers(checks.nonempty(X, "partial_fit"))
        m = self.metadata
        m["min"] = np.asarray(X.min() if "min" not in m else min(m["min"], X.min()))
        m["max"] = np.asarray(X.max() if "max" not in m else max(m["max"], X.max()))

    def _range(self) -> tuple[int, int]:
        low = self.min_val if self.min_val is not None else int(self.metadata["min"])
        high = self.max_val if self.max_val is not None else int(self.metadata["max"])
        return low, high

    @staticmethod
    def _integers(X: np.ndarray) -> np.ndarray:
        checks.numeric(X)
        if X.dtype.kind == "f":
            if not np.all(np.isfinite(X)) or not np.all(np.round(X) == X):
                raise LayerInputError("expected whole numbers to one-hot encode; got fractions or NaN")
            X = X.astype(np.int64)
        return X

    def output_spec(self, X: Spec) -> Spec:
        checks.spec_numeric(X)
        width = self.max_val - self.min_val + 1 if self._known() else None  # type: ignore[operator]
        return Spec(None if X.shape is None else (*X.shape, width), self.dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = self._integers(X)
        low, high = self._range()
        offset = X.astype(np.int64) - low
        inside = (offset >= 0) & (offset <= high - low)
        if self.strict and not inside.all():
            bad = X[~inside]
            raise LayerInputError(f"expected values in [{low}, {high}]; got {bad[:5].tolist()}")
        out = np.zeros((*X.shape, high - low + 1), dtype=self.dtype)
        np.put_along_axis(out, np.where(inside, offset, 0)[..., None], 1, axis=-1)
        out[~inside] = 0
        return out


class OneHotLabels(StatefulLayer):
    """One-hot encode categorical labels of any type: one column per known label, in sorted
    order. ``labels`` fixes them; otherwise they are learned in fit (``partial_fit`` is exact).
    Unknown labels give all-zero rows, or an error with ``strict=True``.

    Example::

        colours = OneHotLabels()(colour_names)   # 'red'/'green'/'blue' -> (n, 3)
    """

    def __init__(
        self, labels: Sequence[Any] | None = None, strict: bool = False, dtype: str = "float32"
    ) -> None:
        self.labels = None if labels is None else list(labels)
        self.strict = strict
        self.dtype = np.dtype(dtype).name
        if self.labels is not None:
            self.metadata["labels"] = np.unique(np.asarray(self.labels))
            self.fitted = True

    fixed_shape = False  # one set of labels, whatever the shape

    def reset(self) -> None:
        if self.labels is None:
            super().reset()

    def partial_fit(self, X: np.ndarray) -> None:
        if self.labels is not None:
            return
        checks.nonempty(X, "partial_fit")
        if X.dtype.kind in "fc" and np.isnan(X).any():
            raise LayerInputError(
                f"cannot learn NaN as a label ({int(np.isnan(X).sum())} in the batch): it equals no "
                "value, so it would never be encoded; fill missing labels first (Impute)"
            )
        found = np.unique(X)
        known = self.metadata.get("labels")
        self.metadata["labels"] = found if known is None else np.union1d(known, found)

    def output_spec(self, X: Spec) -> Spec:
        width = len(set(self.labels)) if self.labels is not None else None
        return Spec(None if X.shape is None else (*X.shape, width), self.dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        labels = self.metadata["labels"]
        position = np.searchsorted(labels, X)
        inside = (position < len(labels)) & (labels[np.minimum(position, len(labels) - 1)] == X)
        if self.strict and not inside.all():
            raise LayerInputError(
                f"unknown labels {np.unique(X[~inside])[:5].tolist()}; known: {labels.tolist()}"
            )
        out = np.zeros((*X.shape, len(labels)), dtype=self.dtype)
        np.put_along_axis(out, np.where(inside, position, 0)[..., None], 1, axis=-1)
        out[~inside] = 0
        return out


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
        size = int(np.prod(X.shape))
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
        return Spec((int(np.prod(X.shape)),), X.dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return X.reshape(len(X), math.prod(X.shape[1:]))


class SplitDict(StatelessLayer):
    """Split an input of dicts (one per observation) into one output per field.

    Example::

        age, city = SplitDict(['age', 'city'])(records, ['age', 'city'])
    """

    def __init__(self, fields: Sequence[str]) -> None:
        if isinstance(fields, str) or not fields:
            raise SpecError(f"SplitDict needs a list of field names; got {fields!r}")
        self.fields = list(fields)

    def output_spec(self, X: Spec) -> tuple[Spec, ...]:
        return tuple(Spec(None, None) for _ in self.fields)

    def transform(self, X: np.ndarray) -> tuple[np.ndarray, ...]:
        if X.ndim != 1:
            raise LayerInputError(f"expected one dict per observation; got shape {X.shape}")
        outputs = []
        for field in self.fields:
            try:
                outputs.append(np.array([record[field] for record in X]))
            except (KeyError, TypeError, IndexError):
                bad = next(i for i, r in enumerate(X) if not isinstance(r, dict) or field not in r)
                raise LayerInputError(f"observation {bad} has no field {field!r}: {X[bad]!r}") from None
        return tuple(outputs)


class TimeSeries(StatelessLayer):
    """Sliding windows of ``window_size`` consecutive observations.

    Observation *i* of the output is the window ending at input observation
    ``i + window_size - 1``, and keeps that observation's index; a batch of *n* rows gives
    ``max(n - window_size + 1, 0)`` windows. Windows never span batches: ``transform`` is a
    pure function of its batch, so to window a stream, overlap the batches by
    ``window_size - 1`` rows. The window axis goes at ``time_axis`` (1: right after the
    observation axis); ``reverse`` puts the latest observation first.

    Example::

        windows = TimeSeries(window_size=5)(prices)   # (n, 3) -> (n - 4, 5, 3)
    """

    filters_rows = True
    stream_stateful = True  # windows depend on neighbouring rows of the same batch

    def __init__(self, window_size: int, time_axis: int = 1, reverse: bool = False) -> None:
        if not isinstance(window_size, int | np.integer) or window_size < 1:
            raise SpecError(f"TimeSeries needs a positive integer window_size; got {window_size!r}")
        self.window_size = int(window_size)
        self.time_axis = time_axis
        self.reverse = reverse

    def output_spec(self, X: Spec) -> tuple[Spec, Spec]:
        if X.shape is None:
            return Spec(None, X.dtype), POSITIONS
        axis = self.time_axis - 1
        if not 0 <= axis <= len(X.shape):
            raise SpecError(f"time_axis {self.time_axis} is out of range for observations of shape {X.shape}")
        return Spec((*X.shape[:axis], self.window_size, *X.shape[axis:]), X.dtype), POSITIONS

    def transform(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, w = len(X), self.window_size
        count = max(n - w + 1, 0)
        if count:
            windows = np.lib.stride_tricks.sliding_window_view(X, w, axis=0)  # (count, ..., w)
            windows = np.moveaxis(windows, -1, 1)
        else:
            windows = np.empty((0, w, *X.shape[1:]), dtype=X.dtype)
        if self.reverse:
            windows = windows[:, ::-1]
        if self.time_axis != 1:
            windows = np.moveaxis(windows, 1, self.time_axis)
        return np.ascontiguousarray(windows), np.arange(w - 1, w - 1 + count)


class Concatenate(StatelessLayer):
    """Join inputs along a per-observation ``axis`` (the last by default); inputs with one
    value per observation become columns.

    Example::

        features = Concatenate()([age, income, history])   # (n,), (n,), (n, 5) -> (n, 7)
    """

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def output_spec(self, *inputs: Spec) -> Spec:
        if len(inputs) < 2:
            raise SpecError(f"expected at least 2 inputs; got {len(inputs)}")
        dtype = checks.result_dtype(*inputs)
        if any(s.shape is None for s in inputs):
            return Spec(None, dtype)
        shapes = [s.shape if s.shape else (1,) for s in inputs]
        ndim = len(shapes[0])
        if any(len(s) != ndim for s in shapes):
            raise SpecError(f"inputs have different numbers of axes: {shapes}")
        axis = self.axis % ndim
        for i in range(ndim):
            if i != axis and len({s[i] for s in shapes} - {None}) > 1:
                raise SpecError(f"inputs differ along axis {i}: {shapes}")
        joined = None if any(s[axis] is None for s in shapes) else sum(s[axis] for s in shapes)  # type: ignore[misc]
        out = list(shapes[0])
        out[axis] = joined
        return Spec(tuple(out), dtype)

    def transform(self, *inputs: np.ndarray) -> np.ndarray:
        checks.same_length(*inputs)
        arrays = [a[:, None] if a.ndim == 1 else a for a in inputs]
        try:
            return np.concatenate(arrays, axis=self.axis if self.axis < 0 else self.axis + 1)
        except ValueError as exc:
            raise LayerInputError(f"cannot join shapes {[a.shape for a in inputs]}: {exc}") from None


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


class Filter(StatelessLayer):
    """Keep only some observations of every input.

    With ``condition``, it is called on the inputs and returns one boolean per observation;
    without it, the first input is that boolean mask and is not passed on. The outputs hold
    the kept rows; the pipeline keeps their observation index, in outputs and in storage.
    Inputs are passed through the same call so that they stay aligned.

    Example::

        x_kept, y_kept = Filter(lambda x, y: ~np.isnan(y))([x, y], ['x_kept', 'y_kept'])
    """

    filters_rows = True

    def __init__(self, condition: Callable[..., Any] | None = None) -> None:
        self.condition = condition

    def output_spec(self, *inputs: Spec) -> tuple[Spec, ...]:
        data = inputs if self.condition is not None else inputs[1:]
        if not data:
            raise SpecError("expected a mask and at least one input to filter")
        return (*data, POSITIONS)

    def transform(self, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        checks.same_length(*inputs)
        if self.condition is None:
            mask, data = inputs[0], inputs[1:]
        else:
            mask, data = np.asarray(self.condition(*inputs)), inputs
        if mask.dtype != np.bool_ or mask.shape != (len(inputs[0]),):
            raise LayerInputError(
                f"expected one boolean per observation as the filter mask; got {mask.dtype}{mask.shape}"
            )
        positions = np.flatnonzero(mask)
        return (*(a[positions] for a in data), positions)
