"""Output storage: the interface, the in-memory backend, and opening a backend from a target."""

from __future__ import annotations

import os
from typing import Any

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

DEFAULT_URL = "sqlite:///megatron.db"
"""What ``storage='default'`` opens, unless ``MEGATRON_STORAGE`` names another URL."""


def open_storage(target: Any, name: str, version: str | None) -> Storage | None:
    """The storage of pipeline ``name``/``version`` on ``target``.

    ``target`` is a :class:`Storage`; a URL whose scheme a plugin registered (``memory://``,
    ``sqlite:///out.db``); a URL or object that a plugin's ``adapt_storage`` hook claims (any
    SQLAlchemy URL, a database connection); or ``'default'``: the embedded SQLite file
    ``megatron.db`` in the working directory (megatron-sql), or the URL in
    ``MEGATRON_STORAGE``. ``None`` means no storage.
    """
    if target is None or isinstance(target, Storage):
        return target
    from megatron.plugins import get_plugin_manager

    manager = get_plugin_manager()
    if isinstance(target, str) and target == "default":
        target = os.environ.get("MEGATRON_STORAGE", DEFAULT_URL)
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
    storage = manager.adapt_storage(target, name, version)
    if storage is not None:
        return storage
    if isinstance(target, str):
        from megatron.dependencies import missing_plugin

        missing = missing_plugin("storage", scheme.split("+", 1)[0])
        if missing is not None:
            raise missing
        raise StorageError(
            f"No installed plugin handles storage URLs of scheme {scheme!r} ({target!r}). "
            f"Known schemes: {', '.join(known) or 'none'}. SQL databases need megatron-sql."
        )
    kind = f"{type(target).__module__}.{type(target).__qualname__}"
    if kind.partition(".")[0] in ("sqlite3", "sqlalchemy"):  # what megatron-sql's adapter claims
        from megatron.dependencies import missing_package

        raise missing_package(f"Storage on a {kind}", "megatron-sql")
    raise StorageError(
        f"Cannot use a {type(target).__module__}.{type(target).__qualname__} as storage: expected a "
        "Storage, a URL, or a connection an installed plugin supports (megatron-sql)."
    )


__all__ = [
    "DEFAULT_URL",
    "MAX_KEY_LENGTH",
    "Key",
    "MemoryStorage",
    "Storage",
    "Write",
    "checked_write",
    "key_list",
    "lookup_keys",
    "open_storage",
    "output_schema",
    "to_key_type",
]
