"""The core's built-in plugin, registered directly by the plugin manager (as pytest registers
its own plugins) and declared as the entry point ``core`` for tools that list entry points."""

from __future__ import annotations

from megatron.plugins.core_names import LAYERS, METRICS, SOURCES
from megatron.plugins.hookspecs import Register, hookimpl

__all__ = ["LAYERS", "METRICS", "SOURCES"]


@hookimpl
def register_layers(register: Register) -> None:
    for module, names in LAYERS.items():
        for name in names:
            register(name, f"{module}:{name}")


@hookimpl
def register_metrics(register: Register) -> None:
    for module, names in METRICS.items():
        for name in names:
            register(name, f"{module}:{name}")


@hookimpl
def register_sources(register: Register) -> None:
    for module, names in SOURCES.items():
        for name in names:
            register(name, f"{module}:{name}")


@hookimpl
def register_storage(register: Register) -> None:
    register("memory", "megatron.storage.memory:MemoryStorage")


@hookimpl
def register_executors(register: Register) -> None:
    register("local", "megatron.execution.local:LocalExecutor")
    register("threads", "megatron.execution.threads:ThreadExecutor")
