"""The template's metric."""

from __future__ import annotations

import numpy as np

from megatron.metrics import Metric


class MaxError(Metric):
    """The largest absolute difference between targets and predictions (merged exactly across
    batches: the state is the running maximum).

    Example::

        worst = MaxError()([y, preds], 'max_error')
    """

    def initial_state(self) -> float:
        return 0.0

    def update(self, state: float, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        # return a new state; never keep the batch itself (the state must stay small)
        difference = np.abs(np.asarray(y_true, dtype=float) - np.asarray(y_pred, dtype=float))
        return max(state, float(difference.max())) if difference.size else state

    def merge(self, state: float, other: float) -> float:
        # two states of disjoint batches -> the state of all of them
        return max(state, other)

    def result(self, state: float) -> float:
        return state
