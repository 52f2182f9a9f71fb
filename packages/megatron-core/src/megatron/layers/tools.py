"""Helpers for working with layers."""

from __future__ import annotations

from typing import Any

from megatron.errors import MegatronError
from megatron.layers.base import Layer


def as_layer(obj: Any) -> Layer:
    """``obj`` as a layer: a layer as is, or a foreign object (an sklearn estimator, a Keras
    model) claimed by an installed plugin's ``adapt_layer`` hook."""
    if isinstance(obj, Layer):
        return obj
    from megatron.plugins import get_plugin_manager

    layer = get_plugin_manager().hook.adapt_layer(obj=obj)
    if layer is None:
        raise MegatronError(
            f"Expected a megatron Layer, or an object an installed plugin can wrap as one; got "
            f"{type(obj).__module__}.{type(obj).__qualname__}. Install the plugin for it "
            "(e.g. megatron-sklearn, megatron-keras) or wrap it in a Layer."
        )
    return layer
