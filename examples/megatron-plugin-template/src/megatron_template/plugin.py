"""The plugin's hook implementations: names and where to find them, imported on first use.

Every hook is decorated with ``@hookimpl`` and takes the arguments its specification names
(``register``); megatron calls them by keyword. A hook that raises, or registers a name that is
not an identifier, has the whole plugin dropped with a warning, so keep them to ``register``
calls. Import nothing heavy here: megatron imports this module when it first needs a plugin.
"""

from __future__ import annotations

from megatron.plugins import hookimpl
from megatron.plugins.hookspecs import Register


@hookimpl
def register_layers(register: Register) -> None:
    register("MaxAbsScale", "megatron_template.layers:MaxAbsScale")
    register("WeightedSum", "megatron_template.layers:WeightedSum")


@hookimpl
def register_metrics(register: Register) -> None:
    register("MaxError", "megatron_template.metrics:MaxError")


@hookimpl
def register_sources(register: Register) -> None:
    register("NpzSource", "megatron_template.sources:NpzSource")
