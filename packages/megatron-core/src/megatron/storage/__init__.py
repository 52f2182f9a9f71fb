"""Output storage: the interface, the in-memory backend, and opening a backend from a target."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from megatron.errors import StorageError
from megatron.storage.base import Storage
from megatron.storage.domain import (
    MAX_KEY_LENGTH,
    Key,
    Write,
    checked_write,
    key_list,
    lookup_keys,
    output_schema,
    to_key_type,
)
from megatron.storage.memory import MemoryStorage

if TYPE_CHECKING:
    from megatron.plugins.manager import PluginManager

_VARIABLE = "MEGATRON_STORAGE"
"""The environment variable whose URL ``storage='default'`` opens, over any plugin's default."""


def default_url() -> str:
    """The URL that ``storage='default'`` opens: ``MEGATRON_STORAGE`` if it is set, else the
    default storage of an installed plugin (its ``default_storage_url`` hook). Raises an error
    that says what to install or pass when neither gives one."""
    if _VARIABLE in os.environ:
        return os.environ[_VARIABLE]
    from megatron.plugins import get_plugin_manager

    manager = get_plugin_manager()
    url = manager.default_storage_url()
    if url is not None:
        return url
    from megatron.plugins.hints import missing_hook

    instead = f"Or pass a storage URL such as 'memory://', or set {_VARIABLE} to one."
    missing = missing_hook("default_storage_url", "storage='default'", manager.distributions, instead)
    if missing is not None:
        raise missing
    raise StorageError(
        "storage='default' opens the default storage of an installed plugin, and no installed plugin "
        "provides one (none implements the default_storage_url hook). Install a plugin that does, "
        f"pass a storage URL such as 'memory://' or a Storage, or set {_VARIABLE} to a URL."
    )


def open_storage(target: Any, name: str, version: str | None) -> Storage | None:
    """The storage of pipeline ``name``/``version`` on ``target``.

    ``target`` is a :class:`Storage`; a URL whose scheme a plugin registered (``memory://``,
    ``sqlite:///out.db``); a URL or object that a plugin's ``adapt_storage`` hook claims (any
    SQLAlchemy URL, a database connection); or ``'default'``: the URL in ``MEGATRON_STORAGE``,
    else the default storage of an installed plugin (with megatron-sql, the embedded SQLite
    file ``megatron.db`` in the working directory; see :func:`default_url`). ``None`` means no
    storage.
    """
    if target is None or isinstance(target, Storage):
        return target
    from megatron.plugins import get_plugin_manager

    manager = get_plugin_manager()
    if isinstance(target, str) and target == "default":
        target = default_url()
    if isinstance(target, str):
        scheme, sep, _ = target.partition("://")
        if not sep:
            raise StorageError(
                f"Expected a storage URL (scheme://...) such as 'memory://', or 'default'; got {target!r}."
            )
        registry = manager.registry
        for candidate in (scheme, scheme.split("+", 1)[0]):
            if candidate in registry.names("storage"):
                return registry.get("storage", candidate).open(target, name, version)
    storage = manager.adapt_storage(target, name, version)
    if storage is not None:
        return storage
    raise _unclaimed(target, manager)


def _unclaimed(target: Any, manager: PluginManager) -> Exception:
    """The error for a storage target no plugin opens: the plugin to install when the catalogue
    knows one, else what is expected."""
    from megatron.plugins.hints import missing_adapter, missing_name

    loaded = manager.distributions
    if isinstance(target, str):
        scheme = target.partition("://")[0]
        missing = missing_name("storage", scheme.split("+", 1)[0], loaded)
        known = ", ".join(manager.registry.names("storage")) or "none"
        return missing or StorageError(
            f"No installed plugin handles storage URLs of scheme {scheme!r} ({target!r}). "
            f"Known schemes: {known}. Install the plugin for it, or pass a Storage."
        )
    kind = f"{type(target).__module__}.{type(target).__qualname__}"
    return missing_adapter("adapt_storage", target, f"Storage on a {kind}", loaded) or StorageError(
        f"Cannot use a {kind} as storage: expected a Storage, a URL, or a connection an installed "
        "plugin supports."
    )


__all__ = [
    "MAX_KEY_LENGTH",
    "Key",
    "MemoryStorage",
    "Storage",
    "Write",
    "checked_write",
    "default_url",
    "key_list",
    "lookup_keys",
    "open_storage",
    "output_schema",
    "to_key_type",
]
