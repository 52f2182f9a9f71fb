"""Module-level ``__getattr__``/``__dir__`` that expose a registry kind as attributes."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from megatron.plugins.registry import Kind


def registry_module(
    module_name: str, kind: Kind, namespace: dict[str, Any], exports: Mapping[str, str] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Make ``module_name.X`` resolve registered ``kind`` names, and ``dir()`` list them.

    ``exports`` maps names of the module's own API to ``"module:attribute"`` paths imported on
    first use (so that ``import megatron`` does not import them).
    """
    lazy = dict(exports or {})

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        if name in lazy:
            module, _, attribute = lazy[name].partition(":")
            value = getattr(importlib.import_module(module), attribute)
            namespace[name] = value
            return value
        from megatron.plugins.manager import get_plugin_manager

        return get_plugin_manager().registry.get(kind, name)

    def __dir__() -> list[str]:
        from megatron.plugins.manager import get_plugin_manager

        names = get_plugin_manager().registry.names(kind)
        return sorted(set(namespace.get("__all__", ())) | set(lazy) | set(names))

    return __getattr__, __dir__
