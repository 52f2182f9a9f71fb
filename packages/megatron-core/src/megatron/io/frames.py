"""Columns of DataFrames as input arrays: selection, grouping, dtypes, index. A Polars
DataFrame or an Arrow table is read as the pandas DataFrame of the same data
(:mod:`megatron.io.columnar`), its rows numbered by position."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from megatron.errors import DataError
from megatron.io import columnar
from megatron.io.batch import Batch
from megatron.suggest import closest

Groups = Mapping[str, Sequence[str]]


def require_pandas(feature: str = "Reading tables") -> Any:
    """The pandas module, or a :class:`~megatron.errors.MissingDependencyError` naming ``feature``
    and how to install pandas."""
    from megatron.dependencies import require

    return require("pandas", feature)


def check_frame(frame: Any, where: str) -> None:
    """A DataError unless ``frame`` looks like a pandas DataFrame (columns, index, iloc) or is
    a Polars DataFrame or an Arrow table."""
    if columnar.is_table(frame):
        return
    if not all(hasattr(frame, attribute) for attribute in ("columns", "index", "iloc")):
        hint = (
            " A mapping of input names to arrays is data already: pass it to fit() or transform() as it is."
            if isinstance(frame, Mapping)
            else ""
        )
        raise DataError(
            f"{where} expects a pandas DataFrame; got {type(frame).__name__}. A Polars DataFrame or an "
            f"Arrow table also works.{hint}"
        )


def frame_rows(frame: Any, start: int, stop: int | None = None) -> Any:
    """Rows ``start`` to ``stop`` (the end with None) of a DataFrame or table, by position."""
    if columnar.is_table(frame):
        return columnar.rows_of(frame, start, columnar.table_length(frame) if stop is None else stop)
    return frame.iloc[start:stop]


def frame_length(frame: Any) -> int:
    """The number of rows of a DataFrame or table."""
    return columnar.table_length(frame) if columnar.is_table(frame) else len(frame)


def check_columns(available: Sequence[str], wanted: Sequence[str], what: str, where: str) -> None:
    """Raise a DataError naming the ``wanted`` columns that ``available`` lacks."""
    missing = [c for c in wanted if c not in available]
    if missing:
        hints = [closest(c, available) for c in missing]
        suggestions = "".join(
            f" Did you mean {h!r} for {c!r}?" for c, h in zip(missing, hints) if h is not None
        )
        raise DataError(f"{where}: {what} {missing} not among the columns {list(available)}.{suggestions}")


def column_array(series: Any) -> np.ndarray:
    """A column as a numpy array of its own dtype: numbers stay numbers, text becomes str or
    object (never a mixed frame's object coercion)."""
    array = series.to_numpy()
    if array.dtype == object and series.dtype != object:  # pandas' string dtype, nullable types
        kind = getattr(series.dtype, "kind", "O")
        if kind in "biuf" and not series.isna().any():
            array = series.to_numpy(dtype=series.dtype.numpy_dtype)
        elif kind == "b":  # True, False, None, as Polars and Arrow booleans with a missing value give
            array = series.to_numpy(dtype=object, na_value=None)
        elif kind in "iuf":
            array = series.to_numpy(dtype=float, na_value=np.nan)
    return array


def stack_columns(frame: Any, columns: list[str]) -> np.ndarray:
    """Several columns as one (n, k) array; columns of one numeric dtype come out in one copy."""
    dtypes = set(frame[columns].dtypes)
    only = next(iter(dtypes)) if len(dtypes) == 1 else None
    if isinstance(only, np.dtype) and only.kind in "biuf":  # not nullable dtypes, whose NA stays pd.NA
        return frame[columns].to_numpy()
    return np.column_stack([column_array(frame[c]) for c in columns])


def _names(columns: Sequence[str]) -> tuple[str, ...]:
    return tuple(columns)


def _groups(groups: Groups | None) -> dict[str, tuple[str, ...]] | None:
    return None if groups is None else {name: tuple(columns) for name, columns in groups.items()}


@attrs.frozen
class ColumnSelection:
    """Which columns of a table become which inputs: all but ``exclude_cols`` and the index
    column, with ``groups`` stacking several columns into one (n, k) input. A source builds
    one from its keyword arguments (copied: later edits of the caller's list or dict do not
    reach it) and reads every batch with it."""

    exclude_cols: tuple[str, ...] = attrs.field(default=(), converter=_names)
    groups: dict[str, tuple[str, ...]] | None = attrs.field(default=None, converter=_groups)
    index_col: str | None = None

    def check(self, columns: Sequence[str], where: str) -> None:
        """A DataError naming any column the selection mentions that ``columns`` lacks."""
        check_columns(columns, self.exclude_cols, "excluded columns", where)
        for name, cols in (self.groups or {}).items():
            check_columns(columns, cols, f"columns of group {name!r}", where)
        if self.index_col is not None:
            check_columns(columns, [self.index_col], "index column", where)

    def single(self, columns: Sequence[str]) -> list[str]:
        """The columns that become inputs of their own."""
        grouped = {c for cols in (self.groups or {}).values() for c in cols}
        skip = set(self.exclude_cols) | grouped | ({self.index_col} if self.index_col else set())
        return [c for c in columns if c not in skip]

    def batch(
        self,
        columns: Sequence[str],
        column: Callable[[str], np.ndarray],
        stack: Callable[[list[str]], np.ndarray],
        index: Callable[[], Any],
        where: str,
    ) -> Batch:
        """A :class:`Batch` from a table's ``columns``, read with ``column(name)``; grouped
        columns with ``stack(names)``; the index from the index column, else ``index()``."""
        self.check(columns, where)
        arrays = {c: column(c) for c in self.single(columns)}
        for name, cols in (self.groups or {}).items():
            arrays[name] = stack(list(cols))
        return Batch(arrays, column(self.index_col) if self.index_col is not None else index())

    def frame_batch(self, frame: Any, where: str = "DataFrame", start: int = 0) -> Batch:
        """The columns of a ``frame`` as a :class:`Batch`, one array per column (or group); the
        index from the index column, else from a pandas frame's own index, else the positions
        of the rows counted from ``start`` (a Polars DataFrame, an Arrow table)."""
        if columnar.is_table(frame):
            return self.batch(
                columnar.table_columns(frame),
                lambda name: columnar.column_of(frame, name),
                lambda names: columnar.stack_of(frame, names),
                lambda: np.arange(start, start + columnar.table_length(frame)),
                where,
            )
        return self.batch(
            [str(c) for c in frame.columns],
            lambda name: column_array(frame[name]),
            lambda names: stack_columns(frame, names),
            lambda: frame.index.to_numpy(),
            where,
        )
