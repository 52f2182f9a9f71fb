"""The plugin door: hookspecs, the manager that loads entry points, and the registry."""

from megatron.plugins.hookspecs import hookimpl, hookspec
from megatron.plugins.manager import (
    PluginInfo,
    PluginLoadWarning,
    PluginManager,
    get_plugin_manager,
    reset_plugin_manager,
)
from megatron.plugins.registry import Entry, Registry


def get_registry() -> Registry:
    """Everything the installed plugins registered."""
    return get_plugin_manager().registry


__all__ = [
    "Entry",
    "PluginInfo",
    "PluginLoadWarning",
    "PluginManager",
    "Registry",
    "get_plugin_manager",
    "get_registry",
    "hookimpl",
    "hookspec",
    "reset_plugin_manager",
]
