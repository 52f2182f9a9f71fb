"""Parameters over a whole graph, in scikit-learn's style: ``get_params`` (``<layer>__<parameter>``
by the layers' names), ``set_params`` (checked) and ``clone`` (an unfitted copy of the graph)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from megatron.config import ARGUMENTS
from megatron.errors import ConfigError, MegatronError
from megatron.graph.node import Input, Node
from megatron.layers.tools import clone as clone_layer
from megatron.layers.tools import fresh
from megatron.suggest import did_you_mean

if TYPE_CHECKING:
    from megatron.graph.topology import Graph
    from megatron.layers.base import Layer
    from megatron.metrics.base import MetricNode
    from megatron.pipeline import Pipeline

__all__ = ["PipelineParameters", "cloned_graph", "graph_params", "set_graph_params"]


def graph_params(graph: Graph, deep: bool = True) -> dict[str, Any]:
    """Each layer's hyperparameters as ``<layer name>__<parameter>``; with ``deep``, the
    parameters of an estimator among them too, ``<layer>__estimator__<parameter>``, as
    scikit-learn's meta-estimators nest theirs."""
    params: dict[str, Any] = {}
    for layer in graph.layers:
        for key, value in layer.get_config().items():
            params[f"{layer.name}__{key}"] = value
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                for inner, setting in value.get_params(deep=True).items():
                    params[f"{layer.name}__{key}__{inner}"] = setting
    return params


def set_graph_params(graph: Graph, params: Mapping[str, Any]) -> None:
    """Set ``<layer>__<parameter>`` hyperparameters (and ``<layer>__<parameter>__<inner>`` of an
    estimator among them), checked first: an unknown name is a :class:`ConfigError` with the
    closest known one, and a value the layer's ``__init__`` refuses, the layer's own error.
    Each layer's new values are those a new layer built with them holds (normalised as its
    ``__init__`` does); nothing is changed unless every value is accepted."""
    layers = {layer.name: layer for layer in graph.layers}
    known = graph_params(graph, deep=True)
    direct: dict[str, dict[str, Any]] = {}
    nested: list[tuple[str, str, str, Any]] = []
    for key, value in params.items():
        if key not in known:
            raise ConfigError(
                f"{graph.where}: set_params() got an unknown parameter {key!r}; parameters are "
                f"<layer>__<parameter> of the layers {sorted(layers)} (see get_params()).{did_you_mean(key, known)}"
            )
        name, _, parameter = key.partition("__")
        head, _, inner = parameter.partition("__")
        if inner:
            nested.append((name, head, inner, value))
        else:
            direct.setdefault(name, {})[head] = value
    built = {name: _validated(layers[name], changes, graph.where) for name, changes in direct.items()}
    for name, changes in direct.items():
        _assign(layers[name], built[name], changes)
    for name, head, inner, value in nested:  # on the estimator now set, as scikit-learn orders them
        layers[name].get_config()[head].set_params(**{inner: value})


def _validated(layer: Layer, changes: dict[str, Any], where: str) -> Layer:
    """A new layer built with ``layer``'s hyperparameters and ``changes``: its ``__init__``
    checks them."""
    try:
        return type(layer)(**{**layer.get_config(), **changes})
    except MegatronError as exc:
        raise type(exc)(f"{where}: set_params() for layer {layer.name!r}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: set_params() for layer {layer.name!r}: {exc}") from exc


def _assign(layer: Layer, built: Layer, changes: dict[str, Any]) -> None:
    """Give ``layer`` the new hyperparameters as ``built`` holds them. As with any assignment
    of a hyperparameter, the fingerprint changes (stored outputs are not served) and a stateful
    layer keeps what it learned until it is fitted again."""
    for key in changes:
        if key in built.__dict__:
            setattr(layer, key, built.__dict__[key])
        arguments = layer.__dict__.get(ARGUMENTS)
        if arguments is not None and key in built.__dict__.get(ARGUMENTS, {}):
            arguments[key] = built.__dict__[ARGUMENTS][key]


def cloned_graph(graph: Graph) -> tuple[list[Input], list[Node], list[MetricNode]]:
    """New inputs, output nodes and metrics computing what ``graph`` computes, with the same
    node and layer names, each layer an unfitted copy (shared layers stay shared)."""
    nodes: dict[int, Node] = {}
    inputs = []
    for given in graph.inputs:
        entry = Input(given.name, given.shape, given.dtype, columns=given.columns)
        nodes[id(given)] = entry
        inputs.append(entry)
    layers: dict[int, Layer] = {}
    for call in graph.calls:
        layer = layers.get(id(call.layer))
        if layer is None:
            layer = layers[id(call.layer)] = clone_layer(call.layer, same_name=True)
        visible = call.visible_outputs
        names = visible[0].name if len(visible) == 1 else [n.name for n in visible]
        result = layer([nodes[id(n)] for n in call.inputs], names)
        made = [result] if isinstance(result, Node) else list(result)
        new_call = made[0].call
        for old, new in zip(call.outputs, new_call.outputs if new_call is not None else made):
            new.named = old.named
            nodes[id(old)] = new
    metrics = [
        type(m.metric)(**{k: fresh(v) for k, v in m.metric.get_config().items()})(
            [nodes[id(n)] for n in m.inputs], m.name
        )
        for m in graph.metrics
    ]
    return inputs, [nodes[id(n)] for n in graph.outputs], metrics


class PipelineParameters:
    """``get_params``, ``set_params`` and ``clone`` (a mixin of :class:`~megatron.Pipeline`)."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Every layer's hyperparameters, as ``<layer name>__<parameter>`` (scikit-learn's
        convention, with the layers' names); with ``deep``, an estimator's own parameters
        too, as ``<layer>__estimator__<parameter>``."""
        return graph_params(_pipeline(self).graph, deep)

    def set_params(self, **params: Any) -> Pipeline:
        """Set hyperparameters by the names :meth:`get_params` gives, checked (a
        :class:`~megatron.errors.ConfigError` names an unknown one and the closest known). As
        with assigning a hyperparameter, the fingerprint changes, so stored outputs are not
        served, and a stateful layer keeps what it learned until it is fitted again: refit
        after changing what a layer learns."""
        pipeline = _pipeline(self)
        set_graph_params(pipeline.graph, params)
        return pipeline

    def clone(self, storage: Any = None) -> Pipeline:
        """An unfitted copy of the pipeline: the same graph, node and layer names, name and
        version, with new layers (estimators among their hyperparameters cloned) that learn
        apart from these. ``storage`` opens the copy's own storage (none by default)."""
        pipeline = _pipeline(self)
        inputs, outputs, metrics = cloned_graph(pipeline.graph)
        return type(pipeline)(
            inputs,
            outputs,
            pipeline.name,
            pipeline.version,
            storage=storage,
            metrics=metrics,
            executor=pipeline._executor,
        )


def _pipeline(mixed: PipelineParameters) -> Pipeline:
    return cast("Pipeline", mixed)  # the one class that mixes it in
