"""Data sources: whole datasets (``PandasData``, ``CSVData``) and re-iterable batch sources
(``PandasGenerator``, ``CSVGenerator``, ``ArrayGenerator``).

Every batch source is re-iterable: each ``iter()`` is one pass over the data, which staged
fitting needs; ``repeat=True`` cycles forever instead (then pass ``steps_per_epoch``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from megatron.arguments import positive_int
from megatron.errors import DataError, MissingSourceError, SourceError
from megatron.io.batch import Batch
from megatron.io.frames import ColumnSelection, Groups, check_frame, frame_length, frame_rows, require_pandas


def _existing(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.is_file():
        what = "A folder, not a file" if path.is_dir() else "No such file"
        raise MissingSourceError(f"{what}: {str(path)!r}")
    return path


def _row_count(nrows: Any) -> int | None:
    """``nrows`` if it is None (all rows) or a positive integer (a number of rows to read)."""
    count = positive_int(nrows, "nrows", allow_none=True, error=DataError)
    return None if count is None else int(count)


def read_csv_batch(
    path: str | os.PathLike[str],
    nrows: Any,
    selection: ColumnSelection,
    read_csv: Mapping[str, Any],
    feature: str = "CSVData",
) -> Batch:
    """The first ``nrows`` rows (all, with None) of a CSV file, selected by ``selection``;
    ``feature`` is what a missing pandas is needed for."""
    pd = require_pandas(feature)
    nrows = _row_count(nrows)
    path = _existing(path)
    try:
        frame = pd.read_csv(path, nrows=nrows, **read_csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SourceError(f"Cannot read CSV file {str(path)!r}: {exc}") from exc
    return selection.frame_batch(frame, str(path))


def PandasData(
    df: Any,
    exclude_cols: Sequence[str] = (),
    nrows: int | None = None,
    *,
    groups: Groups | None = None,
    index_col: str | None = None,
) -> Batch:
    """The columns of a DataFrame (pandas or Polars) or an Arrow table as input arrays, each
    column keeping its dtype.

    Example::

        data = PandasData(df, exclude_cols=['id'], index_col='id')
        pipeline.fit(data)
    """
    check_frame(df, "PandasData")
    nrows = _row_count(nrows)
    frame = df if nrows is None else frame_rows(df, 0, nrows)
    return ColumnSelection(exclude_cols, groups, index_col).frame_batch(frame)


def CSVData(
    path: str | os.PathLike[str],
    exclude_cols: Sequence[str] = (),
    nrows: int | None = None,
    *,
    groups: Groups | None = None,
    index_col: str | None = None,
    **read_csv: Any,
) -> Batch:
    """A CSV file (with a header row) as input arrays; extra keywords go to ``pandas.read_csv``.

    Example::

        data = CSVData('train.csv', index_col='id')
    """
    return read_csv_batch(path, nrows, ColumnSelection(exclude_cols, groups, index_col), read_csv)


class BatchSource:
    """Base of the batch sources: ``batch_size`` rows at a time, one pass per ``iter()``."""

    def __init__(self, batch_size: int, repeat: bool = False) -> None:
        self.batch_size = int(positive_int(batch_size, "batch_size"))
        self.repeat = repeat

    def __iter__(self) -> Iterator[Batch]:
        while True:
            empty = True
            for batch in self.one_pass():
                empty = False
                yield batch
            if not self.repeat:
                return
            if empty:  # cycling over nothing would never give a batch, nor end
                raise SourceError(
                    f"{type(self).__name__}(repeat=True) has no rows to repeat: a pass over it gave "
                    "no batch, so it would cycle forever. Check the data (an empty frame, file or "
                    "query) or drop repeat=True."
                )

    def one_pass(self) -> Iterator[Batch]:
        """The batches of one pass over the data."""
        raise NotImplementedError

    def __len__(self) -> int:
        """Batches per pass, where known."""
        raise TypeError(f"{type(self).__name__} does not know its number of batches")


class PandasGenerator(BatchSource):
    """A DataFrame (pandas or Polars) or an Arrow table in batches of ``batch_size`` rows,
    keeping a pandas frame's index (rows are numbered by position in the others).

    Example::

        pipeline.fit_generator(PandasGenerator(df, batch_size=1000))
    """

    def __init__(
        self,
        df: Any,
        batch_size: int,
        exclude_cols: Sequence[str] = (),
        *,
        groups: Groups | None = None,
        index_col: str | None = None,
        repeat: bool = False,
    ) -> None:
        super().__init__(batch_size, repeat)
        check_frame(df, "PandasGenerator")
        self.df = df
        self.selection = ColumnSelection(exclude_cols, groups, index_col)
        self.selection.frame_batch(frame_rows(df, 0, 0))  # fail early

    def __len__(self) -> int:
        return math.ceil(frame_length(self.df) / self.batch_size)

    def one_pass(self) -> Iterator[Batch]:
        for start in range(0, frame_length(self.df), self.batch_size):
            rows = frame_rows(self.df, start, start + self.batch_size)
            yield self.selection.frame_batch(rows, start=start)


class CSVGenerator(BatchSource):
    """A CSV file streamed in batches of ``batch_size`` rows, with bounded memory.

    Rows are numbered from 0 across the file unless ``index_col`` names a column. A column
    whose dtype changes from one batch to the next (say, an int column with a missing value
    further down) is an error naming the column and the batch: pass ``dtype=`` (it goes to
    ``pandas.read_csv`` with any other keyword) to fix the types.

    Example::

        pipeline.fit_generator(CSVGenerator('big.csv', batch_size=100_000))
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
        **read_csv: Any,
    ) -> None:
        super().__init__(batch_size, repeat)
        self.path = _existing(path)
        self.selection = ColumnSelection(exclude_cols, groups, index_col)
        self.read_csv = read_csv
        pd = require_pandas("CSVGenerator")
        header = pd.read_csv(self.path, nrows=0, **read_csv)
        self.selection.check([str(c) for c in header.columns], str(self.path))

    def one_pass(self) -> Iterator[Batch]:
        pd = require_pandas("CSVGenerator")
        dtypes: dict[str, Any] | None = None
        start = 0
        try:
            chunks = pd.read_csv(self.path, chunksize=self.batch_size, **self.read_csv)
            for number, chunk in enumerate(chunks):
                if dtypes is None:
                    dtypes = dict(chunk.dtypes)
                else:
                    for column, dtype in chunk.dtypes.items():
                        if dtypes.get(column) != dtype:
                            raise SourceError(
                                f"Column {column!r} of {str(self.path)!r} changes dtype in batch {number}: "
                                f"{dtypes.get(column)} in the first batch, {dtype} now. Pass dtype= "
                                f"{{{column!r}: ...}} to CSVGenerator to fix it."
                            )
                if self.selection.index_col is None:
                    chunk.index = pd.RangeIndex(start, start + len(chunk))
                start += len(chunk)
                yield self.selection.frame_batch(chunk, str(self.path))
        except pd.errors.ParserError as exc:
            raise SourceError(f"Cannot read CSV file {str(self.path)!r}: {exc}") from exc


class ArrayGenerator(BatchSource):
    """Arrays, or ``.npy`` files read memory-mapped, in batches of ``batch_size`` rows.

    Suits data larger than memory, such as image sets: each batch reads only its rows.

    Example::

        batches = ArrayGenerator({'image': 'images.npy', 'label': labels}, batch_size=256)
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray | str | os.PathLike[str]],
        batch_size: int,
        *,
        index: Sequence[Any] | None = None,
        repeat: bool = False,
    ) -> None:
        super().__init__(batch_size, repeat)
        self.arrays = {name: self._open(value) for name, value in arrays.items()}
        lengths = {name: len(a) for name, a in self.arrays.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"ArrayGenerator arrays hold different numbers of rows: {lengths}")
        self.length = next(iter(lengths.values()), 0)
        self.index = None if index is None else np.asarray(index)
        if self.index is not None and len(self.index) != self.length:
            raise DataError(f"ArrayGenerator index has {len(self.index)} keys for {self.length} rows")

    @staticmethod
    def _open(value: np.ndarray | str | os.PathLike[str]) -> np.ndarray:
        if isinstance(value, str | os.PathLike):
            path = _existing(value)
            try:
                return np.load(path, mmap_mode="r", allow_pickle=False)
            except ValueError as exc:
                raise SourceError(f"Cannot memory-map {str(path)!r} as a .npy array: {exc}") from exc
        return np.asarray(value)

    def __len__(self) -> int:
        return math.ceil(self.length / self.batch_size)

    def one_pass(self) -> Iterator[Batch]:
        for start in range(0, self.length, self.batch_size):
            stop = min(start + self.batch_size, self.length)
            index = np.arange(start, stop) if self.index is None else self.index[start:stop]
            yield Batch({name: np.asarray(a[start:stop]) for name, a in self.arrays.items()}, index)
