"""``memory://``: storage in a dict, for tests and short-lived sessions."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from megatron.errors import MissingKeyError, StorageError, UnknownOutputError
from megatron.outputs import Outputs
from megatron.storage.base import Key, Storage


def normalize_key(key: Any, int_keys: bool) -> Key:
    """A stored key from a user's key: ``'0'`` finds the int key 0, and 0 the str key ``'0'``."""
    if isinstance(key, np.generic):
        key = key.item()
    if int_keys and isinstance(key, str):
        try:
            return int(key)
        except ValueError:
            return key
    if not int_keys and isinstance(key, int):
        return str(key)
    return key


class MemoryStorage(Storage):
    """Outputs kept in process memory. Every ``memory://`` URL gives a fresh, empty store."""

    def __init__(self, name: str = "pipeline", version: str | None = None) -> None:
        self.name = name
        self.version = version
        self._rows: dict[Key, tuple[np.ndarray, ...]] = {}
        self._names: tuple[str, ...] | None = None
        self._int_keys: bool | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, url: str, name: str, version: str | None) -> MemoryStorage:
        return cls(name, version)

    def write(self, index: Sequence[Key] | np.ndarray, outputs: Outputs | dict[str, np.ndarray]) -> None:
        keys = list(np.asarray(index).tolist())
        names = tuple(outputs)
        arrays = [np.asarray(outputs[n]) for n in names]
        for name, array in zip(names, arrays):
            if len(array) != len(keys):
                raise StorageError(
                    f"Cannot store output {name!r}: {len(array)} rows for an index of {len(keys)} keys."
                )
        if len(set(keys)) != len(keys):
            raise StorageError("Cannot store rows: the index holds duplicate keys.")
        with self._lock:
            if self._names is not None and names != self._names:
                raise StorageError(
                    f"Storage of pipeline {self.name!r} holds outputs {list(self._names)}; "
                    f"cannot write outputs {list(names)}."
                )
            int_keys = self._int_keys if self._int_keys is not None else all(isinstance(k, int) for k in keys)
            # Everything is validated before the first row changes, so a write is all or nothing.
            rows = {
                normalize_key(k, int_keys): tuple(a[i].copy() for a in arrays) for i, k in enumerate(keys)
            }
            self._names, self._int_keys = names, int_keys
            self._rows.update(rows)

    def read(self, rows: Iterable[Key] | None = None, cols: Iterable[str] | None = None) -> Outputs:
        with self._lock:
            names = self._names or ()
            if rows is None:
                keys = list(self._rows)
            else:
                keys = [normalize_key(k, bool(self._int_keys)) for k in rows]
                missing = [k for k in keys if k not in self._rows]
                if missing:
                    raise MissingKeyError(
                        f"Storage of pipeline {self.name!r} has no rows for keys {missing[:10]}"
                        f"{' ...' if len(missing) > 10 else ''} ({len(missing)} missing)."
                    )
            selected = list(names) if cols is None else list(cols)
            unknown = [c for c in selected if c not in names]
            if unknown:
                raise UnknownOutputError(f"Storage has no outputs {unknown}; it holds {list(names)}.")
            positions = [names.index(c) for c in selected]
            found = [self._rows[k] for k in keys]
        arrays = [np.stack([row[p] for row in found]) if found else np.empty((0,)) for p in positions]
        return Outputs(selected, arrays, np.asarray(keys))

    def keys(self) -> list[Key]:
        with self._lock:
            return list(self._rows)

    def delete(self, rows: Iterable[Key]) -> None:
        with self._lock:
            for key in rows:
                self._rows.pop(normalize_key(key, bool(self._int_keys)), None)

    def __contains__(self, key: Any) -> bool:
        return normalize_key(key, bool(self._int_keys)) in self._rows
