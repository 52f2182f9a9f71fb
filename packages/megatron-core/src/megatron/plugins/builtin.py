"""The core's built-in plugin. It registers through the same entry point as any other."""

from __future__ import annotations

from megatron.plugins.hookspecs import Register, hookimpl


@hookimpl
def register_layers(register: Register) -> None:
    register("Lambda", "megatron.layers.lambda_layer:Lambda")


@hookimpl
def register_metrics(register: Register) -> None:
    register("Metric", "megatron.metrics.base:Metric")
    register("Accuracy", "megatron.metrics.classification:Accuracy")


@hookimpl
def register_storage(register: Register) -> None:
    register("memory", "megatron.storage.memory:MemoryStorage")


@hookimpl
def register_executors(register: Register) -> None:
    register("local", "megatron.execution.local:LocalExecutor")
