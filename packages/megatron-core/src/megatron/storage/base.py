"""The storage interface: a pipeline's outputs, kept by observation index."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from megatron.errors import MissingKeyError
from megatron.outputs import Outputs
from megatron.storage.domain import Key, key_list


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
