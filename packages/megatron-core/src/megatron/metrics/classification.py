"""Classification metrics."""

from __future__ import annotations

import numpy as np

from megatron.metrics.base import Metric


def as_labels(values: np.ndarray) -> np.ndarray:
    """Class labels from labels, one-hot rows or probabilities."""
    values = np.asarray(values)
    if values.ndim >= 2 and values.shape[-1] > 1:
        return values.argmax(axis=-1)
    if values.ndim >= 2:
        values = values.reshape(len(values))
    if values.dtype.kind == "f" and values.size and values.min() >= 0 and values.max() <= 1:
        return (values >= 0.5).astype(np.int64)
    return values


class Accuracy(Metric):
    """Fraction of observations whose predicted class equals the true class.

    Each input may hold labels, one-hot rows or class probabilities.

    Example::

        acc = Accuracy()([ohe_labels, preds], 'model_acc')
    """

    def initial_state(self) -> tuple[int, int]:
        return (0, 0)

    def update(self, state: tuple[int, int], y_true: np.ndarray, y_pred: np.ndarray) -> tuple[int, int]:
        true, pred = as_labels(y_true), as_labels(y_pred)
        if true.shape != pred.shape:
            raise ValueError(f"Accuracy compares labels of shape {true.shape} with {pred.shape}.")
        return (state[0] + int(np.count_nonzero(true == pred)), state[1] + true.size)

    def result(self, state: tuple[int, int]) -> float:
        correct, total = state
        return correct / total if total else float("nan")
