"""scikit-learn metric functions as megatron metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from megatron.metrics.base import Metric


def _labels(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot
        return y.argmax(axis=1)
    return y.reshape(len(y))


def _scores(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p)
    if p.ndim == 2 and p.shape[1] == 2:  # binary probabilities: the positive class's
        return p[:, 1]
    return p.reshape(len(p)) if p.ndim == 2 and p.shape[1] == 1 else p


class Sklearn(Metric):
    """Any scikit-learn metric function ``fn(y_true, y_pred, **kwargs)``.

    It needs all the data at once (most ranking metrics do), so ``evaluate_generator``
    gathers every batch before computing it. One-hot targets become labels; binary
    probability columns become the positive class's score.

    Example::

        auc = Sklearn(roc_auc_score)([labels, probs], 'auc')
    """

    def __init__(self, function: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(function)
        self.kwargs = kwargs

    def result(self, state: Any) -> float:
        if not state:
            return float("nan")
        y_true = np.concatenate([batch[0] for batch in state])
        y_pred = np.concatenate([batch[1] for batch in state])
        return float(self.function(_labels(y_true), _scores(y_pred), **self.kwargs))  # type: ignore[misc]


class ROCAUC(Sklearn):
    """Area under the ROC curve (``sklearn.metrics.roc_auc_score``); needs all the data.

    Example::

        auc = ROCAUC()([labels, probs], 'auc')
    """

    def __init__(self, **kwargs: Any) -> None:
        from sklearn.metrics import roc_auc_score

        super().__init__(roc_auc_score, **kwargs)


class AveragePrecision(Sklearn):
    """Average precision (``sklearn.metrics.average_precision_score``); needs all the data.

    Example::

        ap = AveragePrecision()([labels, probs], 'ap')
    """

    def __init__(self, **kwargs: Any) -> None:
        from sklearn.metrics import average_precision_score

        super().__init__(average_precision_score, **kwargs)


class LogLoss(Metric):
    """Mean cross-entropy of predicted probabilities (``sklearn.metrics.log_loss``); merged
    exactly across batches as a sum of per-observation losses. Pass ``labels`` when a batch
    may lack some classes.

    Example::

        loss = LogLoss(labels=[0, 1])([labels, probs], 'log_loss')
    """

    def __init__(self, labels: Any = None) -> None:
        super().__init__()
        self.labels = labels

    def initial_state(self) -> tuple[float, int]:
        return (0.0, 0)

    def update(self, state: tuple[float, int], y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, int]:
        from sklearn.metrics import log_loss

        true = _labels(y_true)
        if not len(true):  # an empty batch (an empty partition, every row filtered out) adds nothing
            return state
        total = log_loss(true, np.asarray(y_pred), normalize=False, labels=self.labels)
        return (state[0] + float(total), state[1] + len(true))

    def result(self, state: tuple[float, int]) -> float:
        return state[0] / state[1] if state[1] else float("nan")
