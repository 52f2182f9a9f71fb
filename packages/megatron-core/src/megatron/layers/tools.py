"""Helpers for working with layers: adapting foreign objects, and applying a layer to many nodes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from megatron.errors import ConfigError, GraphError, MissingDependencyError
from megatron.graph.node import Node
from megatron.layers.base import Layer


def as_layer(obj: Any) -> Layer:
    """``obj`` as a layer: a layer as is, or a foreign object (an sklearn estimator, a Keras
    model) claimed by an installed plugin's ``adapt_layer`` hook."""
    if isinstance(obj, Layer):
        return obj
    from megatron.plugins import get_plugin_manager
    from megatron.plugins.hints import missing_adapter

    manager = get_plugin_manager()
    layer = manager.adapt_layer(obj)
    if layer is None:
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        missing = missing_adapter("adapt_layer", obj, f"Wrapping a {kind} as a layer", manager.distributions)
        expected = f"Expected a megatron Layer, or an object an installed plugin can wrap as one; got {kind}."
        if missing is not None:  # a known library whose plugin is not installed or not loaded
            raise MissingDependencyError(f"{expected} {missing}", name=missing.name)
        raise ConfigError(f"{expected} Install the plugin for it or wrap it in a Layer.")
    return layer


def clone(layer: Layer, *, same_name: bool = False) -> Layer:
    """A new, unfitted layer with the same hyperparameters; an estimator among them (an object
    with scikit-learn's ``get_params``) is cloned too, unfitted, so the copies learn apart.
    With ``same_name``, the copy takes the layer's name (automatic names stay automatic)."""
    copy = type(layer)(**{key: fresh(value) for key, value in layer.get_config().items()})
    if same_name and "_name" in layer.__dict__:
        copy.__dict__["_name"] = layer.__dict__["_name"]
        if layer.auto_named:
            copy.__dict__["_auto_named"] = True
    return copy


def fresh(value: Any) -> Any:
    """A hyperparameter for a new layer: a scikit-learn style estimator as an unfitted clone
    (scikit-learn's ``__sklearn_clone__``, else its class with its ``get_params``), a pipeline
    as its ``clone()``, anything else as it is (arrays and containers are read-only, so they
    are shared safely)."""
    if isinstance(value, type) or not hasattr(value, "get_params"):
        return value
    if hasattr(value, "__sklearn_clone__"):
        return value.__sklearn_clone__()
    if hasattr(value, "graph") and callable(getattr(value, "clone", None)):  # a megatron Pipeline
        return value.clone()
    return type(value)(**{key: fresh(v) for key, v in value.get_params(deep=False).items()})


def map_layer(
    layer: Any, nodes: Sequence[Node] | Mapping[str, Node], *, fresh: bool = False, suffix: str | None = None
) -> Any:
    """Call ``layer`` on each node of a list or dict, returning the same structure.

    With ``fresh=True`` each node gets its own copy of the layer (its own fitted state);
    otherwise one instance is shared, and a stateful one learns from all the nodes together.
    With ``suffix``, each output is named ``<input name><suffix>``.

    Example::

        scaled = map_layer(Whiten(), {'age': age, 'income': income}, fresh=True, suffix='_scaled')
    """
    layer = as_layer(layer)

    def call(node: Node) -> Any:
        target = clone(layer) if fresh else layer
        return target(node, None if suffix is None else f"{node.name}{suffix}")

    if isinstance(nodes, Mapping):
        return {key: call(node) for key, node in nodes.items()}
    if isinstance(nodes, Sequence) and not isinstance(nodes, str):
        return [call(node) for node in nodes]
    raise GraphError(f"map_layer takes a list or dict of nodes; got {type(nodes).__name__}")
