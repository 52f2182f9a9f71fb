"""Row layers: the only layers that do not keep every observation. ``Filter`` keeps some
rows, ``TimeSeries`` gives one window per run of rows; each reports the rows it keeps (its last
output, :data:`POSITIONS`), so that the observation index stays aligned."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from megatron.arguments import positive_int
from megatron.errors import LayerInputError, SpecError
from megatron.layers import checks
from megatron.layers.base import StatelessLayer
from megatron.layers.naming import FeatureNames, passed_through
from megatron.sparse import take_rows
from megatron.specs import Spec

POSITIONS = Spec((), np.int64)
"""The spec of a row layer's last output: the position, in its batch, of each row kept."""


class TimeSeries(StatelessLayer):
    """Sliding windows of ``window_size`` consecutive observations.

    Observation *i* of the output is the window ending at input observation
    ``i + window_size - 1``, and keeps that observation's index; a batch of *n* rows gives
    ``max(n - window_size + 1, 0)`` windows. Windows never span batches: ``transform`` is a
    pure function of its batch, so to window a stream, overlap the batches by
    ``window_size - 1`` rows (its :attr:`context_rows`). The window axis goes at ``time_axis``
    (1: right after the observation axis); ``reverse`` puts the latest observation first.

    Example::

        windows = TimeSeries(window_size=5)(prices)   # (n, 3) -> (n - 4, 5, 3)
    """

    filters_rows = True
    stream_stateful = True  # windows depend on neighbouring rows of the same batch

    def __init__(self, window_size: int, time_axis: int = 1, reverse: bool = False) -> None:
        self.window_size = int(positive_int(window_size, "TimeSeries window_size"))
        self.time_axis = time_axis
        self.reverse = reverse

    @property
    def context_rows(self) -> int:
        """``window_size - 1``: a window reaches back that many rows before its last one."""
        return self.window_size - 1

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
        n = inputs[0].shape[0]  # shape, not len(): a scipy.sparse matrix has no len()
        if mask.dtype != np.bool_ or mask.shape != (n,):
            raise LayerInputError(
                f"expected one boolean per observation as the filter mask; got {mask.dtype}{mask.shape}"
            )
        positions = np.flatnonzero(mask)
        return (*(take_rows(a, positions) for a in data), positions)

    def get_feature_names_out(self, *input_features: FeatureNames) -> tuple[FeatureNames, ...]:
        """Each filtered input's names (rows are dropped, features kept)."""
        data = input_features if self.condition is not None else input_features[1:]
        return tuple(passed_through([names]) for names in data)
