"""``Call``: one call of a layer on input nodes, and running it on arrays."""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from megatron.errors import LayerError, layer_failure

if TYPE_CHECKING:
    from megatron.graph.node import Node
    from megatron.layers.base import Layer

Mode = Literal["transform", "fit", "partial_fit", "fit_transform"]
"""What a step does with its call: transform, fit (or update) its layer, or both at once."""

logger = logging.getLogger("megatron")

FIT_PARAMS: contextvars.ContextVar[Mapping[int, Mapping[str, Any]] | None] = contextvars.ContextVar(
    "megatron_fit_params", default=None
)
"""The arguments routed to the learning methods of layers (by ``id(layer)``) during a fit: set
by :mod:`megatron.routing`, passed by :meth:`Call.run` to ``fit``/``partial_fit``/``fit_transform``."""


class Call:
    """One call of a layer on input nodes; its outputs are one node per layer output."""

    __slots__ = ("inputs", "layer", "n_targets", "outputs")

    def __init__(self, layer: Layer, inputs: tuple[Node, ...], n_targets: int) -> None:
        self.layer = layer
        self.inputs = inputs
        self.n_targets = n_targets
        self.outputs: tuple[Node, ...] = ()

    @property
    def features(self) -> tuple[Node, ...]:
        """The inputs passed to ``transform`` (all but the trailing targets)."""
        return self.inputs[: len(self.inputs) - self.n_targets]

    @property
    def targets(self) -> tuple[Node, ...]:
        """The trailing inputs used only to fit."""
        return self.inputs[len(self.inputs) - self.n_targets :]

    @property
    def visible_outputs(self) -> tuple[Node, ...]:
        """The outputs a user sees (without a row filter's positions)."""
        return self.outputs[:-1] if self.layer.filters_rows else self.outputs

    def describe(self) -> str:
        """Where this call is, for error messages: its layer, the layer's class and its nodes."""
        names = ", ".join(repr(n.name) for n in self.visible_outputs)
        return f"layer {self.layer.name!r} ({type(self.layer).__name__}) at node {names}"

    def run(
        self, mode: Mode, args: Sequence[np.ndarray], groups: Sequence[int] = ()
    ) -> tuple[np.ndarray, ...]:
        """Run the layer on ``args`` in ``mode`` and return this call's output arrays (none for a
        fit). ``groups`` splits the arguments of a fit into the inputs of several calls of the
        layer, which it learns from together. Errors name the node, layer and shapes."""
        layer: Any = self.layer
        start = time.perf_counter()
        if len(groups) > 1:
            args = _joined(args, groups)
        routed = FIT_PARAMS.get() if mode != "transform" else None
        params = routed.get(id(layer)) if routed else None
        try:
            result = getattr(layer, mode)(*args, **params) if params else getattr(layer, mode)(*args)
        except Exception as exc:
            raise layer_failure(self.describe(), mode, args, exc) from exc
        if mode == "transform":
            return self.arrays(result)
        layer.fitted = True
        outputs = self.arrays(result) if mode == "fit_transform" else ()
        if logger.isEnabledFor(logging.INFO):
            shared = f" of {len(groups)} calls" if len(groups) > 1 else ""
            rows = len(args[0]) if args else 0
            seconds = time.perf_counter() - start
            logger.info("%s: %s on %d rows%s in %.3f s", self.describe(), mode, rows, shared, seconds)
        return outputs

    def arrays(self, result: Any) -> tuple[np.ndarray, ...]:
        """What ``transform`` returned, as one array per output of this call."""
        n = len(self.outputs)
        if n == 1:
            return (result if type(result) is np.ndarray else self._array(result),)
        if not isinstance(result, (tuple, list)) or len(result) != n:
            length = f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""
            raise LayerError(
                f"{self.describe()} declares {n} outputs; transform() returned {type(result).__name__}{length}."
            )
        return tuple(r if type(r) is np.ndarray else self._array(r) for r in result)

    def _array(self, result: Any) -> np.ndarray:
        if result is None:
            raise LayerError(f"{self.describe()} returned None from transform(); expected an array.")
        if type(result).__module__.startswith("scipy.sparse"):
            return result  # a sparse matrix flows on as it is
        return np.asarray(result)

    def run_eagerly(self) -> None:
        """Compute this call's outputs from its inputs' eager values, fitting its layer first
        when it is stateful and not fitted yet (a layer called again applies what it learned)."""
        values = [node.output for node in self.inputs]
        if self.layer.stateful and not self.layer.fitted:  # as a fit does: out-of-fold outputs (cv=) too
            outputs = self.run("fit_transform", values)
        else:
            outputs = self.run("transform", values[: len(self.features)])
        for node, value in zip(self.outputs, outputs):
            node.hold(value)


def _joined(args: Sequence[np.ndarray], groups: Sequence[int]) -> list[np.ndarray]:
    """The arguments of several calls of one layer, ``groups`` of them per call, joined along
    the observations: one layer called on several nodes learns from all of them."""
    parts, first = [], 0
    for size in groups:
        parts.append(args[first : first + size])
        first += size
    return [np.concatenate(column) for column in zip(*parts)]
