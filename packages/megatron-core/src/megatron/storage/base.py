"""The storage interface: a pipeline's outputs, kept by observation index."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from megatron.outputs import Outputs

Key = int | str


class Storage(abc.ABC):
    """The stored outputs of one pipeline (name and version), keyed by observation index.

    Backends subclass this and register their URL scheme through ``register_storage``.
    """

    @classmethod
    def open(cls, url: str, name: str, version: str | None) -> Storage:
        """The storage of pipeline ``name``/``version`` at ``url``."""
        raise NotImplementedError(f"{cls.__name__} cannot be opened from a URL.")

    @abc.abstractmethod
    def write(self, index: Sequence[Key] | np.ndarray, outputs: Outputs | dict[str, np.ndarray]) -> None:
        """Insert or replace the rows of ``index``; all of them or none."""

    @abc.abstractmethod
    def read(self, rows: Iterable[Key] | None = None, cols: Iterable[str] | None = None) -> Outputs:
        """The stored rows (all when ``rows`` is None) in the order asked, for ``cols``
        (all outputs when None). Keys may be given as ints or as their string form."""

    @abc.abstractmethod
    def keys(self) -> list[Key]:
        """Every stored key."""

    @abc.abstractmethod
    def delete(self, rows: Iterable[Key]) -> None:
        """Remove the rows of these keys (missing keys are ignored)."""

    @abc.abstractmethod
    def __contains__(self, key: Any) -> bool: ...

    def __len__(self) -> int:
        return len(self.keys())

    def close(self) -> None:  # noqa: B027 - optional hook: backends without resources need nothing
        """Release connections and files."""

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
