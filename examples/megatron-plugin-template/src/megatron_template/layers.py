"""The template's layers: a stateful one and a stateless one with several inputs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from megatron.errors import LayerInputError, SpecError
from megatron.layers import StatefulLayer, StatelessLayer
from megatron.specs import Spec


def _numbers(X: np.ndarray, what: str = "input") -> np.ndarray:
    # Refuse what the layer cannot work with by raising LayerInputError: the pipeline adds the
    # node's and the layer's names. Never let a bare numpy error escape.
    if X.dtype.kind not in "biuf":
        raise LayerInputError(f"expected numbers in the {what}; got dtype {X.dtype}")
    return X


class MaxAbsScale(StatefulLayer):
    """Divide each feature by its largest absolute value, learned in fit (exactly, batch by
    batch too). Features that are all zero are left as they are.

    Example::

        scaled = MaxAbsScale()(features, 'scaled')
    """

    def partial_fit(self, X: np.ndarray) -> None:
        _numbers(X)
        if len(X) == 0:
            raise LayerInputError("cannot fit on an empty batch")  # nothing to learn from
        peak = np.abs(X).max(axis=0)
        known = self.metadata.get("peak")  # what it learned lives in self.metadata
        if known is not None and known.shape != peak.shape:
            raise LayerInputError(f"fitted on features of shape {known.shape}; got {peak.shape}")
        self.metadata["peak"] = peak if known is None else np.maximum(known, peak)

    def output_spec(self, X: Spec) -> Spec:
        if X.dtype is not None and X.dtype.kind not in "biuf":
            raise SpecError(f"expected numbers; the node's dtype is {X.dtype}")
        return Spec(X.shape, None if X.dtype is None else np.result_type(X.dtype, np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:
        _numbers(X)
        peak = self.metadata["peak"]
        if X.shape[1:] != peak.shape:  # a statistic of other features must not broadcast
            raise LayerInputError(f"fitted on features of shape {peak.shape}; got {X.shape[1:]}")
        return X / np.where(peak == 0, 1, peak).astype(np.result_type(X.dtype, np.float32))


class WeightedSum(StatelessLayer):
    """The weighted sum of several inputs of one shape: ``weights[0] * a + weights[1] * b + ...``.

    Example::

        total = WeightedSum((0.7, 0.3))([price, forecast], 'blend')
    """

    def __init__(self, weights: Sequence[float] = (1.0, 1.0)) -> None:
        # a hyperparameter is an __init__ argument kept as the attribute of the same name:
        # get_config() reads it back, saving writes it, the fingerprint sees it
        self.weights = tuple(float(w) for w in weights)

    def output_spec(self, *inputs: Spec) -> Spec:
        if len(inputs) != len(self.weights):
            raise SpecError(f"expected {len(self.weights)} inputs, one per weight; got {len(inputs)}")
        shapes = {spec.shape for spec in inputs if spec.shape is not None}
        if len(shapes) > 1:
            raise SpecError(f"expected inputs of one shape; got {sorted(shapes, key=str)}")
        return Spec(shapes.pop() if shapes else None, np.float64)

    def transform(self, *inputs: np.ndarray) -> np.ndarray:
        if len(inputs) != len(self.weights):
            raise LayerInputError(f"expected {len(self.weights)} inputs, one per weight; got {len(inputs)}")
        if len({x.shape for x in inputs}) > 1:
            raise LayerInputError(f"expected inputs of one shape; got {[x.shape for x in inputs]}")
        total = np.zeros(inputs[0].shape, dtype=np.float64)  # a new array: inputs are never written
        for weight, x in zip(self.weights, inputs):
            total += weight * _numbers(x)
        return total
