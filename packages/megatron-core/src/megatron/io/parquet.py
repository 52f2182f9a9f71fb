"""Parquet files as input arrays: a whole file (``ParquetData``), streamed in batches
(``ParquetGenerator``), and inputs from a file's columns (``from_parquet``).

Built on pyarrow (``megatron-core[parquet]``), imported when a file is opened. Columns are
read lazily: a batch reads a column from the file the first time it is asked for (a
pipeline asks only for its inputs), a row group at a time, so the columns a pipeline does
not use are never read, and memory holds the used columns of about one row group. Columns
become arrays as a pandas DataFrame of the file's data would give them (see
:mod:`megatron.io.columnar`); an integer column with a missing value anywhere in the file is
float (NaN) in every batch, and a boolean one object, so that a column keeps one dtype from
batch to batch.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from megatron.arguments import positive_int
from megatron.errors import DataError, MissingSourceError, SourceError
from megatron.graph.node import Input
from megatron.io.batch import Batch
from megatron.io.columnar import arrow_array
from megatron.io.frames import ColumnSelection, Groups
from megatron.io.lazy import LazyBatch
from megatron.io.schema import inputs_from_batch
from megatron.io.sources import BatchSource

_PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")


def require_parquet(feature: str) -> Any:
    """The ``pyarrow.parquet`` module, or a MissingDependencyError naming ``feature`` and the
    extra to install (``megatron-core[parquet]``)."""
    from megatron.dependencies import require

    return require("pyarrow.parquet", feature)


class ParquetFile:
    """An open Parquet file: its columns, its row groups, and the selection of its columns
    that become inputs (a pandas index the file stores is the index, not an input)."""

    def __init__(self, path: str | os.PathLike[str], selection: ColumnSelection, feature: str) -> None:
        pq = require_parquet(feature)
        self.path = str(path)
        if not os.path.isfile(path):
            what = "A folder, not a file" if os.path.isdir(path) else "No such file"
            raise MissingSourceError(f"{what}: {self.path!r}")
        try:
            self.file = pq.ParquetFile(path)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise SourceError(f"Cannot read Parquet file {self.path!r}: {exc}") from exc
        self.columns = [str(name) for name in self.file.schema_arrow.names]
        selection.check(self.columns, self.path)
        self.index_columns: list[str] = []  # a pandas MultiIndex's levels, when it is the index
        self.index_range: tuple[int, int] | None = None  # a pandas RangeIndex's (start, step)
        self.selection = self._with_stored_index(selection)
        metadata = self.file.metadata
        self.group_rows = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
        self.rows = sum(self.group_rows)
        self.with_nulls = self._columns_with_nulls()

    def _with_stored_index(self, selection: ColumnSelection) -> ColumnSelection:
        """The selection, with the index pandas stored (``df.to_parquet``) as pandas reads it
        unless ``index_col`` names a column: its columns left out of the inputs, one column
        the index, several (a MultiIndex) the index as tuples, and a RangeIndex (kept by its
        start, stop and step, no column) the numbers it gives."""
        described = (self.file.schema_arrow.pandas_metadata or {}).get("index_columns", [])
        stored = [c for c in described if isinstance(c, str) and c in self.columns]
        stored += [c for c in self.columns if _PANDAS_INDEX.match(c) and c not in stored]
        ranges = [d for d in described if isinstance(d, dict) and d.get("kind") == "range"]
        if selection.index_col is None and not stored and len(ranges) == 1:
            self.index_range = (int(ranges[0]["start"]), int(ranges[0]["step"]))
        if not stored:
            return selection
        index_col = selection.index_col
        if index_col is None and len(stored) > 1:
            self.index_columns = stored
        elif index_col is None:
            index_col = stored[0]
        exclude = [*selection.exclude_cols, *(c for c in stored if c != index_col)]
        return ColumnSelection(exclude, selection.groups, index_col)

    def index(self, rows: Rows, start: int) -> np.ndarray:
        """The index of ``rows``, the batch that starts at row ``start`` of the file: its index
        column, the stored pandas index, or the positions of the rows."""
        if self.selection.index_col is not None:
            return rows.column(self.selection.index_col)
        if self.index_columns:  # as pandas gives a MultiIndex: an object array of tuples
            levels = [rows.column(name) for name in self.index_columns]
            index = np.empty(len(rows), dtype=object)
            index[:] = list(zip(*levels))
            return index
        first, step = self.index_range or (0, 1)
        return np.arange(first + step * start, first + step * (start + len(rows)), step, dtype=np.int64)

    def _columns_with_nulls(self) -> set[str]:
        """The columns with a missing value in some row group (per the file's statistics; a
        nullable column without statistics counts as one)."""
        metadata, schema = self.file.metadata, self.file.schema_arrow
        found: set[str] = set()
        for group in range(metadata.num_row_groups):
            chunks = metadata.row_group(group)
            for j in range(chunks.num_columns):
                chunk = chunks.column(j)
                name = chunk.path_in_schema.split(".")[0]
                stats = chunk.statistics
                if stats is None or not stats.has_null_count:
                    if name in schema.names and schema.field(name).nullable:
                        found.add(name)
                elif stats.null_count > 0:
                    found.add(name)
        return found

    def read(self, group: int, name: str) -> Any:
        """Column ``name`` of row group ``group``, as an Arrow ChunkedArray."""
        try:
            return self.file.read_row_group(group, columns=[name], use_threads=False).column(0)
        except (OSError, ValueError) as exc:
            raise SourceError(
                f"Cannot read column {name!r} of row group {group} of Parquet file {self.path!r}: {exc}"
            ) from exc

    def array(self, name: str, pieces: Any) -> np.ndarray:
        """Column ``name`` over ``pieces`` (Arrow arrays) as one numpy array, of the dtype the
        column has in every batch."""
        import pyarrow as pa

        array = arrow_array(pieces[0] if len(pieces) == 1 else pa.chunked_array(pieces))
        if name in self.with_nulls:
            if array.dtype.kind in "iu":
                return array.astype(np.float64)
            if array.dtype.kind == "b":
                return array.astype(object)
        return array


class RowGroup:
    """One row group of a file, each column read once, when first asked for."""

    def __init__(self, file: ParquetFile, number: int) -> None:
        self.file = file
        self.number = number
        self.read: dict[str, Any] = {}

    def column(self, name: str) -> Any:
        if name not in self.read:
            self.read[name] = self.file.read(self.number, name)
        return self.read[name]


class Rows:
    """The rows of one batch: pieces ``(row group, start, stop)`` of one or more row groups."""

    def __init__(self, file: ParquetFile, pieces: list[tuple[RowGroup, int, int]]) -> None:
        self.file = file
        self.pieces = pieces

    def __len__(self) -> int:
        return sum(stop - start for _, start, stop in self.pieces)

    def column(self, name: str) -> np.ndarray:
        arrays = [group.column(name).slice(start, stop - start) for group, start, stop in self.pieces]
        if not arrays:
            import pyarrow as pa

            schema = self.file.file.schema_arrow
            arrays = [pa.chunked_array([], type=schema.field(name).type)]
        return self.file.array(name, arrays)


def _batch(file: ParquetFile, rows: Rows, start: int) -> LazyBatch:
    """The rows as a batch of the file's selected inputs, the batch starting at row ``start``."""
    selection = file.selection
    groups = selection.groups or {}
    names = [*selection.single(file.columns), *groups]

    def read(name: str) -> np.ndarray:
        if name in groups:
            columns = [rows.column(c) for c in groups[name]]
            return np.column_stack(columns) if columns else np.empty((len(rows), 0))
        return rows.column(name)

    return LazyBatch(names, read, file.index(rows, start))


def _first_rows(file: ParquetFile, count: int) -> Rows:
    pieces, left = [], count
    for number, size in enumerate(file.group_rows):
        if left <= 0:
            break
        pieces.append((RowGroup(file, number), 0, min(size, left)))
        left -= size
    return Rows(file, pieces)


def ParquetData(
    path: str | os.PathLike[str],
    exclude_cols: Sequence[str] = (),
    nrows: int | None = None,
    *,
    groups: Groups | None = None,
    index_col: str | None = None,
) -> Batch:
    """A Parquet file's columns (its first ``nrows`` rows; all with None) as input arrays, each
    read when a pipeline first asks for it. A pandas index stored in the file is the index.

    Example::

        data = ParquetData('train.parquet', exclude_cols=['comment'], index_col='id')
        pipeline.fit(data)
    """
    count = positive_int(nrows, "nrows", allow_none=True, error=DataError)
    file = ParquetFile(path, ColumnSelection(exclude_cols, groups, index_col), "ParquetData")
    return _batch(file, _first_rows(file, file.rows if count is None else int(count)), 0)


class ParquetGenerator(BatchSource):
    """A Parquet file streamed in batches of ``batch_size`` rows, one row group at a time.

    Only the columns the pipeline reads are read from the file; memory holds those columns of
    about one row group (write files with row groups of a size that fits: pyarrow's
    ``row_group_size``). Rows are numbered from 0 across the file unless ``index_col`` names
    a column (or the file stores a pandas index).

    Example::

        pipeline.fit_generator(ParquetGenerator('big.parquet', batch_size=100_000))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        batch_size: int,
        exclude_cols: Sequence[str] = (),
        *,
        groups: Groups | None = None,
        index_col: str | None = None,
        repeat: bool = False,
    ) -> None:
        super().__init__(batch_size, repeat)
        self.path = path
        self.selection = ColumnSelection(exclude_cols, groups, index_col)
        self.rows = ParquetFile(path, self.selection, "ParquetGenerator").rows  # fails early

    def __len__(self) -> int:
        return math.ceil(self.rows / self.batch_size)

    def one_pass(self) -> Iterator[Batch]:
        file = ParquetFile(self.path, self.selection, "ParquetGenerator")
        pieces: list[tuple[RowGroup, int, int]] = []
        held = start = 0
        for number, size in enumerate(file.group_rows):
            group, position = RowGroup(file, number), 0
            while position < size:
                take = min(self.batch_size - held, size - position)
                pieces.append((group, position, position + take))
                held, position = held + take, position + take
                if held == self.batch_size:
                    yield _batch(file, Rows(file, pieces), start)
                    pieces, held, start = [], 0, start + held
        if pieces:
            yield _batch(file, Rows(file, pieces), start)


def from_parquet(
    path: str | os.PathLike[str],
    exclude_cols: Sequence[str] = (),
    *,
    groups: Groups | None = None,
    index_col: str | None = None,
    eager: bool = False,
    sample_rows: int = 1000,
) -> dict[str, Input]:
    """Inputs for the columns of a Parquet file, shapes and dtypes inferred from its first
    ``sample_rows`` rows (all of it with ``eager=True``, which also loads the data into the inputs).

    Example::

        inputs = megatron.nodes.from_parquet('train.parquet', exclude_cols=['id'])
    """
    nrows = None if eager else positive_int(sample_rows, "sample_rows", error=DataError)
    batch = ParquetData(path, exclude_cols, nrows, groups=groups, index_col=index_col)
    return inputs_from_batch(batch, ColumnSelection(exclude_cols, groups, index_col).groups, eager)
