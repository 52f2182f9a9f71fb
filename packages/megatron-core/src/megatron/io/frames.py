"""Columns of pandas DataFrames as input arrays: selection, grouping, dtypes, index."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from megatron.errors import DataError, MegatronError
from megatron.io.batch import Batch

Groups = Mapping[str, Sequence[str]]


def require_pandas() -> Any:
    """The pandas module, or an error that says how to install it."""
    try:
        import pandas
    except ImportError:
        raise MegatronError(
            "This needs pandas, an optional dependency: pip install 'megatron-core[pandas]'"
        ) from None
    return pandas


def check_columns(available: Sequence[str], wanted: Sequence[str], what: str, where: str) -> None:
    """Raise a DataError naming the ``wanted`` columns that ``available`` lacks."""
    missing = [c for c in wanted if c not in available]
    if missing:
        hints = [difflib.get_close_matches(c, list(available), n=1) for c in missing]
        suggestions = "".join(f" Did you mean {h[0]!r} for {c!r}?" for c, h in zip(missing, hints) if h)
        raise DataError(f"{where}: {what} {missing} not among the columns {list(available)}.{suggestions}")


def column_array(series: Any) -> np.ndarray:
    """A column as a numpy array of its own dtype: numbers stay numbers, text becomes str or
    object (never a mixed frame's object coercion)."""
    array = series.to_numpy()
    if array.dtype == object and series.dtype != object:  # pandas' string dtype, nullable types
        kind = getattr(series.dtype, "kind", "O")
        if kind in "biuf" and not series.isna().any():
            array = series.to_numpy(dtype=series.dtype.numpy_dtype)
        elif kind in "biuf":
            array = series.to_numpy(dtype=float, na_value=np.nan)
    return array


def _stacked(frame: Any, columns: list[str]) -> np.ndarray:
    """Several columns as one (n, k) array; columns of one numeric dtype come out in one copy."""
    dtypes = set(frame[columns].dtypes)
    if len(dtypes) == 1 and getattr(next(iter(dtypes)), "kind", "O") in "biuf":
        return frame[columns].to_numpy()
    return np.column_stack([column_array(frame[c]) for c in columns])


def frame_to_batch(
    frame: Any,
    *,
    exclude_cols: Sequence[str] = (),
    groups: Groups | None = None,
    index_col: str | None = None,
    where: str = "DataFrame",
) -> Batch:
    """The columns of ``frame`` as a :class:`Batch`, one array per column (or group).

    ``groups`` maps an input name to several columns, stacked as one (n, k) array. The index
    comes from ``index_col``, else from the frame's own index.
    """
    columns = [str(c) for c in frame.columns]
    check_columns(columns, list(exclude_cols), "excluded columns", where)
    grouped = {c for cols in (groups or {}).values() for c in cols}
    for name, cols in (groups or {}).items():
        check_columns(columns, list(cols), f"columns of group {name!r}", where)
    if index_col is not None:
        check_columns(columns, [index_col], "index column", where)
    skip = set(exclude_cols) | grouped | ({index_col} if index_col else set())
    arrays = {c: column_array(frame[c]) for c in columns if c not in skip}
    for name, cols in (groups or {}).items():
        arrays[name] = _stacked(frame, list(cols))
    index = frame[index_col].to_numpy() if index_col is not None else frame.index.to_numpy()
    return Batch(arrays, index)
