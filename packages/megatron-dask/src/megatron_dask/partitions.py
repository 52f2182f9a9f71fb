"""A dask collection as the batches a pipeline reads: one delayed batch per partition.

A dask DataFrame's partitions are pandas DataFrames, whose index is the observation index. A
mapping of input name to dask arrays is cut into the row chunks of its first dask array (every
array rechunked to them, whole along the other axes; numpy arrays among them are cut the same
way); each chunk is a :class:`~megatron.io.Batch` indexed by the positions of its rows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from megatron.errors import ConfigError, DataError, LengthMismatchError
from megatron.io import Batch
from megatron_dask.plugin import is_dask


@dataclasses.dataclass(frozen=True)
class Partitions:
    """The batches of a dask collection, lazily."""

    parts: list[Any]
    """One ``dask.delayed`` object per partition, computing to a batch (a pandas DataFrame or a
    :class:`~megatron.io.Batch`)."""
    empty: Any
    """A batch of no rows with the collection's columns and dtypes (for dask's ``meta``)."""
    frame: Any = None
    """The dask DataFrame itself, when the collection is one."""
    divisions: tuple[Any, ...] | None = None
    """The index values that bound the partitions, where known (positions of arrays)."""

    @property
    def npartitions(self) -> int:
        return len(self.parts)


def partitions(data: Any, where: str) -> Partitions:
    """``data`` (a dask DataFrame, or a mapping of input name to dask arrays) as partitions;
    ``where`` (``"Pipeline 'churn'.transform()"``) begins the messages of errors."""
    if isinstance(data, Mapping):
        return _array_partitions(data, where)
    import dask.dataframe as dd

    if isinstance(data, dd.DataFrame):
        return Partitions(list(data.to_delayed()), data._meta, data, tuple(data.divisions))
    if isinstance(data, dd.Series):
        raise DataError(
            f"{where} takes a dask DataFrame or a mapping of input name to dask arrays; got a dask "
            f"Series{f' named {data.name!r}' if data.name is not None else ''}. Pass "
            "series.to_frame(), whose column names the inputs."
        )
    raise DataError(
        f"{where} takes a dask DataFrame or a mapping of input name to dask arrays; got a "
        f"{type(data).__module__}.{type(data).__qualname__}."
    )


def _array_partitions(data: Mapping[str, Any], where: str) -> Partitions:
    import dask.array as da
    from dask import delayed

    names = [str(name) for name in data]
    first = next(value for value in data.values() if is_dask(value))
    for name, value in data.items():
        if is_dask(value) and not isinstance(value, da.Array):
            raise DataError(
                f"{where}: a mapping holds dask arrays (or numpy arrays) by input name; input "
                f"{name!r} is a {type(value).__module__}.{type(value).__qualname__}. Pass a dask "
                "DataFrame itself, or its columns' .to_dask_array(lengths=True)."
            )
    arrays = [value if is_dask(value) else da.from_array(np.asarray(value)) for value in data.values()]
    for name, array in zip(names, arrays):
        if array.ndim == 0:
            raise DataError(
                f"{where}: input {name!r} is a dask array of no axis; its first axis is the rows."
            )
        if math.isnan(array.shape[0]):
            raise DataError(
                f"{where}: the dask array of input {name!r} has chunks of unknown length; call its "
                ".compute_chunk_sizes() first, so that the inputs' rows can be aligned."
            )
    lengths = {name: array.shape[0] for name, array in zip(names, arrays)}
    if len(set(lengths.values())) > 1:
        raise LengthMismatchError(f"{where}: inputs hold different numbers of observations ({lengths}).")
    rows = first.chunks[0]
    aligned = [array.rechunk({0: rows, **{axis: -1 for axis in range(1, array.ndim)}}) for array in arrays]
    blocks = [array.to_delayed().reshape(-1) for array in aligned]
    starts = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
    make = delayed(_batch, pure=True)
    parts = [make(names, [b[i] for b in blocks], int(starts[i])) for i in range(len(rows))]
    empty = Batch({name: np.empty((0, *a.shape[1:]), a.dtype) for name, a in zip(names, aligned)})
    divisions = None
    if rows and all(rows):
        divisions = (*(int(s) for s in starts[:-1]), int(starts[-1]) - 1)
    return Partitions(parts, empty, None, divisions)


def _batch(names: Sequence[str], blocks: Sequence[np.ndarray], start: int) -> Batch:
    n = len(blocks[0]) if blocks else 0
    return Batch(dict(zip(names, blocks)), index=np.arange(start, start + n))


def no_index(index: Any, where: str) -> None:
    """Refuse ``index=`` for a dask collection: its rows carry their own."""
    if index is not None:
        raise ConfigError(
            f"{where} takes no index= for a dask collection: a dask DataFrame's index is the "
            "observation index (set it with set_index), and dask arrays are indexed by position."
        )
