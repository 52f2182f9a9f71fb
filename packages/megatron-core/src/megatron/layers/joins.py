"""Layers that join several inputs into one (``Concatenate``) or split one into several
(``SplitDict``), observation by observation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from megatron.errors import ConfigError, LayerInputError, SpecError
from megatron.layers import checks
from megatron.layers.base import StatelessLayer
from megatron.layers.naming import FeatureNames, joined, shared
from megatron.specs import Spec


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

    def get_feature_names_out(self, *input_features: FeatureNames) -> FeatureNames:
        """The inputs' names one after the other (joined along the last axis; a one-value input
        gives its one name), or the names they share when joined along another axis."""
        return joined(input_features) if self.axis == -1 else shared(input_features)


class SplitDict(StatelessLayer):
    """Split an input of dicts (one per observation) into one output per field.

    Example::

        age, city = SplitDict(['age', 'city'])(records, ['age', 'city'])
    """

    def __init__(self, fields: Sequence[str]) -> None:
        if isinstance(fields, str) or not fields:
            raise ConfigError(f"SplitDict needs a list of field names; got {fields!r}")
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

    def get_feature_names_out(self, *input_features: FeatureNames) -> tuple[FeatureNames, ...]:
        """Each field's name, for its output of one value per observation."""
        return tuple([field] for field in self.fields)
