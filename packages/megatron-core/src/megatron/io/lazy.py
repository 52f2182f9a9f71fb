"""``LazyBatch``: a batch whose arrays are read when first asked for (a Parquet file's columns),
so that a pipeline reads only the inputs it uses."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from megatron.io.batch import Batch


class LazyBatch(Batch):
    """A :class:`Batch` whose arrays are read from the file when first asked for: every input
    name is a key, and ``batch[name]`` reads that column (or group of columns)."""

    def __init__(self, names: Sequence[str], read: Callable[[str], np.ndarray], index: Any) -> None:
        super().__init__(dict.fromkeys(names), index)  # type: ignore[arg-type]
        self._read = read
        self._unread = set(names)

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self._unread:
            value = self._read(name)
            dict.__setitem__(self, name, value)
            self._unread.discard(name)
            return value
        return dict.__getitem__(self, name)

    def __iter__(self) -> Iterator[str]:  # not dict's: dict(batch) then reads through __getitem__
        return iter(list(dict.keys(self)))

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default  # noqa: SIM401 (dict.get skips __getitem__)

    def items(self) -> Any:
        return [(name, self[name]) for name in self]

    def values(self) -> Any:
        return [self[name] for name in self]

    def copy(self) -> Batch:
        return Batch(dict(self.items()), self.index)

    def __eq__(self, other: object) -> bool:
        return dict(self.items()) == other

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> Any:  # shipped as a plain batch of what it holds
        return (Batch, (dict(self.items()), self.index))
