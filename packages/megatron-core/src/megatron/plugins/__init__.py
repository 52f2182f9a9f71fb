"""The plugin door: hookspecs, the manager that loads plugins in isolation, and the registry."""

from megatron.plugins.commands import Command
from megatron.plugins.hookspecs import hookimpl, hookspec
from megatron.plugins.loading import PluginFailure, PluginLoadWarning, SkippedPlugin
from megatron.plugins.manager import PluginManager, get_plugin_manager, reset_plugin_manager
from megatron.plugins.registry import Entry, PluginInfo, Registry


def get_registry() -> Registry:
    """Everything the installed plugins registered."""
    return get_plugin_manager().registry


__all__ = [
    "Command",
    "Entry",
    "PluginFailure",
    "PluginInfo",
    "PluginLoadWarning",
    "PluginManager",
    "Registry",
    "SkippedPlugin",
    "get_plugin_manager",
    "get_registry",
    "hookimpl",
    "hookspec",
    "reset_plugin_manager",
]
