"""Layers. Every installed layer is an attribute, resolved through the plugin registry.

The base classes for writing your own layers are defined here; ``Lambda`` and the built-in
layers come from the core's built-in plugin, and plugins add more (``Sklearn``, ``Keras``).
"""

from megatron.layers.base import Layer, StatefulLayer, StatelessLayer
from megatron.layers.tools import as_layer, clone, map_layer
from megatron.plugins.facade import registry_module

__all__ = ["Layer", "StatefulLayer", "StatelessLayer", "as_layer", "clone", "map_layer"]

__getattr__, __dir__ = registry_module(__name__, "layer", globals())
