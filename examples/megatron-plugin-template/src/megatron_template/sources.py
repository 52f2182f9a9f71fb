"""The template's source: the arrays of a ``.npz`` file, in batches."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np

from megatron.errors import SourceError
from megatron.io import Batch, BatchSource


class NpzSource(BatchSource):
    """The arrays of an ``.npz`` file (saved with ``numpy.savez``), ``batch_size`` rows at a
    time; each ``iter()`` is a new pass, and each batch carries its rows' positions as keys.

    Example::

        pipeline.fit_generator(NpzSource('train.npz', batch_size=256))
    """

    def __init__(self, path: str | os.PathLike[str], batch_size: int, repeat: bool = False) -> None:
        super().__init__(batch_size, repeat)  # checks batch_size
        self.path = os.fspath(path)
        try:
            with np.load(self.path, allow_pickle=False) as data:  # never unpickle a data file
                self.arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError) as exc:
            raise SourceError(f"Cannot read {self.path!r} as an .npz file: {exc}") from exc
        lengths = {name: len(a) for name, a in self.arrays.items()}
        if len(set(lengths.values())) != 1:
            raise SourceError(f"{self.path!r} holds arrays of different lengths: {lengths}")
        self.length = next(iter(lengths.values()))

    def __len__(self) -> int:
        return math.ceil(self.length / self.batch_size)

    def one_pass(self) -> Iterator[Batch]:
        for start in range(0, self.length, self.batch_size):
            stop = min(start + self.batch_size, self.length)
            yield Batch({name: a[start:stop] for name, a in self.arrays.items()}, np.arange(start, stop))
