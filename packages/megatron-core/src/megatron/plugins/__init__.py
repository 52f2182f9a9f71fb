"""The plugin door: hookspecs, the manager that loads plugins in isolation, and the registry.

Its names are imported on first use, so that ``import megatron`` (which needs only the
registry's attribute door, :mod:`megatron.plugins.facade`) loads neither pluggy nor the manager.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from megatron.plugins.commands import Command
    from megatron.plugins.hookspecs import hookimpl, hookspec
    from megatron.plugins.loading import PluginFailure, PluginLoadWarning, SkippedPlugin
    from megatron.plugins.manager import PluginManager, get_plugin_manager, reset_plugin_manager
    from megatron.plugins.registry import Entry, PluginInfo, Registry

_HOMES = {
    "Command": "commands",
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
    "PluginFailure": "loading",
    "PluginLoadWarning": "loading",
    "SkippedPlugin": "loading",
    "PluginManager": "manager",
    "get_plugin_manager": "manager",
    "reset_plugin_manager": "manager",
    "Entry": "registry",
    "PluginInfo": "registry",
    "Registry": "registry",
}


def get_registry() -> Registry:
    """Everything the installed plugins registered."""
    from megatron.plugins.manager import get_plugin_manager

    return get_plugin_manager().registry


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
