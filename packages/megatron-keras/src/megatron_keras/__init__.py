"""Megatron's Keras plugin: Keras 3 models as layers (``megatron.layers.Keras``)."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "Keras":  # imported on use, so that loading the plugin stays light
        from megatron_keras.layer import Keras

        return Keras
    raise AttributeError(f"module 'megatron_keras' has no attribute {name!r}")


__all__ = ["Keras"]
