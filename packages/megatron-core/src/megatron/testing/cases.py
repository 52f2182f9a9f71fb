"""Conformance cases made from a plugin's own class: point the storage suite at a backend."""

from __future__ import annotations

from typing import Any

from megatron.storage.base import Storage
from megatron.testing.sources import source_case
from megatron.testing.storage import StorageCase

__all__ = ["source_case", "storage_case"]


def storage_case(
    backend: type[Storage] | str, url: str | None = None, *, persistent: bool = True
) -> StorageCase:
    """A case for a storage backend: a :class:`~megatron.storage.base.Storage` class opened on
    ``url`` with its ``open(url, name, version)``, or a URL alone, opened through the plugin
    registry as a pipeline's ``storage=`` is (which checks the backend's registration too)::

        CASE = storage_case(MyStorage, "mine://localhost/test")
        CASE = storage_case("mine://localhost/test")

    ``persistent`` backends are checked to read back what another instance wrote, as another
    process would; an in-memory backend passes ``persistent=False``.
    """
    if isinstance(backend, str):
        target = backend

        def make(name: str, version: str | None) -> Storage:
            from megatron.io import open_storage

            storage = open_storage(target, name, version)
            assert storage is not None, f"no storage opened for {target!r}"
            return storage

        label = target
    else:
        if url is None:
            raise TypeError("storage_case(StorageClass, url): give the URL to open it on")
        cls, target = backend, url

        def make(name: str, version: str | None) -> Storage:
            return cls.open(target, name, version)

        label = cls.__name__

    opened: dict[int, tuple[str, str | None]] = {}

    def make_and_remember(name: str, version: str | None) -> Storage:
        storage = make(name, version)
        opened[id(storage)] = (name, version)
        return storage

    def reopen(storage: Any) -> Storage:
        return make(*opened[id(storage)])

    return StorageCase(make_and_remember, name=label, reopen=reopen if persistent else None)
