"""The keras plugin's hook implementations. Imports nothing heavy: Keras loads on first use."""

from __future__ import annotations

from typing import Any

from megatron.plugins import Command, hookimpl


@hookimpl
def register_layers(register: Any) -> None:
    register("Keras", "megatron_keras.layer:Keras")


@hookimpl
def register_serializers(register: Any) -> None:
    register("keras", "megatron_keras.serializer:KerasSerializer")


@hookimpl
def register_commands(register: Any) -> None:
    register(
        "demo",
        Command(
            "run the getting-started tutorial in the current folder (needs megatron-sql too, whose "
            "SQLite file megatron.db is the default storage)",
            run="megatron_keras.demo:run",
        ),
    )


@hookimpl
def adapt_layer(obj: Any) -> Any:
    """Wrap a Keras model where a layer is expected."""
    if not type(obj).__module__.startswith("keras"):
        return None
    from megatron_keras.layer import Keras, _is_keras_model

    return Keras(obj) if _is_keras_model(obj) else None
