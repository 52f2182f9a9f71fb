"""The storage interface: a pipeline's outputs, kept by observation index."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, overload

import numpy as np

from megatron.errors import MissingKeyError
from megatron.outputs import Outputs
from megatron.storage.domain import Key, as_outputs, key_list

_NOTHING: Any = object()  # an argument not given (None is a fingerprint)


class Storage(abc.ABC):
    """The stored outputs of one pipeline (name and version), keyed by observation index.

    Each row remembers the fingerprint of the fitted pipeline that wrote it, so a cache never
    serves rows of another fit. Backends subclass this and register their URL scheme through
    ``register_storage``.
    """

    name: str

    shared: bool = False
    """Whether writes made through a copy of this storage in another process (a pickled copy on
    a dask worker) reach the same rows as writes made here. False by default (an in-memory
    storage copies its rows, so a copy's writes are lost to this one); a backend that reopens
    the same database in every process (a SQL storage opened from a URL) says True. Writing
    from other processes refuses a storage that is not shared."""

    serial_writes: bool = False
    """Whether writers in several processes wait for one another (one writer lock, as a SQLite
    file has), so that more writing processes add no speed, and the data lives on one machine."""

    @classmethod
    def open(cls, url: str, name: str, version: str | None) -> Storage:
        """The storage of pipeline ``name``/``version`` at ``url``."""
        raise NotImplementedError(f"{cls.__name__} cannot be opened from a URL.")

    @overload
    def write(self, outputs: Outputs, fingerprint: str | None = None, /) -> None: ...

    @overload
    def write(self, outputs: Outputs, /, *, fingerprint: str | None = None) -> None: ...

    @overload
    def write(
        self,
        index: Sequence[Key] | np.ndarray,
        outputs: Mapping[str, Any],
        fingerprint: str | None = None,
    ) -> None: ...

    def write(self, index: Any = _NOTHING, outputs: Any = _NOTHING, fingerprint: str | None = None) -> None:
        """Insert or replace rows, all of them or none, recording ``fingerprint`` with each.

        ``write(outputs)`` stores an :class:`~megatron.outputs.Outputs` under its own index
        (what ``transform`` returns, or ``read`` of another storage); ``write(index, outputs)``
        stores a mapping of output name to array under the keys ``index``. Both are checked the
        same way (see :mod:`megatron.storage.domain`), and a backend receives both as one
        ``Outputs`` in :meth:`put`.
        """
        self.put(*_write_arguments(index, outputs, fingerprint))

    @abc.abstractmethod
    def put(self, outputs: Outputs, fingerprint: str | None) -> None:
        """The backend's one write method: insert or replace the rows of ``outputs`` under its
        own keys, all of them or none, each recording ``fingerprint``.

        :meth:`write` calls it with both of its forms made into one ``Outputs``, whose keys are
        as the caller gave them: check them with
        :func:`~megatron.storage.domain.checked_outputs` (against the storage's key type) before
        any row changes.
        """

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


def _write_arguments(index: Any, outputs: Any, fingerprint: str | None) -> tuple[Outputs, str | None]:
    """The outputs and fingerprint of a call of ``write`` in either form."""
    if isinstance(index, Outputs) and (outputs is _NOTHING or outputs is None or isinstance(outputs, str)):
        if outputs is _NOTHING:
            return index, fingerprint
        if fingerprint is not None:
            raise TypeError("Storage.write(outputs, fingerprint) got the fingerprint twice.")
        return index, outputs  # write(outputs, fingerprint), by position
    if index is _NOTHING and isinstance(outputs, Outputs):  # write(outputs=...)
        return outputs, fingerprint
    if index is _NOTHING or outputs is _NOTHING:
        given = "nothing" if index is outputs else f"{(outputs if index is _NOTHING else index)!r:.80} alone"
        raise TypeError(
            "Storage.write takes an Outputs (write(outputs, fingerprint=None)), or an index and a "
            f"mapping of output name to array (write(index, outputs, fingerprint=None)); got {given}."
        )
    return as_outputs(index, outputs), fingerprint
