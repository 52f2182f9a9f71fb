"""Arrow tables and Polars DataFrames as input arrays, read as a pandas DataFrame of the same
data is read: each column an array of its own dtype (ints stay ints, floats floats, booleans
booleans, datetimes datetime64, text an object array), missing values as NaN in numeric
columns (ints then become floats) and as None in text and boolean columns. Datetimes with a
time zone become what pandas gives for them, an object array of time-zone-aware pandas
Timestamps (NaT where missing), local times rather than naive UTC: reading them needs pandas.

Neither library is imported here: a table is recognised by the module of its type, and its
columns are converted with its own methods. Such tables carry no index: their rows are
numbered by position.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

_TABLE_TYPES = frozenset(
    {
        ("polars.dataframe.frame", "DataFrame"),
        ("pyarrow.lib", "Table"),
        ("pyarrow.lib", "RecordBatch"),
    }
)


def is_table(data: Any) -> bool:
    """Whether ``data`` is a Polars DataFrame, an Arrow Table or an Arrow RecordBatch."""
    kind = type(data)
    return (kind.__module__, kind.__name__) in _TABLE_TYPES


def is_polars(data: Any) -> bool:
    """Whether ``data`` is a Polars DataFrame."""
    return type(data).__module__.startswith("polars.")


def table_columns(table: Any) -> list[str]:
    """The column names of a Polars DataFrame or an Arrow table, in order."""
    return list(table.columns) if is_polars(table) else list(table.column_names)


def table_length(table: Any) -> int:
    """The number of rows of a Polars DataFrame or an Arrow table."""
    return int(table.height) if is_polars(table) else int(table.num_rows)


def arrow_array(column: Any) -> np.ndarray:
    """An Arrow Array or ChunkedArray as a numpy array of its own dtype: a copy only where the
    layouts differ (nulls, text, several chunks); dictionary-encoded columns decoded."""
    chunks = getattr(column, "chunks", None)
    if chunks is not None and len(chunks) == 1:
        column = chunks[0]
    kind = column.type
    if hasattr(kind, "index_type"):  # dictionary-encoded (a categorical): its values
        column = column.cast(kind.value_type)
        kind = column.type
    return _as_pandas_gives(column.to_numpy(zero_copy_only=False), getattr(kind, "tz", None))


def _as_pandas_gives(array: np.ndarray, zone: str | None) -> np.ndarray:
    """A column's numpy array (datetimes with a time zone as naive UTC, as both libraries give
    them) as pandas gives the column: text as object, zoned datetimes as local Timestamps."""
    if zone:
        return zoned(array, zone)
    return array.astype(object) if array.dtype.kind in "US" else array


def zoned(utc: np.ndarray, zone: str) -> np.ndarray:
    """Naive UTC datetimes as the datetimes of time zone ``zone`` that pandas gives: an object
    array of time-zone-aware Timestamps, NaT where missing."""
    from megatron.dependencies import require

    pd = require("pandas", f"Reading a datetime column of time zone {zone!r}")
    return pd.Series(utc, copy=False).dt.tz_localize("UTC").dt.tz_convert(zone).to_numpy()


def column_of(table: Any, name: str) -> np.ndarray:
    """Column ``name`` of a Polars DataFrame or an Arrow table as a numpy array."""
    if is_polars(table):
        series = table.get_column(name)
        return _as_pandas_gives(series.to_numpy(), getattr(series.dtype, "time_zone", None))
    return arrow_array(table.column(name))


def stack_of(table: Any, names: list[str]) -> np.ndarray:
    """Several columns of a table as one (n, k) array."""
    if not names:
        return np.empty((table_length(table), 0))
    return np.column_stack([column_of(table, name) for name in names])


def rows_of(table: Any, start: int, stop: int) -> Any:
    """Rows ``start`` to ``stop`` of a table (a view where the library makes one)."""
    stop = min(stop, table_length(table))
    return table.slice(start, max(stop - start, 0))


class TableColumns:
    """A table's columns by input name, for reading feeds; an input with ``columns`` stacks them."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.names = table_columns(table)

    def read(self, node: Any) -> np.ndarray:
        """The array of input ``node``: its column, or its columns stacked; KeyError if absent."""
        names = node.columns or [node.name]
        if any(name not in self.names for name in names):
            raise KeyError(node.name)
        if node.columns is None:
            return column_of(self.table, node.name)
        return stack_of(self.table, list(names))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)
