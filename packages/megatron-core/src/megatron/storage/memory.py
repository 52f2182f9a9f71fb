"""``memory://``: storage in a dict, for tests and short-lived sessions."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from megatron.errors import StorageError, UnknownOutputError
from megatron.outputs import Outputs
from megatron.storage.base import Storage
from megatron.storage.domain import Key, checked_outputs, lookup_keys, to_key_type


class MemoryStorage(Storage):
    """Outputs kept in process memory. Every ``memory://`` URL gives a fresh, empty store."""

    def __init__(self, name: str = "pipeline", version: str | None = None) -> None:
        self.name = name
        self.version = version
        self._rows: dict[Key, tuple[str | None, tuple[np.ndarray, ...]]] = {}
        self._names: tuple[str, ...] | None = None
        self._schema: dict[str, tuple[str, tuple[int, ...]]] | None = None
        self._empty: tuple[np.ndarray, ...] = ()
        self._int_keys: bool | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, url: str, name: str, version: str | None) -> MemoryStorage:
        return cls(name, version)

    def put(self, outputs: Outputs, fingerprint: str | None) -> None:
        with self._lock:
            write = checked_outputs(outputs, self._int_keys)
            if self._names is None and not write.keys:
                return  # no rows, and nothing stored yet to decide the key type by
            schema = dict(zip(write.names, write.schemas))
            if self._schema is not None and schema != self._schema:
                raise StorageError(
                    f"Storage of pipeline {self.name!r} holds outputs {_describe(self._schema)}; this write "
                    f"has {_describe(schema)}."
                )
            names = self._names or tuple(write.names)
            by_name = dict(zip(write.names, write.arrays))  # outputs may come in any order
            arrays = [by_name[n] for n in names]
            # Everything is validated before the first row changes, so a write is all or nothing.
            rows = {k: (fingerprint, tuple(a[i].copy() for a in arrays)) for i, k in enumerate(write.keys)}
            if self._names is None:
                self._names, self._schema, self._int_keys = names, schema, write.int_keys
                self._empty = tuple(a[:0].copy() for a in arrays)
            self._rows.update(rows)

    def lookup(
        self, rows: Iterable[Key], cols: Iterable[str] | None = None, fingerprint: str | None = None
    ) -> tuple[np.ndarray, Outputs]:
        with self._lock:
            names = self._names or ()
            selected = list(names) if cols is None else list(cols)
            unknown = [c for c in selected if c not in names]
            if unknown and self._names is not None:
                raise UnknownOutputError(f"Storage has no outputs {unknown}; it holds {list(names)}.")
            positions, keys, found = [], [], []
            _, converted = lookup_keys(rows, bool(self._int_keys))
            for i, key in enumerate(converted):
                stored = None if key is None else self._rows.get(key)
                if stored is not None and (fingerprint is None or stored[0] == fingerprint):
                    positions.append(i)
                    keys.append(key)
                    found.append(stored[1])
            if self._names is None:  # nothing stored: no dtypes to give
                arrays = [np.empty(0) for _ in selected]
            else:
                columns = [names.index(c) for c in selected]
                arrays = [np.stack([row[p] for row in found]) if found else self._empty[p] for p in columns]
        return np.asarray(positions, dtype=np.int64), Outputs(selected, arrays, np.asarray(keys))

    def keys(self) -> list[Key]:
        with self._lock:
            return sorted(self._rows)  # one key type: as SQL orders them

    def delete(self, rows: Iterable[Key]) -> None:
        with self._lock:
            for key in lookup_keys(rows, bool(self._int_keys))[1]:
                self._rows.pop(key, None)  # type: ignore[arg-type]

    def __contains__(self, key: Any) -> bool:
        return to_key_type(key, bool(self._int_keys)) in self._rows


def _describe(schema: dict[str, tuple[str, tuple[int, ...]]]) -> str:
    return ", ".join(f"{n!r} {dtype}{list(shape) if shape else ''}" for n, (dtype, shape) in schema.items())
