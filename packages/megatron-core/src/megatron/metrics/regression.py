"""Regression metrics. Each keeps sums, so batch-by-batch evaluation is exact."""

from __future__ import annotations

import numpy as np

from megatron.metrics.base import Metric


def _errors(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(y_true, dtype=float)
    pred = np.asarray(y_pred, dtype=float)
    if pred.ndim == true.ndim + 1 and pred.shape[-1] == 1:
        pred = pred[..., 0]
    if true.shape != pred.shape:
        raise ValueError(f"compares targets of shape {true.shape} with predictions of shape {pred.shape}")
    return true, pred


class MeanSquaredError(Metric):
    """Mean of squared differences between targets and predictions.

    Example::

        mse = MeanSquaredError()([y, preds], 'mse')
    """

    def initial_state(self) -> tuple[float, int]:
        return (0.0, 0)

    def update(self, state: tuple[float, int], y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, int]:
        true, pred = _errors(y_true, y_pred)
        return (state[0] + float(((true - pred) ** 2).sum()), state[1] + true.size)

    def result(self, state: tuple[float, int]) -> float:
        return state[0] / state[1] if state[1] else float("nan")


class MeanAbsoluteError(MeanSquaredError):
    """Mean of absolute differences between targets and predictions.

    Example::

        mae = MeanAbsoluteError()([y, preds], 'mae')
    """

    def update(self, state: tuple[float, int], y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, int]:
        true, pred = _errors(y_true, y_pred)
        return (state[0] + float(np.abs(true - pred).sum()), state[1] + true.size)


class R2(Metric):
    """The coefficient of determination: 1 - residual sum of squares / total sum of squares.

    Example::

        r2 = R2()([y, preds], 'r2')
    """

    def initial_state(self) -> np.ndarray:
        return np.zeros(4)  # n, sum y, sum y^2, sum of squared residuals

    def update(self, state: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        true, pred = _errors(y_true, y_pred)
        return state + np.array([true.size, true.sum(), (true**2).sum(), ((true - pred) ** 2).sum()])

    def result(self, state: np.ndarray) -> float:
        n, total, squares, residual = state
        if n == 0:
            return float("nan")
        spread = squares - total**2 / n
        return float(1 - residual / spread) if spread > 0 else float("nan")
