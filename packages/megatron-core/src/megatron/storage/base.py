"""The storage interface: a pipeline's outputs, kept by observation index."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from megatron.errors import MissingKeyError, StorageError
from megatron.outputs import Outputs

Key = int | str


def checked_write(
    index: Sequence[Key] | np.ndarray, outputs: Outputs | dict[str, np.ndarray]
) -> tuple[np.ndarray, list[Key], list[str], list[np.ndarray]]:
    """A write's index (as an array and as a list of keys), output names and arrays, checked:
    one row per key in every output, and no key twice."""
    index = np.asarray(index)
    keys = index.tolist()
    names = list(outputs)
    arrays = [np.asarray(outputs[n]) for n in names]
    for name, array in zip(names, arrays):
        if len(array) != len(keys):
            raise StorageError(
                f"Cannot store output {name!r}: {len(array)} rows for an index of {len(keys)} keys."
            )
    # an increasing integer index (the usual one) holds no duplicates: no set to build
    increasing = index.dtype.kind in "iu" and index.ndim == 1 and bool((np.diff(index) > 0).all())
    if not increasing and len(set(keys)) != len(keys):
        raise StorageError("Cannot store rows: the index holds duplicate keys.")
    return index, keys, names, arrays


def key_list(rows: Iterable[Any]) -> list[Any]:
    """Keys as a list of Python values (an array's elements as ints or strings, not numpy
    scalars)."""
    return rows.tolist() if isinstance(rows, np.ndarray) else list(rows)


def normalize_key(key: Any, int_keys: bool) -> Key:
    """A stored key from a user's key: ``'0'`` finds the int key 0, and 0 the str key ``'0'``."""
    if isinstance(key, np.generic):
        key = key.item()
    if int_keys and isinstance(key, str):
        try:
            return int(key)
        except ValueError:
            return key
    if not int_keys and not isinstance(key, str):
        return str(key)
    return key


class Storage(abc.ABC):
    """The stored outputs of one pipeline (name and version), keyed by observation index.

    Each row remembers the fingerprint of the fitted pipeline that wrote it, so a cache never
    serves rows of another fit. Backends subclass this and register their URL scheme through
    ``register_storage``.
    """

    name: str

    @classmethod
    def open(cls, url: str, name: str, version: str | None) -> Storage:
        """The storage of pipeline ``name``/``version`` at ``url``."""
        raise NotImplementedError(f"{cls.__name__} cannot be opened from a URL.")

    @abc.abstractmethod
    def write(
        self,
        index: Sequence[Key] | np.ndarray,
        outputs: Outputs | dict[str, np.ndarray],
        fingerprint: str | None = None,
    ) -> None:
        """Insert or replace the rows of ``index``; all of them or none."""

    @abc.abstractmethod
    def lookup(
        self, rows: Iterable[Key], cols: Iterable[str] | None = None, fingerprint: str | None = None
    ) -> tuple[np.ndarray, Outputs]:
        """The stored rows among ``rows`` (written with ``fingerprint``, when given): the
        positions in ``rows`` that were found, and their outputs in that order."""

    @abc.abstractmethod
    def keys(self) -> list[Key]:
        """Every stored key, in order."""

    @abc.abstractmethod
    def delete(self, rows: Iterable[Key]) -> None:
        """Remove the rows of these keys (missing keys are ignored)."""

    @abc.abstractmethod
    def __contains__(self, key: Any) -> bool: ...

    def read(self, rows: Iterable[Key] | None = None, cols: Iterable[str] | None = None) -> Outputs:
        """The stored rows (all when ``rows`` is None) in the order asked, for ``cols`` (all
        outputs when None). Keys may be given as ints or as their string form."""
        wanted = self.keys() if rows is None else key_list(rows)
        found, outputs = self.lookup(wanted, cols)
        if len(found) != len(wanted):
            seen = set(found.tolist())
            missing = [k for i, k in enumerate(wanted) if i not in seen]
            raise MissingKeyError(
                f"Storage of pipeline {self.name!r} has no rows for keys {missing[:10]}"
                f"{' ...' if len(missing) > 10 else ''} ({len(missing)} missing)."
            )
        return outputs

    def __len__(self) -> int:
        return len(self.keys())

    def close(self) -> None:  # noqa: B027 - optional hook: backends without resources need nothing
        """Release connections and files."""

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
