"""The template's layer."""

from __future__ import annotations

import numpy as np

from megatron.errors import LayerInputError, SpecError
from megatron.layers import StatefulLayer
from megatron.specs import Spec


class MaxAbsScale(StatefulLayer):
    """Divide each feature by its largest absolute value, learned in fit (exactly, batch by
    batch too). Features that are all zero are left as they are.

    Example::

        scaled = MaxAbsScale()(features, 'scaled')
    """

    def partial_fit(self, X: np.ndarray) -> None:
        if X.dtype.kind not in "biuf":
            raise LayerInputError(f"expected numbers; got dtype {X.dtype}")
        if len(X) == 0:
            raise LayerInputError("cannot fit on an empty batch")
        peak = np.abs(X).max(axis=0)
        known = self.metadata.get("peak")
        self.metadata["peak"] = peak if known is None else np.maximum(known, peak)

    def output_spec(self, X: Spec) -> Spec:
        if X.dtype is not None and X.dtype.kind not in "biuf":
            raise SpecError(f"expected numbers; the node's dtype is {X.dtype}")
        return Spec(X.shape, None if X.dtype is None else np.result_type(X.dtype, np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:
        if X.dtype.kind not in "biuf":
            raise LayerInputError(f"expected numbers; got dtype {X.dtype}")
        peak = self.metadata["peak"]
        return X / np.where(peak == 0, 1, peak).astype(np.result_type(X.dtype, np.float32))
