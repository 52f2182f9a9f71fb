"""``Lambda``: a stateless layer from any function of numpy arrays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from megatron.arguments import positive_int
from megatron.layers.base import StatelessLayer
from megatron.specs import UNKNOWN, Spec


class Lambda(StatelessLayer):
    """Wrap ``function(*arrays) -> array`` as a layer.

    ``output_shape`` and ``dtype`` (per output, when ``n_outputs > 1``) declare the output
    spec where it is known, so mismatches fail when the graph is built.

    The output cache knows ``function`` by what it computes (its code, defaults, captured
    values and the globals it reads), not by its name: replacing it, or changing what it
    captures, never serves rows it computed before. A saved pipeline records it by name, line
    and digest; pass it back in ``load_pipeline(..., custom_objects=...)``.

    Example::

        def dot_product(X, Y):
            return np.dot(X, Y)

        dot_xy = Lambda(dot_product)([X_node, Y_node], 'dot_product_result')
    """

    def __init__(
        self,
        function: Callable[..., Any],
        output_shape: Sequence[int | None] | None = None,
        dtype: Any = None,
        n_outputs: int = 1,
    ) -> None:
        if not callable(function):
            raise TypeError(f"Lambda needs a callable; got {type(function).__name__} {function!r}.")
        self.function = function
        self.output_shape = output_shape
        self.dtype = dtype
        self.n_outputs = positive_int(n_outputs, "Lambda n_outputs")

    def transform(self, *inputs: np.ndarray) -> Any:
        return self.function(*inputs)

    def output_spec(self, *inputs: Spec) -> Spec | tuple[Spec, ...]:
        if self.output_shape is None and self.dtype is None:
            return super().output_spec(*inputs)
        if self.n_outputs == 1:
            return Spec(self.output_shape, self.dtype)
        shapes = self.output_shape or [None] * self.n_outputs
        dtypes = self.dtype if isinstance(self.dtype, (list, tuple)) else [self.dtype] * self.n_outputs
        return tuple(Spec(s, d) if (s, d) != (None, None) else UNKNOWN for s, d in zip(shapes, dtypes))
