"""Module-level ``__getattr__``/``__dir__`` that expose a registry kind as attributes.

A built-in name (``megatron.layers.Whiten``) resolves without reading the installed plugins,
which costs ``importlib.metadata`` and a scan of every distribution; any other name loads
them. A plugin that registers a built-in's name is a conflict found by that scan: from then on
the name raises :class:`~megatron.errors.PluginConflictError` on use, as any conflict does, and
a built-in used before the scan is named in a warning. The names of the package's own
submodules never reach the registry: ``from megatron.layers import checks`` asks for one
before importing it.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the registry is imported when a name is first resolved, not by import megatron
    from megatron.plugins.registry import Kind


def registry_module(
    module_name: str, kind: Kind, namespace: dict[str, Any], exports: Mapping[str, str] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Make ``module_name.X`` resolve registered ``kind`` names, and ``dir()`` list them.

    ``exports`` maps names of the module's own API to ``"module:attribute"`` paths imported on
    first use (so that ``import megatron`` does not import them).
    """
    lazy = dict(exports or {})
    submodules: list[frozenset[str]] = []

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        if name in lazy:
            module, _, attribute = lazy[name].partition(":")
            value = getattr(importlib.import_module(module), attribute)
            namespace[name] = value
            return value
        if not submodules:
            submodules.append(_submodules(namespace.get("__path__", ())))
        if name in submodules[0]:  # not imported yet: `from package import name` imports it next
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        loaded = sys.modules.get("megatron.plugins.manager")  # none loaded before it is imported
        manager = None if loaded is None else loaded.loaded_plugin_manager()
        if manager is None:
            builtin = _builtin(kind, name)
            if builtin is not None:
                return builtin
            from megatron.plugins.manager import get_plugin_manager

            manager = get_plugin_manager()
        return manager.registry.get(kind, name)

    def __dir__() -> list[str]:
        from megatron.plugins.manager import get_plugin_manager

        names = get_plugin_manager().registry.names(kind)
        return sorted(set(namespace.get("__all__", ())) | set(lazy) | set(names))

    return __getattr__, __dir__


def _builtin(kind: Kind, name: str) -> Any:
    """The built-in ``kind`` named ``name``, imported, or None where there is none or the
    environment blocks the built-in plugin (``MEGATRON_DISABLE_PLUGINS=core``)."""
    from megatron.plugins.core_names import builtin_target, handed_out

    target = builtin_target(kind, name)
    if target is None or (os.environ.get("MEGATRON_DISABLE_PLUGINS") is not None and _blocked()):
        return None
    module, _, attribute = target.partition(":")  # a built-in's target is always module:Name
    value = getattr(importlib.import_module(module), attribute)
    handed_out(kind, name)
    return value


def _blocked() -> bool:
    """Whether ``MEGATRON_DISABLE_PLUGINS`` names the built-in plugin or its distribution."""
    from megatron.plugins.loading import BUILTIN, BUILTIN_DISTRIBUTION
    from megatron.plugins.registry import PluginInfo
    from megatron.plugins.selection import DISABLE, Selection

    return Selection.from_env(DISABLE).matches(PluginInfo(BUILTIN, BUILTIN_DISTRIBUTION, ""))


def _submodules(paths: Any) -> frozenset[str]:
    """The names of the modules and packages in a package's folders (``__path__``)."""
    suffixes = tuple(importlib.machinery.all_suffixes())
    names = set()
    for folder in paths:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            stem, dot, _ = entry.name.partition(".")
            if entry.name.endswith(suffixes) or (not dot and stem != "__pycache__" and entry.is_dir()):
                names.add(stem)
    return frozenset(names)
