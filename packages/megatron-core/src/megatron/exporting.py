"""Outputs as tables: a pandas or Polars DataFrame, or an Arrow table (``Outputs.to_frame``,
``Outputs.to_arrow``). Each output of one value per row is a column; an output of arrays is
one column per element, named ``name[i]``, ``name[i, j]``... The libraries are imported only
here, when asked for."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from megatron.dependencies import require
from megatron.errors import ConfigError, DataError
from megatron.features import feature_columns

BACKENDS = ("pandas", "polars")


def output_columns(
    outputs: Iterable[tuple[str, np.ndarray]],
    where: str,
    features: Mapping[str, list[str] | None] | None = None,
) -> dict[str, np.ndarray]:
    """The columns of ``outputs`` (name, array pairs), arrays flattened to one column per
    element, named by the output's feature names where ``features`` knows them
    (:func:`megatron.features.feature_columns`); a ConfigError where two outputs give a column
    of one name."""
    outputs = list(outputs)
    by_features = feature_columns(outputs, features) if features else {}
    columns: dict[str, np.ndarray] = {}
    owners: dict[str, str] = {}
    for name, array in outputs:
        if array.ndim == 1:
            named = [(name, array)]
        else:  # the row length given, not -1, which numpy cannot infer from zero rows
            flat = array.reshape(len(array), math.prod(array.shape[1:]))
            labels = by_features.get(name) or [
                f"{name}[{', '.join(map(str, position))}]" for position in np.ndindex(*array.shape[1:])
            ]
            named = [(label, flat[:, j]) for j, label in enumerate(labels)]
        for column, values in named:
            if column in owners:
                raise ConfigError(
                    f"{where}: outputs {owners[column]!r} and {name!r} both give a column named "
                    f"{column!r}; rename one of them."
                )
            owners[column] = name
            columns[column] = values
    return columns


def pandas_frame(columns: dict[str, np.ndarray], index: np.ndarray) -> Any:
    """A pandas DataFrame of ``columns``, indexed by ``index``."""
    pd = require("pandas", "Outputs.to_frame()")
    return pd.DataFrame(columns, index=_frame_index(pd, index))


def _frame_index(pd: Any, index: np.ndarray) -> Any:
    """The index of the frame, of the same dtype with no rows as with rows: pandas reads the
    type of numpy strings from their values, and there are none in an empty array."""
    if not len(index) and index.dtype.kind == "U":
        return pd.Index(np.zeros(1, index.dtype))[:0]
    return pd.Index(index)


def _with_index(columns: dict[str, np.ndarray], index: np.ndarray, name: str | None, where: str) -> dict:
    if name is None:
        return columns
    if name in columns:
        raise ConfigError(
            f"{where}: an output column is named {name!r}, as the index column would be; pass "
            "index='another name' (or index=None to leave the index out)."
        )
    return {name: index, **columns}


def _missing_as_none(values: np.ndarray) -> list[Any]:
    """An object column's values, with NaN (pandas' missing text) and NaT (a missing zoned
    datetime) as None (a null)."""
    return [None if _is_missing(v) else v for v in values.tolist()]


def _is_missing(value: Any) -> bool:
    return (isinstance(value, float) and math.isnan(value)) or type(value).__name__ == "NaTType"


def polars_frame(columns: dict[str, np.ndarray], index: np.ndarray, index_name: str | None) -> Any:
    """A Polars DataFrame of ``columns``, the index first as column ``index_name`` (left out
    with None)."""
    pl = require("polars", 'Outputs.to_frame(backend="polars")')
    where = 'Outputs.to_frame(backend="polars")'
    series = []
    for name, values in _with_index(columns, index, index_name, where).items():
        try:
            if values.dtype == object:
                series.append(pl.Series(name, _missing_as_none(values), strict=False))
            else:
                series.append(pl.Series(name, values))
        except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
            raise DataError(f"{where}: column {name!r} cannot become a Polars column: {exc}") from exc
    return pl.DataFrame(series)


def arrow_table(columns: dict[str, np.ndarray], index: np.ndarray, index_name: str | None) -> Any:
    """An Arrow table of ``columns``, the index first as column ``index_name`` (left out with
    None). Float NaN stays NaN; missing text (None or NaN) becomes null."""
    pa = require("pyarrow", "Outputs.to_arrow()")
    arrays, names = [], []
    for name, values in _with_index(columns, index, index_name, "Outputs.to_arrow()").items():
        try:
            arrays.append(pa.array(values, from_pandas=values.dtype == object))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            raise DataError(
                f"Outputs.to_arrow(): column {name!r} cannot become an Arrow column: {exc}"
            ) from exc
        names.append(name)
    return pa.table(arrays, names=names)
