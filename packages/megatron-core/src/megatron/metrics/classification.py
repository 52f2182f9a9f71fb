"""Classification metrics. Each keeps counts, so batch-by-batch evaluation is exact."""

from __future__ import annotations

import math

import numpy as np

from megatron.errors import ConfigError
from megatron.metrics.base import Metric


def as_labels(values: np.ndarray) -> np.ndarray:
    """Class labels from labels, one-hot rows or probabilities (a 1-D float array in [0, 1] is
    read as the probability of class 1)."""
    values = np.asarray(values)
    if values.ndim >= 2 and values.shape[-1] > 1:
        return values.argmax(axis=-1)
    if values.ndim >= 2:
        values = values.reshape(len(values))
    if values.dtype.kind == "f" and values.size and values.min() >= 0 and values.max() <= 1:
        return (values >= 0.5).astype(np.int64)
    return values


def _paired(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true, pred = as_labels(y_true), as_labels(y_pred)
    if true.shape != pred.shape:
        raise ValueError(f"compares labels of shape {true.shape} with predictions of shape {pred.shape}")
    return true, pred


class Accuracy(Metric):
    """Fraction of observations whose predicted class equals the true class.

    Each input may hold labels, one-hot rows or class probabilities.

    Example::

        acc = Accuracy()([ohe_labels, preds], 'model_acc')
    """

    def initial_state(self) -> tuple[int, int]:
        return (0, 0)

    def update(self, state: tuple[int, int], y_true: np.ndarray, y_pred: np.ndarray) -> tuple[int, int]:
        true, pred = _paired(y_true, y_pred)
        return (state[0] + int(np.count_nonzero(true == pred)), state[1] + true.size)

    def result(self, state: tuple[int, int]) -> float:
        correct, total = state
        return correct / total if total else float("nan")


class _Confusion(Metric):
    """Per-class true positives, predicted positives and actual positives, merged by class."""

    def __init__(self, average: str = "binary", pos_label: object = 1) -> None:
        if average not in ("binary", "macro", "micro"):
            raise ConfigError(f"average must be 'binary', 'macro' or 'micro'; got {average!r}")
        self.average = average
        self.pos_label = pos_label

    def initial_state(self) -> dict[object, np.ndarray]:
        return {}

    def update(
        self, state: dict[object, np.ndarray], y_true: np.ndarray, y_pred: np.ndarray
    ) -> dict[object, np.ndarray]:
        true, pred = _paired(y_true, y_pred)
        batch = {}
        for label in np.union1d(true, pred).tolist():
            batch[label] = np.array(
                [
                    np.count_nonzero((true == label) & (pred == label)),
                    np.count_nonzero(pred == label),
                    np.count_nonzero(true == label),
                ]
            )
        return self.merge(state, batch)  # a new dict: the given state stays as it was

    def merge(self, a: dict[object, np.ndarray], b: dict[object, np.ndarray]) -> dict[object, np.ndarray]:
        """Counts added class by class (a class seen in one part only keeps its counts)."""
        merged = dict(a)
        for label, counts in b.items():
            merged[label] = merged[label] + counts if label in merged else counts
        return merged

    def _scores(self, state: dict[object, np.ndarray]) -> float:
        if not state:
            return float("nan")
        if self.average == "binary":
            counts = [state.get(self.pos_label, np.zeros(3))]
        elif self.average == "micro":
            counts = [np.sum(list(state.values()), axis=0)]
        else:
            counts = list(state.values())
        # an exactly rounded mean: the classes' order (which depends on how the data was split
        # into batches) cannot change the value
        return math.fsum(self.score(*c) for c in counts) / len(counts)

    def result(self, state: dict[object, np.ndarray]) -> float:
        return self._scores(state)

    @staticmethod
    def score(tp: float, predicted: float, actual: float) -> float:
        raise NotImplementedError


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


class Precision(_Confusion):
    """Of the observations predicted positive, the fraction that are (``average`` = 'binary'
    for ``pos_label``, or 'macro'/'micro' over classes).

    Example::

        precision = Precision()([labels, preds], 'precision')
    """

    @staticmethod
    def score(tp: float, predicted: float, actual: float) -> float:
        return _ratio(tp, predicted)


class Recall(_Confusion):
    """Of the positive observations, the fraction predicted positive.

    Example::

        recall = Recall(average='macro')([labels, preds], 'recall')
    """

    @staticmethod
    def score(tp: float, predicted: float, actual: float) -> float:
        return _ratio(tp, actual)


class F1(_Confusion):
    """The harmonic mean of precision and recall.

    Example::

        f1 = F1()([labels, preds], 'f1')
    """

    @staticmethod
    def score(tp: float, predicted: float, actual: float) -> float:
        return _ratio(2 * tp, predicted + actual)
