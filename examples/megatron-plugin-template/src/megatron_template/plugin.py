"""The plugin's hook implementations: names and where to find them, imported on first use."""

from __future__ import annotations

from typing import Any

from megatron.plugins import hookimpl


@hookimpl
def register_layers(register: Any) -> None:
    register("MaxAbsScale", "megatron_template.layers:MaxAbsScale")


@hookimpl
def register_metrics(register: Any) -> None:
    register("MaxError", "megatron_template.metrics:MaxError")
