"""Output storage: the interface, the in-memory backend, and opening a backend from a target."""

from __future__ import annotations

from typing import Any

from megatron.errors import StorageError
from megatron.storage.base import Key, Storage
from megatron.storage.memory import MemoryStorage


def open_storage(target: Any, name: str, version: str | None) -> Storage | None:
    """The storage of pipeline ``name``/``version`` on ``target``.

    ``target`` is a :class:`Storage`, a URL whose scheme a plugin registered (``memory://``,
    ``sqlite:///out.db``), or an object a plugin's ``adapt_storage`` hook claims (a database
    connection). ``None`` means no storage.
    """
    if target is None or isinstance(target, Storage):
        return target
    from megatron.plugins import get_plugin_manager

    manager = get_plugin_manager()
    if isinstance(target, str):
        scheme, sep, _ = target.partition("://")
        if not sep:
            raise StorageError(
                f"Expected a storage URL such as 'memory://' or 'sqlite:///out.db'; got {target!r}."
            )
        registry = manager.registry
        known = registry.names("storage")
        for candidate in (scheme, scheme.split("+", 1)[0]):
            if candidate in known:
                return registry.get("storage", candidate).open(target, name, version)
        raise StorageError(
            f"No installed plugin handles storage URLs of scheme {scheme!r} ({target!r}). "
            f"Known schemes: {', '.join(known) or 'none'}. SQL databases need megatron-sql."
        )
    storage = manager.hook.adapt_storage(obj=target, name=name, version=version)
    if storage is None:
        raise StorageError(
            f"Cannot use a {type(target).__module__}.{type(target).__qualname__} as storage: expected a "
            "Storage, a URL, or a connection an installed plugin supports (megatron-sql)."
        )
    return storage


__all__ = ["Key", "MemoryStorage", "Storage", "open_storage"]
