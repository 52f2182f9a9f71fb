"""Loading plugins: entry points of the ``megatron`` group, through pluggy.

Plugins are loaded on first need, not when ``megatron`` is imported. Two environment
variables steer loading:

``MEGATRON_DISABLE_PLUGINS``
    Comma-separated plugin names never to load (``core`` blocks the built-ins too).
``MEGATRON_PLUGINS``
    Comma-separated plugin names to load, none other; the built-in ``core`` is always loaded
    unless disabled.
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any

import attrs
import pluggy

from megatron.plugins import hookspecs
from megatron.plugins.registry import KINDS, Entry, Kind, Registry

ENTRY_POINT_GROUP = "megatron"
BUILTIN = "core"


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded; megatron goes on without it."""


@attrs.frozen
class PluginInfo:
    """An installed plugin: its name, the distribution that ships it, and that version."""

    name: str
    distribution: str
    version: str


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class PluginManager:
    """The plugin host: a pluggy manager, the plugins it loaded, and their registry."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._info: dict[str, PluginInfo] = {}
        self._registry: Registry | None = None
        self._lock = threading.RLock()
        self._loaded = False

    @property
    def hook(self) -> Any:
        """pluggy's hook relay, with the plugins loaded."""
        self.load()
        return self._pm.hook

    @property
    def plugins(self) -> list[PluginInfo]:
        """The loaded plugins, by name."""
        self.load()
        return [self._info[name] for name in sorted(self._info)]

    @property
    def registry(self) -> Registry:
        """Everything the loaded plugins registered."""
        self.load()
        with self._lock:
            if self._registry is None:
                self._registry = self._build_registry()
            return self._registry

    def load(self) -> None:
        """Load every allowed entry-point plugin once. A plugin that fails to import is
        skipped with a :class:`PluginLoadWarning` naming it."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            from importlib import metadata  # here, not at import: it pulls in email, zipfile, socket...

            disabled = _names_from_env("MEGATRON_DISABLE_PLUGINS") or set()
            allowed = _names_from_env("MEGATRON_PLUGINS")
            for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
                if ep.name in disabled or self._pm.has_plugin(ep.name):
                    continue
                if allowed is not None and ep.name != BUILTIN and ep.name not in allowed:
                    continue
                dist = ep.dist.name if ep.dist is not None else "unknown distribution"
                version = ep.dist.version if ep.dist is not None else "unknown"
                try:
                    plugin = ep.load()
                except Exception as exc:
                    warnings.warn(
                        f"megatron plugin {ep.name!r} from {dist} {version} failed to load and "
                        f"is skipped: {type(exc).__name__}: {exc}",
                        PluginLoadWarning,
                        stacklevel=2,
                    )
                    continue
                self._add(plugin, PluginInfo(ep.name, dist, version))
            self._loaded = True

    def register(
        self, plugin: Any, name: str, distribution: str = "(registered at runtime)", version: str = ""
    ) -> None:
        """Register a plugin object directly (used by tests and interactive sessions)."""
        self.load()
        with self._lock:
            self._add(plugin, PluginInfo(name, distribution, version))

    def unregister(self, name: str) -> None:
        """Remove a plugin registered under ``name``."""
        with self._lock:
            self._pm.unregister(name=name)
            self._info.pop(name, None)
            self._registry = None

    def _add(self, plugin: Any, info: PluginInfo) -> None:
        self._pm.register(plugin, name=info.name)
        self._info[info.name] = info
        self._registry = None

    def _build_registry(self) -> Registry:
        registry = Registry()
        hook_of_kind: dict[Kind, str] = {
            "layer": "register_layers",
            "metric": "register_metrics",
            "source": "register_sources",
            "storage": "register_storage",
            "serializer": "register_serializers",
            "executor": "register_executors",
        }
        assert set(hook_of_kind) == set(KINDS)
        for kind, hook_name in hook_of_kind.items():
            # Call each implementation on its own, so every entry knows which plugin made it.
            for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                info = self._info[impl.plugin_name]

                def register(name: str, target: Any, *, _kind: Kind = kind, _info: PluginInfo = info) -> None:
                    registry.add(Entry(_kind, name, target, _info.name, _info.distribution))

                impl.function(register)
        return registry

    def registrations(self, plugin: str) -> dict[Kind, list[str]]:
        """What ``plugin`` registered, by kind."""
        return {kind: [e.name for e in self.registry.entries(kind) if e.plugin == plugin] for kind in KINDS}


_manager: PluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager."""
    global _manager
    if _manager is None:
        with _manager_lock:
            if _manager is None:
                _manager = PluginManager()
    return _manager


def reset_plugin_manager() -> None:
    """Forget loaded plugins; the next use loads them again (e.g. after installing one)."""
    global _manager
    with _manager_lock:
        _manager = None
