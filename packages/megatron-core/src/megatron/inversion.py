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


def _walk(start: Node, to: str | None) -> tuple[list[Call], str | None]:
    """The calls from ``start`` up to the input ``to`` (nearest first; the input the chain
    reaches where ``to`` is None), following each call's one feature input; and why the walk
    stopped short (None when it reached ``to``)."""
    calls: list[Call] = []
    node = start
    while node.name != to:
        call = node.call
        if call is None:
            return calls, None if to is None else f"it leads to input {node.name!r}, not {to!r}"
        if len(call.features) != 1:
            return calls, (
                f"node {node.name!r} comes from layer {call.layer.name!r} ({type(call.layer).__name__}) "
                f"with {len(call.features)} feature inputs {[n.name for n in call.features]}, and only a "
                "layer of one input can be inverted"
            )
        calls.append(call)
        node = call.features[0]
    return calls, None


def _reached(start: Node) -> str | None:
    """The input that the chain of one-input layers from ``start`` leads back to, if any."""
    node = start
    while node.call is not None and len(node.call.features) == 1:
        node = node.call.features[0]
    return node.name if node.call is None else None


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
                f"invertible: {layer.why_not_invertible()}."
            )
        if layer.stateful and not layer.fitted:
            raise NotFittedError(
                f"{graph.where}: {call.describe()} is not fitted, so its inverse is not known; fit first."
            )
    return calls


def invert(calls: list[Call], values: Any) -> np.ndarray:
    """``values`` mapped back through ``calls`` (nearest first); errors name the layer. Each
    layer's inverse is shaped as its input is declared where they differ only by axes of one (a
    scikit-learn layer's column for an input of one value per row), so the result has the
    input's shape."""
    value = np.asarray(values)
    for call in calls:
        try:
            value = np.asarray(call.layer.inverse_transform(value))
        except Exception as exc:
            raise layer_failure(call.describe(), "inverse_transform", [value], exc) from exc
        value = as_declared(value, call.features[0].shape)
    return value


def as_declared(value: np.ndarray, shape: tuple[int | None, ...] | None) -> np.ndarray:
    """``value`` (rows first) with each row of the declared ``shape`` where they differ only by
    axes of length one (``(n, 1)`` for ``()``, ``(n,)`` for ``(1,)`` or a width not yet known);
    else ``value`` as it is."""
    if shape is None or value.ndim == 0:
        return value
    rows = value.shape[1:]
    if len(rows) == len(shape) and all(d is None or d == r for d, r in zip(shape, rows)):
        return value
    if shape == (None,) and not rows:  # one value per row, for a node of columns not yet counted
        return value[:, None]
    if None in shape or [r for r in rows if r != 1] != [d for d in shape if d != 1]:
        return value
    return value.reshape(len(value), *shape)


class PipelineInversion:
    """``inverse_transform`` over a pipeline's graph (a mixin of :class:`~megatron.Pipeline`)."""

    def inverse_transform(
        self, values: Any, to: str | Node | None = None, *, at: str | Node | None = None
    ) -> np.ndarray:
        """Map ``values`` back to the input ``to`` (a name or the input node), undoing each
        layer between them.

        ``values`` is what ``transform`` returned (``Outputs`` or a dict by node name) or an
        array; ``at`` names the node the values belong to. It may be any node of the graph, so
        a model's predictions of scaled targets read in original units with
        ``inverse_transform(preds, at='y_scaled')``. Without ``at``, the one entry of ``values``
        whose node leads back to ``to`` (to an input, without ``to``) is used; without ``to``,
        the input that node leads back to. Every layer between must have one feature input and
        an inverse; a :class:`~megatron.errors.NotInvertibleError` names the node and layer that
        break the chain otherwise. The result has the input's shape.
        """
        pipeline = cast("Pipeline", self)
        graph = pipeline.graph
        to = to if to is None or isinstance(to, str) else to.name
        if to is not None:
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
        array = as_declared(np.asarray(array), start.shape)
        if to is None:
            to = _reached(start)
            if to is None:
                stop = _walk(start, None)[1]
                raise NotInvertibleError(
                    f"{graph.where}: cannot map node {name!r} back to an input: {stop}; pass to= and at= "
                    "to map the values of a node whose chain leads back to one."
                )
        return invert(inverse_chain(graph, start, to), array)


def _chosen(graph: Graph, values: Any, to: str | None, at: str | Node | None) -> tuple[str, Any]:
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
        if node is not None and (_reached(node) if to is None else _walk(node, to)[1] is None):
            leading.append(key)
    if len(leading) != 1:
        found = "none of" if not leading else f"several ({leading}) of"
        back = "an input" if to is None else repr(to)
        raise NotInvertibleError(
            f"{where}: {found} the given nodes {list(values)} lead back to {back} through layers of one "
            "input; pass at= to name the node the values belong to."
        )
    return leading[0], values[leading[0]]
