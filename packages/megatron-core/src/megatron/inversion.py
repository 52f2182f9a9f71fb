"""Inverse transforms through a graph: values of a node mapped back to an input, layer by layer,
along a chain of single-input invertible layers (predictions read in original units)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from megatron.errors import ConfigError, NotFittedError, NotInvertibleError, UnknownOutputError, layer_failure
from megatron.suggest import did_you_mean

if TYPE_CHECKING:
    from megatron.graph.call import Call
    from megatron.graph.node import Node
    from megatron.graph.topology import Graph
    from megatron.pipeline import Pipeline

__all__ = ["PipelineInversion", "inverse_chain", "invert"]


def _walk(start: Node, to: str) -> tuple[list[Call], str | None]:
    """The calls from ``start`` up to the input ``to`` (nearest first), following each call's
    one feature input; and why the walk stopped short (None when it reached ``to``)."""
    calls: list[Call] = []
    node = start
    while node.name != to:
        call = node.call
        if call is None:
            return calls, f"it leads to input {node.name!r}, not {to!r}"
        if len(call.features) != 1:
            return calls, (
                f"node {node.name!r} comes from layer {call.layer.name!r} ({type(call.layer).__name__}) "
                f"with {len(call.features)} feature inputs {[n.name for n in call.features]}, and only a "
                "layer of one input can be inverted"
            )
        calls.append(call)
        node = call.features[0]
    return calls, None


def inverse_chain(graph: Graph, start: Node, to: str) -> list[Call]:
    """The calls to undo, nearest first, to map values of ``start`` back to the input ``to``:
    a :class:`~megatron.errors.NotInvertibleError` naming the node and layer that break the
    chain (a layer of several inputs, one without an inverse, another input reached)."""
    calls, stop = _walk(start, to)
    if stop is not None:
        raise NotInvertibleError(f"{graph.where}: cannot map node {start.name!r} back to {to!r}: {stop}.")
    for call in calls:
        layer = call.layer
        if not layer.invertible:
            raise NotInvertibleError(
                f"{graph.where}: cannot map node {start.name!r} back to {to!r}: {call.describe()} is not "
                "invertible (it has no inverse_transform)."
            )
        if layer.stateful and not layer.fitted:
            raise NotFittedError(
                f"{graph.where}: {call.describe()} is not fitted, so its inverse is not known; fit first."
            )
    return calls


def invert(calls: list[Call], values: Any) -> np.ndarray:
    """``values`` mapped back through ``calls`` (nearest first); errors name the layer."""
    value = np.asarray(values)
    for call in calls:
        try:
            value = np.asarray(call.layer.inverse_transform(value))
        except Exception as exc:
            raise layer_failure(call.describe(), "inverse_transform", [value], exc) from exc
    return value


class PipelineInversion:
    """``inverse_transform`` over a pipeline's graph (a mixin of :class:`~megatron.Pipeline`)."""

    def inverse_transform(self, values: Any, to: str, *, at: str | Node | None = None) -> np.ndarray:
        """Map ``values`` back to the input named ``to``, undoing each layer between them.

        ``values`` is what ``transform`` returned (``Outputs`` or a dict by node name) or an
        array; ``at`` names the node the values belong to. It may be any node of the graph, so
        a model's predictions of scaled targets read in original units with
        ``inverse_transform(preds, to='y', at='y_scaled')``. Without ``at``, the one entry of
        ``values`` whose node leads back to ``to`` is used. Every layer between must have one
        feature input and an inverse; a :class:`~megatron.errors.NotInvertibleError` names the
        node and layer that break the chain otherwise.
        """
        pipeline = cast("Pipeline", self)
        graph = pipeline.graph
        target = graph.node_named(to)
        if target is None or target not in graph.inputs:
            inputs = [n.name for n in graph.inputs]
            raise UnknownOutputError(
                f"Pipeline {pipeline.name!r}: inverse_transform(to={to!r}) needs one of its inputs "
                f"{inputs}.{did_you_mean(to, inputs)}"
            )
        name, array = _chosen(graph, values, to, at)
        start = graph.node_named(name)
        if start is None:
            names = [n.name for n in graph.nodes]
            raise UnknownOutputError(
                f"Pipeline {pipeline.name!r} has no node {name!r}.{did_you_mean(name, names)}"
            )
        return invert(inverse_chain(graph, start, to), array)


def _chosen(graph: Graph, values: Any, to: str, at: str | Node | None) -> tuple[str, Any]:
    """The node name the values belong to, and the values."""
    where = f"{graph.where}: inverse_transform"
    name = at if at is None or isinstance(at, str) else at.name
    if not isinstance(values, Mapping):
        if name is None:
            if len(graph.outputs) != 1:
                raise ConfigError(f"{where} of an array needs at=, the node it belongs to.")
            name = graph.outputs[0].name
        return name, values
    if name is not None:
        if name not in values:
            raise UnknownOutputError(f"{where}: no values for node {name!r}; got {list(values)}.")
        return name, values[name]
    leading = []
    for key in values:
        node = graph.node_named(key)
        if node is not None and _walk(node, to)[1] is None:
            leading.append(key)
    if len(leading) != 1:
        found = "none of" if not leading else f"several ({leading}) of"
        raise NotInvertibleError(
            f"{where}: {found} the given nodes {list(values)} lead back to {to!r} through layers of one "
            "input; pass at= to name the node the values belong to."
        )
    return leading[0], values[leading[0]]
